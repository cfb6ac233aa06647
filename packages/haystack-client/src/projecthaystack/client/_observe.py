"""What a client tells about its work: OpenTelemetry spans (the ``[otel]`` extra) with the
trace context sent to the server, and plain callbacks (:class:`ClientHooks`) for those
who do not use OpenTelemetry.

A client made without hooks, and without OpenTelemetry installed and set up (an SDK's
tracer provider made global, or given as ``tracer_provider=``), does nothing of this
per request: :func:`observer` returns ``None`` and the client takes its plain path.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

__all__ = ["ClientHooks", "Observer", "observer"]

_SCOPE: Final = "projecthaystack.client"


def _otel_trace() -> ModuleType | None:
    """``opentelemetry.trace`` where the ``[otel]`` extra is installed, else ``None``.

    Imported on the first client that may trace, not with the package: OpenTelemetry's
    API costs tens of milliseconds of import time that a client without tracing (and
    every CLI call) should not pay.
    """
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - exercised where the extra is absent
        return None
    return trace


def _global_provider_possible() -> bool:
    """Whether a global tracer provider may have been set: only code that imported
    ``opentelemetry.trace`` (``set_tracer_provider``, auto-instrumentation) can set one,
    and the API loads the one named by ``OTEL_PYTHON_TRACER_PROVIDER`` on first use."""
    return "opentelemetry.trace" in sys.modules or "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


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
        self._span_kind: Any = None
        self._propagate: Any = None
        if tracing:
            from opentelemetry import propagate, trace

            provider = tracer_provider or trace.get_tracer_provider()
            self.tracer = provider.get_tracer(_SCOPE)
            self._span_kind = trace.SpanKind.CLIENT
            self._propagate = propagate

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
                kind=self._span_kind,
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
            self._propagate.inject(headers)

    def trace_context(self) -> dict[str, str]:
        """The current W3C trace context (``traceparent``, and ``tracestate`` when there
        is one) for a WebSocket request frame; empty when not tracing or no span is
        current.  Baggage and other propagators' fields stay off the socket."""
        carrier: dict[str, str] = {}
        self.inject(carrier)
        return {k: carrier[k] for k in ("traceparent", "tracestate") if k in carrier}

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
    tracing = False
    if tracer_provider is not None or _global_provider_possible():
        trace = _otel_trace()
        tracing = trace is not None and (
            tracer_provider is not None
            or not type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.trace")
        )
    if hooks is None and not tracing:
        return None
    return Observer(hooks, tracer_provider, tracing)
