"""Store round trips per op do not grow with the request: each op below costs as many
store calls for 1,000 ids (or points, or levels) as for one."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from projecthaystack.codecs import codec_for_mime
from projecthaystack.kinds import Col, Grid, Marker, Number, Ref, tz_from_name
from projecthaystack.server import MemoryStore, ServerConfig, ServerLimits, create_app

from .conftest import ADMIN, Clock

pytestmark = pytest.mark.anyio

JSON = codec_for_mime("application/json")
NY = tz_from_name("New_York")
POINTS = 1000


class Counting:
    """A store that counts the calls made to it (by name)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await method(*args, **kwargs)

        return call

    def take(self) -> dict[str, int]:
        calls, self.calls = self.calls, {}
        return calls


class Harness:
    def __init__(self, http: httpx.AsyncClient, store: Counting, clock: Clock) -> None:
        self.http = http
        self.store = store
        self.clock = clock

    async def op(self, name: str, grid: Grid) -> tuple[Grid, dict[str, int]]:
        self.store.take()
        resp = await self.http.post(
            name,
            content=JSON.encode(grid),
            headers={"Content-Type": JSON.content_type, "Accept": JSON.content_type},
        )
        assert resp.status_code == 200, resp.text
        answer = JSON.decode(resp.content)
        assert not answer.is_error, answer.meta.get("dis")
        return answer, self.store.take()


def _point(i: int) -> dict[str, Any]:
    return {
        "id": Ref(f"p{i}"),
        "point": Marker,
        "his": Marker,
        "writable": Marker,
        "kind": "Number",
        "unit": "kW",
        "tz": "New_York",
    }


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def harness(clock: Clock) -> AsyncIterator[Harness]:
    store = Counting(MemoryStore())
    config = ServerConfig(clock=clock, limits=ServerLimits(max_ids=POINTS))
    app = create_app(store, config=config, admin=ADMIN)  # type: ignore[arg-type]
    server = app.state.haystack
    await server.start()
    await store.put_entities([_point(i) for i in range(POINTS)])
    user = await store.get_user(ADMIN[0])
    token = await server.auth.mint(user, clock())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test/api/",
        headers={"Authorization": f"BEARER authToken={token}"},
    ) as http:
        yield Harness(http, store, clock)
    await server.stop()


def _ids(n: int) -> Grid:
    return Grid.from_rows([{"id": Ref(f"p{i}")} for i in range(n)])


async def _twice(run: Callable[[int], Any], small: int = 1, big: int = POINTS) -> None:
    """The store calls of ``run`` for ``small`` and ``big`` must be the same."""
    few, many = await run(small), await run(big)
    assert few == many
    assert sum(few.values()) <= 3  # and few: authenticate, then one or two more


async def test_an_authenticated_request_is_one_store_call(harness: Harness) -> None:
    _, calls = await harness.op("about", Grid.empty())
    assert calls == {"authenticate": 1}


async def test_read_by_ids(harness: Harness) -> None:
    async def run(n: int) -> dict[str, int]:
        grid, calls = await harness.op("read", _ids(n))
        assert len(grid) == n
        return calls

    await _twice(run)


async def test_his_write_and_read_batches(harness: Harness) -> None:
    t0 = dt.datetime(2026, 3, 1, tzinfo=NY)

    async def write(n: int) -> dict[str, int]:
        cols = [Col("ts")] + [Col(f"v{i}", {"id": Ref(f"p{i}")}) for i in range(n)]
        rows = [
            {"ts": t0 + dt.timedelta(minutes=m)} | {f"v{i}": Number(m, "kW") for i in range(n)}
            for m in range(3)
        ]
        _, calls = await harness.op("hisWrite", Grid(cols, rows))
        return calls

    async def read(n: int) -> dict[str, int]:
        req = Grid(["id"], [{"id": Ref(f"p{i}")} for i in range(n)], {"range": "2026-03-01"})
        grid, calls = await harness.op("hisRead", req)
        assert len(grid) == 3 and len(grid.cols) == n + 1
        return calls

    await _twice(write)
    await _twice(read)


async def test_watch_sub_poll_unsub(harness: Harness) -> None:
    async def watch(n: int) -> dict[str, int]:
        sub, calls = await harness.op("watchSub", Grid(["id"], list(_ids(n)), {"watchDis": "w"}))
        wid = sub.meta["watchId"]
        await harness.store.update_entity("p0", {"curVal": Number(n)})
        polled, poll_calls = await harness.op("watchPoll", Grid.empty({"watchId": wid}))
        assert [r["id"] for r in polled] == [Ref("p0")]
        refreshed, refresh_calls = await harness.op(
            "watchPoll", Grid.empty({"watchId": wid, "refresh": Marker})
        )
        assert len(refreshed) == n
        _, unsub_calls = await harness.op(
            "watchUnsub", Grid(["id"], list(_ids(n)), {"watchId": wid})
        )
        _, close_calls = await harness.op(
            "watchUnsub", Grid.empty({"watchId": wid, "close": Marker})
        )
        return {
            "sub": calls,
            "poll": poll_calls,
            "refresh": refresh_calls,
            "unsub": unsub_calls,
            "close": close_calls,
        }

    few, many = await watch(1), await watch(POINTS)
    assert few == many
    assert few["sub"] == {"authenticate": 1, "watch_sub": 1}
    assert few["poll"] == {"authenticate": 1, "watch_poll": 1, "get_entities": 1}


async def test_point_write_whatever_the_levels_set(harness: Harness) -> None:
    async def write(levels: int) -> dict[str, int]:
        point = Ref(f"p{levels}")
        for level in range(1, levels + 1):
            row = {"id": point, "level": Number(level), "val": Number(level, "kW")}
            req = Grid.from_rows([row | ({"duration": Number(1, "s")} if level == 8 else {})])
            _, calls = await harness.op("pointWrite", req)
            assert calls == {"authenticate": 1, "get_entities": 1, "point_write": 1}
        harness.clock.advance(2)  # level 8 runs out: the look expires it
        grid, calls = await harness.op("pointWrite", Grid.from_rows([{"id": point}]))
        assert len(grid) == 17 and grid[7].get("val") is None
        return calls

    await _twice(write, 8, 16)
