"""Errors of the auth layer.

::

    HaystackError
    └── AuthError                               anything that stops an authentication
        ├── AuthProtocolError (ValueError)      a malformed header or message; a bug or an attack
        ├── CredentialsRejectedError            wrong user or password (the server says 403)
        ├── ServerSignatureError                the server could not prove it knows the password
        └── UnsupportedMechanismError           no mechanism both sides accept

A server that fails to prove itself is not a wrong password: a client that gets
:class:`ServerSignatureError` may be talking to an impostor, and should not ask the user
to type the password again.
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = [
    "AuthError",
    "AuthProtocolError",
    "CredentialsRejectedError",
    "ServerSignatureError",
    "UnsupportedMechanismError",
]


class AuthError(HaystackError):
    """Root of the auth layer's errors."""


class AuthProtocolError(AuthError, ValueError):
    """A header or SCRAM message that does not follow the protocol."""


class CredentialsRejectedError(AuthError):
    """The credentials were refused (unknown user and wrong password look the same)."""


class ServerSignatureError(AuthError):
    """The server's final SCRAM message did not prove it holds the user's keys."""


class UnsupportedMechanismError(AuthError):
    """The server offered no mechanism this client is allowed to use."""
