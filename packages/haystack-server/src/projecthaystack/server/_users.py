"""The rules of user accounts, apart from any transport: what a username and a password
must be, and the first admin.

The password rule: 8 to 1024 characters (after nothing is stripped; any characters).
Short passwords fall to guessing however they are stored, and the upper bound keeps one
SCRAM derivation cheap enough that a login cannot be used to burn the server's CPU.
"""

from __future__ import annotations

import logging
import os

from projecthaystack.auth import ScramCredentials, saslprep

# The bounds and names live with the config, which the command's --help reads without
# loading the auth and store modules.
from ._config import ADMIN_PASSWORD_ENV, ADMIN_USER_ENV, MAX_PASSWORD, MIN_PASSWORD
from ._errors import StartupError
from ._store import Role, Store, User, UserExistsError

__all__ = [
    "ADMIN_PASSWORD_ENV",
    "ADMIN_USER_ENV",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "check_password",
    "check_username",
    "ensure_admin",
]

log = logging.getLogger("projecthaystack.server.users")


def check_password(password: str) -> str:
    """``password`` if the rule allows it (8 to 1024 characters), else ``ValueError``.

    >>> check_password("correct-horse-battery")
    'correct-horse-battery'
    """
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(
            f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long "
            f"(this one has {len(password)})"
        )
    return password


def check_username(raw: str) -> str:
    """The SASLprep form of a username if it is 1 to 64 printable characters without
    ``,`` or ``=`` (SCRAM's separators), else ``ValueError``.

    >>> check_username("alice")
    'alice'
    """
    name = saslprep(raw)
    if not 1 <= len(name) <= 64 or any(c in name for c in ",=") or not name.isprintable():
        raise ValueError("a username is 1 to 64 printable characters, without ',' or '='")
    return name


async def ensure_admin(store: Store, admin: tuple[str, str] | None, scram_hash: str) -> None:
    """Create the first admin (from ``admin``, else the environment) when the store has
    no such user; raise :class:`StartupError` when no enabled admin exists after that."""
    if admin is None:
        name = os.environ.get(ADMIN_USER_ENV, "admin")
        password = os.environ.get(ADMIN_PASSWORD_ENV)
        admin = (name, password) if password else None
    if admin is not None:
        try:
            name = check_username(admin[0])
        except ValueError as exc:
            raise StartupError(f"the admin user's name: {exc}") from None
        if await store.get_user(name) is None:
            try:
                password = check_password(admin[1])
            except ValueError as exc:
                raise StartupError(f"the admin user's password: {exc}") from None
            creds = ScramCredentials.derive(password, hash=scram_hash)
            try:
                await store.create_user(User(name, Role.ADMIN, creds))
                log.info("created admin user %r", name)
            except UserExistsError:
                pass  # another worker starting beside this one made it first
    if not any(u.role is Role.ADMIN and u.enabled for u in await store.list_users()):
        raise StartupError(
            f"no admin user: set {ADMIN_USER_ENV} and {ADMIN_PASSWORD_ENV} "
            "(or pass admin=(name, password) to create_app)"
        )
