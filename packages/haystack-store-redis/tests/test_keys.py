"""Keys: client input (ids, tag names, users, watch ids) never escapes its part of a key."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projecthaystack.auth import ScramCredentials
from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk, Role, Session, User
from projecthaystack.stores.redis import (
    KeySpace,
    RedisStore,
    RedisStoreError,
    decode_part,
    encode_part,
    open_store,
)

# Ref ids allow ':' among the characters that matter in keys; ids that name the store's own
# keys ("e", "t:site", ...) must not reach them.
REF_IDS = ["a:b", "t:site", "e", ":", "a::b", "r:siteRef:a", "o", "h:a:1", "x" * 300]
# Everything else (history point ids, watch ids, owners, throttling keys) is any text.
CREDS = ScramCredentials.derive("pw", iterations=4096)
NASTY = ["a:b", "{x}", "}{", "%3A", "a%b", ":", "t:site", "e", "日本:{語}", "a\nb", " ", "x" * 300]


@given(st.text())
def test_parts_are_injective_and_plain(text: str) -> None:
    part = encode_part(text)
    assert not set(part) & {":", "{", "}"}
    assert decode_part(part) == text


@given(st.text(), st.text())
def test_distinct_inputs_give_distinct_keys(a: str, b: str) -> None:
    keys = KeySpace("p")
    if a != b:
        assert keys.ref(a, b) != keys.ref(b, a) or a == b
        assert keys.his_chunk(a, 1) != keys.his_chunk(b, 1)
    assert keys.ref(a + ":" + b, "") != keys.ref(a, b + ":") or (a, b) == ("", "")


@pytest.mark.parametrize("prefix", ["", "a{b}", "a:b", "x" * 65, "sp ace", "ü"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(RedisStoreError, match="prefix"):
        RedisStore(prefix=prefix)


def test_bad_urls_are_refused() -> None:
    with pytest.raises(RedisStoreError, match="not a Redis URL"):
        RedisStore("http://127.0.0.1:6379")
    for bad in ("protocol=4", "protocol=resp3", "feed_maxlen=many", "feed_maxlen=0"):
        with pytest.raises(RedisStoreError, match=bad.split("=")[0]):
            open_store(f"redis://127.0.0.1:6379/0?{bad}")


def test_url_parameters_of_the_store() -> None:
    store = open_store("redis+cluster://h:7000?prefix=p&protocol=3&feed_maxlen=50&socket_timeout=2")
    assert (store.keys.prefix, store.protocol, store.feed_maxlen) == ("p", 3, 50)
    assert store.cluster and store.url == "redis://h:7000?socket_timeout=2"
    assert open_store("redis://h/0").protocol == 2


async def _nasty_workload(store: RedisStore) -> None:
    recs = [{"id": Ref(i), "dis": i, "site": Marker, "siteRef": Ref("a:b")} for i in REF_IDS]
    await store.put_entities(recs)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    await store.his_write({i: HisChunk((t0,), (Number(1),)) for i in REF_IDS})
    for name in NASTY:
        await store.create_user(User(name, Role.VIEWER, CREDS, created=t0))
        await store.put_session(Session(name, name, t0 + dt.timedelta(days=3650)))
        sub = await store.watch_sub(
            None,
            REF_IDS,
            user=name,
            any_owner=False,
            dis=name,
            lease=dt.timedelta(minutes=1),
            now=t0,
            max_watches=5,
            max_ids=100,
        )
        assert sub is not None and sub.watch.size == len(REF_IDS)
        assert await store.throttle({name: 1}, dt.timedelta(minutes=1), t0)
        assert not await store.throttle({name: 1}, dt.timedelta(minutes=1), t0)
        assert await store.claim_handshake(name, t0 + dt.timedelta(minutes=1), t0)
    for name in NASTY:  # each under its own keys: nothing of one reached another
        got = await store.authenticate(name, t0)
        assert got is not None and got[1].username == name


@pytest.mark.anyio
async def test_nasty_ids_round_trip_and_stay_apart(single: RedisStore) -> None:
    await _nasty_workload(single)
    got = await single.get_entities(REF_IDS)
    assert [r["id"].id for r in got if r is not None] == REF_IDS
    assert [r["id"].id for r in await single.query(parse("site"))] == REF_IDS
    assert len(await single.query(parse("siteRef == @a:b"))) == len(REF_IDS)
    assert [r["id"].id for r in await single.query(parse('siteRef->dis == "a:b"'))] == REF_IDS
    assert await single.query(parse("siteRef == @t:site")) == []
    for chunks in await single.his_read(REF_IDS, None, None, tz=dt.UTC):
        assert [list(c.val) for c in chunks] == [[Number(1)]]
    # Every key is under the store's prefix, in the store's hash tag.
    keys = [k.decode() async for k in single.redis.scan_iter(match=single.keys.pattern())]
    assert keys and all(k.startswith(single.keys.base) for k in keys)
    assert await single.delete_entities(REF_IDS) == len(REF_IDS)
    assert await single.count_entities() == 0


@pytest.mark.anyio
async def test_nasty_ids_on_the_cluster_share_one_slot(on_cluster: RedisStore) -> None:
    await _nasty_workload(on_cluster)
    keys = [
        k
        for node in on_cluster.redis.get_primaries()
        async for k in on_cluster.redis.scan_iter(
            match=on_cluster.keys.pattern(), target_nodes=node
        )
    ]
    slots = {on_cluster.redis.keyslot(k) for k in keys}
    assert len(keys) > 20 and len(slots) == 1
    assert [r["id"].id for r in await on_cluster.query(parse("site"))] == REF_IDS


@pytest.mark.anyio
async def test_stores_under_two_prefixes_do_not_see_each_other(single: RedisStore) -> None:
    other = RedisStore(single.url, prefix=single.keys.prefix + "-2")
    await other.open()
    try:
        await single.put_entities([{"id": Ref("a"), "site": Marker}])
        assert await other.count_entities() == 0
        assert await other.query(parse("site")) == []
    finally:
        await other.drop()
        await other.close()
