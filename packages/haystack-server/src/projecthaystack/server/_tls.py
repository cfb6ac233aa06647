"""Client certificates for apps under uvicorn, through the ASGI TLS extension.

uvicorn verifies client certificates (``ssl_cert_reqs``) but does not hand them to the
app.  These protocol classes add ``scope["extensions"]["tls"]["client_cert_chain"]``
(the ASGI TLS extension's key) to every HTTP and WebSocket scope of a TLS connection, so
that the server can log a user in by their certificate.
"""

from __future__ import annotations

import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

__all__ = ["tls_protocols"]

ASGIApp = Any


def _peer_pem(transport: Any) -> str | None:
    obj = transport.get_extra_info("ssl_object")
    if obj is None:
        return None
    der = obj.getpeercert(binary_form=True)
    return ssl.DER_cert_to_PEM_cert(der) if der else None


def _with_cert(app: ASGIApp, pem: str) -> ASGIApp:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions["tls"] = {"client_cert_chain": [pem], "tls_version": None}
        await app({**scope, "extensions": extensions}, receive, send)

    return wrapped


class _CertH11(H11Protocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        pem = _peer_pem(transport)
        if pem is not None:
            self.app = _with_cert(self.app, pem)


class _CertWS(WSProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        pem = _peer_pem(transport)
        if pem is not None:
            self.app = _with_cert(self.app, pem)


def tls_protocols() -> dict[str, Any]:
    """``uvicorn.Config`` (or ``uvicorn.run``) keyword arguments that hand a TLS
    connection's client certificate to the app, which logs the request in as the user
    the certificate names.  Needed only to run the app under uvicorn yourself with
    client certificates: ``haystack-server serve --client-ca`` uses them already.

    >>> import uvicorn
    >>> config = uvicorn.Config("app:app", ssl_cert_reqs=2, **tls_protocols())
    >>> sorted(tls_protocols())
    ['http', 'ws']
    """
    return {"http": _CertH11, "ws": _CertWS}
