"""The server's side of the Auth chapter, with every piece of state in the store.

HELLO → SCRAM → BEARER through :class:`projecthaystack.auth.ServerAuth`; handshakes,
tokens and failure counts go to the store, so a login begun on one worker can finish on
another.  Also PLAINTEXT/Basic (only when enabled, only over TLS) and login by a
verified client certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from projecthaystack.auth import (
    AuthError,
    AuthHeader,
    CertIdentity,
    ScramCredentials,
    ScramServerExchange,
    ServerAuth,
    b64url_decode,
    fake_credentials,
    parse_auth_header,
    parse_bearer,
    saslprep,
)

from ._config import ServerConfig
from ._errors import HttpError
from ._store import Session, Store, User

__all__ = ["Authenticated", "Authenticator"]

_HELLO = {"WWW-Authenticate": "HELLO"}


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A request's user and the token it came with (``None`` for certificate logins)."""

    user: User
    token: str | None


@dataclass(frozen=True, slots=True)
class LoginStep:
    """An auth-protocol answer to send back as is (401 with a challenge, 200 with a
    token, ...)."""

    status: int
    headers: dict[str, str]


class Authenticator:
    """Checks bearer tokens and runs login handshakes against a store."""

    def __init__(self, store: Store, config: ServerConfig, secret: bytes) -> None:
        self._store = store
        self._config = config
        self._secret = secret

    # -- per request ---------------------------------------------------------------------
    async def authenticate(
        self,
        authorization: str | None,
        *,
        client: str,
        tls: bool,
        cert: CertIdentity | None,
        now: dt.datetime,
    ) -> Authenticated | LoginStep:
        """The user behind a request, or the auth step to answer it with."""
        if authorization:
            token = parse_bearer(authorization)
            if token is not None:
                return await self.bearer(token, now)
            return await self.login(authorization, client=client, tls=tls, now=now)
        if cert is not None:
            user = await self._cert_user(cert)
            if user is not None:
                return Authenticated(user, None)
        return LoginStep(401, dict(_HELLO))

    async def bearer(self, token: str, now: dt.datetime) -> Authenticated | LoginStep:
        """The user of an auth token, or the 401 that sends the client to log in."""
        if len(token) > 256:
            return LoginStep(401, dict(_HELLO))
        session = await self._store.get_session(token, now)
        if session is None:
            return LoginStep(401, dict(_HELLO))
        user = await self._store.get_user(session.username)
        if user is None or not user.enabled:
            await self._store.delete_session(token)
            return LoginStep(401, dict(_HELLO))
        return Authenticated(user, token)

    async def _cert_user(self, cert: CertIdentity) -> User | None:
        for name in cert.names:
            user = await self._store.get_user(name)
            if user is not None and user.enabled:
                return user
        return None

    # -- login ---------------------------------------------------------------------------
    async def _credentials(self, username: str) -> ScramCredentials | None:
        user = await self._store.get_user(username)
        # A disabled user's lookup fails exactly like an unknown user's.
        return user.credentials if user is not None and user.enabled else None

    def _server_auth(self, username: str | None, creds: ScramCredentials | None) -> ServerAuth:
        return ServerAuth(
            lambda name: creds if name == username else None,
            self._secret,
            hash=self._config.scram_hash,
            allow_plaintext=self._config.allow_plaintext,
        )

    async def _throttle(self, username: str, client: str, now: dt.datetime) -> None:
        cfg = self._config
        user_fails = await self._store.count_failures(
            f"u:{username}|{client}", cfg.failure_window, now
        )
        client_fails = await self._store.count_failures(f"c:{client}", cfg.failure_window, now)
        if user_fails >= cfg.max_failures_per_user or client_fails >= cfg.max_failures_per_client:
            retry = str(int(cfg.failure_window.total_seconds()))
            raise HttpError(429, "too many failed logins; try again later", {"Retry-After": retry})

    async def _failed(self, username: str, client: str, now: dt.datetime) -> HttpError:
        window = self._config.failure_window
        await self._store.add_failure(f"u:{username}|{client}", window, now)
        await self._store.add_failure(f"c:{client}", window, now)
        return HttpError(403, "authentication failed")

    async def login(
        self, authorization: str, *, client: str, tls: bool, now: dt.datetime
    ) -> LoginStep:
        """One step of a login: HELLO, SCRAM (first or final), PLAINTEXT or Basic.
        Raises :class:`HttpError` (400, 403, 429) when the step fails."""
        if len(authorization) > 8192:
            raise HttpError(400, "Authorization header too long")
        try:
            header = parse_auth_header(authorization)
        except AuthError as exc:
            raise HttpError(400, f"malformed Authorization header: {exc}") from None
        try:
            if header.scheme == "HELLO":
                return await self._hello(header, client, now)
            if header.scheme == "SCRAM":
                return await self._scram(header, client, now)
            if header.scheme in ("PLAINTEXT", "BASIC"):
                return await self._plaintext(header, authorization, client, tls, now)
        except (AuthError, UnicodeError, ValueError) as exc:
            raise HttpError(400, f"bad auth message: {exc}") from None
        return LoginStep(401, dict(_HELLO))

    async def _keep(self, token: str, state: dict[str, Any], client: str, now: dt.datetime) -> None:
        limits = self._config.limits
        kept = await self._store.put_handshake(
            token,
            state,
            client=client,
            ttl=self._config.handshake_ttl,
            per_client=limits.max_handshakes_per_client,
            total=limits.max_handshakes,
            now=now,
        )
        if not kept:
            raise HttpError(429, "too many logins in progress", {"Retry-After": "5"})

    async def _hello(self, header: AuthHeader, client: str, now: dt.datetime) -> LoginStep:
        raw = header.get("username")
        if not raw:
            raise HttpError(400, "HELLO without a username")
        username = saslprep(b64url_decode(raw).decode("utf-8"))
        if not username or len(username) > 256:
            raise HttpError(400, "bad username")
        await self._throttle(username, client, now)
        auth = self._server_auth(username, await self._credentials(username))
        reply = auth.hello(header)
        if reply.handshake_token is not None:
            state: dict[str, Any] = (
                {"exchange": reply.state.to_dict()}
                if reply.state is not None
                else {"user": username}
            )
            await self._keep(reply.handshake_token, state, client, now)
        return LoginStep(reply.status, dict(reply.headers))

    async def _scram(self, header: AuthHeader, client: str, now: dt.datetime) -> LoginStep:
        token = header.get("handshakeToken") or ""
        kept = await self._store.pop_handshake(token, now) if token else None
        if kept is None:
            raise HttpError(403, "unknown or expired handshake")
        if "exchange" in kept:
            exchange = ScramServerExchange.from_dict(kept["exchange"])
            username = exchange.username
            await self._throttle(username, client, now)
            auth = self._server_auth(username, exchange.credentials)
            try:
                reply = auth.scram(header, exchange)
            except AuthError:
                raise await self._failed(username, client, now) from None
            if reply.username is None:
                raise HttpError(403, "authentication failed")
            user = await self._store.get_user(reply.username)
            if user is None or not user.enabled:
                raise await self._failed(username, client, now)
            await self._store.clear_failures(f"u:{username}|{client}")
            headers = dict(reply.headers)
            new = await self.mint(user, now)
            headers["Authentication-Info"] = f"authToken={new}, " + headers["Authentication-Info"]
            return LoginStep(200, headers)
        username = str(kept.get("user", ""))
        auth = self._server_auth(username, await self._credentials(username))
        reply = auth.scram(header, None, username)
        if reply.handshake_token is not None and reply.state is not None:
            await self._keep(
                reply.handshake_token, {"exchange": reply.state.to_dict()}, client, now
            )
        return LoginStep(reply.status, dict(reply.headers))

    async def _plaintext(
        self, header: AuthHeader, raw: str, client: str, tls: bool, now: dt.datetime
    ) -> LoginStep:
        if not self._config.allow_plaintext or not tls:
            raise HttpError(403, "PLAINTEXT and Basic logins are not enabled on this connection")
        if header.scheme == "BASIC":
            try:
                decoded = base64.b64decode(raw.split(None, 1)[1], validate=True).decode("utf-8")
            except (IndexError, binascii.Error, UnicodeError):
                raise HttpError(400, "malformed Basic credentials") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise HttpError(400, "malformed Basic credentials")
        else:
            username = saslprep(b64url_decode(header.get("username") or "").decode("utf-8"))
            password = b64url_decode(header.get("password") or "").decode("utf-8")
        await self._throttle(username, client, now)
        creds = await self._credentials(username)
        # Unknown users are checked against decoy keys, so they cost the same time.
        check = creds or fake_credentials(username, self._secret, hash=self._config.scram_hash)
        user = await self._store.get_user(username)
        if not check.verify_password(password) or creds is None or user is None:
            raise await self._failed(username, client, now)
        await self._store.clear_failures(f"u:{username}|{client}")
        return LoginStep(200, {"Authentication-Info": f"authToken={await self.mint(user, now)}"})

    async def mint(self, user: User, now: dt.datetime) -> str:
        """A new auth token for ``user``."""
        token = secrets.token_hex(32)  # hex: no character any client's parser stops at
        await self._store.put_session(Session(token, user.username, now + self._config.token_ttl))
        return token
