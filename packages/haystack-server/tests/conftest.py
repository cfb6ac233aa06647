"""A live server per test (``projecthaystack.server.testing.serve``), our clients talking
to it."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from projecthaystack.auth import ScramCredentials
from projecthaystack.client import Client
from projecthaystack.server import DEMO_ACTIONS, MemoryStore, Role, ServerConfig, User, create_app
from projecthaystack.server.testing import serve, small_building

ADMIN = ("admin", "admin-password")
PASSWORDS = {"admin": "admin-password", "op": "operator-password", "viewer": "viewer-password"}
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


class Clock:
    """A server clock that stands still until a test moves it (from the real time at
    its making), so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


async def _seed(store: Any) -> None:
    await store.put_entities(small_building())
    for name, role in (("op", Role.OPERATOR), ("viewer", Role.VIEWER)):
        creds = ScramCredentials.derive(PASSWORDS[name], iterations=4096)
        await store.create_user(User(name, role, creds))


@pytest.fixture
def make_live() -> Iterator[Callable[..., Live]]:
    with contextlib.ExitStack() as stack:
        made: list[Live] = []

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
            live = Live(stack.enter_context(serve(app, **uv_kwargs)), store, app)
            made.append(live)
            return live

        yield make
        for live in made:
            for c in live.clients:
                c.close()


@pytest.fixture
def live(make_live: Callable[..., Live]) -> Live:
    return make_live()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
