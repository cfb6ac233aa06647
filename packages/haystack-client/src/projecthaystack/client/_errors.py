"""The client's errors, drawn so that callers know what is safe to retry.

::

    HaystackError
    └── ClientError
        ├── RequestNotSentError   the request never reached the server (connect, DNS,
        │                         TLS, a pool timeout): always safe to retry
        ├── ResponseError         the request was sent, then the exchange failed (a read
        │                         timeout, a dropped connection, an HTTP error status, a
        │                         body that does not decode): the op may have run
        ├── CallError             the server ran the op and answered with an error grid
        └── AuthenticationError   the login failed (bad credentials, a server that
                                  cannot prove itself, no common mechanism)
"""

from __future__ import annotations

from projecthaystack.kinds import Grid, HaystackError

__all__ = [
    "AuthenticationError",
    "CallError",
    "ClientError",
    "RequestNotSentError",
    "ResponseError",
]


class ClientError(HaystackError):
    """Root of the client's errors."""


class RequestNotSentError(ClientError):
    """The request never reached the server; retrying cannot repeat a side effect."""


class ResponseError(ClientError):
    """The request was sent and then the exchange failed; the op may have run.

    ``status`` is the HTTP status when there was one.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CallError(ClientError):
    """The server answered with an error grid.

    ``dis`` is the server's message, ``err_trace`` its trace if it sent one, ``grid``
    the whole error grid.
    """

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        dis = grid.meta.get("dis")
        trace = grid.meta.get("errTrace")
        self.dis = dis if isinstance(dis, str) else "the server returned an error grid"
        self.err_trace = trace if isinstance(trace, str) else None
        super().__init__(self.dis)


class AuthenticationError(ClientError):
    """Login failed: refused credentials, a server signature that does not verify, or no
    mechanism both sides accept."""
