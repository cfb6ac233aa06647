"""Observability: OpenTelemetry spans and metrics (the ``[otel]`` extra), and the access
log.

With ``opentelemetry-api`` installed and set up (an SDK's providers made global, or
given as ``ServerConfig.tracer_provider``/``meter_provider``, before ``create_app``),
:func:`instrument` (called once by ``create_app``) wraps the server's op call, its login
step, its token minting and every coroutine method of its store, and adds an ASGI
middleware that opens a span per HTTP request in the trace context the client sent
(``traceparent``); a WebSocket request's ``trace`` field is continued the same way
(:func:`continued`).  Not installed, or installed but not set up, nothing is wrapped and
no middleware is added (unless the access log is on): no cost per request.

Spans
    ``HTTP {method} {path}`` (kind SERVER) per HTTP request: method, path, status,
    ``haystack.format`` of the answer; ``haystack {op}`` per op (HTTP and WebSocket):
    ``haystack.op``, ``haystack.role``, ``haystack.rows_in``, ``haystack.rows_out``,
    ``haystack.outcome`` (``ok``, ``error`` for an error grid, ``refused`` for a
    403/404).  Never a token, a password or a proof.

Metrics (instrument names)
    ``haystack.server.op.duration`` (s, by ``haystack.op`` and ``haystack.outcome``),
    ``haystack.server.request.duration`` (s, HTTP, by method and status),
    ``haystack.server.watches.active``, ``haystack.server.sessions.active``,
    ``haystack.server.handshakes.in_flight`` (this process's view: the watches, sessions
    and handshakes it opened or served, not yet expired), ``haystack.server.logins.throttled``,
    ``haystack.server.store.duration`` (s, by ``haystack.store.call``) and
    ``haystack.server.store.errors`` (by call and error type).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

from projecthaystack.auth import AuthError, parse_auth_header
from projecthaystack.kinds import Grid

from ._errors import HttpError
from .storeforms import token_hash

if TYPE_CHECKING:
    from starlette.middleware import Middleware

    from ._app import HaystackServer

__all__ = ["OTEL_AVAILABLE", "continued", "instrument"]

OTEL_AVAILABLE: Final = importlib.util.find_spec("opentelemetry") is not None
"""Whether OpenTelemetry looks installed (the ``[otel]`` extra), found without importing
it: the API costs tens of milliseconds of import time that a server without tracing (and
``haystack-server --help``) should not pay."""

_PROVIDER_ENV: Final = ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")


@functools.cache
def _otel() -> SimpleNamespace | None:
    """The OpenTelemetry API modules (``context``, ``metrics``, ``propagate``,
    ``trace``), imported on first use; ``None`` where the extra is absent."""
    try:
        from opentelemetry import context, metrics, propagate, trace
    except ImportError:  # pragma: no cover - exercised where the extra is absent
        return None
    return SimpleNamespace(context=context, metrics=metrics, propagate=propagate, trace=trace)


def _may_be_set_up(config: Any) -> bool:
    """Whether OpenTelemetry can have been set up, known without importing it: a
    provider in the config, or code that imported the API (only that can make global
    providers: an SDK's setup, auto-instrumentation), or the environment variables the
    API reads its providers from."""
    return (
        config.tracer_provider is not None
        or config.meter_provider is not None
        or "opentelemetry.trace" in sys.modules
        or "opentelemetry.metrics" in sys.modules
        or any(name in os.environ for name in _PROVIDER_ENV)
    )


access_log = logging.getLogger("projecthaystack.server.access")
store_log = logging.getLogger("projecthaystack.server.store")

_SCOPE: Final = "projecthaystack.server"
_MAX_TRACKED: Final = 100_000  # watches, sessions, handshakes remembered per process
_FORMATS: Final = {
    "text/zinc": "zinc",
    "application/json": "json",
    "application/vnd.haystack+json;version=3": "json3",
    "text/trio": "trio",
    "text/csv": "csv",
}


def instrument(server: HaystackServer) -> list[Middleware]:
    """Instrument ``server`` and return the middleware for its app: the OpenTelemetry
    spans and metrics when the extra is installed, the access log when
    :attr:`ServerConfig.access_log` is on; nothing otherwise."""
    from starlette.middleware import Middleware

    otel = _otel() if OTEL_AVAILABLE and _may_be_set_up(server.config) else None
    telemetry = _Telemetry(server, otel) if otel and _configured(server.config, otel) else None
    if telemetry is None and not server.config.access_log:
        return []
    return [Middleware(_HttpMiddleware, telemetry=telemetry, access=server.config.access_log)]


def _configured(config: Any, otel: SimpleNamespace) -> bool:
    """Whether OpenTelemetry is set up: a provider given in the config, or global ones
    that are not the API's own stand-ins (which drop everything).  Installed but not
    set up, the server is not instrumented at all: it costs nothing per request."""
    tracer = config.tracer_provider or otel.trace.get_tracer_provider()
    meter = config.meter_provider or otel.metrics.get_meter_provider()
    return not (_stand_in(tracer) and _stand_in(meter))


def _stand_in(provider: Any) -> bool:
    # The API's proxy and no-op providers live in the API package; any real one (the
    # SDK's, a vendor's) lives elsewhere.
    return type(provider).__module__.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


class _Expiring:
    """Keys with an expiry, counted while unexpired: this process's view of a shared
    thing (watches, sessions, handshakes).  Bounded: the oldest go first."""

    def __init__(self) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()

    def put(self, key: str, seconds: float) -> None:
        self._until[key] = time.monotonic() + seconds
        self._until.move_to_end(key)
        while len(self._until) > _MAX_TRACKED:
            self._until.popitem(last=False)

    def drop(self, key: str) -> None:
        self._until.pop(key, None)

    def count(self) -> int:
        now = time.monotonic()
        for key in [k for k, t in self._until.items() if t <= now]:
            del self._until[key]
        return len(self._until)


class _Telemetry:
    """The tracer, the instruments and the wrappers, made once per server."""

    def __init__(self, server: HaystackServer, otel: SimpleNamespace) -> None:
        cfg = server.config
        self.otel = otel
        tracer_provider = cfg.tracer_provider or otel.trace.get_tracer_provider()
        meter_provider = cfg.meter_provider or otel.metrics.get_meter_provider()
        self.tracer = tracer_provider.get_tracer(_SCOPE)
        meter = meter_provider.get_meter(_SCOPE)
        self.op_duration = meter.create_histogram(
            "haystack.server.op.duration", unit="s", description="Time to run one op"
        )
        self.request_duration = meter.create_histogram(
            "haystack.server.request.duration", unit="s", description="Time to answer HTTP"
        )
        self.throttled = meter.create_counter(
            "haystack.server.logins.throttled", description="Login steps refused with 429"
        )
        self.store_duration = meter.create_histogram(
            "haystack.server.store.duration", unit="s", description="Time of one store call"
        )
        self.store_errors = meter.create_counter(
            "haystack.server.store.errors", description="Store calls that raised"
        )
        self.watches = _Expiring()
        self.sessions = _Expiring()
        self.handshakes = _Expiring()
        for name, registry, what in (
            ("haystack.server.watches.active", self.watches, "Watches this process serves"),
            ("haystack.server.sessions.active", self.sessions, "Sessions this process started"),
            ("haystack.server.handshakes.in_flight", self.handshakes, "Logins under way here"),
        ):
            meter.create_observable_gauge(name, callbacks=[self._gauge(registry)], description=what)
        self.lease = cfg.watch_lease.total_seconds()
        self.token_ttl = cfg.token_ttl.total_seconds()
        self.handshake_ttl = cfg.handshake_ttl.total_seconds()
        self._wrap_call(server)
        self._wrap_auth(server)
        self._wrap_store(server.store)

    def _gauge(self, registry: _Expiring) -> Callable[[Any], Iterable[Any]]:
        observation = self.otel.metrics.Observation

        def observe(options: Any) -> Iterable[Any]:
            return [observation(registry.count())]

        return observe

    # -- ops -------------------------------------------------------------------------------
    def _wrap_call(self, server: HaystackServer) -> None:
        call = server.call
        tracer, trace = self.tracer, self.otel.trace

        @functools.wraps(call)
        async def traced(who: Any, op_name: str, req: Grid, now: Any) -> Grid:
            attrs: dict[str, Any] = {
                "haystack.op": op_name,
                "haystack.role": who.user.role.label,
                "haystack.rows_in": len(req),
            }
            start = time.perf_counter()
            with tracer.start_as_current_span(f"haystack {op_name}", attributes=attrs) as span:
                try:
                    grid = await call(who, op_name, req, now)
                except HttpError as exc:
                    span.set_attribute("haystack.status", exc.status)
                    span.set_attribute("haystack.outcome", "refused")
                    self.op_duration.record(
                        time.perf_counter() - start,
                        {"haystack.op": op_name, "haystack.outcome": "refused"},
                    )
                    raise
                outcome = "error" if grid.is_error else "ok"
                done = {"haystack.op": op_name, "haystack.outcome": outcome}
                self.op_duration.record(time.perf_counter() - start, done)
                span.set_attribute("haystack.rows_out", len(grid))
                span.set_attribute("haystack.outcome", outcome)
                if grid.is_error:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
                self._track(op_name, req, grid, who)
            return grid

        server.call = traced  # type: ignore[method-assign]

    def _track(self, op: str, req: Grid, grid: Grid, who: Any) -> None:
        wid = grid.meta.get("watchId") if not grid.is_error else None
        if op in ("watchSub", "watchPoll"):
            if isinstance(wid, str):
                self.watches.put(wid, self.lease)
            elif grid.is_error and isinstance(req.meta.get("watchId"), str):
                self.watches.drop(req.meta["watchId"])
        elif op == "watchUnsub" and "close" in req.meta and not grid.is_error:
            self.watches.drop(str(req.meta.get("watchId")))
        elif op == "close" and who.token is not None:
            self.sessions.drop(token_hash(who.token))

    # -- logins ----------------------------------------------------------------------------
    def _wrap_auth(self, server: HaystackServer) -> None:
        auth = server.auth
        login, mint = auth.login, auth.mint

        @functools.wraps(login)
        async def counted_login(authorization: str, **kwargs: Any) -> Any:
            handshake = _handshake_token(authorization)
            try:
                step = await login(authorization, **kwargs)
            except HttpError as exc:
                if exc.status == 429:
                    self.throttled.add(1)
                if handshake:
                    self.handshakes.drop(handshake)
                raise
            if handshake:
                self.handshakes.drop(handshake)
            issued = _handshake_token(step.headers.get("WWW-Authenticate", ""))
            if step.status == 401 and issued:
                self.handshakes.put(issued, self.handshake_ttl)
            return step

        @functools.wraps(mint)
        async def counted_mint(user: Any, now: Any) -> str:
            token = await mint(user, now)
            self.sessions.put(token_hash(token), self.token_ttl)
            return token

        auth.login = counted_login  # type: ignore[method-assign]
        auth.mint = counted_mint  # type: ignore[method-assign]

    # -- the store -------------------------------------------------------------------------
    def _wrap_store(self, store: Any) -> None:
        for name, method in inspect.getmembers(store, inspect.iscoroutinefunction):
            if name.startswith("_") or name in ("open", "close", "wait_changes"):
                continue
            try:
                setattr(store, name, self._timed(name, method))
            except AttributeError:  # a store with __slots__: no store metrics for it
                store_log.info("store metrics off: %s cannot be instrumented", type(store))
                return

    def _timed(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        attrs = {"haystack.store.call": name}
        duration, errors = self.store_duration, self.store_errors

        @functools.wraps(method)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                errors.add(1, {**attrs, "error.type": type(exc).__name__})
                store_log.warning("store call %s failed: %s", name, type(exc).__name__)
                raise
            finally:
                duration.record(time.perf_counter() - start, attrs)

        return timed


@contextlib.contextmanager
def continued(carrier: Mapping[str, str]) -> Iterator[None]:
    """Make the trace context a caller sent (``traceparent``, ``tracestate``, as HTTP
    headers or a WebSocket frame's ``trace``) current, so that the spans started inside
    continue the caller's trace.  A malformed context is ignored by the propagator (the
    spans start a trace of their own); nothing to continue, or no OpenTelemetry, nothing
    is done."""
    # Without the API imported no span can be open or started: nothing to continue.
    otel = _otel() if carrier and OTEL_AVAILABLE and "opentelemetry.trace" in sys.modules else None
    if otel is None:
        yield
        return
    token = otel.context.attach(otel.propagate.extract(carrier))
    try:
        yield
    finally:
        otel.context.detach(token)


def _handshake_token(header: str) -> str | None:
    if "handshakeToken" not in header:
        return None
    try:
        return parse_auth_header(header).get("handshakeToken")
    except AuthError:
        return None


class _HttpMiddleware:
    """A span per HTTP request in the caller's trace context, its duration, and the
    access log line."""

    def __init__(self, app: Any, *, telemetry: _Telemetry | None, access: bool) -> None:
        self.app = app
        self.telemetry = telemetry
        self.access = access

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answer: dict[str, Any] = {"status": 500, "format": None}

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key == b"content-type":
                        mime = value.decode("latin-1").split(";")[0].strip().lower()
                        answer["format"] = _FORMATS.get(mime, mime)
            await send(message)

        method, path = scope.get("method", ""), scope.get("path", "")
        tel = self.telemetry
        try:
            if tel is None:
                await self.app(scope, receive, sending)
                return
            carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            with (
                continued(carrier),
                tel.tracer.start_as_current_span(
                    f"HTTP {method} {path}",
                    kind=tel.otel.trace.SpanKind.SERVER,
                    attributes={"http.request.method": method, "url.path": path},
                ) as span,
            ):
                await self.app(scope, receive, sending)
                span.set_attribute("http.response.status_code", answer["status"])
                if answer["format"]:
                    span.set_attribute("haystack.format", answer["format"])
                if answer["status"] >= 500:
                    span.set_status(tel.otel.trace.Status(tel.otel.trace.StatusCode.ERROR))
        finally:
            elapsed = time.perf_counter() - start
            if tel is not None:
                tel.request_duration.record(
                    elapsed,
                    {"http.request.method": method, "http.response.status_code": answer["status"]},
                )
            if self.access:
                client = scope.get("client")
                access_log.info(
                    "%s %s %s %.1f ms %s",
                    method,
                    path,
                    answer["status"],
                    elapsed * 1000,
                    client[0] if client else "-",
                    extra={
                        "method": method,
                        "path": path,
                        "status": answer["status"],
                        "duration_ms": round(elapsed * 1000, 3),
                        "client_address": client[0] if client else None,
                    },
                )
