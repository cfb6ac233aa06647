"""Handshake state that travels with the client, so a server keeps none for a half-open
handshake.

A HELLO is answered with a *handshake token* that carries what the server needs later
(the user name as the client sent it, an expiry, a random id), authenticated with an
HMAC under a key derived from the server secret: any worker with the same secret can
read it, nobody can forge or alter it.  The SCRAM server nonce is derived from the
token, the client nonce and a random part, with its own HMAC tag, so the final message
(which repeats the nonce) proves which token and client-first message it belongs to.
The server-first message is rebuilt from the user's stored keys, never stored.

What a server must store is only the *replay record* of a completed proof (the token's
id until the token expires), so that one handshake yields one login.

Tokens are hex: clients in the wild cut tokens at ``-`` or ``_`` (phable's parser keeps
``[A-Za-z0-9+=/]``), so they use the one alphabet every parser reads whole.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from typing import Final

from ._b64 import b64url_encode
from ._errors import CredentialsRejectedError

_VERSION: Final = 1
_HEAD: Final = struct.Struct(">BI12s")  # version, expiry (Unix seconds), random id
_MAC_BYTES: Final = 16
_MAX_NAME: Final = 1024  # bytes of a user name carried in a token
_NONCE_RANDOM: Final = 16  # characters of the random part of a server nonce, at least
_NONCE_TAG: Final = 20  # characters of its tag

# The flag says how to rebuild the client-first message (its gs2 header, and whether
# the user name in it was SASLprepped, as most clients send it, or sent as in the
# HELLO) and how many characters the random part has beyond 16 (0 to 2; see
# ``final_length_extra``).
FLAGS: Final = {
    (gs2, prepped, extra): "abcdefghijkl"[i]
    for i, (gs2, prepped, extra) in enumerate(
        (g, p, e) for g in ("n,,", "y,,") for p in (True, False) for e in range(3)
    )
}
FORMS: Final = {flag: form for form, flag in FLAGS.items()}


def final_length_extra(client_nonce: str, proof_bytes: int) -> int:
    """The extra length (0 to 2) of the random part of the server nonce that makes the
    client-final message's length no multiple of 3, so that a client that pads its
    base64 (rusty-haystack, which wants padding back) shows it in that message."""
    proof = 4 * -(-proof_bytes // 3)  # standard base64 with padding
    base = len("c=biws,r=") + len(client_nonce) + 1 + _NONCE_RANDOM + _NONCE_TAG + len(",p=")
    return next(e for e in range(3) if (base + e + proof) % 3)


def _key(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"projecthaystack handshake " + purpose, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class HandshakeToken:
    """What a handshake token carries."""

    token: str
    """The token as sent on the wire."""
    username: str
    """The user name exactly as the HELLO gave it (before SASLprep)."""
    expires: int
    """Unix seconds after which the token is refused."""
    id: str
    """The token's random id, in hex: the key of its replay record."""


class HandshakeSealer:
    """Makes and opens handshake tokens and server nonces under one server secret."""

    def __init__(self, secret: bytes) -> None:
        self._token_key = _key(secret, b"token")
        self._nonce_key = _key(secret, b"nonce")

    def seal(self, username: str, expires: int) -> HandshakeToken:
        """A new token for ``username``, good until ``expires`` (Unix seconds)."""
        name = username.encode("utf-8")
        if len(name) > _MAX_NAME:
            raise CredentialsRejectedError("user name too long")
        raw_id = secrets.token_bytes(12)
        payload = _HEAD.pack(_VERSION, max(0, min(expires, 2**32 - 1)), raw_id) + name
        mac = hmac.new(self._token_key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return HandshakeToken((payload + mac).hex(), username, expires, raw_id.hex())

    def open(self, token: str, now: float) -> HandshakeToken:
        """The contents of a token this server made; :class:`CredentialsRejectedError` for
        one forged, altered, malformed or expired (all alike)."""
        try:
            raw = bytes.fromhex(token) if len(token) <= 2 * (_HEAD.size + _MAX_NAME + 16) else b""
        except ValueError:
            raw = b""
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        good = hmac.new(self._token_key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(payload) <= _HEAD.size or not hmac.compare_digest(mac, good):
            raise CredentialsRejectedError("unknown or expired handshake")
        version, expires, raw_id = _HEAD.unpack_from(payload)
        if version != _VERSION or expires <= now:
            raise CredentialsRejectedError("unknown or expired handshake")
        try:
            username = payload[_HEAD.size :].decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialsRejectedError("unknown or expired handshake") from None
        return HandshakeToken(token, username, expires, raw_id.hex())

    def _tag(self, token: HandshakeToken, client_nonce: str, flag: str, random: str) -> str:
        msg = "\0".join((token.id, client_nonce, flag, random)).encode()
        digest = hmac.new(self._nonce_key, msg, hashlib.sha256).digest()
        return b64url_encode(digest)[:_NONCE_TAG]

    def server_nonce(self, token: HandshakeToken, client_nonce: str, flag: str) -> str:
        """The server's part of a SCRAM nonce, bound to ``token`` and the client nonce."""
        random = secrets.token_urlsafe(15)[: _NONCE_RANDOM + FORMS[flag][2]]
        return flag + random + self._tag(token, client_nonce, flag, random)

    def check_nonce(self, token: HandshakeToken, combined: str) -> tuple[str, str]:
        """``(client nonce, flag)`` of a combined nonce this server made for ``token``;
        :class:`CredentialsRejectedError` otherwise."""
        for extra in range(3):
            size = 1 + _NONCE_RANDOM + extra + _NONCE_TAG
            client_nonce, server = combined[:-size], combined[-size:]
            flag, random, tag = server[0:1], server[1:-_NONCE_TAG], server[-_NONCE_TAG:]
            if not client_nonce or len(server) != size or FORMS.get(flag, (0, 0, -1))[2] != extra:
                continue
            good = self._tag(token, client_nonce, flag, random)
            if hmac.compare_digest(tag.encode(), good.encode()):
                return client_nonce, flag
        raise CredentialsRejectedError("nonce mismatch")
