"""Our client's trace continued by our server (traceparent), and the WebSocket client's
hooks, over a real socket."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="install opentelemetry-sdk (the test env has it)")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from projecthaystack.client import AsyncWebSocketClient, Client, ClientHooks
from projecthaystack.server import MemoryStore, ServerConfig, create_app, demo_building
from projecthaystack.server.testing import serve

ADMIN = ("admin", "correct-horse-battery")
BUILDING = demo_building(sites=1, ahus=1, vavs=1, days=1)


def _tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_the_server_continues_the_clients_trace() -> None:
    server_provider, server_spans = _tracing()
    client_provider, client_spans = _tracing()
    app = create_app(
        MemoryStore(),
        config=ServerConfig(tracer_provider=server_provider),
        admin=ADMIN,
        on_startup=[BUILDING.load],
    )
    with serve(app) as url, Client(url, *ADMIN, tracer_provider=client_provider) as c:
        c.read("site")
    read = next(s for s in client_spans.get_finished_spans() if s.name == "haystack read")
    http = [s for s in server_spans.get_finished_spans() if s.name.startswith("HTTP GET /api/read")]
    assert len(http) == 1
    assert http[0].context.trace_id == read.context.trace_id
    assert http[0].parent is not None
    assert http[0].parent.span_id == read.context.span_id
    op = next(s for s in server_spans.get_finished_spans() if s.name == "haystack read")
    assert op.context.trace_id == read.context.trace_id
    server_provider.shutdown()
    client_provider.shutdown()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_websocket_hooks(anyio_backend: str) -> None:
    events: list[tuple[Any, ...]] = []

    def add(name: str) -> Any:
        return lambda *args: events.append((name, *args))

    hooks = ClientHooks(
        on_connect=add("connect"),
        on_disconnect=add("disconnect"),
        on_request=add("request"),
        on_response=add("response"),
        on_message_sent=add("sent"),
        on_message_received=add("received"),
    )
    app = create_app(MemoryStore(), admin=ADMIN, on_startup=[BUILDING.load])
    with serve(app) as url:
        async with AsyncWebSocketClient(url, *ADMIN, hooks=hooks, timeout=30) as ws:
            await ws.read("site")
    ws_url = url.replace("http", "ws", 1) + "/ws"
    assert ("connect", ws_url) in events
    read_at = events.index(("request", "read", f"{ws_url} (read)"))
    after = [e[0] for e in events[read_at:]]
    assert after[:3] == ["request", "sent", "received"]
    assert after[3] == "response"
    assert any(e[0] == "disconnect" and e[1] == ws_url for e in events)
