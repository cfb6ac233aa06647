"""What a client tells about its work: OpenTelemetry spans with the trace context sent
in each request, and the plain callbacks of ClientHooks.  (Our server continuing the
client's trace is tested in tests-integration.)"""

from __future__ import annotations

from typing import Any

import pytest

from projecthaystack.client import AsyncClient, CallError, Client, ClientHooks
from projecthaystack.kinds import Ref

from .conftest import LiveServer


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def hooks(self) -> ClientHooks:
        def add(name: str) -> Any:
            return lambda *args: self.events.append((name, *args))

        return ClientHooks(
            on_connect=add("connect"),
            on_disconnect=add("disconnect"),
            on_request=add("request"),
            on_response=add("response"),
            on_error=add("error"),
            on_message_sent=add("sent"),
            on_message_received=add("received"),
        )

    def names(self) -> list[str]:
        return [e[0] for e in self.events]


def test_hooks_see_requests_messages_and_connections(server: LiveServer) -> None:
    rec = Recorder()
    with Client(server.url, "user", "pencil", hooks=rec.hooks()) as c:
        c.read("site")
        with pytest.raises(CallError):
            c.call("nosuchop")
    names = rec.names()
    assert names[0] == "request" and rec.events[0][1:] == ("read", f"{server.url}/read")
    assert "connect" in names  # a new connection of the pool
    # The login's three round trips and the read: four requests out, four answers in.
    first = names.index("response")
    assert names[:first].count("sent") == 4 and names[:first].count("received") == 4
    response = rec.events[first]
    assert response[1] == "read" and response[3] >= 0
    error = next(e for e in rec.events if e[0] == "error")
    assert error[1] == "nosuchop" and isinstance(error[3], CallError)
    assert rec.events[-1] == ("disconnect", f"{server.url}/", "closed")


@pytest.mark.anyio
async def test_async_hooks(server: LiveServer) -> None:
    rec = Recorder()
    async with AsyncClient(server.url, "user", "pencil", hooks=rec.hooks()) as c:
        await c.read_ids([Ref("t1")])
    names = rec.names()
    assert names.count("request") == 2  # the read, and the close op on leaving
    assert "connect" in names and names[-1] == "disconnect"


def test_a_span_per_call_and_its_context_in_every_request(server: LiveServer) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="install opentelemetry-sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[str] = []

    def hook(request: Any) -> None:
        seen.append(request.headers.get("traceparent", ""))

    with Client(
        server.url,
        "user",
        "pencil",
        tracer_provider=provider,
        event_hooks={"request": [hook]},
    ) as c:
        c.about()
        with pytest.raises(CallError):
            c.call("nosuchop")
    spans = exporter.get_finished_spans()
    about = next(s for s in spans if s.name == "haystack about")
    assert about.attributes["haystack.op"] == "about"
    assert about.attributes["haystack.outcome"] == "ok"
    assert about.kind.name == "CLIENT"
    failed = next(s for s in spans if s.name == "haystack nosuchop")
    assert failed.attributes["haystack.outcome"] == "CallError"
    # Every request of the about call (three for the login, one for the op) carried it.
    trace_id = f"{about.context.trace_id:032x}"
    assert [t.split("-")[1] for t in seen[:4]] == [trace_id] * 4
    assert all(p not in str(s.attributes) for s in spans for p in ("pencil",))
    provider.shutdown()
