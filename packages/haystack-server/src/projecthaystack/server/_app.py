"""The server behind an app: the HTTP API chapter's rules around the ops, auth, and the
state every endpoint shares (:class:`HaystackServer`)."""

from __future__ import annotations

import datetime as dt
import html
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import anyio
import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response

from projecthaystack.auth import CertIdentity, identity_from_der
from projecthaystack.codecs import (
    Codec,
    Limits,
    UnknownFormatError,
    codec_for_mime,
    negotiate,
    zinc,
)
from projecthaystack.kinds import Col, FrozenDict, Grid, HaystackError, Uri, is_tag_name

from ._auth import Authenticated, Authenticator, LoginStep
from ._config import ServerConfig
from ._errors import HttpError, OpError
from ._opapi import Action, Op, OpContext
from ._ops import STANDARD_OPS
from ._proxies import ProxyTrust
from ._responses import error_grid, login_response
from ._store import PROTOCOL_VERSION, SchemaError, Store
from ._users import ensure_admin

if TYPE_CHECKING:
    from projecthaystack.ontology import Namespace

__all__ = ["HaystackServer", "StartupHook"]

log = logging.getLogger("projecthaystack.server.ops")

ZINC = codec_for_mime("text/zinc")
_INTERNAL = "internal server error"  # all a client is told of a fault of ours

StartupHook = Callable[[Store], Awaitable[None]]
"""A coroutine run with the opened store when the app starts (to load entities, say)."""


_NO_META = FrozenDict()
# The columns of query parameters, by name, once checked: a GET op has a few names
# (filter, id, range, limit) that come back on every request.  Bounded, since a client
# chooses them.
_QUERY_COLS: dict[str, Col] = {}
_MAX_QUERY_COLS = 1024


def _accepted(accept: str | None) -> Codec:
    """The codec for an ``Accept`` header, or 406."""
    try:
        return negotiate(accept)
    except UnknownFormatError as exc:
        raise HttpError(406, str(exc)) from None


def _sniff(body: bytes) -> Codec:
    """The format of a body posted without a Content-Type (some clients do)."""
    head = body.lstrip()[:16]
    if head.startswith(b"{"):
        return codec_for_mime("application/json")
    if head.startswith(b"ver:"):
        return ZINC
    raise HttpError(400, "the request has no Content-Type")


class HaystackServer:
    """The state behind one app: store, config, ops, actions, auth.  Reach it from a
    Starlette app as ``app.state.haystack``."""

    def __init__(
        self,
        store: Store,
        config: ServerConfig,
        *,
        namespace: Namespace | None,
        ops: Iterable[Op],
        actions: Mapping[str, Action],
        admin: tuple[str, str] | None,
        on_startup: Sequence[StartupHook],
    ) -> None:
        self.store = store
        self.config = config
        self.namespace = namespace
        self.ops: dict[str, Op] = {op.name: op for op in STANDARD_OPS}
        for op in ops:
            self.ops[op.name] = op
        self.actions = dict(actions)
        self.secret = config.secret or secrets.token_bytes(32)
        self.auth = Authenticator(store, config, self.secret)
        self._proxies = ProxyTrust(config)
        self._offload_limiter: anyio.CapacityLimiter | None = None
        self.boot_time = config.clock()
        self.limits = Limits(max_size=config.limits.max_body, max_depth=config.limits.max_depth)
        self._admin = admin
        self._on_startup = on_startup

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, make sure an admin exists, run the startup hooks."""
        await self.store.open()
        info = await self.store.info()
        if info.protocol != PROTOCOL_VERSION:
            raise SchemaError(
                f"the store ({info.backend}) implements store protocol {info.protocol}; "
                f"this server needs {PROTOCOL_VERSION}"
            )
        await ensure_admin(self.store, self._admin, self.config.scram_hash)
        for hook in self._on_startup:
            await hook(self.store)

    async def stop(self) -> None:
        """Close the store."""
        await self.store.close()

    # -- per request ---------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The current time, by :attr:`ServerConfig.clock`."""
        return self.config.clock()

    def context(self, who: Authenticated, now: dt.datetime) -> OpContext:
        """The context an op runs in."""
        return OpContext(
            self.store,
            self.config,
            who.user,
            who.token,
            now,
            self.ops,
            self.actions,
            self.namespace,
            self.boot_time,
        )

    def client_address(self, conn: HTTPConnection) -> tuple[str, bool]:
        """The caller's address and whether the request came over TLS: the socket's,
        or, from a trusted proxy (:attr:`ServerConfig.trusted_proxies`), what it forwards."""
        client = conn.scope.get("client")
        return self._proxies.client(
            client[0] if client else "unknown",
            conn.headers,
            tls=conn.scope.get("scheme") in ("https", "wss"),
        )

    async def identify(self, conn: HTTPConnection, now: dt.datetime) -> Authenticated | LoginStep:
        """Who is calling, or the auth step to answer with."""
        authorization = conn.headers.get("authorization")
        client, tls = self.client_address(conn)
        return await self.auth.authenticate(
            authorization,
            client=client,
            tls=tls,
            # Certificates matter only without an Authorization header; parsing one
            # on every bearer request would be wasted work.
            cert=None if authorization else self._cert(conn),
            now=now,
        )

    def _cert(self, conn: HTTPConnection) -> CertIdentity | None:
        tls = conn.scope.get("extensions", {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or ()
        pem: str | None = chain[0] if chain else None
        header = self.config.trusted_cert_header
        if pem is None and header is not None and header in conn.headers:
            pem = unquote(conn.headers[header])
        if not pem:
            return None
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import Encoding

            cert = x509.load_pem_x509_certificate(pem.encode())
            return identity_from_der(cert.public_bytes(Encoding.DER))
        except ValueError:
            return None

    async def call(self, who: Authenticated, op_name: str, req: Grid, now: dt.datetime) -> Grid:
        """Run an op for a user: an error grid for request errors, :class:`HttpError`
        for 403/404."""
        op = self.ops.get(op_name)
        if op is None:
            raise HttpError(404, f"unknown op {op_name!r}")
        if who.user.role < op.role:
            raise HttpError(403, f"{op_name} needs the {op.role.label} role")
        if len(req) > self.config.limits.max_rows:
            return error_grid(f"{len(req)} rows is over the limit of {self.config.limits.max_rows}")
        try:
            return await op.handler(self.context(who, now), req)
        except HttpError:
            raise
        except (OpError, HaystackError) as exc:
            return error_grid(str(exc), self._trace(exc))
        except Exception as exc:
            log.exception("op %s failed", op_name)
            return error_grid(
                f"internal error in {op_name}: {type(exc).__name__}", self._trace(exc)
            )

    def _trace(self, exc: BaseException) -> str | None:
        if not self.config.debug:
            return None
        return "".join(traceback.format_exception(exc))

    # -- codecs, off the event loop when the work is big -----------------------------------
    def _limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that runs the app.
        if self._offload_limiter is None:
            self._offload_limiter = anyio.CapacityLimiter(self.config.offload_threads)
        return self._offload_limiter

    def _decode_sync(self, codec: Codec, data: bytes) -> Grid:
        return codec.decode(data, limits=self.limits)

    async def decode(self, codec: Codec, data: bytes) -> Grid:
        """A request grid from ``data``: decoded in a worker thread when ``data`` is at
        least :attr:`ServerConfig.offload_bytes` long, so that one big body does not
        stall every other client; at most :attr:`ServerConfig.offload_threads` at once."""
        if len(data) < self.config.offload_bytes:
            return codec.decode(data, limits=self.limits)
        return await anyio.to_thread.run_sync(
            self._decode_sync, codec, data, limiter=self._limiter()
        )

    async def encode(self, codec: Codec, grid: Grid) -> bytes:
        """A response grid in ``codec``'s format: encoded in a worker thread when it has
        at least :attr:`ServerConfig.offload_cells` cells."""
        if len(grid) * max(1, len(grid.cols)) < self.config.offload_cells:
            return codec.encode(grid)
        return await anyio.to_thread.run_sync(codec.encode, grid, limiter=self._limiter())

    # -- HTTP ------------------------------------------------------------------------------
    async def _body(self, request: Request) -> bytes:
        cap = self.config.limits.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise HttpError(413, f"request body over the limit of {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise HttpError(413, f"request body over the limit of {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _query_grid(self, request: Request) -> Grid:
        query = request.scope.get("query_string")
        if not query:
            return Grid.empty()
        # Parsed as Starlette's query_params would be, without building its multidict:
        # a GET op is a handful of parameters, and this runs on every one.
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if not pairs:
            return Grid.empty()
        limits = self.config.limits
        if len(pairs) > limits.max_query_params and len(dict(pairs)) > limits.max_query_params:
            raise HttpError(400, "too many query parameters")
        row: dict[str, Any] = {}
        for name, text in pairs:
            if len(text) > limits.max_filter_length * 4:
                raise HttpError(400, f"query parameter {name!r} is too long")
            if "a" <= text[:1] <= "z":
                # No Zinc scalar starts with a lower-case letter (a filter, a range like
                # "today"): a Str, without a decode that would fail.
                row[name] = text
                continue
            try:
                row[name] = zinc.decode_value(text, limits=self.limits)
            except HaystackError:
                row[name] = text  # the HTTP API: "otherwise it is assumed to be a Str"
        cols = []
        for name in row:
            col = _QUERY_COLS.get(name)
            if col is None:
                if not is_tag_name(name):
                    raise HttpError(400, f"bad query parameters: invalid tag name {name!r}")
                col = Col.unchecked(name, _NO_META)
                if len(_QUERY_COLS) < _MAX_QUERY_COLS:
                    _QUERY_COLS[name] = col
            cols.append(col)
        if None in row.values():  # a parameter written as Zinc's null: no cell, no column
            cols = [c for c in cols if row[c.name] is not None]
            row = {c.name: row[c.name] for c in cols}
        # Names checked above, values decoded and not null: the grid's rules hold.
        return Grid.unchecked(_NO_META, tuple(cols), (FrozenDict(row),))

    async def _request_grid(self, request: Request) -> Grid:
        body = await self._body(request)
        ctype = request.headers.get("content-type")
        if ctype is None or not ctype.strip():
            if not body.strip():
                return Grid.empty()
            codec = _sniff(body)
        else:
            try:
                codec = codec_for_mime(ctype)
            except UnknownFormatError:
                raise HttpError(415, f"unsupported Content-Type {ctype[:100]!r}") from None
        if not body.strip():
            return Grid.empty()
        try:
            return await self.decode(codec, body)
        except HaystackError as exc:
            raise HttpError(400, f"cannot read the request grid: {exc}") from None

    async def handle_op(self, request: Request) -> Response:
        """``{prefix}/{op}``: auth, negotiation, the op, the response."""
        codec = ZINC
        try:
            if request.method not in ("GET", "POST"):
                raise HttpError(501, f"method {request.method} is not supported")
            now = self.now()
            who = await self.identify(request, now)
            if isinstance(who, LoginStep):
                return login_response(who)
            codec = _accepted(request.headers.get("accept"))
            op_name = request.path_params["op"]
            op = self.ops.get(op_name)
            if op is None:
                raise HttpError(404, f"unknown op {op_name!r}")
            if request.method == "GET":
                if not op.no_side_effects:
                    raise HttpError(405, f"{op_name} has side effects: use POST", {"Allow": "POST"})
                req = self._query_grid(request)
            else:
                req = await self._request_grid(request)
            grid = await self.call(who, op_name, req, now)
        except HttpError as exc:
            return self._http_error(exc, codec)
        except Exception:
            # Answered here rather than by Starlette's handler (internal_error), which
            # re-raises: the ASGI server would then close the client's connection.
            log.exception("%s %s failed", request.method, request.url.path)
            return self._http_error(HttpError(500, _INTERNAL), codec)
        return Response(await self.encode(codec, grid), media_type=codec.content_type)

    def _http_error(self, exc: HttpError, codec: Codec) -> Response:
        if exc.status in (401, 406, 501):
            return Response(str(exc), exc.status, exc.headers, media_type="text/plain")
        return Response(
            codec.encode(error_grid(str(exc))),
            exc.status,
            exc.headers,
            media_type=codec.content_type,
        )

    async def handle_login(self, request: Request) -> Response:
        """A login path (:attr:`ServerConfig.login_paths`): the handshake and nothing else."""
        try:
            who = await self.identify(request, self.now())
        except HttpError as exc:
            return self._http_error(exc, ZINC)
        if isinstance(who, LoginStep):
            return login_response(who)
        return Response(status_code=200)

    async def handle_root(self, request: Request) -> Response:
        """``{prefix}/`` (and ``{prefix}``): where clients that log in before any op start
        their handshake; answered as ``about``."""
        request.path_params["op"] = "about"
        return await self.handle_op(request)

    async def handle_home(self, request: Request) -> Response:
        """``/`` when the ops live under a prefix: where the API is, without auth and
        without secrets (a page for browsers, a grid for everyone else)."""
        prefix = self.config.prefix.rstrip("/")
        links = {"api": f"{prefix}/", "websocket": f"{prefix}/ws", "users": f"{prefix}/users/"}
        accept = request.headers.get("accept") or ""
        if "text/html" in accept:
            items = "".join(
                f'<li>{name}: <a href="{html.escape(path)}">{html.escape(path)}</a></li>'
                for name, path in links.items()
            )
            page = (
                "<!doctype html><title>Project Haystack server</title>"
                "<h1>Project Haystack server</h1>"
                f"<p>The Haystack HTTP API is at <code>{html.escape(prefix)}/{{op}}</code>; "
                f"log in with a Haystack client.</p><ul>{items}</ul>"
            )
            return HTMLResponse(page)
        try:
            codec = _accepted(accept)
        except HttpError as exc:
            return self._http_error(exc, ZINC)
        row = {name: Uri(path) for name, path in links.items()}
        grid = Grid.from_rows([{"dis": "Project Haystack server", **row}])
        return Response(codec.encode(grid), media_type=codec.content_type)

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        """An exception no handler caught (a fault of the server or of a store outside an
        op: an op's own become error grids) as a 500 error grid rather than Starlette's
        plain text, so that a client says what happened; nothing of the exception is
        told (Starlette logs it, and re-raises it to the ASGI server)."""
        return self._http_error(HttpError(500, _INTERNAL), ZINC)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404 and 405 (no route, or a route without the method) as error
        grids; nothing of the request (path, ``Host``) is echoed back."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        dis = "not found" if status == 404 else f"HTTP {status}"
        if status == 405:
            dis = f"method {request.method} is not allowed here"
        return self._http_error(HttpError(status, dis, headers), ZINC)
