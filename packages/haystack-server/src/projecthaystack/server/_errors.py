"""The server's exceptions.

::

    HaystackError
    └── ServerError
        ├── OpError        a request the op cannot fulfil: answered as an error grid (200)
        ├── HttpError      answered with an HTTP status (400, 403, 404, 405, 406, 413, 415...)
        └── StartupError   a configuration the server refuses to start with
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = ["HttpError", "OpError", "ServerError", "StartupError"]


class ServerError(HaystackError):
    """The root of the server's errors."""


class OpError(ServerError, ValueError):
    """A request error: the grid was read but cannot be answered.  The client gets an
    error grid whose ``dis`` is this message, as the HTTP API chapter requires.

    Raise it from a custom op or action to report a problem to the caller.
    """


class HttpError(ServerError):
    """A failure at the HTTP layer, answered with ``status`` (and ``headers``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class StartupError(ServerError, RuntimeError):
    """The server cannot start as configured (for instance, no admin user)."""
