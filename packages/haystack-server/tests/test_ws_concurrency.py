"""Many requests over one WebSocket from many tasks: each answered on its own, a slow
one holding up no other, a cancelled one leaving nothing behind on either side, and the
per-connection cap on requests run at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from projecthaystack.client import AsyncWebSocketClient
from projecthaystack.kinds import Grid, Number
from projecthaystack.server import Op, OpContext, ServerConfig, ServerLimits

from .conftest import PASSWORDS, Live

pytestmark = pytest.mark.anyio


@dataclass
class Gate:
    """What the slow ops on the server thread and the test share."""

    release: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


def _ops(gate: Gate) -> list[Op]:
    async def echo(ctx: OpContext, req: Grid) -> Grid:
        gate.started.append("echo")
        return Grid.from_rows([{"n": req[0]["n"]}])

    def slow(name: str) -> Any:
        async def handler(ctx: OpContext, req: Grid) -> Grid:
            gate.started.append(name)
            try:
                while not gate.release.is_set():
                    await anyio.sleep(0.01)
            except anyio.get_cancelled_exc_class():
                gate.cancelled.append(name)
                raise
            gate.finished.append(name)
            return Grid.from_rows([{"done": name}])

        return handler

    return [
        Op("echo", echo, no_side_effects=True),
        Op("slowRead", slow("slowRead"), no_side_effects=True),
        Op("slowWrite", slow("slowWrite")),
    ]


async def _until(check: Any, what: str) -> None:
    with anyio.fail_after(20):
        while not check():
            await anyio.sleep(0.01)


def _client(live: Live) -> AsyncWebSocketClient:
    return AsyncWebSocketClient(live.url, "viewer", PASSWORDS["viewer"], timeout=30)


async def test_a_hundred_requests_at_once_and_a_slow_one(make_live: Any) -> None:
    gate = Gate()
    live = make_live(ops=_ops(gate))
    async with _client(live) as ws, anyio.create_task_group() as outer:
        slow_done = anyio.Event()

        async def slow() -> None:
            assert (await ws.call("slowRead"))[0]["done"] == "slowRead"
            slow_done.set()

        outer.start_soon(slow)
        await _until(lambda: "slowRead" in gate.started, "the slow op to start")
        answers: dict[int, Any] = {}

        async def one(n: int) -> None:
            grid = await ws.call("echo", Grid.from_rows([{"n": Number(n)}]))
            answers[n] = grid[0]["n"]

        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(one, n)
        # Every request got its own answer while the slow one was still running.
        assert answers == {n: Number(n) for n in range(100)}
        assert not slow_done.is_set()
        assert len(ws._pending) == 1  # only the slow one is still waiting
        gate.release.set()
        await slow_done.wait()
    assert gate.finished == ["slowRead"]


async def test_a_cancelled_request_leaves_nothing_behind(make_live: Any) -> None:
    gate = Gate()
    live = make_live(ops=_ops(gate))
    async with _client(live) as ws:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await ws.call("slowRead")

                tg.start_soon(call)
                await _until(lambda: "slowRead" in gate.started, "the slow op to start")
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert ws._pending == {}  # nothing dangling in the client
        # The server was told and stopped working on it.
        await _until(lambda: gate.cancelled == ["slowRead"], "the server to cancel")
        assert gate.finished == []
        # The connection is as good as before.
        assert (await ws.call("echo", Grid.from_rows([{"n": Number(7)}])))[0]["n"] == Number(7)


async def test_a_cancelled_write_runs_to_its_end(make_live: Any) -> None:
    gate = Gate()
    live = make_live(ops=_ops(gate))
    async with AsyncWebSocketClient(live.url, "op", PASSWORDS["op"], timeout=30) as ws:
        with anyio.CancelScope() as scope:

            async def cancel_when_started() -> None:
                await _until(lambda: "slowWrite" in gate.started, "the write to start")
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_started)
                await ws.call("slowWrite")
        assert ws._pending == {}
        gate.release.set()
        # A write is not stopped halfway: it finishes, and its answer is dropped.
        await _until(lambda: gate.finished == ["slowWrite"], "the write to finish")
        assert gate.cancelled == []
        assert (await ws.call("echo", Grid.from_rows([{"n": Number(8)}])))[0]["n"] == Number(8)


async def test_requests_at_once_are_capped_per_connection(make_live: Any) -> None:
    gate = Gate()
    live = make_live(ServerConfig(limits=ServerLimits(max_ws_concurrent=2)), ops=_ops(gate))
    async with _client(live) as ws, anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(ws.call, "slowRead")
        await _until(lambda: gate.started.count("slowRead") == 2, "two slow ops")
        echoed = anyio.Event()

        async def echo() -> None:
            await ws.call("echo", Grid.from_rows([{"n": Number(1)}]))
            echoed.set()

        tg.start_soon(echo)
        await anyio.sleep(0.3)
        assert "echo" not in gate.started  # waits for a free slot: the cap is two
        gate.release.set()
        await echoed.wait()
    assert gate.finished == ["slowRead", "slowRead"]
