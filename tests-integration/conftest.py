"""Shared fixtures: an ASGI app served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from projecthaystack.server.testing import serve


@pytest.fixture(scope="module")
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """Serve an ASGI app for the module; returns its base URL (``.../api``)."""
    with contextlib.ExitStack() as stack:

        def serve_app(app: Any) -> str:
            # h11 keeps the case of header names (httptools lower-cases them): pyhaystack
            # finds WWW-Authenticate only as SkySpark spells it.
            return stack.enter_context(serve(app, path="/api", http="h11"))

        yield serve_app
