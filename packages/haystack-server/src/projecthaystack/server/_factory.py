"""``create_app``: a Starlette application around a :class:`HaystackServer`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route, WebSocketRoute

from ._app import HaystackServer, StartupHook
from ._config import ServerConfig
from ._memory import MemoryStore
from ._observe import instrument
from ._opapi import Action, Op
from ._store import Store
from ._userapi import user_routes
from ._ws import websocket_endpoint

if TYPE_CHECKING:
    from projecthaystack.ontology import Namespace

__all__ = ["create_app"]


def create_app(
    store: Store | None = None,
    *,
    config: ServerConfig | None = None,
    namespace: Namespace | None = None,
    ops: Iterable[Op] = (),
    actions: Mapping[str, Action] | None = None,
    admin: tuple[str, str] | None = None,
    on_startup: Sequence[StartupHook] = (),
) -> Starlette:
    """A Starlette application serving the Haystack HTTP API, a WebSocket and the user API.

    ``store`` defaults to a fresh :class:`MemoryStore`; ``admin`` (or the environment
    variables ``HAYSTACK_ADMIN_USER``/``HAYSTACK_ADMIN_PASSWORD``) creates the first admin
    when the store has none, and the app refuses to start without one; ``on_startup``
    hooks run with the opened store (to load entities, say).

    >>> app = create_app(admin=("admin", "correct horse"))
    >>> app.state.haystack.config.prefix
    '/api'
    """

    server = HaystackServer(
        store if store is not None else MemoryStore(),
        config or ServerConfig(),
        namespace=namespace,
        ops=ops,
        actions=actions or {},
        admin=admin,
        on_startup=on_startup,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    prefix = server.config.prefix.rstrip("/")
    # The ops first: they are what most requests are for.  {op} is one path segment,
    # so it shadows neither the user API nor the WebSocket (a different scope type).
    routes = [
        Route(
            f"{prefix}/{{op}}",
            server.handle_op,
            methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        ),
        WebSocketRoute(f"{prefix}/ws", websocket_endpoint),
        *user_routes(server, prefix),
        Route(f"{prefix}/", server.handle_root, methods=["GET", "POST"]),
        *(Route(path, server.handle_login) for path in server.config.login_paths),
    ]
    if prefix:
        routes.append(Route(prefix, server.handle_root, methods=["GET", "POST"]))
        routes.append(Route("/", server.handle_home, methods=["GET"]))
    app = Starlette(
        routes=routes,
        middleware=instrument(server),  # OpenTelemetry ([otel]) and the access log
        lifespan=lifespan,
        exception_handlers={HTTPException: server.not_found, Exception: server.internal_error},
    )
    # Starlette would answer a path with (or without) a trailing slash by a redirect
    # built from the Host header, before any authentication: unknown paths are 404.
    app.router.redirect_slashes = False
    app.state.haystack = server
    return app
