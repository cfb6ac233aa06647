"""The client's errors, drawn so that callers know what is safe to retry.

::

    HaystackError
    └── ClientError                          every error names the URL that failed (``url``)
        ├── RequestNotSentError              the request never reached the server (connect,
        │                                    DNS, TLS, a pool timeout): always safe to retry
        ├── ResponseError                    the request was sent, then the exchange failed
        │   │                                (a read timeout, a dropped connection, an HTTP
        │   │                                error status, a body that does not decode):
        │   │                                the op may have run
        │   └── TooManyRequestsError         429: the server refused to run it now; wait
        │                                    ``retry_after`` seconds
        ├── CallError                        the server ran the op and answered with an
        │                                    error grid (``dis``, ``err_trace``, ``grid``)
        ├── UnknownRecError (LookupError)    ``read_ids(..., checked=True)``: ids that do
        │                                    not exist (``ids``)
        └── AuthenticationError              the login did not succeed
            ├── CredentialsRequiredError     the server wants a login; none was given
            ├── CredentialsRejectedError     wrong user or password
            ├── ServerSignatureError         the server could not prove it knows the
            │                                password: maybe an impostor, not a typo
            ├── UnsupportedMechanismError    no mechanism both sides accept
            └── AuthProtocolError            the server broke the Auth chapter

Each class under ``AuthenticationError`` whose name matches one in
:mod:`projecthaystack.auth` subclasses it too (and ``AuthenticationError`` subclasses
``projecthaystack.auth.AuthError``), so ``except projecthaystack.auth.ServerSignatureError``
catches the client's as well.
"""

from __future__ import annotations

from projecthaystack import auth
from projecthaystack.kinds import Grid, HaystackError, Ref

__all__ = [
    "AuthProtocolError",
    "AuthenticationError",
    "CallError",
    "ClientError",
    "CredentialsRejectedError",
    "CredentialsRequiredError",
    "RequestNotSentError",
    "ResponseError",
    "ServerSignatureError",
    "TooManyRequestsError",
    "UnknownRecError",
    "UnsupportedMechanismError",
]


class ClientError(HaystackError):
    """Root of the client's errors; ``url`` is the URL that failed, when there was one."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class RequestNotSentError(ClientError):
    """The request never reached the server; retrying cannot repeat a side effect."""


class ResponseError(ClientError):
    """The request was sent and then the exchange failed; the op may have run.

    ``status`` is the HTTP status when there was one; ``server_message`` what the server
    said about it (the ``dis`` of an error grid, or a plain-text body), if anything.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        url: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.server_message = server_message


class TooManyRequestsError(ResponseError):
    """HTTP 429: the server refused the request for now (too many failed logins, too
    many logins in progress); it did not run.

    ``retry_after`` is the number of seconds the server asked to wait (its
    ``Retry-After`` header), or ``None`` when it gave none.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        url: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message, 429, url=url, server_message=server_message)
        self.retry_after = retry_after


class CallError(ClientError):
    """The server answered with an error grid.

    ``dis`` is the server's message, ``err_trace`` its trace if it sent one, ``grid``
    the whole error grid; ``str()`` is the URL and ``dis``.
    """

    def __init__(self, grid: Grid, *, url: str | None = None) -> None:
        self.grid = grid
        dis = grid.meta.get("dis")
        trace = grid.meta.get("errTrace")
        self.dis = dis if isinstance(dis, str) else "the server returned an error grid"
        self.err_trace = trace if isinstance(trace, str) else None
        super().__init__(f"{url}: {self.dis}" if url else self.dis, url=url)


class UnknownRecError(ClientError, LookupError):
    """A checked read by ids found no record for some of them: ``ids`` are the missing
    ones (in the order asked), ``grid`` the rows the server did return."""

    def __init__(self, ids: tuple[Ref, ...], grid: Grid, *, url: str | None = None) -> None:
        shown = ", ".join(f"@{r.id}" for r in ids[:10])
        more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
        super().__init__(f"unknown id{'s' if len(ids) > 1 else ''}: {shown}{more}", url=url)
        self.ids = ids
        self.grid = grid


class AuthenticationError(ClientError, auth.AuthError):
    """The login failed; the subclasses say how."""


class CredentialsRequiredError(AuthenticationError):
    """The server wants a login and the client was given no user name and password."""


class CredentialsRejectedError(AuthenticationError, auth.CredentialsRejectedError):
    """The server refused the user name or password (unknown users look the same)."""


class ServerSignatureError(AuthenticationError, auth.ServerSignatureError):
    """The server's final SCRAM message did not prove that it holds the user's keys: it
    may be an impostor.  Not a wrong password; do not ask the user to type it again."""


class UnsupportedMechanismError(AuthenticationError, auth.UnsupportedMechanismError):
    """The server offered no mechanism this client is allowed to use (PLAINTEXT over
    plain HTTP, an unknown scheme or hash)."""


class AuthProtocolError(AuthenticationError, auth.AuthProtocolError):
    """The server's side of the login did not follow the Auth chapter (a malformed
    header, a token without the SCRAM proof, ...)."""
