"""The Auth chapter over HTTP, without the HTTP: headers in, headers out.

Exact in what we send (``SCRAM handshakeToken=..., data=...`` with unpadded base64url,
``BEARER authToken=...``) and tolerant in what we accept (padding, ``Bearer`` in any
case, a bare bearer token, quoted parameters), without weakening any check.
"""

from __future__ import annotations

import base64
import re
import secrets
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
from ._saslprep import saslprep
from ._scram import HASHES, ScramClient, ScramCredentials, ScramServerExchange, fake_credentials

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


def _handshake_token() -> str:
    # Hex only: clients in the wild cut tokens at '-' or '_' (phable's parser keeps
    # [A-Za-z0-9+=/]), so the token uses the one alphabet every parser reads whole.
    return secrets.token_hex(24)


@dataclass(frozen=True, slots=True)
class ServerReply:
    """What the server answers to one authentication request.

    What to keep under ``handshake_token`` until the next request: ``hello_user`` after
    a HELLO, ``state`` after the server-first message.  ``username`` is set once the
    user is authenticated (the caller then mints the auth token).
    """

    status: int
    headers: Mapping[str, str]
    handshake_token: str | None = None
    state: ScramServerExchange | None = None
    username: str | None = None
    hello_user: str | None = None


Lookup = Callable[[str], ScramCredentials | None]


def _pads(header: AuthHeader) -> bool:
    """Whether the client padded any base64 in this message."""
    return any(v.endswith("=") for v in (header.get("username"), header.get("data")) if v)


def _b64(message: str, pad: bool) -> str:
    # The Auth chapter says no padding, but a client that pads its own messages may
    # insist on it (rusty-haystack does): answer in the client's dialect.
    encoded = b64url_encode(message)
    return encoded + "=" * (-len(encoded) % 4) if pad else encoded


class ServerAuth:
    """The server's side, stateless between calls: the caller keeps each reply's
    ``state`` under its ``handshake_token`` (in memory, or in a store shared by workers)
    and passes it back with the next request.

    ``secret`` derives the fake credentials that make an unknown user look like a known
    one; keep it the same across workers and restarts.
    """

    def __init__(
        self,
        lookup: Lookup,
        secret: bytes,
        *,
        hash: str = "SHA-256",
        allow_plaintext: bool = False,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret must be at least 16 bytes")
        self._lookup = lookup
        self._secret = secret
        self._hash = hash.upper()
        self._plaintext = allow_plaintext

    def _credentials(self, username: str) -> ScramCredentials:
        creds = self._lookup(username)
        if creds is None:
            creds = fake_credentials(username, self._secret, hash=self._hash)
        return creds

    def hello(self, header: AuthHeader) -> ServerReply:
        """Answer ``HELLO username=...`` (with ``data=`` too, for eager clients)."""
        raw_user = header.get("username")
        if not raw_user:
            raise AuthProtocolError("HELLO without a username")
        username = saslprep(b64url_decode(raw_user).decode("utf-8"))
        if header.get("data") is not None:
            return self._server_first(header.get("data") or "", username, pad=_pads(header))
        token = _handshake_token()
        hash_name = self._lookup_hash(username)
        challenge = format_auth_header("SCRAM", handshakeToken=token, hash=hash_name)
        return ServerReply(
            401, {"WWW-Authenticate": challenge}, handshake_token=token, hello_user=username
        )

    def _lookup_hash(self, username: str) -> str:
        return self._credentials(username).hash

    def _server_first(
        self, data: str, username: str | None, token: str | None = None, *, pad: bool = False
    ) -> ServerReply:
        client_first = b64url_decode(data).decode("utf-8", "replace")
        _, _, user, _ = ScramServerExchange.parse_client_first(client_first)
        if username is not None and user != username:
            raise AuthProtocolError("the SCRAM user differs from the HELLO user")
        creds = self._credentials(user)
        exchange = ScramServerExchange.start(client_first, creds)
        # The spec's example keeps the HELLO's token for the whole exchange, and clients
        # (phable) send it again with the final message: keep it.
        token = token or _handshake_token()
        # ``data`` first: the parameters have no order, but pyhaystack reads the first.
        value = format_auth_header(
            "SCRAM",
            data=_b64(exchange.server_first, pad),
            handshakeToken=token,
            hash=creds.hash,
        )
        return ServerReply(401, {"WWW-Authenticate": value}, token, exchange)

    def scram(
        self,
        header: AuthHeader,
        state: ScramServerExchange | None,
        hello_user: str | None = None,
    ) -> ServerReply:
        """Answer ``SCRAM handshakeToken=..., data=...``: the first (with ``state`` None)
        or the final message.  The caller mints the auth token on success."""
        data = header.get("data")
        if data is None:
            raise AuthProtocolError("SCRAM message without data")
        if state is None:
            return self._server_first(
                data, hello_user, header.get("handshakeToken"), pad=_pads(header)
            )
        client_final = b64url_decode(data).decode("utf-8", "replace")
        server_final = _b64(state.finish(client_final), _pads(header))
        info = f"hash={state.credentials.hash}, data={server_final}"
        return ServerReply(200, {"Authentication-Info": info}, username=state.username)

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
