"""Shared fixtures: an ASGI app served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn


@pytest.fixture(scope="module")
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """Serve an ASGI app for the module; returns its base URL (``.../api``)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: Any) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # h11 keeps the case of header names (httptools lower-cases them): pyhaystack
        # finds WWW-Authenticate only as SkySpark spells it.
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", http="h11")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}/api"

    yield serve
    for server, thread in running:
        server.should_exit = True
        thread.join(10)
