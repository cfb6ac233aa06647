"""The store protocol on Redis, with two store instances on one backend (as two workers
see it), on the shared single node and on a three-master cluster."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest

from projecthaystack.auth import ScramCredentials
from projecthaystack.filter import FilterError, parse, select
from projecthaystack.kinds import FrozenDict, Marker, Number, Ref, Remove, tz_from_name
from projecthaystack.server import (
    PROTOCOL_VERSION,
    HisChunk,
    PriorityLevel,
    Role,
    SchemaError,
    Session,
    UnknownEntityError,
    UnknownUserError,
    User,
    UserChanges,
    UserExistsError,
    WatchLimitError,
    demo_building,
)
from projecthaystack.server.storeforms import token_hash
from projecthaystack.stores.redis import LAYOUT, RedisStore

Pair = tuple[RedisStore, RedisStore]
NY = tz_from_name("New_York")
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)

# Beyond the contract suite's QUERIES: negated paths, Ref comparisons at a path's end,
# paths through ``id`` and an ``or`` that mixes a path with a marker.
QUERIES = (
    "not equipRef->ahu",
    "equipRef->siteRef == @demo.site1",
    "id->site",
    "siteRef != @demo.site1 and point",
    "equipRef->siteRef->area >= 50000ft² or site",
    "curVal > 60°F",
)


def chunk(*samples: tuple[dt.datetime, Any]) -> HisChunk:
    return HisChunk(tuple(t for t, _ in samples), tuple(v for _, v in samples))


def user(name: str, role: Role = Role.VIEWER) -> User:
    return User(name, role, ScramCredentials.derive("pw-" + name, iterations=4096), created=T0)


def flat(chunks: Any) -> list[tuple[dt.datetime, Any]]:
    return [(t, v) for c in chunks for t, v in zip(c.ts, c.val, strict=True)]


# -- entities ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_resp3_is_spoken_when_asked(pair_resp3: Pair) -> None:
    """The RESP3 runs of the contract suite (test_contract.py) really speak RESP3."""
    a, b = pair_resp3
    for store in (a, b):
        assert store.protocol == 3
        assert str((await store.redis.client_info())["resp"]) == "3"
    unknown = await a.watch_poll(["w-none"], user="u", any_owner=False, refresh=False, now=T0)
    assert unknown == [None]


@pytest.mark.anyio
async def test_info_and_layout_check(pair: Pair) -> None:
    a, _ = pair
    info = await a.info()
    assert (info.protocol, info.schema, info.shared) == (PROTOCOL_VERSION, LAYOUT, True)
    assert "@" not in info.backend and a.keys.base in info.backend
    await a.redis.hset(a.keys.meta, "layout", "999")
    other = RedisStore(a.url, prefix=a.keys.prefix, cluster=a.cluster)
    with pytest.raises(SchemaError, match="layout"):
        await other.open()


@pytest.mark.anyio
async def test_entities_shared_between_instances(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref("a", "A"), "dis": "A", "site": Marker}, {"id": Ref("b")}])
    assert await b.get_entities(["a", "zz", "b"]) == [
        {"id": Ref("a", "A"), "dis": "A", "site": Marker},
        None,
        {"id": Ref("b")},
    ]
    with pytest.raises(ValueError, match="id"):
        await b.put_entities([{"id": Ref("c")}, {"id": "not-a-ref"}])
    assert await a.count_entities() == 2  # all or none: c was not written
    updated = await b.update_entity("a", {"dis": "A2", "site": Remove, "n": Number(1, "kW")})
    assert updated == {"id": Ref("a", "A"), "dis": "A2", "n": Number(1, "kW")}
    assert await a.query(parse("site")) == []
    assert await a.query(parse("n")) == [updated]
    assert await a.update_entity("nope", {"x": Marker}) is None
    await a.put_entities([{"id": Ref("a"), "site": Marker}])  # replace keeps the order
    assert [r["id"] for r in await b.query(parse("id"))] == [Ref("a"), Ref("b")]
    assert await b.delete_entities(["a", "nope"]) == 1
    assert await a.query(parse("site")) == []
    assert await a.count_entities() == 1


@pytest.mark.anyio
async def test_batches_new_mixed_and_repeated(pair: Pair) -> None:
    """put_entities' two paths (an all-new batch writes the index sets grouped in
    Python; any other compares each entity's old and new sets) give what a scan gives;
    an id twice in one batch: the last record, in the first one's place."""
    a, b = pair
    building = demo_building(5, sites=2, ahus=2, vavs=2, days=0).records
    await a.put_entities(building)  # all new
    changed = [
        {**r, "dis": "changed", "flag": Marker} if "equip" in r else r for r in building[::2]
    ]
    gone = {"point", "equipRef"}
    stripped = [{k: v for k, v in r.items() if k not in gone} for r in building[1::4]]
    fresh = [
        {"id": Ref(f"new{i}"), "equip": Marker, "siteRef": building[0]["id"]} for i in range(3)
    ]
    twice = {"id": Ref("new0"), "equip": Marker, "flag": Marker}
    await b.put_entities([*changed, fresh[0], *stripped, *fresh[1:], twice])  # mixed
    final = {r["id"].id: r for r in building}
    final.update({r["id"].id: r for r in [*changed, *stripped]})
    final.update({"new0": twice, "new1": fresh[1], "new2": fresh[2]})
    expected = list(final.values())
    for text in ("flag", "point", "equipRef", "siteRef == @demo.site1", "equip and not flag"):
        assert await a.query(parse(text)) == select(parse(text), expected), text
    assert [r["id"].id for r in await b.query(parse("id"))] == list(final)
    await a.put_entities([twice, twice, fresh[0]])  # all known, repeated: the last wins
    final["new0"] = fresh[0]
    assert await b.get_entities(["new0"]) == [fresh[0]]
    for text in ("flag", "siteRef", "siteRef == @demo.site1", "id"):
        assert await b.query(parse(text)) == select(parse(text), list(final.values())), text


@pytest.mark.anyio
async def test_concurrent_updates_lose_nothing(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref("p")}])

    async def tag(store: RedisStore, name: str) -> None:
        await store.update_entity("p", {name: Marker})

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(tag, (a, b)[i % 2], f"t{i}")
    (rec,) = await a.get_entities(["p"])
    assert rec is not None and {f"t{i}" for i in range(20)} <= set(rec)
    assert len(await b.query(parse("t3 and t17"))) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("text", QUERIES)
async def test_query_equals_a_full_scan(pair: Pair, text: str) -> None:
    a, b = pair
    building = demo_building(3, sites=2, ahus=2, vavs=3, days=0).records
    await a.put_entities(building)
    expected = select(parse(text), building)
    assert await b.query(parse(text)) == expected
    assert await b.query(parse(text), limit=2) == expected[:2]
    assert await b.query(parse(text), limit=0) == []


@pytest.mark.anyio
async def test_paths_through_dicts_and_lists(pair: Pair) -> None:
    a, _ = pair
    recs = [
        {"id": Ref("s"), "site": Marker, "geoCity": "Hugo"},
        {"id": Ref("e"), "equip": Marker, "siteRef": Ref("s"), "spots": [Ref("s"), Ref("x")]},
        {
            "id": Ref("d"),
            "nested": {"siteRef": Ref("s"), "v": Number(3)},
            "siteRef": {"geoCity": "Hugo"},
        },
    ]
    await a.put_entities(recs)
    for text in (
        'siteRef->geoCity == "Hugo"',
        "spots->site",
        "spots == @x",
        "nested->v > 2",
        "nested->siteRef->site",
        "not siteRef->geoCity",
    ):
        assert await a.query(parse(text)) == select(parse(text), recs), text


@pytest.mark.anyio
async def test_spec_names_are_refused(pair: Pair) -> None:
    a, _ = pair
    with pytest.raises(FilterError, match="spec"):
        await a.query(parse("site and ph::Meter"))


# -- the change feed ----------------------------------------------------------------------
@pytest.mark.anyio
async def test_change_feed_across_instances(pair: Pair) -> None:
    a, b = pair
    start = await b.changes_since(None)
    assert not start.ids and not start.reset
    await a.put_entities([{"id": Ref("x")}, {"id": Ref("y")}])
    await a.update_entity("x", {"v": Marker})
    await a.delete_entities(["y"])
    got = await b.changes_since(start.cursor)
    assert got.ids == {"x", "y"} and not got.reset
    assert (await b.changes_since(got.cursor)).ids == frozenset()
    assert (await b.changes_since("garbage")).reset


@pytest.mark.anyio
async def test_wait_changes_wakes_on_the_other_instance(pair: Pair) -> None:
    a, b = pair
    cursor = (await b.changes_since(None)).cursor
    with anyio.fail_after(10):
        quiet = await b.wait_changes(cursor, 0.05)
        assert not quiet.ids
        async with anyio.create_task_group() as tg:

            async def write() -> None:
                await anyio.sleep(0.2)
                await a.put_entities([{"id": Ref("w")}])

            tg.start_soon(write)
            got = await b.wait_changes(cursor, 8)
        assert got.ids == {"w"}


@pytest.mark.anyio
async def test_a_trimmed_feed_resets(prefix: str, pair: Pair) -> None:
    a, _ = pair
    small = RedisStore(a.url, prefix=a.keys.prefix, cluster=a.cluster, feed_maxlen=1)
    await small.open()
    try:
        cursor = (await small.changes_since(None)).cursor
        w = await small.watch_sub(
            None,
            [],
            user="u",
            any_owner=False,
            dis="w",
            lease=MIN,
            now=T0,
            max_watches=5,
            max_ids=5,
        )
        assert w is not None
        for i in range(300):  # MAXLEN ~ trims whole nodes of ~100 entries
            await small.put_entities([{"id": Ref(f"e{i}")}])
        assert (await small.changes_since(cursor)).reset
        sub = await small.watch_sub(
            w.watch.id,
            ["e1"],
            user="u",
            any_owner=False,
            dis="w",
            lease=MIN,
            now=T0,
            max_watches=5,
            max_ids=5,
        )
        assert sub is not None
        poll = {"user": "u", "any_owner": False, "refresh": False, "now": T0}
        # The watch's last poll was trimmed away: anything may have changed, so all of it.
        assert await small.watch_poll([w.watch.id], **poll) == [["e1"]]
        assert await small.watch_poll([w.watch.id], **poll) == [[]]
    finally:
        await small.close()


# -- history -------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_history_batches_ranges_and_replacement(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref("p"), "point": Marker}, {"id": Ref("q"), "point": Marker}])
    ts = [T0.astimezone(NY) + dt.timedelta(hours=7 * i) for i in range(8)]
    n = await a.his_write(
        {
            "p": chunk(
                (ts[3], Number(3, "kW")), (ts[0], Number(0, "kW")), (ts[5], Number(5, "kW"))
            ),
            "q": chunk((ts[1], True), (ts[2], "text"), (ts[4], Number(4, "W"))),
        }
    )
    assert n == 6
    await b.his_write(
        {"p": chunk((ts[1], Number(1, "kW")), (ts[3], Number(33, "kW")), (ts[7], False))}
    )
    p, q, none = await b.his_read(["p", "q", "zz"], None, None, tz=NY)
    assert flat(p) == [
        (ts[0], Number(0, "kW")),
        (ts[1], Number(1, "kW")),
        (ts[3], Number(33, "kW")),
        (ts[5], Number(5, "kW")),
        (ts[7], False),
    ]
    assert flat(q) == [(ts[1], True), (ts[2], "text"), (ts[4], Number(4, "W"))]
    assert none == []
    assert all(t.tzinfo is NY for t, _ in flat(p))
    (between,) = await a.his_read(["p"], ts[1], ts[5], tz=dt.UTC)
    assert [v for _, v in flat(between)] == [Number(1, "kW"), Number(33, "kW")]
    assert all(t.tzinfo is dt.UTC for t, _ in flat(between))
    limited = await a.his_read(["p", "q"], None, None, tz=NY, limit=6)
    assert [len(flat(c)) for c in limited] == [5, 1]
    # Read again after the tidy-up write-back: the same.
    assert flat((await a.his_read(["p"], None, None, tz=NY))[0]) == flat(p)


@pytest.mark.anyio
async def test_his_write_is_all_or_nothing(pair: Pair) -> None:
    a, _ = pair
    await a.put_entities([{"id": Ref("p")}])
    with pytest.raises(UnknownEntityError) as info:
        await a.his_write({"p": chunk((T0, Number(1))), "ghost": chunk((T0, Number(2)))})
    assert info.value.ids == ("ghost",)
    assert await a.his_read(["p"], None, None, tz=dt.UTC) == [[]]


@pytest.mark.anyio
async def test_concurrent_batches_lose_nothing(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref(f"p{i}")} for i in range(4)])

    async def writer(store: RedisStore, w: int) -> None:
        for k in range(10):
            base = T0 + dt.timedelta(minutes=100 * w + 10 * k)
            batch = {
                f"p{i}": chunk(*[(base + dt.timedelta(minutes=j), Number(j)) for j in range(10)])
                for i in range(4)
            }
            await store.his_write(batch)

    async with anyio.create_task_group() as tg:
        for w in range(8):
            tg.start_soon(writer, (a, b)[w % 2], w)
    got = await a.his_read([f"p{i}" for i in range(4)], None, None, tz=dt.UTC)
    assert [len(flat(c)) for c in got] == [800] * 4
    times = [t for t, _ in flat(got[0])]
    assert times == sorted(set(times))


# -- priority arrays -----------------------------------------------------------------------
@pytest.mark.anyio
async def test_point_write_expiry_and_write_val(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref("p"), "point": Marker, "writable": Marker, "cur": Marker}])
    until = T0 + dt.timedelta(minutes=5)
    levels = await a.point_write("p", 8, PriorityLevel(Number(70), "op", until), now=T0)
    assert levels == {8: PriorityLevel(Number(70), "op", until)}
    await b.point_write("p", 16, PriorityLevel(Number(60), "sched"), now=T0)
    (rec,) = await a.get_entities(["p"])
    assert rec is not None and rec["writeVal"] == Number(70) and rec["writeLevel"] == Number(8)
    assert rec["curVal"] == Number(70)
    later = T0 + dt.timedelta(minutes=6)
    assert await b.point_write("p", None, None, now=later) == {
        16: PriorityLevel(Number(60), "sched")
    }
    (rec,) = await a.get_entities(["p"])
    assert rec is not None and rec["writeVal"] == Number(60) and rec["writeLevel"] == Number(16)
    assert await a.point_write("p", 16, None, now=later) == {}
    (rec,) = await a.get_entities(["p"])
    assert rec is not None and "writeVal" not in rec and "writeLevel" not in rec
    assert await a.point_write("ghost", 8, PriorityLevel(Number(1), "x"), now=T0) is None


@pytest.mark.anyio
async def test_concurrent_point_writes_stay_consistent(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref("p"), "writable": Marker}])

    async def write(store: RedisStore, level: int) -> None:
        await store.point_write("p", level, PriorityLevel(Number(level), "w"), now=T0)

    async with anyio.create_task_group() as tg:
        for level in range(1, 17):
            tg.start_soon(write, (a, b)[level % 2], level)
    levels = await a.point_write("p", None, None, now=T0)
    assert levels is not None and sorted(levels) == list(range(1, 17))
    (rec,) = await b.get_entities(["p"])
    assert rec is not None and rec["writeVal"] == Number(1) and rec["writeLevel"] == Number(1)


# -- watches -------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_watches_across_instances(pair: Pair) -> None:
    a, b = pair
    await a.put_entities([{"id": Ref(i), "v": Number(1)} for i in ("x", "y", "z")])
    common = {"dis": "app", "lease": MIN, "max_watches": 2, "max_ids": 3}
    sub = await a.watch_sub(
        None, ["x", "y", "ghost"], user="amy", any_owner=False, now=T0, **common
    )
    assert sub is not None and sub.watch.size == 2 and sub.watch.owner == "amy"
    assert [r["id"].id if r else None for r in sub.entities] == ["x", "y", None]
    wid = sub.watch.id
    poll = {"any_owner": False, "refresh": False, "now": T0}
    assert await b.watch_poll([wid], user="amy", **poll) == [[]]
    await b.update_entity("x", {"v": Number(2)})
    await b.put_entities([{"id": Ref("z"), "v": Number(9)}])  # not watched
    assert await a.watch_poll([wid], user="amy", **poll) == [["x"]]
    assert await a.watch_poll([wid], user="amy", **poll) == [[]]
    assert await b.watch_poll([wid], user="bob", **poll) == [None]  # not bob's
    assert await b.watch_poll([wid], user="bob", any_owner=True, refresh=False, now=T0) == [[]]
    refreshed = await b.watch_poll(
        [wid, "w-unknown"], user="amy", any_owner=False, refresh=True, now=T0
    )
    assert sorted(refreshed[0] or []) == ["x", "y"] and refreshed[1] is None
    await b.put_entities([{"id": Ref("x2")}])
    with pytest.raises(WatchLimitError) as too_many:
        await b.watch_sub(wid, ["z", "x2"], user="amy", any_owner=False, now=T0, **common)
    assert too_many.value.limit == "ids"
    await b.watch_sub(None, [], user="amy", any_owner=False, now=T0, **common)
    with pytest.raises(WatchLimitError) as watches:
        await a.watch_sub(None, [], user="amy", any_owner=False, now=T0, **common)
    assert watches.value.limit == "watches"
    assert not await b.watch_unsub(wid, ["x"], close=False, user="bob", any_owner=False, now=T0)
    assert await b.watch_unsub(wid, ["x"], close=False, user="amy", any_owner=False, now=T0)
    await a.update_entity("x", {"v": Number(3)})
    assert await a.watch_poll([wid], user="amy", **poll) == [[]]
    assert await a.watch_unsub(wid, [], close=True, user="amy", any_owner=False, now=T0)
    assert await a.watch_poll([wid], user="amy", **poll) == [None]
    await a.watch_sub(None, [], user="amy", any_owner=False, now=T0, **common)  # a slot is free


@pytest.mark.anyio
async def test_watch_leases_expire_exactly(pair: Pair) -> None:
    a, b = pair
    common = {"dis": "app", "lease": dt.timedelta(seconds=30), "max_watches": 1, "max_ids": 5}
    sub = await a.watch_sub(None, [], user="u", any_owner=False, now=T0, **common)
    assert sub is not None
    wid = sub.watch.id
    at = T0 + dt.timedelta(seconds=20)
    assert await b.watch_poll([wid], user="u", any_owner=False, refresh=False, now=at) == [[]]
    at = T0 + dt.timedelta(seconds=49)  # renewed at 20s: lives until 50s
    assert await b.watch_poll([wid], user="u", any_owner=False, refresh=False, now=at) == [[]]
    late = T0 + dt.timedelta(seconds=80)
    assert await b.watch_poll([wid], user="u", any_owner=False, refresh=False, now=late) == [None]
    assert await a.watch_sub(wid, [], user="u", any_owner=False, now=late, **common) is None
    # The expired watch no longer counts against the cap.
    assert await a.watch_sub(None, [], user="u", any_owner=False, now=late, **common) is not None


@pytest.mark.anyio
async def test_watch_caps_hold_under_concurrency(pair: Pair) -> None:
    a, b = pair
    opened: list[str] = []
    refused = 0

    async def open_one(store: RedisStore) -> None:
        nonlocal refused
        try:
            sub = await store.watch_sub(
                None,
                [],
                user="c",
                any_owner=False,
                dis="w",
                lease=MIN,
                now=T0,
                max_watches=3,
                max_ids=1,
            )
            assert sub is not None
            opened.append(sub.watch.id)
        except WatchLimitError:
            refused += 1

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(open_one, (a, b)[i % 2])
    assert len(opened) == 3 and refused == 7


# -- users, sessions, handshakes, throttling -------------------------------------------------
@pytest.mark.anyio
async def test_users_and_sessions(pair: Pair) -> None:
    a, b = pair
    amy = user("amy", Role.ADMIN)
    await a.create_user(amy)
    await a.create_user(user("zed"))
    with pytest.raises(UserExistsError):
        await b.create_user(user("amy"))
    assert [u.username for u in await b.list_users()] == ["amy", "zed"]
    assert await b.get_user("amy") == amy
    h1, h2 = token_hash("t1"), token_hash("t2")
    await a.put_session(Session(h1, "amy", T0 + dt.timedelta(hours=1)))
    await a.put_session(Session(h2, "amy", T0 + dt.timedelta(hours=1)))
    got = await b.authenticate(h1, T0)
    assert (
        got is not None
        and got[0] == Session(h1, "amy", T0 + dt.timedelta(hours=1))
        and got[1] == amy
    )
    assert await b.authenticate(h1, T0 + dt.timedelta(hours=1)) is None  # expiry is exact
    assert await b.authenticate(token_hash("nope"), T0) is None
    keys = [k async for k in a.redis.scan_iter(match=a.keys.pattern())] if not a.cluster else []
    for k in keys:  # no bearer token at rest, only hashes
        assert b"t1" not in k.split(b":")[-1]
    await b.delete_session(h1)
    assert await a.authenticate(h1, T0) is None
    updated = await b.update_user("amy", UserChanges(role=Role.VIEWER))
    assert updated.role is Role.VIEWER and await a.authenticate(h2, T0) is not None
    await b.update_user("amy", UserChanges(enabled=False))  # revokes every session
    assert await a.authenticate(h2, T0) is None
    with pytest.raises(UnknownUserError):
        await a.update_user("ghost", UserChanges(enabled=True))
    await a.put_session(Session(h1, "zed", T0 + dt.timedelta(hours=1)))
    assert await b.delete_user("zed") and not await b.delete_user("zed")
    assert await a.authenticate(h1, T0) is None


@pytest.mark.anyio
async def test_handshake_claimed_exactly_once(pair: Pair) -> None:
    a, b = pair
    wins: list[bool] = []

    async def claim(store: RedisStore) -> None:
        wins.append(await store.claim_handshake("k:{1}", T0 + MIN, T0))

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(claim, (a, b)[i % 2])
    assert wins.count(True) == 1 and len(wins) == 12
    assert await a.claim_handshake("other", T0 + MIN, T0)


@pytest.mark.anyio
async def test_throttle_counts_and_forgives(pair: Pair) -> None:
    a, b = pair
    window = dt.timedelta(minutes=5)
    limits = {"c:10.0.0.1": 3, "u:amy|10.0.0.1": 2}
    assert await a.throttle(limits, window, T0)
    assert await b.throttle(limits, window, T0 + MIN)
    assert not await a.throttle(limits, window, T0 + 2 * MIN)  # the user key is full
    assert await a.throttle({"c:10.0.0.1": 3}, window, T0 + 2 * MIN, record=False)
    await b.forgive(refund=["c:10.0.0.1"], clear=["u:amy|10.0.0.1"])
    assert await a.throttle(limits, window, T0 + 3 * MIN)  # c: 2 of 3
    assert await a.throttle(limits, window, T0 + 3 * MIN)  # c: 3 of 3
    assert not await b.throttle({"c:10.0.0.1": 3}, window, T0 + 3 * MIN, record=False)
    # The attempt at T0 leaves the window: a free slot again.
    later = T0 + 5 * MIN + dt.timedelta(seconds=1)
    assert await b.throttle({"c:10.0.0.1": 3}, window, later, record=False)


@pytest.mark.anyio
async def test_returned_records_are_immutable(pair: Pair) -> None:
    a, _ = pair
    await a.put_entities([{"id": Ref("a"), "site": Marker}])
    (rec,) = await a.get_entities(["a"])
    assert type(rec) is FrozenDict
    with pytest.raises(TypeError):
        rec["site"] = "changed"  # type: ignore[index]
