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
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import Grid, Marker

from ._client import AsyncClient, _ends_session
from ._errors import CallError, ClientError, RequestNotSentError, ResponseError
from ._watch import AsyncWatch

if TYPE_CHECKING:
    from httpx_ws import AsyncWebSocketSession

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
    have run); requests made while reconnecting wait for the new connection.  Any
    number of requests may be in flight at once, from many tasks, each answered on its
    own.

    Messages are compressed (per-message deflate) when the server agrees, unless
    ``compression=False``; a message from the server over ``max_message_size`` bytes,
    once inflated, ends the connection (close code 1009) and fails the requests in
    flight with :class:`ResponseError`.

    Leaving the ``async with`` block ends the server session (best effort, over HTTP,
    not when cancelled), closes the socket and releases the connections;
    :meth:`close_session` does the same at once.
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
        compression: bool = True,
        **options: Any,
    ) -> None:
        # httpx-ws (and wsproto under it) loads only once a WebSocket client is made.
        import httpx_ws

        from . import _wsext

        super().__init__(base_url, username, password, fmt="json", **options)
        self._httpx_ws: ModuleType = httpx_ws
        self._retryable = (*_RETRYABLE, httpx_ws.HTTPXWSException)
        self.ws_url = self.base_url.replace("http", "ws", 1) + "ws"
        self._reconnect = reconnect
        self._max_delay = max_reconnect_delay
        self._timeout = timeout
        self._max_message = max_message_size
        self._session_class = _wsext.session_class(max_message_size)
        self._extensions_offer = _wsext.offer() if compression else None
        self._read_size = _wsext.READ_SIZE
        self._next_id = 0
        self._pending: dict[int, tuple[anyio.Event, list[Any]]] = {}
        self._session: AsyncWebSocketSession | None = None
        self._connected: anyio.Event | None = None
        self._closing = False
        self._fatal: BaseException | None = None
        self._watches: dict[str, list[Any]] = {}
        # Watch objects by their watch id; pushes go to them, not to updates().
        self._watch_objects: dict[str, AsyncWatch] = {}
        # Pushes that came while a watch object was being opened: they may be its own.
        self._opening = 0
        self._held: dict[str, list[Grid]] = {}
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
        try:
            if _ends_session(et) and self.token is not None:
                with contextlib.suppress(ClientError):
                    await self.close_session()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the socket (pending calls fail) and release the HTTP connections; the
        server session stays valid until it expires."""
        self._closing = True
        if self._session is not None and self._obs is not None:
            self._obs.disconnected(self.ws_url, "closed")
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        await self._exit.aclose()
        await super().aclose()

    async def close_session(self) -> Grid:
        """Log out (the Haystack ``close`` op, sent over HTTP) and close the socket: the
        server would end it anyway, and it must not come back with a new login."""
        self._closing = True
        try:
            if self.token is None:
                return Grid.empty()
            return await AsyncClient.call(self, "close")
        finally:
            await self.aclose()

    # -- connection ----------------------------------------------------------------------
    async def _run(self, first: anyio.Event) -> None:
        delay = 0.2
        while not self._closing:
            lost = "connection lost"
            try:
                token = self.token or await self.login()
                headers = {"Authorization": f"BEARER authToken={token}"}
                if self._extensions_offer:
                    headers["Sec-WebSocket-Extensions"] = self._extensions_offer
                session: AsyncWebSocketSession
                async with self._httpx_ws.aconnect_ws(
                    self.ws_url,
                    self._http,
                    headers=headers,
                    max_message_size_bytes=self._read_size,
                    session_class=self._session_class,
                ) as session:
                    self._session = session
                    if self._obs is not None:
                        self._obs.connected(self.ws_url)
                    assert self._connected is not None
                    self._connected.set()
                    first.set()
                    delay = 0.2
                    if self._watches or self._watch_objects:
                        assert self._tg is not None
                        self._tg.start_soon(self._resubscribe)
                    await self._read(session)
            except Exception as exc:
                leaves = _leaves(exc)
                lost = self._why_lost(leaves)
                fatal = next((e for e in leaves if not isinstance(e, self._retryable)), None)
                if fatal is None and not first.is_set():  # reconnecting is for lost connections
                    fatal = RequestNotSentError(
                        f"WebSocket {self.ws_url}: cannot connect: {leaves[0]}", url=self.ws_url
                    )
                if fatal is not None:  # a refused login, a protocol error: retrying won't help
                    self._fatal = fatal
                    first.set()
                    self._fail_pending(fatal)
                    return
            if self._session is not None and self._obs is not None:
                self._obs.disconnected(self.ws_url, lost)
            self._session = None
            self._connected = anyio.Event()
            self._fail_pending(
                ResponseError(
                    f"WebSocket {self.ws_url}: {lost}; the request may have run",
                    url=self.ws_url,
                )
            )
            if self._closing or not self._reconnect:
                first.set()
                return
            self._core.token = None  # a revoked or expired token is the usual cause
            await anyio.sleep(delay)
            delay = min(delay * 2, self._max_delay)

    def _why_lost(self, leaves: list[BaseException]) -> str:
        for leaf in leaves:
            if isinstance(leaf, self._httpx_ws.WebSocketDisconnect):
                if leaf.code == 1009:
                    return (
                        f"a message was over the limit of {self._max_message} bytes "
                        "(max_message_size); the connection was closed with code 1009"
                    )
                said = f": {leaf.reason}" if leaf.reason else ""
                return f"connection closed (code {leaf.code}{said})"
        return "connection lost"

    @property
    def compressed(self) -> bool:
        """Whether messages are compressed (per-message deflate) on the current
        connection: offered unless ``compression=False``, and accepted by the server."""
        session = self._session
        return bool(session is not None and getattr(session, "compressed", False))

    async def _read(self, session: AsyncWebSocketSession) -> None:
        while True:
            text = await session.receive_text()
            if self._obs is not None:
                self._obs.received(self.ws_url, len(text))
            msg = _DECODER.decode(text)
            if msg.watch is not None:
                self._push(msg.watch, _grid(msg.grid, self.ws_url))
                continue
            slot = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
            if slot is not None:
                slot[1].append(msg)
                slot[0].set()

    def _push(self, wid: str, grid: Grid) -> None:
        watch = self._watch_objects.get(wid)
        if watch is not None:
            if grid.is_error:  # the watch expired: open it again, records refreshed
                assert self._tg is not None
                self._tg.start_soon(self._reopen, watch)
            else:
                watch._pushed(grid)
            return
        if self._opening:
            self._held.setdefault(wid, []).append(grid)
            return
        if grid.is_error:
            self._watches.pop(wid, None)
        self._updates_in.send_nowait(WatchUpdate(wid, grid))

    async def _reopen(self, watch: AsyncWatch) -> None:
        with contextlib.suppress(ClientError, RuntimeError):  # RuntimeError: closed meanwhile
            watch._note(await watch.resubscribe())

    def _watch_opening(self, delta: int) -> None:
        self._opening += delta
        if not self._opening and self._held:
            held, self._held = self._held, {}
            for wid, grids in held.items():
                for grid in grids:
                    self._push(wid, grid)

    def _watch_moved(self, watch: AsyncWatch, old: str | None, new: str | None) -> None:
        if old is not None and old != new:
            self._watch_objects.pop(old, None)
            self._watches.pop(old, None)
        if new is not None:
            self._watch_objects[new] = watch
            for grid in self._held.pop(new, ()):
                self._push(new, grid)

    _pushes_watches = True

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for event, box in pending.values():
            box.append(exc)
            event.set()

    async def _resubscribe(self) -> None:
        for watch in list(self._watch_objects.values()):
            await self._reopen(watch)
        for wid, ids in list(self._watches.items()):
            if wid in self._watch_objects:
                continue
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
        """Send one request and wait for its answer.  Many may be in flight at once,
        from many tasks: each waits for the answer with its own id.  Whatever ends the
        wait (the answer, a timeout, cancellation) removes the request from the table;
        a request cancelled after it was sent is withdrawn from the server too."""
        if self._closing or self._tg is None:
            raise RequestNotSentError(
                f"WebSocket {self.ws_url}: the client is not open (use 'async with')",
                url=self.ws_url,
            )
        self._next_id += 1
        rid = self._next_id
        message["id"] = rid
        text = _splice(message, raw)
        event = anyio.Event()
        box: list[Any] = []
        sent = False
        try:
            with anyio.fail_after(self._timeout):
                while self._session is None:
                    if self._fatal is not None:
                        raise RequestNotSentError(
                            f"WebSocket {self.ws_url}: {self._fatal}", url=self.ws_url
                        )
                    assert self._connected is not None
                    await self._connected.wait()
                session = self._session
                self._pending[rid] = (event, box)
                await self._write(session, text)
                sent = True
                await event.wait()
        except TimeoutError:
            if not sent:
                raise RequestNotSentError(
                    f"WebSocket {self.ws_url}: not connected within {self._timeout:g} s",
                    url=self.ws_url,
                ) from None
            raise ResponseError(
                f"WebSocket {self.ws_url}: no answer within {self._timeout:g} s; "
                "the request may have run",
                url=self.ws_url,
            ) from None
        finally:
            if self._pending.pop(rid, None) is not None and sent:
                self._withdraw(rid)
        if isinstance(box[0], BaseException):
            raise box[0]
        reply: _Reply = box[0]
        return reply

    async def _write(self, session: AsyncWebSocketSession, text: str) -> None:
        # A write cut short by cancellation could leave half a frame on the wire and
        # garble the connection for every other request: it is shielded, and bounded
        # by the timeout instead; one that fails midway ends the connection.
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._timeout):
                    await session.send_text(text)
                if self._obs is not None:
                    self._obs.sent(self.ws_url, len(text))
            except (self._httpx_ws.HTTPXWSException, OSError) as exc:
                raise RequestNotSentError(
                    f"WebSocket {self.ws_url}: send failed: {exc}", url=self.ws_url
                ) from exc
            except TimeoutError:
                await session.close(1011, "a write did not finish")
                raise ResponseError(
                    f"WebSocket {self.ws_url}: a write did not finish within {self._timeout:g} s",
                    url=self.ws_url,
                ) from None

    def _withdraw(self, rid: int) -> None:
        """Tell the server a request's answer is no longer wanted (its task was
        cancelled or timed out), so that it can stop working on it.  Best effort: a
        server that does not know ``cancel`` answers with an error grid, ignored."""
        session, tg = self._session, self._tg
        if session is None or tg is None or self._closing:
            return

        async def send() -> None:
            with contextlib.suppress(ClientError):
                await self._write(session, json.dumps({"cancel": rid}))

        tg.start_soon(send)

    async def call(self, op: str, grid: Grid | None = None) -> Grid:
        """Call any op over the WebSocket."""
        if self._obs is None:
            return await self._call(op, grid)
        with self._obs.request(op, f"{self.ws_url} ({op})"):
            return await self._call(op, grid)

    async def _call(self, op: str, grid: Grid | None) -> Grid:
        req = grid if grid is not None else Grid.empty()
        reply = await self._exchange({"op": op}, {"grid": hjson.encode_grid_bytes(req)})
        result = _grid(reply.grid, self.ws_url)
        if result.is_error:
            raise CallError(result, url=f"{self.ws_url} ({op})")
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
        grids = [_grid(g, self.ws_url) for g in reply.batch or ()]
        if len(grids) != len(calls):
            raise CallError(_grid(reply.grid, self.ws_url), url=f"{self.ws_url} (batch)")
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


# With httpx-ws's own error, added when a client is made: failures worth reconnecting for.
_RETRYABLE: tuple[type[BaseException], ...] = (
    httpx.HTTPError,
    RequestNotSentError,
    ResponseError,
    OSError,
)


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


_DECODER: msgspec.json.Decoder[_Reply] = msgspec.json.Decoder(_Reply)


def _grid(raw: msgspec.Raw, url: str) -> Grid:
    if bytes(raw) in (b"", b"null"):
        raise ResponseError(f"WebSocket {url}: a reply without a grid", url=url)
    return hjson.decode_grid(bytes(raw))


def _splice(message: dict[str, Any], raw: dict[str, bytes]) -> str:
    """The envelope as JSON with already-encoded grids put in place, not re-parsed."""
    head = json.dumps(message, separators=(",", ":"))[:-1]
    parts = [head] + [f'"{k}":{v.decode()}' for k, v in raw.items()]
    return parts[0] + ("," if message else "") + ",".join(parts[1:]) + "}"
