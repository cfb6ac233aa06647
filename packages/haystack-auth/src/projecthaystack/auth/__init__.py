"""The Project Haystack Auth protocol (HELLO, SCRAM-SHA-256/512, BEARER; PLAINTEXT where
allowed) written without I/O, so the client, the server and the WebSocket share it, plus
TLS and mutual-TLS helpers.

Reading certificates (:func:`identity_from_der`, :func:`identity_from_ssl`) needs the
``[tls]`` extra (``cryptography``); nothing else does.  Helpers for tests (a throwaway
PKI) are in :mod:`projecthaystack.auth.testing`.

>>> from projecthaystack.auth import ClientHandshake
>>> hs = ClientHandshake("user", "pencil")
>>> hs.hello()
'HELLO username=dXNlcg'
"""

from typing import TYPE_CHECKING, Any

from .__about__ import __version__ as __version__
from ._b64 import b64url_decode as b64url_decode
from ._b64 import b64url_encode as b64url_encode
from ._errors import AuthError as AuthError
from ._errors import AuthProtocolError as AuthProtocolError
from ._errors import CredentialsRejectedError as CredentialsRejectedError
from ._errors import ServerSignatureError as ServerSignatureError
from ._errors import UnsupportedMechanismError as UnsupportedMechanismError

# The handshakes (hashlib, secrets), SCRAM, SASLprep and TLS load on first use: every
# client imports this package for its error classes, and needs the rest only at login.
if TYPE_CHECKING:
    from ._http import AuthHeader as AuthHeader
    from ._http import ClientHandshake as ClientHandshake
    from ._http import ServerAuth as ServerAuth
    from ._http import ServerReply as ServerReply
    from ._http import format_auth_header as format_auth_header
    from ._http import format_bearer as format_bearer
    from ._http import parse_auth_header as parse_auth_header
    from ._http import parse_bearer as parse_bearer
    from ._saslprep import saslprep as saslprep
    from ._scram import DEFAULT_ITERATIONS as DEFAULT_ITERATIONS
    from ._scram import HASHES as HASHES
    from ._scram import ScramClient as ScramClient
    from ._scram import ScramCredentials as ScramCredentials
    from ._scram import ScramServerExchange as ScramServerExchange
    from ._scram import fake_credentials as fake_credentials
    from ._tls import CertIdentity as CertIdentity
    from ._tls import client_ssl_context as client_ssl_context
    from ._tls import identity_from_der as identity_from_der
    from ._tls import identity_from_ssl as identity_from_ssl
    from ._tls import server_ssl_context as server_ssl_context

__all__ = [
    "DEFAULT_ITERATIONS",
    "HASHES",
    "AuthError",
    "AuthHeader",
    "AuthProtocolError",
    "CertIdentity",
    "ClientHandshake",
    "CredentialsRejectedError",
    "ScramClient",
    "ScramCredentials",
    "ScramServerExchange",
    "ServerAuth",
    "ServerReply",
    "ServerSignatureError",
    "UnsupportedMechanismError",
    "b64url_decode",
    "b64url_encode",
    "client_ssl_context",
    "fake_credentials",
    "format_auth_header",
    "format_bearer",
    "identity_from_der",
    "identity_from_ssl",
    "parse_auth_header",
    "parse_bearer",
    "saslprep",
    "server_ssl_context",
]

# Where each lazily loaded name lives.
_LAZY: dict[str, str] = {
    "AuthHeader": "._http",
    "ClientHandshake": "._http",
    "ServerAuth": "._http",
    "ServerReply": "._http",
    "format_auth_header": "._http",
    "format_bearer": "._http",
    "parse_auth_header": "._http",
    "parse_bearer": "._http",
    "saslprep": "._saslprep",
    "DEFAULT_ITERATIONS": "._scram",
    "HASHES": "._scram",
    "ScramClient": "._scram",
    "ScramCredentials": "._scram",
    "ScramServerExchange": "._scram",
    "fake_credentials": "._scram",
    "CertIdentity": "._tls",
    "client_ssl_context": "._tls",
    "identity_from_der": "._tls",
    "identity_from_ssl": "._tls",
    "server_ssl_context": "._tls",
}


def _public(obj: Any) -> Any:
    """Show the public module in tracebacks and reprs rather than the private one."""
    if isinstance(obj, type | type(b64url_encode)):
        obj.__module__ = __name__
    return obj


def __getattr__(name: str) -> Any:
    """Load a lazy name (see ``_LAZY``) on first access and keep it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = _public(getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name
