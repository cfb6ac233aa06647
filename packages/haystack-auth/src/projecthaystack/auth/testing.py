"""Helpers for tests and development: a throwaway certificate authority with a server
and a client certificate, for TLS and mutual-TLS tests.  Never for production.

Needs the ``[tls]`` extra (``cryptography``).

>>> from projecthaystack.auth.testing import generate_test_pki
>>> pki = generate_test_pki(client_name="operator")
>>> pki.client_cert.startswith(b"-----BEGIN CERTIFICATE-----")
True

``pki.write(directory)`` writes the PEM files and returns their paths by name.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ._tls import require_cryptography

__all__ = ["TestPKI", "generate_test_pki"]


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
    require_cryptography("generate_test_pki")
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


for _obj in (TestPKI, generate_test_pki):
    _obj.__module__ = __name__
del _obj
