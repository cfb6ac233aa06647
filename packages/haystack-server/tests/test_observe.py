"""Observability: OpenTelemetry spans and metrics (in-memory exporter and reader), the
trace context a client sends, the failed-login log line and the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="install opentelemetry-sdk (the test env has it)")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from projecthaystack.client import (
    CallError,
    Client,
    CredentialsRejectedError,
    TooManyRequestsError,
)
from projecthaystack.kinds import Ref
from projecthaystack.server import MemoryStore, ServerConfig

from .conftest import PASSWORDS, Live


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def config(self, **kwargs: Any) -> ServerConfig:
        return ServerConfig(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **kwargs
        )

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def value(self, name: str, **attrs: Any) -> Any:
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in attrs.items()):
                return getattr(point, "value", None) if hasattr(point, "value") else point.count
        return None


@pytest.fixture
def otel() -> Iterator[Otel]:
    made = Otel()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


def _secrets_absent(spans: Any, *secrets: str) -> None:
    for span in spans:
        for value in span.attributes.values():
            assert not any(s in str(value) for s in secrets), (span.name, value)


def test_a_span_per_request_and_per_op(make_live: Any, otel: Otel) -> None:
    live = make_live(otel.config())
    with Client(live.url, "viewer", PASSWORDS["viewer"], fmt="json") as c:
        c.read("site")
        token = c.token
        c.read_ids([Ref("t1"), Ref("nope")])
        with pytest.raises(Exception, match="unknown op"):
            c.call("nosuchop")
        with pytest.raises(Exception, match="needs the operator role"):
            c.his_write(Ref("t1"), [])
    spans = otel.spans.get_finished_spans()
    ops = [s for s in spans if s.name.startswith("haystack ")]
    read = next(s for s in ops if s.attributes["haystack.rows_in"] == 1)
    assert read.name == "haystack read"
    assert read.attributes["haystack.op"] == "read"
    assert read.attributes["haystack.role"] == "viewer"
    assert read.attributes["haystack.rows_out"] == 2
    assert read.attributes["haystack.outcome"] == "ok"
    # The op's span is a child of its HTTP request's span, which knows the format.
    parent = next(s for s in spans if s.context.span_id == read.parent.span_id)
    assert parent.name.startswith("HTTP GET /api/read")
    assert parent.attributes["http.response.status_code"] == 200
    assert parent.attributes["haystack.format"] == "json"
    refused = next(s for s in ops if s.name == "haystack hisWrite")
    assert refused.attributes["haystack.outcome"] == "refused"
    assert refused.attributes["haystack.status"] == 403
    unknown = next(s for s in spans if s.name == "HTTP POST /api/nosuchop")
    assert unknown.attributes["http.response.status_code"] == 404
    _secrets_absent(spans, PASSWORDS["viewer"], token or "?")
    # Metrics: op duration by op and outcome.
    assert otel.value("haystack.server.op.duration", **{"haystack.op": "read"}) == 2
    assert otel.value("haystack.server.request.duration", **{"http.request.method": "GET"})
    assert otel.value("haystack.server.store.duration", **{"haystack.store.call": "get_entities"})


def test_the_trace_context_of_the_caller_is_continued(make_live: Any, otel: Otel) -> None:
    live = make_live(otel.config())
    token = live.token("viewer")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "Authorization": f"BEARER authToken={token}",
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
    }
    assert httpx.get(f"{live.url}/about", headers=headers).status_code == 200
    # The server ends its span after the answer went out, in its own thread: wait for it
    # (bounded) rather than read the spans list before it is there.
    deadline = time.monotonic() + 10
    while True:
        spans = [s for s in otel.spans.get_finished_spans() if s.name == "HTTP GET /api/about"]
        ours = [s for s in spans if f"{s.context.trace_id:032x}" == trace_id]
        if ours or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert len(ours) == 1, [f"{s.context.trace_id:032x}" for s in spans]
    assert f"{ours[0].parent.span_id:016x}" == "00f067aa0ba902b7"


def test_watches_sessions_handshakes_throttles_metrics(make_live: Any, otel: Otel) -> None:
    live = make_live(otel.config(max_failures_per_user=1))
    with Client(live.url, "op", PASSWORDS["op"]) as c:
        wid = c.watch_sub([Ref("t1")], dis="m").meta["watchId"]
        assert otel.value("haystack.server.watches.active") == 1
        assert otel.value("haystack.server.sessions.active") >= 1
        c.watch_unsub(wid, close=True)
        assert otel.value("haystack.server.watches.active") == 0
        before = otel.value("haystack.server.sessions.active")
        c.close_session()
        assert otel.value("haystack.server.sessions.active") == before - 1
    # A HELLO leaves a handshake in flight until its proof comes (or it expires).
    assert (
        httpx.get(f"{live.url}/about", headers={"Authorization": "HELLO username=b3A"}).status_code
        == 401
    )
    assert otel.value("haystack.server.handshakes.in_flight") == 1
    for expected in (CredentialsRejectedError, TooManyRequestsError):
        with Client(live.url, "viewer", "wrong") as bad, pytest.raises(expected):
            bad.about()
    assert otel.value("haystack.server.logins.throttled") >= 1


class _BrokenStore(MemoryStore):
    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")


def test_store_errors_are_counted(make_live: Any, otel: Otel) -> None:
    live = make_live(otel.config(), store=_BrokenStore())
    with Client(live.url, "op", PASSWORDS["op"]) as c, pytest.raises(CallError, match="internal"):
        c.read("site")
    errors = otel.points("haystack.server.store.errors")
    assert [(p.attributes["haystack.store.call"], p.attributes["error.type"]) for p in errors] == [
        ("query", "RuntimeError")
    ]
    read = next(s for s in otel.spans.get_finished_spans() if s.name == "haystack read")
    assert read.attributes["haystack.outcome"] == "error"


def test_a_failed_login_is_one_log_line(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="projecthaystack.server.auth"),
        Client(live.url, "viewer", "not-the-password") as c,
        pytest.raises(CredentialsRejectedError),
    ):
        c.about()
    lines = [r for r in caplog.records if r.name == "projecthaystack.server.auth"]
    assert len(lines) == 1
    record = lines[0]
    assert record.levelno == logging.WARNING
    assert record.reason == "rejected"  # type: ignore[attr-defined]
    assert record.username == "viewer"  # type: ignore[attr-defined]
    assert record.client_address == "127.0.0.1"  # type: ignore[attr-defined]
    assert "127.0.0.1" in record.getMessage() and "viewer" in record.getMessage()
    assert "not-the-password" not in record.getMessage()


def test_the_access_log_can_be_turned_on(make_live: Any, caplog: pytest.LogCaptureFixture) -> None:
    quiet = make_live()
    loud = make_live(ServerConfig(access_log=True))
    with caplog.at_level(logging.INFO, logger="projecthaystack.server.access"):
        for live in (quiet, loud):
            with Client(live.url, "viewer", PASSWORDS["viewer"]) as c:
                c.read("site")
    lines = [r for r in caplog.records if r.name == "projecthaystack.server.access"]
    assert lines, "the access log wrote nothing"
    read = [r for r in lines if r.path == "/api/read"]  # type: ignore[attr-defined]
    assert len(read) == 1  # the quiet server wrote none
    assert read[0].status == 200  # type: ignore[attr-defined]
    assert read[0].getMessage().startswith("GET /api/read 200 ")
    assert all("authToken" not in r.getMessage() for r in lines)
