"""Helpers for testing over a real socket: an ASGI app served by uvicorn in a thread, a
free port, and a small building to load.

They serve this package's tests and those of the packages around it, and they are as
useful for an application built on :func:`~projecthaystack.server.create_app` (custom
ops, actions, a store of your own):

>>> from projecthaystack.client import Client
>>> from projecthaystack.server import MemoryStore, create_app
>>> from projecthaystack.server.testing import serve, small_building
>>> async def fill(store):
...     await store.put_entities(small_building())
>>> app = create_app(MemoryStore(), admin=("admin", "correct-horse-battery"), on_startup=[fill])
>>> with serve(app) as url, Client(url, "admin", "correct-horse-battery") as client:
...     [row["dis"] for row in client.read("site")]
['HQ', 'Annex']

Nothing here needs pytest; wrap :func:`serve` in a fixture of your own.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from projecthaystack.kinds import Marker, Number, Ref

__all__ = ["free_port", "serve", "small_building"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it).

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    app: Any,
    *,
    path: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 30.0,
    **uvicorn_options: Any,
) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a daemon thread for the ``with`` block;
    yields the base URL, ``http://127.0.0.1:{port}{path}``.

    ``path`` defaults to the app's prefix (``/api``) for an app of
    :func:`~projecthaystack.server.create_app`, else to nothing.  ``port`` defaults to
    a free one.  Other keyword arguments go to ``uvicorn.Config`` (``http="h11"``,
    ``ssl_certfile=...``: the URL then starts with ``https``).  By default the
    WebSocket protocol, its bound on a message (the app's ``max_body``) and its
    per-message deflate are those of ``haystack-server serve``, logging is quiet, and
    uvicorn's own belief in ``X-Forwarded-For`` is off, as the command runs it.  Raises
    ``RuntimeError`` when the server does not start (the app's startup failed, the port
    is taken) within ``timeout`` seconds; the server is stopped on leaving the block.
    """
    import uvicorn

    from ._wsprotocol import WS_PROTOCOL

    state = getattr(app, "state", None)
    haystack = getattr(state, "haystack", None) if state is not None else None
    if path is None:
        path = haystack.config.prefix.rstrip("/") if haystack is not None else ""
    port = port or free_port(host)
    options: dict[str, Any] = {"ws": WS_PROTOCOL, "log_level": "error", "proxy_headers": False}
    if haystack is not None:
        options["ws_max_size"] = haystack.config.limits.max_body
    options.update(uvicorn_options)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise RuntimeError(f"the server on {host}:{port} did not start")
        time.sleep(0.01)
    scheme = "https" if options.get("ssl_certfile") else "http"
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"{scheme}://{shown}:{port}{path}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def small_building() -> list[dict[str, Any]]:
    """Nine entities that exercise every op: two sites (``s1`` in New_York, ``s2`` in
    Chicago), an AHU with a VAV under it, historized points (``t1`` a Number with
    ``curVal``, ``t2``, ``run`` a Bool, ``chi`` in Chicago) and a writable setpoint
    ``sp1``.  A fresh list each call.

    >>> sorted(r["id"].id for r in small_building() if "site" in r)
    ['s1', 's2']
    """
    site = Ref("s1", "HQ")
    ahu = Ref("ahu1", "AHU-1")
    point = {"point": Marker, "equipRef": ahu, "siteRef": site}
    temp = {**point, "temp": Marker, "sensor": Marker, "his": Marker, "kind": "Number"}
    return [
        {"id": site, "dis": "HQ", "site": Marker, "tz": "New_York", "geoCity": "Richmond"},
        {"id": Ref("s2"), "dis": "Annex", "site": Marker, "tz": "Chicago"},
        {"id": ahu, "dis": "AHU-1", "equip": Marker, "ahu": Marker, "siteRef": site},
        {
            "id": Ref("vav1"),
            "dis": "VAV-1",
            "equip": Marker,
            "vav": Marker,
            "siteRef": site,
            "equipRef": ahu,
        },
        {
            **temp,
            "id": Ref("t1", "DAT"),
            "dis": "DAT",
            "cur": Marker,
            "unit": "°F",
            "tz": "New_York",
            "curVal": Number(55, "°F"),
        },
        {**temp, "id": Ref("t2", "RAT"), "dis": "RAT", "unit": "°F", "tz": "New_York"},
        {
            **point,
            "id": Ref("run"),
            "dis": "Fan",
            "his": Marker,
            "kind": "Bool",
            "tz": "New_York",
        },
        {
            "id": Ref("chi"),
            "dis": "Chicago temp",
            "point": Marker,
            "his": Marker,
            "kind": "Number",
            "unit": "°F",
            "tz": "Chicago",
            "siteRef": Ref("s2"),
        },
        {
            **point,
            "id": Ref("sp1", "SP"),
            "dis": "SP",
            "sp": Marker,
            "writable": Marker,
            "cur": Marker,
            "kind": "Number",
            "unit": "°F",
        },
    ]
