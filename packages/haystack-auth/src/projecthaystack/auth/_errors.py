"""Errors of the auth layer.

::

    HaystackError
    └── AuthError                          anything that stops an authentication
        ├── AuthProtocolError (ValueError) a malformed header or message; a bug or an attack
        ├── AuthenticationFailed           wrong user or password (the server says 403)
        ├── ServerSignatureError           the server could not prove it knows the password
        └── UnsupportedMechanism           no mechanism both sides accept
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = [
    "AuthError",
    "AuthProtocolError",
    "AuthenticationFailed",
    "ServerSignatureError",
    "UnsupportedMechanism",
]


class AuthError(HaystackError):
    """Root of the auth layer's errors."""


class AuthProtocolError(AuthError, ValueError):
    """A header or SCRAM message that does not follow the protocol."""


class AuthenticationFailed(AuthError):
    """The credentials were refused (unknown user and wrong password look the same)."""


class ServerSignatureError(AuthError):
    """The server's final SCRAM message did not prove it holds the user's keys."""


class UnsupportedMechanism(AuthError):
    """The server offered no mechanism this client is allowed to use."""
