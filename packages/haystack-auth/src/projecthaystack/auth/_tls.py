"""TLS and mutual TLS: SSL contexts with safe defaults and the identity in a client
certificate.

The SSL contexts need only the standard library.  Reading a certificate needs the
``cryptography`` package, which comes with the ``[tls]`` extra and is imported only when
a certificate is read, so that a client that never looks at one does not pay for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# ssl (and the socket module under it) and pathlib load when a context is made, not with
# the package: every client imports this package, few of them make a context.
if TYPE_CHECKING:
    import ssl
    from pathlib import Path

__all__ = [
    "CertIdentity",
    "client_ssl_context",
    "identity_from_der",
    "identity_from_ssl",
    "require_cryptography",
    "server_ssl_context",
]


def require_cryptography(feature: str) -> None:
    """Raise a clear ``ImportError`` naming the ``[tls]`` extra when ``cryptography`` is
    missing; ``feature`` says what needed it."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs the 'cryptography' package, which is not installed: it comes "
            "with the [tls] extra of haystack-auth (or: python -m pip install cryptography)"
        ) from exc


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    import ssl

    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_ssl_context(
    certfile: str | Path,
    keyfile: str | Path,
    *,
    cafile: str | Path | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, the platform's secure ciphers; with ``cafile``
    it asks for client certificates signed by that CA (and requires one when
    ``require_client_cert``)."""
    import ssl

    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.load_cert_chain(str(certfile), str(keyfile))
    if cafile is not None:
        ctx.load_verify_locations(str(cafile))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    elif require_client_cert:
        raise ValueError("require_client_cert needs a cafile to verify client certificates")
    return ctx


def client_ssl_context(
    *,
    cafile: str | Path | None = None,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context that verifies the server (against ``cafile`` or the system's
    CAs) and presents a client certificate when ``certfile`` is given."""
    import ssl

    ctx = _harden(ssl.create_default_context(cafile=str(cafile) if cafile else None))
    ctx.check_hostname = check_hostname
    if certfile is not None:
        ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return ctx


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """Who a certificate names: the subject CN and the subject alternative names."""

    common_name: str | None
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every name, CN first, for matching against user names."""
        first = (self.common_name,) if self.common_name else ()
        return first + self.emails + self.dns_names + self.uris


def identity_from_der(der: bytes) -> CertIdentity:
    """The identity in a DER certificate (as ``getpeercert(binary_form=True)`` gives).

    Needs the ``[tls]`` extra (``cryptography``).
    """
    require_cryptography("identity_from_der")
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CertIdentity(cn)
    return CertIdentity(
        cn,
        tuple(san.get_values_for_type(x509.DNSName)),
        tuple(san.get_values_for_type(x509.RFC822Name)),
        tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
    )


def identity_from_ssl(ssl_object: Any) -> CertIdentity | None:
    """The verified client's identity on a server-side ``SSLObject``/``SSLSocket``."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return identity_from_der(der) if der else None
