"""The Auth chapter over HTTP, without the HTTP: headers in, headers out.

Exact in what we send (``SCRAM handshakeToken=..., data=...`` with unpadded base64url,
``BEARER authToken=...``) and tolerant in what we accept (padding, ``Bearer`` in any
case, a bare bearer token, quoted parameters), without weakening any check.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ._b64 import b64url_decode, b64url_encode
from ._errors import (
    AuthProtocolError,
    CredentialsRejectedError,
    ServerSignatureError,
    UnsupportedMechanismError,
)
from ._handshakes import FLAGS, FORMS, HandshakeSealer, HandshakeToken, final_length_extra
from ._saslprep import saslprep
from ._scram import (
    HASHES,
    ScramClient,
    ScramCredentials,
    ScramServerExchange,
    _escape_name,
    _std_b64,
    fake_credentials,
)

__all__ = [
    "AuthHeader",
    "ClientHandshake",
    "ServerAuth",
    "ServerReply",
    "format_auth_header",
    "format_bearer",
    "parse_auth_header",
    "parse_bearer",
]

_MAX_HEADER: Final = 8192
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=*")


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """An ``Authorization``, ``WWW-Authenticate`` or ``Authentication-Info`` value.

    ``scheme`` is upper-cased; parameter names keep their case for lookup with
    :meth:`get`, which ignores case.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def get(self, name: str) -> str | None:
        """A parameter by name, ignoring case."""
        lower = name.lower()
        for key, value in self.params.items():
            if key.lower() == lower:
                return value
        return None


def parse_auth_header(value: str) -> AuthHeader:
    """Parse ``SCHEME a=b, c=d`` (or ``SCHEME token68``; or, for Authentication-Info,
    just ``a=b, c=d`` with an empty scheme).

    >>> h = parse_auth_header("SCRAM hash=SHA-256, handshakeToken=aabbcc")
    >>> h.scheme, h.get("HASH"), h.get("handshakeToken")
    ('SCRAM', 'SHA-256', 'aabbcc')
    """
    if len(value) > _MAX_HEADER:
        raise AuthProtocolError("auth header too long")
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if "=" in scheme:  # Authentication-Info has no scheme
        scheme, rest = "", text
    rest = rest.strip()
    params: dict[str, str] = {}
    token68 = None
    if rest:
        if "=" not in rest.rstrip("=") and "," not in rest:
            token68 = rest
        else:
            for raw_part in rest.split(","):
                part = raw_part.strip()
                if not part:
                    continue
                key, sep, val = part.partition("=")
                if not sep:
                    raise AuthProtocolError(f"malformed auth parameter {part[:30]!r}")
                val = val.strip()
                if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                    val = val[1:-1]  # RFC 7235 allows it; the Auth chapter does not use it
                params[key.strip()] = val
    return AuthHeader(scheme.upper(), params, token68)


def format_auth_header(scheme: str, **params: str) -> str:
    """``SCHEME a=b, c=d`` with every value checked to be a plain token.

    >>> format_auth_header("HELLO", username="dXNlcg")
    'HELLO username=dXNlcg'
    """
    for key, val in params.items():
        if not _TOKEN_RE.fullmatch(val):
            raise AuthProtocolError(f"auth parameter {key!r} is not a token")
    joined = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{scheme} {joined}" if joined else scheme


def format_bearer(token: str) -> str:
    """The Authorization value for requests once authenticated.

    >>> format_bearer("xxyyzz")
    'BEARER authToken=xxyyzz'
    """
    return format_auth_header("BEARER", authToken=token)


def parse_bearer(value: str) -> str | None:
    """The token of a ``BEARER authToken=...`` header (or ``Bearer <token>``), else None."""
    scheme, _, rest = value.partition(" ")
    if scheme.upper() == "BEARER" and rest[:10] == "authToken=":
        token = rest[10:]
        if token and _TOKEN_RE.fullmatch(token):  # the usual shape: no parser needed
            return token
    try:
        header = parse_auth_header(value)
    except AuthProtocolError:
        return None
    if header.scheme != "BEARER":
        return None
    found = header.get("authToken") if header.params else header.token68
    if not found or not _TOKEN_RE.fullmatch(found) or found.startswith("authToken="):
        return None
    return found


class ClientHandshake:
    """The client's side of HELLO → SCRAM (or PLAINTEXT) → authToken, as a state machine.

    Feed each response's status and headers to :meth:`respond`; send the header it
    returns on the next GET; stop when it returns ``None`` and read :attr:`token`.

    ``allow_plaintext`` permits PLAINTEXT and HTTP Basic, and only over TLS unless
    ``allow_insecure`` also is set; ``hello_with_data`` sends the SCRAM client-first
    message in the HELLO itself, as some servers want; ``pad_base64`` pads what it
    encodes, for servers that refuse the spec's unpadded base64url.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        tls: bool = False,
        allow_plaintext: bool = False,
        allow_insecure: bool = False,
        hello_with_data: bool = False,
        pad_base64: bool = False,
        nonce: str | None = None,
    ) -> None:
        self.username = username
        # The spec writes base64url without padding; some servers (rusty-haystack)
        # refuse it unpadded, so the padding can be asked for.
        self._b64 = _b64_padded if pad_base64 else b64url_encode
        self._password = password
        self._tls = tls
        self._plaintext_ok = allow_plaintext and (tls or allow_insecure)
        self._hello_with_data = hello_with_data
        self._nonce = nonce
        self._scram: ScramClient | None = None
        self._sent_final = False
        self.token: str | None = None
        self.mechanism: str | None = None

    def hello(self) -> str:
        """The Authorization value of the first request."""
        user = self._b64(self.username)
        if self._hello_with_data:
            self._scram = ScramClient(self.username, self._password, nonce=self._nonce)
            data = self._b64(self._scram.client_first())
            return format_auth_header("HELLO", username=user, data=data)
        return format_auth_header("HELLO", username=user)

    def respond(self, status: int, headers: Mapping[str, str]) -> str | None:
        """The next Authorization value, or ``None`` once the token is in :attr:`token`."""
        lower = {k.lower(): v for k, v in headers.items()}
        if status == 200:
            self._finish(lower.get("authentication-info"))
            return None
        if status == 403:
            raise CredentialsRejectedError(f"the server refused {self.username!r}")
        if status != 401:
            raise AuthProtocolError(f"unexpected HTTP status {status} during authentication")
        challenge = lower.get("www-authenticate")
        if not challenge:
            raise AuthProtocolError("401 without a WWW-Authenticate header")
        header = parse_auth_header(challenge)
        if header.scheme == "SCRAM":
            return self._scram_step(header)
        if header.scheme in ("PLAINTEXT", "BASIC"):
            if not self._plaintext_ok:
                raise UnsupportedMechanismError(
                    f"the server offers only {header.scheme}, which this client allows "
                    "only over TLS with allow_plaintext=True"
                )
            self.mechanism = header.scheme
            if header.scheme == "BASIC":
                import base64

                raw = f"{self.username}:{self._password}".encode()
                return "Basic " + base64.b64encode(raw).decode("ascii")
            return format_auth_header(
                "PLAINTEXT",
                username=self._b64(self.username),
                password=self._b64(self._password),
            )
        raise UnsupportedMechanismError(f"unsupported auth scheme {header.scheme!r}")

    def _scram_step(self, header: AuthHeader) -> str:
        self.mechanism = "SCRAM"
        hash_name = (header.get("hash") or "SHA-256").upper()
        if hash_name not in HASHES:
            raise UnsupportedMechanismError(f"unsupported SCRAM hash {hash_name!r}")
        params: dict[str, str] = {}
        token = header.get("handshakeToken")
        if token is not None:
            params["handshakeToken"] = token
        data = header.get("data")
        if data is None:
            if self._sent_final or (self._scram is not None and not self._hello_with_data):
                raise AuthProtocolError("the server restarted the SCRAM exchange")
            self._scram = ScramClient(
                self.username, self._password, hash=hash_name, nonce=self._nonce
            )
            params["data"] = self._b64(self._scram.client_first())
            return format_auth_header("SCRAM", **params)
        if self._scram is None or self._sent_final:
            raise AuthProtocolError("unexpected SCRAM server data")
        server_first = b64url_decode(data).decode("utf-8", "replace")
        params["data"] = self._b64(self._scram.client_final(server_first, hash=hash_name))
        self._sent_final = True
        return format_auth_header("SCRAM", **params)

    def _finish(self, info: str | None) -> None:
        if info is None:
            raise AuthProtocolError("200 without an Authentication-Info header")
        header = parse_auth_header(info)
        token = header.get("authToken")
        if not token:
            raise AuthProtocolError("Authentication-Info without an authToken")
        if self.mechanism == "SCRAM" or self._scram is not None:
            if self._scram is None or not self._sent_final:
                raise AuthProtocolError("the server issued a token before the SCRAM proof")
            data = header.get("data")
            if not data:
                raise ServerSignatureError("the server's final message has no signature")
            self._scram.verify_server_final(b64url_decode(data).decode("utf-8", "replace"))
        self.token = token


def _b64_padded(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class ServerReply:
    """What the server answers to one authentication request.

    ``username`` is set once the proof is valid; the caller then records
    ``replay_key`` as used until ``replay_expires`` (Unix seconds), exactly once
    across every worker (a store's ``claim_handshake``), and mints the auth token only
    if it was not used before.  Nothing else of a handshake is ever kept: its state
    travels in ``handshake_token``.
    """

    status: int
    headers: Mapping[str, str]
    handshake_token: str | None = None
    username: str | None = None
    replay_key: str | None = None
    replay_expires: float | None = None


Lookup = Callable[[str], ScramCredentials | None]


def _pads(header: AuthHeader) -> bool:
    """Whether the client padded any base64 in this message."""
    return any(v.endswith("=") for v in (header.get("username"), header.get("data")) if v)


def _b64(message: str, pad: bool) -> str:
    # The Auth chapter says no padding, but a client that pads its own messages may
    # insist on it (rusty-haystack does): answer in the client's dialect.
    encoded = b64url_encode(message)
    return encoded + "=" * (-len(encoded) % 4) if pad else encoded


def _hello_name(header: AuthHeader) -> str:
    raw_user = header.get("username")
    if not raw_user:
        raise AuthProtocolError("HELLO without a username")
    return b64url_decode(raw_user).decode("utf-8")


class ServerAuth:
    """The server's side, with no state between calls: what a later step needs travels
    in the handshake token, authenticated with an HMAC under ``secret`` (see the
    module ``_handshakes``), so any worker with the same secret answers any step and a
    HELLO costs no stored state.  After a valid proof the caller records the reply's
    ``replay_key`` once (see :class:`ServerReply`).

    ``secret`` also derives the fake credentials that make an unknown user look like a
    known one; keep it the same across workers and restarts.  ``ttl`` is how long a
    handshake token is good for, by ``clock`` (Unix seconds).

    >>> from projecthaystack.auth import ClientHandshake, parse_auth_header
    >>> users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    >>> server = ServerAuth(users.get, b"a secret of sixteen bytes or more")
    >>> client = ClientHandshake("user", "pencil")
    >>> reply = server.hello(parse_auth_header(client.hello()))
    >>> reply = server.scram(parse_auth_header(client.respond(reply.status, reply.headers)))
    >>> reply = server.scram(parse_auth_header(client.respond(reply.status, reply.headers)))
    >>> reply.status, reply.username, reply.replay_key is not None
    (200, 'user', True)
    """

    def __init__(
        self,
        lookup: Lookup,
        secret: bytes,
        *,
        hash: str = "SHA-256",
        allow_plaintext: bool = False,
        ttl: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret must be at least 16 bytes")
        self._lookup = lookup
        self._secret = secret
        self._hash = hash.upper()
        self._plaintext = allow_plaintext
        self._ttl = ttl
        self._clock = clock
        self._sealer = HandshakeSealer(secret)

    def _credentials(self, username: str) -> ScramCredentials:
        creds = self._lookup(username)
        if creds is None:
            creds = fake_credentials(username, self._secret, hash=self._hash)
        return creds

    @staticmethod
    def hello_user(header: AuthHeader) -> str:
        """The user a ``HELLO`` names (SASLprepped), to look up before :meth:`hello`."""
        return saslprep(_hello_name(header))

    @staticmethod
    def is_proof(header: AuthHeader) -> bool:
        """Whether a ``SCRAM`` message is the client-final one (the proof), which is
        the step worth counting against a login throttle."""
        try:
            return b64url_decode(header.get("data") or "").startswith(b"c=")
        except AuthProtocolError:
            return False

    def handshake_user(self, header: AuthHeader) -> str:
        """The user of a ``SCRAM`` message's handshake token (SASLprepped), to look up
        before :meth:`scram`; :class:`CredentialsRejectedError` for a token that is
        missing, forged or expired."""
        return saslprep(self._open(header).username)

    def _open(self, header: AuthHeader) -> HandshakeToken:
        return self._sealer.open(header.get("handshakeToken") or "", self._clock())

    def hello(self, header: AuthHeader) -> ServerReply:
        """Answer ``HELLO username=...`` (with ``data=`` too, for eager clients)."""
        raw = _hello_name(header)
        username = saslprep(raw)
        token = self._sealer.seal(raw, int(self._clock() + self._ttl))
        data = header.get("data")
        if data is not None:
            return self._server_first(data, token, pad=_pads(header))
        challenge = format_auth_header(
            "SCRAM", handshakeToken=token.token, hash=self._credentials(username).hash
        )
        return ServerReply(401, {"WWW-Authenticate": challenge}, handshake_token=token.token)

    def _server_first(self, data: str, token: HandshakeToken, *, pad: bool) -> ServerReply:
        client_first = b64url_decode(data).decode("utf-8", "replace")
        gs2, bare, user, client_nonce = ScramServerExchange.parse_client_first(client_first)
        username = saslprep(token.username)
        if user != username:
            raise AuthProtocolError("the SCRAM user differs from the HELLO user")
        # The state of the exchange is rebuilt from the final message, so the
        # client-first message must be one that can be rebuilt: n=<name>,r=<nonce>.
        creds = self._credentials(username)
        extra = final_length_extra(client_nonce, hashlib.new(HASHES[creds.hash]).digest_size)
        for prepped in (True, False):
            name = username if prepped else token.username
            if bare == f"n={_escape_name(name)},r={client_nonce}":
                flag = FLAGS[(gs2, prepped, extra)]
                break
        else:
            raise AuthProtocolError("SCRAM client-first message with extensions")
        nonce = self._sealer.server_nonce(token, client_nonce, flag)
        exchange = ScramServerExchange.start(client_first, creds, nonce=nonce)
        # The spec's example keeps the HELLO's token for the whole exchange, and clients
        # (phable) send it again with the final message: keep it (it is all we need).
        # ``data`` first: the parameters have no order, but pyhaystack reads the first.
        value = format_auth_header(
            "SCRAM",
            data=_b64(exchange.server_first, pad),
            handshakeToken=token.token,
            hash=creds.hash,
        )
        return ServerReply(401, {"WWW-Authenticate": value}, token.token)

    def scram(self, header: AuthHeader) -> ServerReply:
        """Answer ``SCRAM handshakeToken=..., data=...``: the client-first message (the
        server-first in reply) or the client-final one (on a valid proof, status 200,
        the server's signature, and the ``username`` and ``replay_key`` to act on).

        :class:`CredentialsRejectedError` for a token or nonce not this server's, an expired
        token, or a wrong proof (an unknown user's proof is always wrong)."""
        data = header.get("data")
        if data is None:
            raise AuthProtocolError("SCRAM message without data")
        token = self._open(header)
        message = b64url_decode(data).decode("utf-8", "replace")
        if not message.startswith("c="):
            return self._server_first(data, token, pad=_pads(header))
        combined = _final_nonce(message)
        client_nonce, flag = self._sealer.check_nonce(token, combined)
        gs2, prepped, _ = FORMS[flag]
        username = saslprep(token.username)
        name = username if prepped else token.username
        creds = self._credentials(username)
        exchange = ScramServerExchange(
            username,
            f"n={_escape_name(name)},r={client_nonce}",
            f"r={combined},s={_std_b64(creds.salt)},i={creds.iterations}",
            combined,
            gs2,
            creds,
        )
        server_final = _b64(exchange.finish(message), _pads(header))
        info = f"hash={creds.hash}, data={server_final}"
        return ServerReply(
            200,
            {"Authentication-Info": info},
            username=username,
            replay_key=token.id,
            replay_expires=float(token.expires),
        )

    def plaintext(self, header: AuthHeader, *, tls: bool) -> ServerReply:
        """Answer ``PLAINTEXT username=..., password=...`` (only if enabled, only on TLS)."""
        if not self._plaintext or not tls:
            raise UnsupportedMechanismError("PLAINTEXT is not enabled on this connection")
        user_b64, pass_b64 = header.get("username"), header.get("password")
        if not user_b64 or pass_b64 is None:
            raise AuthProtocolError("PLAINTEXT needs username and password")
        username = saslprep(b64url_decode(user_b64).decode("utf-8"))
        password = b64url_decode(pass_b64).decode("utf-8")
        creds = self._credentials(username)
        # The check costs the same for unknown users: their fake keys match nothing.
        if not creds.verify_password(password) or self._lookup(username) is None:
            raise CredentialsRejectedError("wrong user or password")
        return ServerReply(200, {}, username=username)


def _final_nonce(client_final: str) -> str:
    for part in client_final.split(","):
        if part.startswith("r="):
            return part[2:]
    raise AuthProtocolError("client-final message has no nonce")
