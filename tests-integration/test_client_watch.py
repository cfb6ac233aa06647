"""Watch objects of our client against haystack-server over a real socket: the records
follow writes made elsewhere, a tag the server drops goes, and the watch survives the
server going away and coming back with other data (re-subscribed, refreshed, an entity
that no longer exists removed), from the sync, the async and the WebSocket client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from projecthaystack.client import (
    AsyncClient,
    AsyncWebSocketClient,
    Client,
    RequestNotSentError,
    WatchChanges,
)
from projecthaystack.kinds import Grid, Number, Ref
from projecthaystack.server import MemoryStore, Op, OpContext, Role, create_app, demo_building
from projecthaystack.server.testing import free_port, serve

ADMIN = ("admin", "correct-horse-battery")
BUILDING = demo_building(sites=1, ahus=1, vavs=1, days=1)
SP = "demo.site1.ahu1.datsp"  # writable, no writeVal until written
DAT = "demo.site1.ahu1.dat"
RAT = "demo.site1.ahu1.rat"
WATCHED = [SP, DAT, RAT]


def _app(*, restarted: bool = False) -> Any:
    """The demo building; ``restarted``: as after a restart with other data: the RAT
    point deleted and the DAT reading another value."""

    async def load(store: Any) -> None:
        records = BUILDING.records
        if restarted:
            records = [
                {**r, "curVal": Number(99, "°F")} if r["id"].id == DAT else r
                for r in records
                if r["id"].id != RAT
            ]
        await store.put_entities(records)

    async def delete(ctx: OpContext, req: Grid) -> Grid:
        await ctx.store.delete_entities([row["id"].id for row in req])
        return Grid.empty()

    ops = [Op("deleteEntities", delete, role=Role.ADMIN)]
    return create_app(MemoryStore(), admin=ADMIN, on_startup=[load], ops=ops)


@contextlib.contextmanager
def _server(port: int, *, restarted: bool = False) -> Iterator[str]:
    with serve(_app(restarted=restarted), port=port) as url:
        yield url


def _check_after_restart(watch: Any, changes: WatchChanges, old: str | None) -> None:
    assert watch.watch_id not in (None, old)  # a new watch on the new server
    assert changes.removed == (RAT,)
    assert DAT in changes.updated
    assert set(watch.records) == {SP, DAT}
    assert watch[DAT]["curVal"] == Number(99, "°F")
    assert "writeVal" not in watch[SP]


def test_sync_watch_follows_writes_and_survives_a_restart() -> None:
    port = free_port()
    with Client(f"http://127.0.0.1:{port}/api", *ADMIN, timeout=30) as c:
        with _server(port) as url, Client(url, *ADMIN) as other:
            watch = c.watch(WATCHED, dis="e2e")
            assert watch.open().updated == tuple(WATCHED)
            assert "writeVal" not in watch[SP]
            other.point_write(SP, 8, Number(56, "°F"))
            assert watch.poll() == WatchChanges(updated=(SP,))
            assert watch[SP]["writeVal"] == Number(56, "°F")
            assert watch[SP]["curVal"] == Number(56, "°F")
            assert not watch.poll()
            # Released: the server drops writeVal from the record, and so does the watch.
            other.point_write(SP, 8, None)
            assert watch.poll().updated == (SP,)
            assert "writeVal" not in watch[SP]
            old = watch.watch_id
        with pytest.raises(RequestNotSentError):
            watch.poll()  # the server is down
        with _server(port, restarted=True):
            _check_after_restart(watch, watch.poll(), old)
            watch.close()


def test_sync_changes_iterator() -> None:
    port = free_port()
    with (
        _server(port) as url,
        Client(url, *ADMIN) as c,
        Client(url, *ADMIN) as other,
        c.watch([SP]) as watch,
    ):
        other.point_write(SP, 9, Number(51, "°F"))
        changes = next(iter(watch.changes(interval=0.05)))
        assert changes.updated == (SP,)
        assert watch[SP]["writeVal"] == Number(51, "°F")


def test_an_entity_deleted_on_the_server_is_removed() -> None:
    port = free_port()
    with _server(port) as url, Client(url, *ADMIN) as c, c.watch([SP, RAT]) as watch:
        c.call("deleteEntities", Grid.from_rows([{"id": Ref(RAT)}]))
        # The server reports it (a row with a removed marker) and the watch drops it.
        assert watch.poll() == WatchChanges(removed=(RAT,))
        assert set(watch.records) == {SP}
        assert not watch.refresh()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_websocket_push_of_a_deleted_entity(anyio_backend: str) -> None:
    port = free_port()
    with _server(port) as url:
        async with (
            AsyncWebSocketClient(url, *ADMIN, timeout=30) as ws,
            ws.watch([SP, RAT]) as watch,
        ):
            await ws.call("deleteEntities", Grid.from_rows([{"id": Ref(RAT)}]))
            assert await watch.next_changes(timeout=30) == WatchChanges(removed=(RAT,))
            assert set(watch.records) == {SP}


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_async_watch_survives_a_restart(anyio_backend: str) -> None:
    port = free_port()
    async with AsyncClient(f"http://127.0.0.1:{port}/api", *ADMIN, timeout=30) as c:
        with _server(port):
            async with AsyncClient(f"http://127.0.0.1:{port}/api", *ADMIN) as other:
                watch = c.watch(WATCHED)
                await watch.open()
                await other.point_write(SP, 8, Number(57, "°F"))
                changes = await watch.next_changes(timeout=30, interval=0.05)
                assert changes == WatchChanges(updated=(SP,))
                assert watch[SP]["writeVal"] == Number(57, "°F")
                old = watch.watch_id
        with _server(port, restarted=True):
            _check_after_restart(watch, await watch.next_changes(timeout=30, interval=0.05), old)
            frame = watch.to_pandas()
            assert sorted(frame.index) == sorted([SP, DAT])
            assert frame.loc[DAT, "curVal"] == 99.0
            await watch.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_websocket_watch_is_pushed_and_resubscribed(anyio_backend: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    ws = AsyncWebSocketClient(url, *ADMIN, timeout=30, max_reconnect_delay=0.5)
    with _server(port):
        await ws.__aenter__()
        try:
            async with AsyncClient(url, *ADMIN) as other:
                watch = ws.watch(WATCHED, dis="pushed")
                await watch.open()
                await other.point_write(SP, 8, Number(58, "°F"))
                # No poll: the server pushes the change and the watch applies it.
                changes = await watch.next_changes(timeout=30)
                assert changes == WatchChanges(updated=(SP,))
                assert watch[SP]["writeVal"] == Number(58, "°F")
                old = watch.watch_id
                # A plain watch of the same socket still goes to updates().
                plain = (await ws.watch_sub([DAT], dis="plain")).meta["watchId"]
                await other.point_write(SP, 8, None)
                assert (await watch.next_changes(timeout=30)).updated == (SP,)
                assert "writeVal" not in watch[SP]
        except BaseException:
            await ws.aclose()
            raise
    try:
        # The server restarts with other data: the client reconnects, logs in again,
        # re-subscribes (a new watch: the old one is gone) and refreshes the records.
        with _server(port, restarted=True):
            with anyio.fail_after(60):
                changes = await watch.next_changes()
                while watch.watch_id in (None, old):
                    changes = changes | await watch.next_changes()
            _check_after_restart(watch, changes, old)
            # The plain watch was reopened too, and its notice went to updates().
            notice = await ws.next_update(timeout=30)
            assert notice.watch_id == plain
            assert notice.grid.is_error
    finally:
        await ws.aclose()
