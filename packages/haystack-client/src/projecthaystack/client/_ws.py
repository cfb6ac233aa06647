"""``AsyncWebSocketClient``: the ops over one WebSocket, watch changes pushed to you.

WebSocket protocol (what ``haystack-server`` speaks at ``{prefix}/ws``)
-----------------------------------------------------------------------
Log in over HTTP first (HELLO/SCRAM, as for any op), then open the WebSocket with the
same ``Authorization: BEARER authToken=...`` header.  A browser, which cannot set that
header, sends ``{"auth": "<token>"}`` as its first message and gets ``{"auth": "ok"}``.
A connection without a valid token is closed with code 4001; one whose token is revoked
(``close``, a disabled user) is closed with 4001 at its next message.

Every message is one JSON text frame; grids inside are Haystack JSON v4:

============================================  ================================================
client → server                               server → client
============================================  ================================================
``{"id": 7, "op": "read", "grid": G}``        ``{"id": 7, "grid": R}`` (R may be an error
                                              grid; ``"status": 403/404`` is added when the
                                              op is refused as HTTP would refuse it)
``{"id": 8, "batch": [{"op", "grid"}, ...]}`` ``{"id": 8, "batch": [R, ...]}`` in order
(``grid`` may be left out: an empty grid)
                                              ``{"watch": "w-...", "grid": R}``: entities of
                                              a watch opened over this socket that changed,
                                              or an error grid when the watch expired
============================================  ================================================

``id`` is the client's (a number or string) and only echoed.  The server keeps every
watch subscribed over the socket alive (it polls them for you) and pushes changes as
writes happen, from any worker.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import anyio
import httpx
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from httpx_ws import AsyncWebSocketSession, HTTPXWSException, aconnect_ws

from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import Grid, Marker

from ._client import AsyncClient
from ._errors import CallError, RequestNotSentError, ResponseError

__all__ = ["AsyncWebSocketClient", "WatchUpdate"]


class WatchUpdate:
    """Changes pushed for a watch: ``watch_id`` and the changed entities as ``grid``
    (an error grid when the watch expired)."""

    __slots__ = ("grid", "watch_id")

    def __init__(self, watch_id: str, grid: Grid) -> None:
        self.watch_id = watch_id
        self.grid = grid

    def __repr__(self) -> str:
        return f"WatchUpdate({self.watch_id!r}, {len(self.grid)} rows)"


class AsyncWebSocketClient(AsyncClient):
    """Every op of :class:`AsyncClient`, sent over one WebSocket; watch changes arrive
    by themselves through :meth:`updates`.  Reconnects (logging in again if need be) and
    re-subscribes its watches when the connection drops.

    >>> ws = AsyncWebSocketClient("http://localhost:8080/api", "op", "pw")
    >>> async with ws:  # doctest: +SKIP
    ...     sub = await ws.watch_sub(["@p1", "@p2"], dis="dashboard")
    ...     async for update in ws.updates():
    ...         print(update.watch_id, update.grid.to_python())

    A request in flight when the connection drops raises :class:`ResponseError` (it may
    have run); requests made while reconnecting wait for the new connection.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        reconnect: bool = True,
        max_reconnect_delay: float = 30.0,
        timeout: float = 60.0,
        max_message_size: int = 64 * 1024 * 1024,
        **options: Any,
    ) -> None:
        super().__init__(base_url, username, password, fmt="json", **options)
        self.ws_url = self.base_url.replace("http", "ws", 1) + "ws"
        self._reconnect = reconnect
        self._max_delay = max_reconnect_delay
        self._timeout = timeout
        self._max_message = max_message_size
        self._next_id = 0
        self._pending: dict[int, tuple[anyio.Event, list[Any]]] = {}
        self._session: AsyncWebSocketSession | None = None
        self._connected: anyio.Event | None = None
        self._closing = False
        self._fatal: BaseException | None = None
        self._watches: dict[str, list[Any]] = {}
        self._tg: TaskGroup | None = None
        self._updates_in: MemoryObjectSendStream[WatchUpdate]
        self._updates_out: MemoryObjectReceiveStream[WatchUpdate]
        self._exit = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AsyncWebSocketClient:
        self._updates_in, self._updates_out = anyio.create_memory_object_stream[WatchUpdate](
            math.inf
        )
        self._exit.push_async_callback(self._updates_out.aclose)
        self._exit.push_async_callback(self._updates_in.aclose)
        self._tg = await self._exit.enter_async_context(anyio.create_task_group())
        self._connected = anyio.Event()
        first = anyio.Event()
        self._tg.start_soon(self._run, first)
        with anyio.fail_after(self._timeout):
            await first.wait()
        if self._fatal is not None:
            await self.__aexit__(None, None, None)
            raise self._fatal
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        await self._exit.aclose()
        await self.shutdown()

    # -- connection ----------------------------------------------------------------------
    async def _run(self, first: anyio.Event) -> None:
        delay = 0.2
        while not self._closing:
            try:
                token = self.token or await self.login()
                headers = {"Authorization": f"BEARER authToken={token}"}
                session: AsyncWebSocketSession
                async with aconnect_ws(
                    self.ws_url,
                    self._http,
                    headers=headers,
                    max_message_size_bytes=self._max_message,
                ) as session:
                    self._session = session
                    assert self._connected is not None
                    self._connected.set()
                    first.set()
                    delay = 0.2
                    if self._watches:
                        assert self._tg is not None
                        self._tg.start_soon(self._resubscribe)
                    await self._read(session)
            except Exception as exc:
                leaves = _leaves(exc)
                fatal = next((e for e in leaves if not isinstance(e, _RETRYABLE)), None)
                if fatal is None and not first.is_set():  # reconnecting is for lost connections
                    fatal = RequestNotSentError(f"WebSocket: cannot connect: {leaves[0]}")
                if fatal is not None:  # a refused login, a protocol error: retrying won't help
                    self._fatal = fatal
                    first.set()
                    self._fail_pending(fatal)
                    return
            self._session = None
            self._connected = anyio.Event()
            self._fail_pending(
                ResponseError("WebSocket: connection lost; the request may have run")
            )
            if self._closing or not self._reconnect:
                first.set()
                return
            self._core.token = None  # a revoked or expired token is the usual cause
            await anyio.sleep(delay)
            delay = min(delay * 2, self._max_delay)

    async def _read(self, session: AsyncWebSocketSession) -> None:
        while True:
            msg = _DECODER.decode(await session.receive_text())
            if msg.watch is not None:
                grid = _grid(msg.grid)
                if grid.is_error:
                    self._watches.pop(msg.watch, None)
                self._updates_in.send_nowait(WatchUpdate(msg.watch, grid))
                continue
            slot = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
            if slot is not None:
                slot[1].append(msg)
                slot[0].set()

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for event, box in pending.values():
            box.append(exc)
            event.set()

    async def _resubscribe(self) -> None:
        for wid, ids in list(self._watches.items()):
            rows = [{"id": i} for i in ids]
            try:
                await self.call("watchSub", Grid(["id"], rows, {"watchId": wid}))
            except CallError:
                # The watch expired while we were away: open a new one and say so.
                self._watches.pop(wid, None)
                try:
                    grid = await self.call("watchSub", Grid(["id"], rows, {"watchDis": "reopened"}))
                except (CallError, ResponseError, RequestNotSentError):
                    continue
                new = grid.meta["watchId"]
                notice = {
                    "err": Marker,
                    "dis": f"watch {wid} expired; reopened as {new}",
                    "watchId": new,
                }
                self._updates_in.send_nowait(WatchUpdate(wid, Grid.empty(notice)))
            except (ResponseError, RequestNotSentError):
                return

    # -- requests ------------------------------------------------------------------------
    async def _exchange(self, message: dict[str, Any], raw: dict[str, bytes]) -> _Reply:
        if self._closing or self._tg is None:
            raise RequestNotSentError("the WebSocket client is not open (use 'async with')")
        self._next_id += 1
        rid = self._next_id
        message["id"] = rid
        event = anyio.Event()
        box: list[Any] = []
        with anyio.fail_after(self._timeout):
            while self._session is None:
                if self._fatal is not None:
                    raise RequestNotSentError(f"WebSocket: {self._fatal}")
                assert self._connected is not None
                await self._connected.wait()
            self._pending[rid] = (event, box)
            try:
                await self._session.send_text(_splice(message, raw))
            except (HTTPXWSException, OSError) as exc:
                self._pending.pop(rid, None)
                raise RequestNotSentError(f"WebSocket: send failed: {exc}") from exc
            await event.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        reply: _Reply = box[0]
        return reply

    async def call(self, op: str, grid: Grid | None = None) -> Grid:
        """Call any op over the WebSocket."""
        req = grid if grid is not None else Grid.empty()
        reply = await self._exchange({"op": op}, {"grid": hjson.encode_grid_bytes(req)})
        result = _grid(reply.grid)
        if result.is_error:
            raise CallError(result)
        self._track(op, req, result)
        return result

    async def batch(self, calls: Sequence[tuple[str, Grid | None]]) -> list[Grid]:
        """Several ops in one message, answered in order.  Error grids come back in the
        list (check ``grid.is_error``) so that one failure does not hide the others."""
        items = b",".join(
            b'{"op":'
            + json.dumps(op).encode()
            + b',"grid":'
            + hjson.encode_grid_bytes(g if g is not None else Grid.empty())
            + b"}"
            for op, g in calls
        )
        reply = await self._exchange({}, {"batch": b"[" + items + b"]"})
        grids = [_grid(g) for g in reply.batch or ()]
        if len(grids) != len(calls):
            raise CallError(_grid(reply.grid))
        for (op, g), result in zip(calls, grids, strict=True):
            if not result.is_error:
                self._track(op, g if g is not None else Grid.empty(), result)
        return grids

    def _track(self, op: str, req: Grid, result: Grid) -> None:
        if op == "watchSub":
            wid = result.meta.get("watchId")
            if isinstance(wid, str):
                known = self._watches.setdefault(wid, [])
                known.extend(
                    r["id"] for r in result if r.get("id") is not None and r["id"] not in known
                )
        elif op == "watchUnsub":
            wid = req.meta.get("watchId")
            if "close" in req.meta:
                self._watches.pop(str(wid), None)
            elif wid in self._watches:
                gone = {r["id"].id for r in req if r.get("id") is not None}
                self._watches[str(wid)] = [i for i in self._watches[str(wid)] if i.id not in gone]

    async def updates(self) -> AsyncIterator[WatchUpdate]:
        """Watch changes as the server pushes them, until the client is closed."""
        async for update in self._updates_out:
            yield update

    async def next_update(self, timeout: float | None = None) -> WatchUpdate:
        """The next pushed change; ``TimeoutError`` after ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            return await self._updates_out.receive()


_RETRYABLE = (HTTPXWSException, httpx.HTTPError, RequestNotSentError, ResponseError, OSError)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as task groups raise them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


class _Reply(msgspec.Struct):
    id: int | str | None = None
    grid: msgspec.Raw = msgspec.Raw(b"")
    batch: list[msgspec.Raw] | None = None
    watch: str | None = None
    status: int | None = None
    auth: str | None = None


_DECODER = msgspec.json.Decoder(_Reply)


def _grid(raw: msgspec.Raw) -> Grid:
    if bytes(raw) in (b"", b"null"):
        raise ResponseError("WebSocket: a reply without a grid")
    return hjson.decode_grid(bytes(raw))


def _splice(message: dict[str, Any], raw: dict[str, bytes]) -> str:
    """The envelope as JSON with already-encoded grids put in place, not re-parsed."""
    head = json.dumps(message, separators=(",", ":"))[:-1]
    parts = [head] + [f'"{k}":{v.decode()}' for k, v in raw.items()]
    return parts[0] + ("," if message else "") + ",".join(parts[1:]) + "}"
