"""The in-memory store against the storage protocol's suite, on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Ref
from projecthaystack.server import MemoryStore
from projecthaystack.server.storetests import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()


@pytest.mark.anyio
async def test_wait_for_change_wakes_on_a_write() -> None:
    store = MemoryStore()
    woke = anyio.Event()

    async def waiter() -> None:
        await store.wait_for_change(30)
        woke.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            await store.put_entities([{"id": Ref("a"), "site": Marker}])
            await woke.wait()


@pytest.mark.anyio
async def test_returned_records_cannot_corrupt_the_store() -> None:
    store = MemoryStore()
    await store.put_entities([{"id": Ref("a"), "site": Marker}])
    (rec,) = await store.get_entities(["a"])
    assert rec is not None
    with pytest.raises(TypeError):
        rec["site"] = "changed"
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
