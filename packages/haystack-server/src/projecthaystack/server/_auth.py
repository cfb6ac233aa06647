"""The server's side of the Auth chapter, with nothing of a half-open handshake stored.

HELLO → SCRAM → BEARER through :class:`projecthaystack.auth.ServerAuth`, whose handshake
state travels in an HMAC-sealed handshake token: any worker with the same secret
answers any step, and a HELLO costs no stored state.  The store keeps only what must be
shared: the replay record of a completed proof (one handshake, one login), the login
throttle's counts, and sessions under the hash of their token.  Also PLAINTEXT/Basic
(only when enabled, only over TLS) and login by a verified client certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from projecthaystack.auth import (
    AuthError,
    AuthHeader,
    CertIdentity,
    CredentialsRejectedError,
    ScramCredentials,
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
from .storeforms import token_hash

__all__ = ["Authenticated", "Authenticator", "LoginStep"]

_HELLO = {"WWW-Authenticate": "HELLO"}
_MAX_USERNAME = 256

log = logging.getLogger("projecthaystack.server.auth")
# Why a login step failed, by its status, for the log line.
_REASONS = {400: "malformed", 403: "rejected", 429: "throttled"}


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
        # Hashes of the tokens seen lately: clients send the same token on every
        # request, and hashing it each time would be the dearest part of the check.
        self._hashes: dict[str, str] = {}

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
        """The user of an auth token (one store call), or the 401 that sends the client
        to log in."""
        if len(token) > 256:
            return LoginStep(401, dict(_HELLO))
        hashed = self._hashes.get(token)
        if hashed is None:
            if len(self._hashes) >= 4096:
                self._hashes.clear()
            hashed = self._hashes[token] = token_hash(token)
        found = await self._store.authenticate(hashed, now)
        if found is None or not found[1].enabled:
            return LoginStep(401, dict(_HELLO))
        return Authenticated(found[1], token)

    async def _cert_user(self, cert: CertIdentity) -> User | None:
        for name in cert.names:
            user = await self._store.get_user(name)
            if user is not None and user.enabled:
                return user
        return None

    # -- login ---------------------------------------------------------------------------
    async def _user(self, username: str) -> User | None:
        user = await self._store.get_user(username)
        # A disabled user's lookup fails exactly like an unknown user's.
        return user if user is not None and user.enabled else None

    def _server_auth(
        self, username: str | None, creds: ScramCredentials | None, now: dt.datetime
    ) -> ServerAuth:
        stamp = now.timestamp()
        return ServerAuth(
            lambda name: creds if name == username else None,
            self._secret,
            hash=self._config.scram_hash,
            allow_plaintext=self._config.allow_plaintext,
            ttl=self._config.handshake_ttl.total_seconds(),
            clock=lambda: stamp,
        )

    def _keys(self, username: str, client: str) -> tuple[str, str]:
        return f"u:{username}|{client}", f"c:{client}"

    async def _throttle(
        self, username: str, client: str, now: dt.datetime, *, record: bool
    ) -> None:
        """Refuse (429) when this user from this address, or this address, is at its
        limit; with ``record`` the attempt counts (in the same store call)."""
        cfg = self._config
        user_key, client_key = self._keys(username, client)
        limits = {user_key: cfg.max_failures_per_user, client_key: cfg.max_failures_per_client}
        if not await self._store.throttle(limits, cfg.failure_window, now, record=record):
            retry = str(int(cfg.failure_window.total_seconds()))
            raise HttpError(429, "too many failed logins; try again later", {"Retry-After": retry})

    async def _succeeded(self, user: User, client: str, now: dt.datetime) -> str:
        user_key, client_key = self._keys(user.username, client)
        await self._store.forgive(refund=[client_key], clear=[user_key])
        return await self.mint(user, now)

    async def login(
        self, authorization: str, *, client: str, tls: bool, now: dt.datetime
    ) -> LoginStep:
        """One step of a login: HELLO, SCRAM (first or final), PLAINTEXT or Basic.
        Raises :class:`HttpError` (400, 403, 429) when the step fails, and logs one line
        to ``projecthaystack.server.auth`` saying who, from where and why (never the
        password, proof or token)."""
        try:
            return await self._login(authorization, client=client, tls=tls, now=now)
        except HttpError as exc:
            user = self._claimed_user(authorization, now)
            reason = _REASONS.get(exc.status, "refused")
            log.warning(
                "login failed: %s: user %r from %s (%s)",
                reason,
                user,
                client,
                str(exc)[:200],
                extra={
                    "reason": reason,
                    "username": user,
                    "client_address": client,
                    "status": exc.status,
                },
            )
            raise

    def _claimed_user(self, authorization: str, now: dt.datetime) -> str | None:
        """The user name a login step claims, if it can be read (for the log)."""
        try:
            header = parse_auth_header(authorization[:8192])
            if header.scheme == "HELLO":
                return ServerAuth.hello_user(header)[:_MAX_USERNAME] or None
            if header.scheme == "SCRAM":
                return self._server_auth(None, None, now).handshake_user(header)
            if header.scheme == "PLAINTEXT":
                name = b64url_decode(header.get("username") or "").decode("utf-8")
                return name[:_MAX_USERNAME] or None
            if header.scheme == "BASIC":
                decoded = base64.b64decode(authorization.split(None, 1)[1], validate=True)
                return decoded.decode("utf-8").partition(":")[0][:_MAX_USERNAME] or None
        except (AuthError, IndexError, ValueError, binascii.Error):
            return None
        return None

    async def _login(
        self, authorization: str, *, client: str, tls: bool, now: dt.datetime
    ) -> LoginStep:
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
        except CredentialsRejectedError:
            raise HttpError(403, "authentication failed") from None
        except (AuthError, UnicodeError, ValueError) as exc:
            raise HttpError(400, f"bad auth message: {exc}") from None
        return LoginStep(401, dict(_HELLO))

    async def _hello(self, header: AuthHeader, client: str, now: dt.datetime) -> LoginStep:
        username = ServerAuth.hello_user(header)
        if not username or len(username) > _MAX_USERNAME:
            raise HttpError(400, "bad username")
        await self._throttle(username, client, now, record=False)
        user = await self._user(username)
        auth = self._server_auth(username, user.credentials if user else None, now)
        reply = auth.hello(header)
        return LoginStep(reply.status, dict(reply.headers))

    async def _scram(self, header: AuthHeader, client: str, now: dt.datetime) -> LoginStep:
        try:
            username = self._server_auth(None, None, now).handshake_user(header)
        except CredentialsRejectedError:
            raise HttpError(403, "unknown or expired handshake") from None
        proof = ServerAuth.is_proof(header)
        # Only a proof is counted: a client-first message stores nothing and proves nothing.
        await self._throttle(username, client, now, record=proof)
        user = await self._user(username)
        auth = self._server_auth(username, user.credentials if user else None, now)
        reply = auth.scram(header)
        if reply.username is None:
            return LoginStep(reply.status, dict(reply.headers))
        assert reply.replay_key is not None
        assert reply.replay_expires is not None
        expires = dt.datetime.fromtimestamp(reply.replay_expires, dt.UTC)
        if user is None or not await self._store.claim_handshake(reply.replay_key, expires, now):
            raise HttpError(403, "authentication failed")  # a replayed proof
        headers = dict(reply.headers)
        token = await self._succeeded(user, client, now)
        headers["Authentication-Info"] = f"authToken={token}, " + headers["Authentication-Info"]
        return LoginStep(200, headers)

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
        if len(username) > _MAX_USERNAME:
            raise HttpError(400, "bad username")
        await self._throttle(username, client, now, record=True)
        user = await self._user(username)
        # Unknown users are checked against decoy keys, so they cost the same time.
        check = (
            user.credentials
            if user is not None
            else fake_credentials(username, self._secret, hash=self._config.scram_hash)
        )
        if not check.verify_password(password) or user is None:
            raise HttpError(403, "authentication failed")
        token = await self._succeeded(user, client, now)
        return LoginStep(200, {"Authentication-Info": f"authToken={token}"})

    async def mint(self, user: User, now: dt.datetime) -> str:
        """A new auth token for ``user``; the store keeps only its hash."""
        token = secrets.token_hex(32)  # hex: no character any client's parser stops at
        session = Session(token_hash(token), user.username, now + self._config.token_ttl)
        await self._store.put_session(session)
        return token
