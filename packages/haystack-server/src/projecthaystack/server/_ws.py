"""The WebSocket endpoint (``{prefix}/ws``): ops over one connection, and watch changes
pushed as they happen.

The frame protocol is documented with the client (``haystack-client``'s README,
"WebSocket protocol"); in short, every message is one JSON text frame:

* request ``{"id": 1, "op": "read", "grid": <Haystack JSON v4 grid>}`` (``grid`` may be
  left out for an empty one), answered by ``{"id": 1, "grid": ...}``;
* batch ``{"id": 2, "batch": [{"op": ..., "grid": ...}, ...]}``, answered by
  ``{"id": 2, "batch": [<grid>, ...]}`` in order;
* push ``{"watch": "<watchId>", "grid": ...}`` for changes of a watch opened (or added to)
  over this connection;
* request errors come back as error grids; a refused op (unknown, or the role does not
  allow it) also carries ``"status"`` (404, 403) like its HTTP twin;
* cancel ``{"cancel": 1}``: the client no longer wants the answer to request 1; if it
  is still running and has no side effects (a read, a hisRead, ...) it is stopped and
  not answered; one that writes runs to its end.  No answer.

Requests are run concurrently, each answered when it is done (so a slow one holds up
no other), up to ``ServerLimits.max_ws_concurrent`` at once per connection; past that
the connection is not read until one finishes.

The connection authenticates with the upgrade request's ``Authorization: BEARER
authToken=...`` header (or a client certificate), or, for browsers that cannot set
headers, with a first message ``{"auth": "<token>"}``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup
from starlette.websockets import WebSocket, WebSocketDisconnect

from projecthaystack.codecs import codec_for_name
from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import Grid, HaystackError

from ._app import HaystackServer
from ._auth import Authenticated
from ._errors import HttpError
from ._ops import changed_rows
from ._responses import error_grid
from ._store import Role

__all__ = ["websocket_endpoint"]

AUTH_TIMEOUT = 10.0
CLOSE_AUTH = 4001  # no valid credentials
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


_NONE = msgspec.Raw(b"")


class _Call(msgspec.Struct, forbid_unknown_fields=True):
    op: str
    grid: msgspec.Raw = _NONE


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    id: int | str | None = None
    op: str | None = None
    grid: msgspec.Raw = _NONE
    batch: list[_Call] | None = None
    auth: str | None = None
    cancel: int | str | None = None


_JSON = codec_for_name("json")
_DECODER: msgspec.json.Decoder[_Message] = msgspec.json.Decoder(_Message)


def _frame(head: dict[str, Any], grids: Grid | list[Grid] | bytes, key: str) -> str:
    """The envelope with the grid(s) spliced in as Haystack JSON (or JSON bytes already
    encoded), not re-parsed."""
    if isinstance(grids, bytes):
        body = grids
    elif isinstance(grids, Grid):
        body = hjson.encode_grid_bytes(grids)
    else:
        body = b"[" + b",".join(hjson.encode_grid_bytes(g) for g in grids) + b"]"
    start = json.dumps(head, separators=(",", ":"))[:-1]
    sep = "," if head else ""
    return f'{start}{sep}"{key}":{body.decode()}}}'


class _Connection:
    def __init__(self, server: HaystackServer, ws: WebSocket, who: Authenticated) -> None:
        self.server = server
        self.ws = ws
        self.who = who
        self.watches: set[str] = set()
        self.lock = anyio.Lock()
        self.closed = False
        # Requests running that a cancel may stop, by the client's id.
        self.running: dict[int | str, anyio.CancelScope] = {}
        self.slots = anyio.Semaphore(server.config.limits.max_ws_concurrent)

    async def send(self, text: str) -> None:
        """Send a message, unless the connection is closed (by another request, the
        client or the network): then there is no one to tell."""
        async with self.lock:
            if self.closed:
                return
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def close(self, code: int, reason: str) -> None:
        async with self.lock:
            if self.closed:
                return
            self.closed = True
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.close(code, reason)

    async def dispatch(self, text: str | bytes, tg: TaskGroup) -> None:
        """Read one message and start it (a cancel is done at once); waits while the
        connection already runs as many requests as it may."""
        try:
            msg = _DECODER.decode(text)
        except msgspec.DecodeError as exc:
            await self.send(_frame({"id": None}, error_grid(f"malformed message: {exc}"), "grid"))
            return
        if msg.cancel is not None and msg.op is None and msg.batch is None:
            scope = self.running.pop(msg.cancel, None)
            if scope is not None:
                scope.cancel()
            return
        await self.slots.acquire()
        tg.start_soon(self._run, msg)

    def _cancellable(self, msg: _Message) -> bool:
        names: list[str | None] = [c.op for c in msg.batch] if msg.batch else [msg.op]
        ops = [self.server.ops.get(n) if n is not None else None for n in names]
        return all(op is not None and op.no_side_effects for op in ops)

    async def _run(self, msg: _Message) -> None:
        key = msg.id if isinstance(msg.id, int | str) and self._cancellable(msg) else None
        scope = anyio.CancelScope()
        if key is not None:
            self.running[key] = scope
        try:
            with scope:
                await self.handle(msg)
        finally:
            if key is not None and self.running.get(key) is scope:
                del self.running[key]
            self.slots.release()

    async def _grid(self, raw: msgspec.Raw) -> Grid:
        data = bytes(raw)
        if data in (b"", b"null"):
            return Grid.empty()
        return await self.server.decode(_JSON, data)

    async def _json(self, grids: Grid | list[Grid]) -> bytes:
        """Grids as JSON, big ones encoded off the event loop (as over HTTP)."""
        if isinstance(grids, Grid):
            return await self.server.encode(_JSON, grids)
        return b"[" + b",".join([await self.server.encode(_JSON, g) for g in grids]) + b"]"

    async def _still_valid(self) -> bool:
        """Whether the connection's token still holds (one store call per message); the
        user is refreshed with it, so a changed role counts at once."""
        if self.who.token is None:
            return True
        found = await self.server.auth.bearer(self.who.token, self.server.now())
        if isinstance(found, Authenticated):
            self.who = found
            return True
        return False

    async def run_op(self, op: str, raw: msgspec.Raw) -> tuple[Grid, int | None]:
        try:
            req = await self._grid(raw)
        except HaystackError as exc:
            return error_grid(f"cannot read the request grid: {exc}"), 400
        try:
            grid = await self.server.call(self.who, op, req, self.server.now())
        except HttpError as exc:
            return error_grid(str(exc)), exc.status
        self._track(op, req, grid)
        return grid, None

    def _track(self, op: str, req: Grid, grid: Grid) -> None:
        if grid.is_error:
            return
        if op == "watchSub" and isinstance(grid.meta.get("watchId"), str):
            self.watches.add(grid.meta["watchId"])
        elif op == "watchUnsub" and "close" in req.meta:
            self.watches.discard(str(req.meta.get("watchId")))

    async def handle(self, msg: _Message) -> None:
        """Run one request (an op or a batch) and send its answer."""
        head: dict[str, Any] = {"id": msg.id}
        if not await self._still_valid():
            await self.close(CLOSE_AUTH, "the auth token was revoked or expired")
            return
        if msg.batch is not None:
            limit = self.server.config.limits.max_batch
            if len(msg.batch) > limit:
                await self.send(
                    _frame(head, error_grid(f"a batch holds at most {limit} calls"), "grid")
                )
                return
            grids = [(await self.run_op(call.op, call.grid))[0] for call in msg.batch]
            await self.send(_frame(head, await self._json(grids), "batch"))
            ops = [c.op for c in msg.batch]
        elif msg.op is not None:
            grid, status = await self.run_op(msg.op, msg.grid)
            if status is not None:
                head["status"] = status
            await self.send(_frame(head, await self._json(grid), "grid"))
            ops = [msg.op]
        else:
            await self.send(_frame(head, error_grid("a message needs 'op' or 'batch'"), "grid"))
            return
        if "close" in ops:
            await self.close(1000, "closed")

    async def push_loop(self) -> None:
        """Push the changes of this connection's watches as they happen.

        The loop follows the store's change feed: it wakes when anything changes (or
        after ``push_interval``), and only then asks the store, in one call for all of
        this connection's watches, what changed in them.  A quiet connection still
        polls now and then (every half of the shortest lease) to keep its leases."""
        store = self.server.store
        config = self.server.config
        keep_alive = config.min_watch_lease / 2
        cursor = (await store.changes_since(None)).cursor
        last_poll = self.server.now()
        while not self.closed:
            news = await store.wait_changes(cursor, config.push_interval)
            cursor = news.cursor
            now = self.server.now()
            if not self.watches or not (news.ids or news.reset or now - last_poll >= keep_alive):
                continue
            last_poll = now
            wids = list(self.watches)
            found = await store.watch_poll(
                wids,
                user=self.who.user.username,
                any_owner=self.who.user.role >= Role.ADMIN,
                refresh=False,
                now=now,
            )
            for wid, changed in zip(wids, found, strict=True):
                if changed is None:
                    self.watches.discard(wid)
                    await self.send(
                        _frame({"watch": wid}, error_grid(f"watch {wid!r} expired"), "grid")
                    )
                elif changed:
                    recs = changed_rows(changed, await store.get_entities(changed))
                    if recs:
                        grid = Grid.from_rows(recs, {"watchId": wid})
                        await self.send(_frame({"watch": wid}, grid, "grid"))


async def _authenticate(server: HaystackServer, ws: WebSocket) -> Authenticated | None:
    now = server.now()
    who = await server.identify(ws, now)  # the Authorization header, or a certificate
    if isinstance(who, Authenticated):
        return who
    # Neither: the first message may carry the token.
    with anyio.move_on_after(AUTH_TIMEOUT):
        text = await ws.receive_text()
        try:
            msg = _DECODER.decode(text)
        except msgspec.DecodeError:
            return None
        if msg.auth:
            found = await server.auth.bearer(msg.auth, now)
            if isinstance(found, Authenticated):
                await ws.send_text(json.dumps({"id": msg.id, "auth": "ok"}))
                return found
    return None


async def websocket_endpoint(ws: WebSocket) -> None:
    """The ``{prefix}/ws`` endpoint."""
    server: HaystackServer = ws.app.state.haystack
    await ws.accept()
    try:
        who = await _authenticate(server, ws)
        if who is None:
            await ws.close(CLOSE_AUTH, "authentication required")
            return
        conn = _Connection(server, ws, who)
        cap = server.config.limits.max_body
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn.push_loop)
            while not conn.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text") or message.get("bytes") or ""
                if len(data) > cap:
                    await conn.close(CLOSE_TOO_BIG, f"message over the limit of {cap} bytes")
                    break
                await conn.dispatch(data, tg)
            conn.closed = True
            tg.cancel_scope.cancel()
    except WebSocketDisconnect:
        return
