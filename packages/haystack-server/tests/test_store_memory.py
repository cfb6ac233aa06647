"""The in-memory store against the storage protocol's contract suite, on asyncio and
trio, with its two instances two views of one memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk, MemoryStore
from projecthaystack.server.storetests import StoreContract


class TestMemoryStore(StoreContract):
    SINGLE_PROCESS = True

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def stores(self) -> AsyncIterator[tuple[MemoryStore, MemoryStore]]:
        store = MemoryStore()
        other = store.view()
        await store.open()
        await other.open()
        yield store, other
        await store.close()
        await other.close()


class TestOneMemoryStoreTwice(StoreContract):
    """The same checks when both "instances" are one object."""

    SINGLE_PROCESS = True

    @pytest.fixture
    async def stores(self) -> AsyncIterator[tuple[MemoryStore, MemoryStore]]:
        store = MemoryStore()
        await store.open()
        yield store, store
        await store.close()


@pytest.mark.anyio
async def test_returned_records_cannot_corrupt_the_store() -> None:
    store = MemoryStore()
    await store.put_entities([{"id": Ref("a"), "site": Marker}])
    (rec,) = await store.get_entities(["a"])
    assert rec is not None
    with pytest.raises(TypeError):
        rec["site"] = "changed"  # type: ignore[index]
    assert await store.query(parse("site")) == [{"id": Ref("a"), "site": Marker}]


@pytest.mark.anyio
async def test_index_narrows_and_follows_removals() -> None:
    store = MemoryStore()
    await store.put_entities([{"id": Ref(f"p{i}"), "point": Marker} for i in range(50)])
    await store.put_entities([{"id": Ref("p3"), "other": Marker}])
    found = await store.query(parse("point"))
    assert len(found) == 49
    assert [r["id"] for r in await store.query(parse("other or point"), limit=3)] == [
        Ref("p0"),
        Ref("p1"),
        Ref("p2"),
    ]
    assert await store.query(parse("id == @p3 and other")) == [{"id": Ref("p3"), "other": Marker}]
    assert await store.query(parse("id == @nope")) == []


@pytest.mark.anyio
async def test_the_feed_is_bounded_and_an_old_cursor_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from projecthaystack.server import _memory

    monkeypatch.setattr(_memory, "FEED_SIZE", 10)
    store = MemoryStore()
    await store.put_entities([{"id": Ref("w")}])
    start = (await store.changes_since(None)).cursor
    for i in range(30):
        await store.put_entities([{"id": Ref(f"e{i}")}])
    assert (await store.changes_since(start)).reset
    with anyio.fail_after(5):
        assert (await store.wait_changes(start, 60)).reset
    # A watch whose place in the feed is gone reports everything it holds.
    sub = await store.watch_sub(
        None,
        ["w"],
        user="u",
        any_owner=False,
        dis="",
        lease=_lease(),
        now=_now(),
        max_watches=1,
        max_ids=10,
    )
    assert sub is not None
    for i in range(30):
        await store.put_entities([{"id": Ref(f"f{i}")}])
    polled = await store.watch_poll(
        [sub.watch.id], user="u", any_owner=False, refresh=False, now=_now()
    )
    assert polled == [["w"]]


@pytest.mark.anyio
async def test_an_unchanged_range_is_handed_out_again() -> None:
    store = MemoryStore()
    await store.put_entities([{"id": Ref("p")}])
    t = _now()
    await store.his_write({"p": HisChunk((t,), (Number(1),))})
    (first,) = await store.his_read(["p"], None, None, tz=t.tzinfo)  # type: ignore[arg-type]
    (again,) = await store.his_read(["p"], None, None, tz=t.tzinfo)  # type: ignore[arg-type]
    assert first[0] is again[0]
    await store.his_write({"p": HisChunk((t,), (Number(2),))})
    (after,) = await store.his_read(["p"], None, None, tz=t.tzinfo)  # type: ignore[arg-type]
    assert after[0] is not first[0] and list(after[0].val) == [Number(2)]


@pytest.mark.anyio
async def test_kept_answers_are_bounded_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from projecthaystack.server import _memory

    monkeypatch.setattr(_memory, "_HIS_KEPT", 25)
    store = MemoryStore()
    await store.put_entities([{"id": Ref(p)} for p in ("a", "b", "c", "big")])
    t0 = _now()
    ts = tuple(t0 + dt.timedelta(minutes=i) for i in range(10))
    big = tuple(t0 + dt.timedelta(minutes=i) for i in range(30))
    await store.his_write({p: HisChunk(ts, tuple(map(Number, range(10)))) for p in "abc"})
    await store.his_write({"big": HisChunk(big, tuple(map(Number, range(30))))})

    async def read(p: str) -> HisChunk:
        ((chunk,),) = await store.his_read([p], None, None, tz=dt.UTC)
        return chunk

    a1, b1 = await read("a"), await read("b")
    assert await read("a") is a1  # both kept: 20 samples of 25
    c1 = await read("c")  # 30 would be over: "b", read longest ago, is let go
    assert await read("c") is c1 and await read("a") is a1
    b2 = await read("b")
    assert b2 is not b1 and (b2.ts, b2.val) == (b1.ts, b1.val)  # built again, the same
    # An answer over the whole bound is never kept, and lets go of nothing.
    kept_before = store._b.his_kept_total
    big1 = await read("big")
    assert await read("big") is not big1 and len(big1) == 30
    assert store._b.his_kept_total == kept_before <= 25
    # Writes and removals let go of a point's answer and its share of the bound.
    await store.his_write({"a": HisChunk((t0,), (Number(7),))})
    assert "a" not in store._b.his_kept
    await store.delete_entities(["c"])
    assert "c" not in store._b.his_kept
    assert store._b.his_kept_total == sum(store._b.his_kept.values())


def _now():  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _lease():  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.timedelta(minutes=1)
