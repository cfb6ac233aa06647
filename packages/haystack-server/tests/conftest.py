"""A live server per test: uvicorn on 127.0.0.1 in a thread, our clients talking to it."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from projecthaystack.auth import ScramCredentials
from projecthaystack.client import Client
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import MemoryStore, Role, ServerConfig, User, create_app
from projecthaystack.server._demo import DEMO_ACTIONS

ADMIN = ("admin", "admin-password")
PASSWORDS = {"admin": "admin-password", "op": "operator-password", "viewer": "viewer-password"}
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def building() -> list[dict[str, Any]]:
    site = Ref("s1", "HQ")
    ahu = Ref("ahu1", "AHU-1")
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
            "id": Ref("t1", "DAT"),
            "dis": "DAT",
            "point": Marker,
            "temp": Marker,
            "sensor": Marker,
            "his": Marker,
            "cur": Marker,
            "kind": "Number",
            "unit": "°F",
            "tz": "New_York",
            "curVal": Number(55, "°F"),
            "equipRef": ahu,
            "siteRef": site,
        },
        {
            "id": Ref("t2", "RAT"),
            "dis": "RAT",
            "point": Marker,
            "temp": Marker,
            "sensor": Marker,
            "his": Marker,
            "kind": "Number",
            "unit": "°F",
            "tz": "New_York",
            "equipRef": ahu,
            "siteRef": site,
        },
        {
            "id": Ref("run"),
            "dis": "Fan",
            "point": Marker,
            "his": Marker,
            "kind": "Bool",
            "tz": "New_York",
            "equipRef": ahu,
            "siteRef": site,
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
            "id": Ref("sp1", "SP"),
            "dis": "SP",
            "point": Marker,
            "sp": Marker,
            "writable": Marker,
            "cur": Marker,
            "kind": "Number",
            "unit": "°F",
            "equipRef": ahu,
            "siteRef": site,
        },
    ]


@dataclass
class Live:
    """A running server: its base URL, store, app and a way to make clients."""

    url: str
    store: MemoryStore
    app: Starlette
    clients: list[Client] = field(default_factory=list)

    def client(self, user: str = "admin", password: str | None = None, **kwargs: Any) -> Client:
        c = Client(self.url, user, password or PASSWORDS.get(user, "x"), **kwargs)
        self.clients.append(c)
        return c

    def token(self, user: str = "admin") -> str:
        c = self.client(user)
        c.about()
        assert c.token is not None
        return c.token

    def http(self, user: str | None = "admin") -> httpx.Client:
        headers = {} if user is None else {"Authorization": f"BEARER authToken={self.token(user)}"}
        return httpx.Client(base_url=self.url + "/", headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_server(app: Starlette, port: int, **kwargs: Any) -> tuple[uvicorn.Server, threading.Thread]:
    kwargs.setdefault("ws", "wsproto")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", **kwargs)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return server, thread


async def _seed(store: Any) -> None:
    await store.put_entities(building())
    for name, role in (("op", Role.OPERATOR), ("viewer", Role.VIEWER)):
        creds = ScramCredentials.derive(PASSWORDS[name], iterations=4096)
        await store.put_user(User(name, role, creds))


@pytest.fixture
def make_live() -> Iterator[Callable[..., Live]]:
    running: list[tuple[uvicorn.Server, threading.Thread, Live]] = []

    def make(config: ServerConfig | None = None, **kwargs: Any) -> Live:
        store = kwargs.pop("store", None) or MemoryStore()
        uv_kwargs = kwargs.pop("uvicorn", {})
        hooks = [_seed, *kwargs.pop("on_startup", [])]
        app = create_app(
            store,
            config=config or ServerConfig(),
            admin=ADMIN,
            actions=kwargs.pop("actions", DEMO_ACTIONS),
            on_startup=hooks,
            **kwargs,
        )
        port = free_port()
        server, thread = run_server(app, port, **uv_kwargs)
        scheme = "https" if "ssl_certfile" in uv_kwargs else "http"
        prefix = (config or ServerConfig()).prefix
        live = Live(f"{scheme}://127.0.0.1:{port}{prefix}", store, app)
        running.append((server, thread, live))
        return live

    yield make
    for server, thread, live in running:
        for c in live.clients:
            c.close()
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live(make_live: Callable[..., Live]) -> Live:
    return make_live()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
