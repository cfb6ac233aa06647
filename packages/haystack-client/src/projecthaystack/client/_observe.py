"""What a client tells about its work: OpenTelemetry spans (the ``[otel]`` extra) with the
trace context sent to the server, and plain callbacks (:class:`ClientHooks`) for those
who do not use OpenTelemetry.

A client made without hooks, and without OpenTelemetry installed and set up (an SDK's
tracer provider made global, or given as ``tracer_provider=``), does nothing of this
per request: :func:`observer` returns ``None`` and the client takes its plain path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

try:  # the [otel] extra
    from opentelemetry import propagate as otel_propagate
    from opentelemetry import trace as otel_trace
except ImportError:  # pragma: no cover - exercised where the extra is absent
    otel_trace = None  # type: ignore[assignment]

__all__ = ["ClientHooks", "Observer", "observer"]

OTEL_AVAILABLE: Final = otel_trace is not None
_SCOPE: Final = "projecthaystack.client"


@dataclass(frozen=True, slots=True)
class ClientHooks:
    """Callbacks for what a client does, for metrics of your own without OpenTelemetry
    (each is optional; they run in the client's thread or task, so keep them quick; an
    exception in one propagates).

    * ``on_connect(url)``: a connection was opened (a WebSocket, or a new HTTP
      connection of the pool);
    * ``on_disconnect(url, reason)``: a WebSocket closed, or the client was closed;
    * ``on_request(op, url)``: an op call starts (its login round trips included);
    * ``on_response(op, url, seconds)``: it returned a result;
    * ``on_error(op, url, error, seconds)``: it raised ``error``;
    * ``on_message_sent(url, size)`` / ``on_message_received(url, size)``: bytes of one
      HTTP body or WebSocket message.

    >>> calls = []
    >>> hooks = ClientHooks(on_response=lambda op, url, s: calls.append(op))
    """

    on_connect: Callable[[str], None] | None = None
    on_disconnect: Callable[[str, str | None], None] | None = None
    on_request: Callable[[str, str], None] | None = None
    on_response: Callable[[str, str, float], None] | None = None
    on_error: Callable[[str, str, BaseException, float], None] | None = None
    on_message_sent: Callable[[str, int], None] | None = None
    on_message_received: Callable[[str, int], None] | None = None


class Observer:
    """The spans and the hooks of one client."""

    def __init__(self, hooks: ClientHooks | None, tracer_provider: Any, tracing: bool) -> None:
        self.hooks = hooks or ClientHooks()
        self.tracer: Any = None
        if tracing:
            provider = tracer_provider or otel_trace.get_tracer_provider()
            self.tracer = provider.get_tracer(_SCOPE)

    @contextlib.contextmanager
    def request(self, op: str, url: str) -> Iterator[None]:
        """Around one op call: its span (kind CLIENT, current while the call runs, so
        its HTTP requests carry its trace context) and the request hooks."""
        hooks = self.hooks
        if hooks.on_request:
            hooks.on_request(op, url)
        start = time.perf_counter()
        span_cm = (
            self.tracer.start_as_current_span(
                f"haystack {op}",
                kind=otel_trace.SpanKind.CLIENT,
                attributes={"haystack.op": op, "url.full": url},
            )
            if self.tracer is not None
            else contextlib.nullcontext()
        )
        with span_cm as span:
            try:
                yield
            except BaseException as exc:
                if span is not None:
                    span.set_attribute("haystack.outcome", type(exc).__name__)
                if hooks.on_error and isinstance(exc, Exception):
                    hooks.on_error(op, url, exc, time.perf_counter() - start)
                raise
            if span is not None:
                span.set_attribute("haystack.outcome", "ok")
            if hooks.on_response:
                hooks.on_response(op, url, time.perf_counter() - start)

    def inject(self, headers: dict[str, str]) -> None:
        """Add the current trace context (``traceparent``) to request headers."""
        if self.tracer is not None:
            otel_propagate.inject(headers)

    def sent(self, url: str, size: int) -> None:
        if self.hooks.on_message_sent:
            self.hooks.on_message_sent(url, size)

    def received(self, url: str, size: int) -> None:
        if self.hooks.on_message_received:
            self.hooks.on_message_received(url, size)

    def connected(self, url: str) -> None:
        if self.hooks.on_connect:
            self.hooks.on_connect(url)

    def disconnected(self, url: str, reason: str | None) -> None:
        if self.hooks.on_disconnect:
            self.hooks.on_disconnect(url, reason)

    @property
    def traces_connections(self) -> bool:
        """Whether HTTP connections must be followed (someone wants ``on_connect``)."""
        return self.hooks.on_connect is not None

    def sync_trace(self, url: str) -> Callable[[str, dict[str, Any]], None]:
        """An httpcore trace callback that reports new connections (sync client)."""

        def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                self.connected(url)

        return trace

    def async_trace(self, url: str) -> Callable[[str, dict[str, Any]], Any]:
        """The same for the async client (httpcore awaits it)."""

        async def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                self.connected(url)

        return trace


def observer(hooks: ClientHooks | None, tracer_provider: Any) -> Observer | None:
    """An :class:`Observer` when there is something to observe with (hooks, or
    OpenTelemetry set up: a provider given, or a global one that is not the API's
    stand-in), else ``None``."""
    tracing = OTEL_AVAILABLE and (
        tracer_provider is not None
        or not type(otel_trace.get_tracer_provider()).__module__.startswith("opentelemetry.trace")
    )
    if hooks is None and not tracing:
        return None
    return Observer(hooks, tracer_provider, tracing)
