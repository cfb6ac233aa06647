"""TLS and mutual TLS: SSL contexts with safe defaults, the identity in a client
certificate, and a throwaway CA with server and client certificates for tests."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CertIdentity",
    "TestPKI",
    "client_ssl_context",
    "generate_test_pki",
    "identity_from_der",
    "identity_from_ssl",
    "server_ssl_context",
]


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
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
    """The identity in a DER certificate (as ``getpeercert(binary_form=True)`` gives)."""
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


@dataclass(frozen=True, slots=True)
class TestPKI:
    """PEM bytes of a throwaway CA and of a server and a client certificate it signed."""

    __test__ = False  # not a pytest test class, whatever its name

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write the PEM files; returns their paths by name (``ca``, ``server_cert``, ...)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "ca": ("ca.pem", self.ca_cert),
            "server_cert": ("server.pem", self.server_cert),
            "server_key": ("server.key", self.server_key),
            "client_cert": ("client.pem", self.client_cert),
            "client_key": ("client.key", self.client_key),
        }
        paths: dict[str, Path] = {}
        for name, (filename, data) in files.items():
            path = out / filename
            path.write_bytes(data)
            if filename.endswith(".key"):
                path.chmod(0o600)
            paths[name] = path
        return paths


def generate_test_pki(
    *,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
    client_name: str = "operator",
    days: int = 7,
) -> TestPKI:
    """A fresh CA and a server certificate for ``hosts`` and a client certificate whose
    CN (and email SAN) is ``client_name``: for tests and development, never production.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _dt.datetime.now(_dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("projecthaystack test CA"))
        .issuer_name(name("projecthaystack test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # Key identifiers: Python 3.13's strict verification requires them.
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> tuple[bytes, bytes]:
        k = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(k)

    server_sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            server_sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            server_sans.append(x509.DNSName(host))
    server_cert, server_key = leaf(hosts[0], server_sans, ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = leaf(
        client_name, [x509.RFC822Name(f"{client_name}@localhost")], ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return TestPKI(ca_pem, server_cert, server_key, client_cert, client_key)
