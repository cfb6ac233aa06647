"""SCRAM (RFC 5802, with the SHA-256 of RFC 7677 and SHA-512), both ends, without I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Final

from ._b64 import b64url_decode, b64url_encode
from ._errors import (
    AuthProtocolError,
    CredentialsRejectedError,
    ServerSignatureError,
    UnsupportedMechanismError,
)
from ._saslprep import saslprep

__all__ = [
    "DEFAULT_ITERATIONS",
    "HASHES",
    "ScramClient",
    "ScramCredentials",
    "ScramServerExchange",
    "fake_credentials",
]

HASHES: Final = {"SHA-256": "sha256", "SHA-512": "sha512"}
"""The hash names of the Auth chapter and hashlib's names for them."""
DEFAULT_ITERATIONS: Final = 10_000
# A hostile server could ask a client to spend minutes in PBKDF2; refuse beyond this.
MAX_ITERATIONS: Final = 1_000_000
MIN_ITERATIONS: Final = 1_000
_GS2_HEADERS: Final = ("n,,", "y,,")


def _hashlib_name(hash_name: str) -> str:
    try:
        return HASHES[hash_name.upper()]
    except KeyError:
        raise UnsupportedMechanismError(f"unsupported SCRAM hash {hash_name!r}") from None


def _hmac(name: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, name).digest()


def _h(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _attrs(message: str, what: str) -> dict[str, str]:
    """``a=b,c=d`` → dict; values may hold '=' (base64)."""
    out: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise AuthProtocolError(f"malformed SCRAM {what}: {part[:20]!r}")
        out.setdefault(key, value)
    return out


def _escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape_name(name: str) -> str:
    out = []
    i = 0
    while i < len(name):
        c = name[i]
        if c == "=":
            code = name[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise AuthProtocolError("malformed user name escape in SCRAM message")
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _nonce() -> str:
    # token_urlsafe never yields ',' so the nonce is always a valid SCRAM value.
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a server stores for a user: never the password, only the salted keys.

    >>> creds = ScramCredentials.derive("pencil", salt=b"salt" * 4, iterations=4096)
    >>> creds.verify_password("pencil"), creds.verify_password("pen")
    (True, False)
    """

    hash: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(
        cls,
        password: str,
        *,
        hash: str = "SHA-256",
        salt: bytes | None = None,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> ScramCredentials:
        """Salt and hash a password into storable credentials."""
        name = _hashlib_name(hash)
        salt = salt if salt is not None else secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac(name, saslprep(password).encode(), salt, iterations)
        client_key = _hmac(name, salted, b"Client Key")
        return cls(
            hash.upper(),
            salt,
            iterations,
            _h(name, client_key),
            _hmac(name, salted, b"Server Key"),
        )

    def verify_password(self, password: str) -> bool:
        """Whether ``password`` matches (constant-time), for PLAINTEXT logins."""
        other = ScramCredentials.derive(
            password, hash=self.hash, salt=self.salt, iterations=self.iterations
        )
        return hmac.compare_digest(other.stored_key, self.stored_key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for a store."""
        return {
            "hash": self.hash,
            "salt": b64url_encode(self.salt),
            "iterations": self.iterations,
            "storedKey": b64url_encode(self.stored_key),
            "serverKey": b64url_encode(self.server_key),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScramCredentials:
        """The inverse of :meth:`to_dict`."""
        return cls(
            str(data["hash"]),
            b64url_decode(data["salt"]),
            int(data["iterations"]),
            b64url_decode(data["storedKey"]),
            b64url_decode(data["serverKey"]),
        )


def fake_credentials(
    username: str,
    secret: bytes,
    *,
    hash: str = "SHA-256",
    iterations: int = DEFAULT_ITERATIONS,
) -> ScramCredentials:
    """Credentials for a user that does not exist, the same on every call and every
    worker (derived from the server secret), so that an unknown user gets the same
    salt, iteration count and message shapes as a known one.  No password matches them.
    """
    name = _hashlib_name(hash)
    key = _hmac(name, secret, b"fake-user:" + username.encode())
    return ScramCredentials(
        hash.upper(),
        key[:16],
        iterations,
        _hmac(name, key, b"stored"),
        _hmac(name, key, b"server"),
    )


class ScramClient:
    """The client side: client-first, client-final, and the check of the server's proof.

    >>> client = ScramClient("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    >>> client.client_first()
    'n,,n=user,r=rOprNGfwEbeRWgbNEkqO'
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        hash: str = "SHA-256",
        nonce: str | None = None,
    ) -> None:
        self.username = username
        self.hash = hash.upper()
        self._name = _hashlib_name(hash)
        self._password = saslprep(password)
        self._nonce = nonce or _nonce()
        self._bare = f"n={_escape_name(saslprep(username))},r={self._nonce}"
        self._server_signature: bytes | None = None

    def client_first(self) -> str:
        """The client-first message (gs2 header ``n,,`` and the bare message)."""
        return "n,," + self._bare

    def client_final(self, server_first: str, *, hash: str | None = None) -> str:
        """The client-final message with the proof, from the server-first message.

        ``hash`` switches the hash function if the server named another one after the
        client-first message was sent (that message does not depend on it).
        """
        if hash is not None and hash.upper() != self.hash:
            self._name = _hashlib_name(hash)
            self.hash = hash.upper()
        attrs = _attrs(server_first, "server-first message")
        if "m" in attrs:
            raise AuthProtocolError("server requires a SCRAM extension this client lacks")
        nonce, salt_b64, iters = attrs.get("r"), attrs.get("s"), attrs.get("i")
        if not nonce or not salt_b64 or not iters:
            raise AuthProtocolError("server-first message lacks r, s or i")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise AuthProtocolError("server nonce does not extend the client nonce")
        try:
            iterations = int(iters)
        except ValueError:
            raise AuthProtocolError(f"invalid iteration count {iters!r}") from None
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise AuthProtocolError(f"iteration count {iterations} is outside the accepted range")
        salt = b64url_decode(salt_b64)
        name = self._name
        salted = hashlib.pbkdf2_hmac(name, self._password.encode(), salt, iterations)
        client_key = _hmac(name, salted, b"Client Key")
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._bare},{server_first},{without_proof}".encode()
        signature = _hmac(name, _h(name, client_key), auth_message)
        proof = _xor(client_key, signature)
        self._server_signature = _hmac(name, _hmac(name, salted, b"Server Key"), auth_message)
        return f"{without_proof},p={_std_b64(proof)}"

    def verify_server_final(self, server_final: str) -> None:
        """Check the server's signature; ``ServerSignatureError`` when it is wrong."""
        if self._server_signature is None:
            raise AuthProtocolError("server-final message before client-final")
        attrs = _attrs(server_final, "server-final message")
        if "e" in attrs:
            raise CredentialsRejectedError(f"server refused: {attrs['e']}")
        given = attrs.get("v")
        if given is None:
            raise ServerSignatureError("server-final message has no signature")
        try:
            signature = b64url_decode(given)
        except AuthProtocolError:
            raise ServerSignatureError("server signature is not base64") from None
        if not hmac.compare_digest(signature, self._server_signature):
            raise ServerSignatureError("the server's signature is wrong: it may be an impostor")


def _std_b64(data: bytes) -> str:
    # Inside SCRAM messages RFC 5802 uses standard base64 with padding.
    import base64

    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class ScramServerExchange:
    """The server side of one SCRAM exchange, between server-first and server-final.

    It holds no secret beyond the user's stored keys and serializes with
    :meth:`to_dict`, so a shared store can carry it between workers.
    """

    username: str
    client_first_bare: str
    server_first: str
    nonce: str
    gs2_header: str
    credentials: ScramCredentials

    @staticmethod
    def parse_client_first(client_first: str) -> tuple[str, str, str, str]:
        """``(gs2 header, bare message, user name, client nonce)`` of a client-first."""
        gs2 = next((h for h in _GS2_HEADERS if client_first.startswith(h)), None)
        if gs2 is None:
            if client_first.startswith("p="):
                raise UnsupportedMechanismError("SCRAM channel binding is not supported")
            if not client_first.startswith("n="):
                raise AuthProtocolError("client-first message lacks the gs2 header 'n,,'")
            # pyhaystack sends the bare message alone; a missing gs2 header can only mean
            # "no channel binding", which its client-final then confirms with c=biws.
            gs2, bare = "n,,", client_first
        else:
            bare = client_first[len(gs2) :]
        attrs = _attrs(bare, "client-first message")
        if "m" in attrs:
            raise AuthProtocolError("SCRAM extensions are not supported")
        user, nonce = attrs.get("n"), attrs.get("r")
        if not user or not nonce:
            raise AuthProtocolError("client-first message lacks n or r")
        if any(ord(c) < 0x21 or ord(c) > 0x7E or c == "," for c in nonce):
            raise AuthProtocolError("client nonce has characters SCRAM does not allow")
        return gs2, bare, saslprep(_unescape_name(user)), nonce

    @classmethod
    def start(
        cls, client_first: str, credentials: ScramCredentials, *, nonce: str | None = None
    ) -> ScramServerExchange:
        """Begin an exchange: check the client-first message and make the server-first."""
        gs2, bare, username, client_nonce = cls.parse_client_first(client_first)
        combined = client_nonce + (nonce or _nonce())
        server_first = f"r={combined},s={_std_b64(credentials.salt)},i={credentials.iterations}"
        return cls(username, bare, server_first, combined, gs2, credentials)

    def finish(self, client_final: str) -> str:
        """Check the client's proof and return the server-final message.

        ``CredentialsRejectedError`` for a wrong proof (and for a fake user's exchange).
        """
        without_proof, sep, proof_part = client_final.rpartition(",p=")
        if not sep:
            raise AuthProtocolError("client-final message has no proof")
        attrs = _attrs(without_proof, "client-final message")
        if attrs.get("r") != self.nonce:
            raise CredentialsRejectedError("nonce mismatch")
        if attrs.get("c") != _std_b64(self.gs2_header.encode()) and attrs.get("c") != b64url_encode(
            self.gs2_header
        ):
            raise AuthProtocolError("channel binding does not match the gs2 header")
        try:
            proof = b64url_decode(proof_part)
        except AuthProtocolError:
            raise CredentialsRejectedError("malformed proof") from None
        creds = self.credentials
        name = _hashlib_name(creds.hash)
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = _hmac(name, creds.stored_key, auth_message)
        if len(proof) != len(signature):
            raise CredentialsRejectedError("wrong password")
        client_key = _xor(proof, signature)
        if not hmac.compare_digest(_h(name, client_key), creds.stored_key):
            raise CredentialsRejectedError("wrong password")
        server_signature = _hmac(name, creds.server_key, auth_message)
        return f"v={_std_b64(server_signature)}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for a shared handshake store."""
        return {
            "username": self.username,
            "clientFirstBare": self.client_first_bare,
            "serverFirst": self.server_first,
            "nonce": self.nonce,
            "gs2": self.gs2_header,
            "credentials": self.credentials.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScramServerExchange:
        """The inverse of :meth:`to_dict`."""
        return cls(
            str(data["username"]),
            str(data["clientFirstBare"]),
            str(data["serverFirst"]),
            str(data["nonce"]),
            str(data["gs2"]),
            ScramCredentials.from_dict(data["credentials"]),
        )
