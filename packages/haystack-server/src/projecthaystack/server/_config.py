"""The server's settings and limits."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADMIN_PASSWORD_ENV",
    "ADMIN_USER_ENV",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "ServerConfig",
    "ServerLimits",
]

MIN_PASSWORD = 8
"""The fewest characters a password may have."""
MAX_PASSWORD = 1024
"""The most characters a password may have."""
ADMIN_USER_ENV = "HAYSTACK_ADMIN_USER"
"""The environment variable naming the first admin (``admin`` when unset)."""
ADMIN_PASSWORD_ENV = "HAYSTACK_ADMIN_PASSWORD"
"""The environment variable holding the first admin's password."""


def utc_now() -> dt.datetime:
    """The current time in UTC: the server's clock unless a test gives another."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds on everything a client controls.  A request over a limit gets a clear
    error (an error grid, or 413 for a body too large to read), never a crash.

    >>> ServerLimits(max_ids=100).max_ids
    100
    """

    max_body: int = 16 * 1024 * 1024
    """Bytes of a request body (HTTP) or message (WebSocket)."""
    max_depth: int = 32
    """Nesting of lists, dicts and grids in a request."""
    max_rows: int = 100_000
    """Rows of a request grid (a hisWrite's samples included)."""
    max_ids: int = 10_000
    """Ids in one read, watchSub, hisRead batch or watchUnsub."""
    max_filter_length: int = 4096
    """Characters of a filter."""
    max_filter_depth: int = 32
    """Nesting of a filter's parentheses and ``and``/``or``."""
    max_read: int = 1_000_000
    """Rows one read returns; more are cut off and the grid marked ``incomplete``."""
    max_his_read: int = 5_000_000
    """Samples one hisRead returns; more are cut off and marked ``incomplete``."""
    max_query_params: int = 32
    """Query parameters of a GET request."""
    max_watches_per_user: int = 64
    """Live watches one user may hold."""
    max_batch: int = 100
    """Requests in one WebSocket batch."""
    max_ws_concurrent: int = 32
    """Requests one WebSocket connection runs at once; while that many run, its next
    message waits (the connection is not read)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a server behaves; every field has a safe default.

    ``secret`` makes unknown users indistinguishable from known ones during SCRAM (their
    fake salts derive from it): give every worker the same one.  When ``None`` the app
    makes one per process, which is right only for a single worker.
    """

    prefix: str = "/api"
    """Where the ops live: ``{prefix}/{op}``; the WebSocket is at ``{prefix}/ws`` and the
    user API at ``{prefix}/admin/users``."""
    login_paths: tuple[str, ...] = ("/ui",)
    """Paths outside the prefix where the auth handshake is answered too (the Auth
    chapter lets the server choose the URI).  ``/ui`` is SkySpark's, which pyhaystack
    logs in at; a bearer request there just gets 200."""
    secret: bytes | None = None
    server_name: str = "haystack-server"
    token_ttl: dt.timedelta = dt.timedelta(hours=8)
    """How long an auth token is good for."""
    handshake_ttl: dt.timedelta = dt.timedelta(minutes=2)
    """How long a login handshake's token is good for (it carries the handshake's
    state, so nothing is stored for it)."""
    failure_window: dt.timedelta = dt.timedelta(minutes=15)
    """The window over which failed logins are counted for throttling."""
    max_failures_per_user: int = 8
    """Failed proofs for one user from one address in the window before 429."""
    max_failures_per_client: int = 50
    """Failed proofs from one address (any user) in the window before 429."""
    allow_plaintext: bool = False
    """Accept the PLAINTEXT scheme, and only over TLS."""
    scram_hash: str = "SHA-256"
    watch_lease: dt.timedelta = dt.timedelta(minutes=1)
    """The lease given when a client asks for none."""
    min_watch_lease: dt.timedelta = dt.timedelta(seconds=5)
    max_watch_lease: dt.timedelta = dt.timedelta(hours=1)
    push_interval: float = 1.0
    """Longest a WebSocket watch waits between looks at the store for changes."""
    trusted_cert_header: str | None = None
    """A header set by a TLS-terminating proxy that carries the verified client
    certificate (PEM, URL-encoded), for mTLS login behind the proxy; ``None`` ignores it."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``"10.0.0.5"``, ``"10.0.0.0/8"``, ``"::1"``) of reverse
    proxies whose :attr:`proxy_header` is believed.  A request from one of them counts
    as coming from the address the proxy names (the nearest one that is not itself a
    trusted proxy), for login throttling and handshake caps; ``https`` in
    ``X-Forwarded-Proto`` (or ``proto=`` in ``Forwarded``) counts as TLS.  Empty (the
    default): the socket's peer address is the client, whatever the headers say."""
    proxy_header: str = "X-Forwarded-For"
    """The header the trusted proxies write: ``X-Forwarded-For`` or ``Forwarded``
    (RFC 7239).  Only that one is read: the other may come from the client untouched."""
    offload_bytes: int = 64 * 1024
    """Request bodies and WebSocket messages of at least this many bytes are decoded in
    a worker thread, so that the event loop keeps answering other clients meanwhile."""
    offload_cells: int = 32_768
    """Responses of at least this many cells (rows times columns) are encoded in a worker
    thread."""
    offload_threads: int = 2
    """At most this many decodes and encodes run in worker threads at once; more wait
    their turn without holding up the event loop."""
    clock: Callable[[], dt.datetime] = utc_now
    """The server's clock (timezone-aware): expiry of tokens, handshakes, watch leases
    and timed writes follows it, and the store is given its time, so tests can move
    time on instead of sleeping."""
    debug: bool = False
    """Put stack traces in error grids (``errTrace``)."""
    access_log: bool = False
    """Log one line per HTTP request to ``projecthaystack.server.access`` (INFO): method,
    path, status, duration and client address (never a header or a body)."""
    tracer_provider: Any = None
    """The OpenTelemetry tracer provider for the server's spans (the ``[otel]`` extra);
    ``None``: OpenTelemetry's global one."""
    meter_provider: Any = None
    """The OpenTelemetry meter provider for the server's metrics; ``None``: the global one."""
    limits: ServerLimits = field(default_factory=ServerLimits)

    def __post_init__(self) -> None:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network"
                ) from None
        if self.offload_threads < 1:
            raise ValueError("offload_threads must be at least 1")
        if self.proxy_header.lower() not in ("x-forwarded-for", "forwarded"):
            raise ValueError("proxy_header must be 'X-Forwarded-For' or 'Forwarded'")
