"""What OpenTelemetry costs the server per request when the ``[otel]`` extra is installed
but no exporter is configured (the API's default providers): the target is at most 3 %
extra CPU.

Apps on the same demo building in this process: one built as if ``opentelemetry-api``
could not be imported, one as it is (installed, no SDK set up: the target), and, for
information, one given the SDK's tracer and meter providers with no exporter (spans and
metrics made, then dropped).  Each request goes straight into the ASGI app (no network,
no client, no uvicorn), so the CPU measured is the app's alone, and the share of a real
request is smaller still.  Rounds interleave the apps, and the medians are compared.

    python3 tools/dev.py bench otel
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import anyio

ADMIN = ("admin", "correct-horse-battery")
ROUNDS = 9

SCENARIOS: dict[str, tuple[str, str, int]] = {
    # name: (path, query string, requests per round)
    "about": ("/api/about", "", 400),
    "read of the points (108 rows)": ("/api/read", "filter=point", 100),
    "hisRead of a day (96 samples)": (
        "/api/hisRead",
        "id=@demo.site1.ahu1.dat&range=yesterday",
        200,
    ),
}


def _app(mode: str) -> Any:
    from projecthaystack.server import (
        MemoryStore,
        ServerConfig,
        _observe,
        create_app,
        demo_building,
    )

    building = demo_building(sites=1, ahus=2, vavs=5, days=1)
    config = ServerConfig()
    if mode == "sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        config = ServerConfig(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
    was = _observe.OTEL_AVAILABLE
    _observe.OTEL_AVAILABLE = mode != "absent"  # type: ignore[misc]
    try:
        return create_app(MemoryStore(), config=config, admin=ADMIN, on_startup=[building.load])
    finally:
        _observe.OTEL_AVAILABLE = was  # type: ignore[misc]


async def _started(app: Any) -> str:
    server = app.state.haystack
    await server.start()
    user = await server.store.get_user(ADMIN[0])
    return f"BEARER authToken={await server.auth.mint(user, server.now())}"


def _requester(app: Any, auth: str, path: str, query: str) -> Callable[[], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", auth.encode()),
            (b"accept", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> None:
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        if status != [200]:
            raise RuntimeError(f"{path}?{query}: {status}")

    return one


def main() -> None:
    """Measure and print a table."""
    from projecthaystack.server import _observe

    if not _observe.OTEL_AVAILABLE:
        print("otel bench: opentelemetry-api is not installed (the [otel] extra); skipped")
        return

    import importlib.util

    modes = ["absent", "installed"]
    if importlib.util.find_spec("opentelemetry.sdk") is not None:
        modes.append("sdk")

    async def run() -> dict[str, dict[str, float]]:
        apps = {mode: _app(mode) for mode in modes}
        auths = {k: await _started(a) for k, a in apps.items()}
        out: dict[str, dict[str, float]] = {}
        for name, (path, query, count) in SCENARIOS.items():
            calls = {k: _requester(a, auths[k], path, query) for k, a in apps.items()}
            samples: dict[str, list[float]] = {k: [] for k in apps}
            for call in calls.values():  # warm up
                for _ in range(count // 4):
                    await call()
            for _ in range(ROUNDS):
                for k, call in calls.items():
                    start = time.process_time()
                    for _ in range(count):
                        await call()
                    samples[k].append((time.process_time() - start) * 1000 / count)
            out[name] = {k: statistics.median(v) for k, v in samples.items()}
        return out

    results = anyio.run(run)
    print("\n## Server CPU per request: OpenTelemetry installed, no exporter configured\n")
    print(
        "| request | not installed (CPU ms) | installed (CPU ms) | extra | target "
        "| SDK set up, no exporter: extra |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, cpu in results.items():
        base = cpu["absent"]
        extra = 100 * (cpu["installed"] - base) / base
        sdk = f"{100 * (cpu['sdk'] - base) / base:+.0f} %" if "sdk" in cpu else "-"
        print(f"| {name} | {base:.3f} | {cpu['installed']:.3f} | {extra:+.1f} % | ≤ 3 % | {sdk} |")


if __name__ == "__main__":
    main()
