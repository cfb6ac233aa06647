"""The storage protocol: everything a server keeps between requests.

Entities, history, priority arrays, watches, users, auth sessions, handshakes and
failure counters all live behind this one protocol, so that several workers (or hosts)
sharing a store answer as one server: a handshake begun on one worker finishes on
another, a token minted on one is honoured by all, a watch sees writes made anywhere.

Every method is a coroutine; implementations must make each call atomic on its own
(the server never needs a transaction spanning two calls).  Ids are the plain strings
of Refs (``"site-1"``, without ``@``); entities are dicts whose ``id`` is a
:class:`~projecthaystack.kinds.Ref`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from projecthaystack.auth import ScramCredentials
from projecthaystack.filter import Filter
from projecthaystack.filter import Namespace as FilterNamespace
from projecthaystack.kinds import FrozenDict

__all__ = [
    "PRIORITY_LEVELS",
    "PriorityLevel",
    "Role",
    "Session",
    "Store",
    "User",
    "Watch",
]

PRIORITY_LEVELS = 17
"""Levels of a writable point's priority array: 1 is the highest, 17 the default."""


class Role(enum.IntEnum):
    """What a user may do; each role can do everything the ones below it can.

    >>> Role.parse("operator") >= Role.VIEWER
    True
    """

    VIEWER = 1
    """Reads: about, defs, read, nav, hisRead, the priority array."""
    OPERATOR = 2
    """Also writes history and points, runs watches and actions."""
    ADMIN = 3
    """Also manages users."""

    @classmethod
    def parse(cls, name: str) -> Role:
        """The role called ``name`` (``viewer``, ``operator``, ``admin``)."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}: expected viewer, operator or admin") from None

    @property
    def label(self) -> str:
        """The lower-case name used on the wire and in the CLI."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class User:
    """A user account: only SCRAM keys are kept, never the password."""

    username: str
    role: Role
    credentials: ScramCredentials
    enabled: bool = True
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, for stores that serialise."""
        return {
            "username": self.username,
            "role": self.role.label,
            "credentials": self.credentials.to_dict(),
            "enabled": self.enabled,
            "created": self.created.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> User:
        """The inverse of :meth:`to_dict`."""
        return cls(
            data["username"],
            Role.parse(data["role"]),
            ScramCredentials.from_dict(dict(data["credentials"])),
            bool(data["enabled"]),
            dt.datetime.fromisoformat(data["created"]),
        )


@dataclass(frozen=True, slots=True)
class Session:
    """An auth token's session: who it belongs to and until when it is good."""

    token: str
    username: str
    expires: dt.datetime


@dataclass(frozen=True, slots=True)
class PriorityLevel:
    """One level of a priority array; ``expires`` is set for timed level-8 writes."""

    val: Any
    who: str
    expires: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Watch:
    """A watch: its ids, the entity versions last reported for each, and its lease."""

    id: str
    dis: str
    owner: str
    lease: dt.timedelta
    expires: dt.datetime
    ids: Mapping[str, int] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """What the server needs from storage.  See the module docstring for the rules.

    The reusable test suite in :mod:`projecthaystack.server.storetests` checks an
    implementation against this protocol.
    """

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, create tables or keys as needed; called once before use."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    # -- entities ------------------------------------------------------------------------
    async def get_entities(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        ...

    async def query(
        self,
        flt: Filter,
        *,
        limit: int | None = None,
        namespace: FilterNamespace | None = None,
    ) -> list[dict[str, Any]]:
        """The entities matching ``flt`` (``->`` paths resolved within the store),
        at most ``limit``, in insertion order.  Stores push what they can of the filter
        down to their indexes; the result must equal a full scan's.  ``namespace``
        answers spec names (``ahu``, ``ph::Meter``)."""
        ...

    async def count_entities(self) -> int:
        """How many entities there are."""
        ...

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id."""
        ...

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` into an entity (``Remove`` deletes a tag); ``None`` if it
        does not exist.  Bumps the entity's version, which watches see."""
        ...

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities (and their history and priority arrays); how many were."""
        ...

    async def entity_versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The current version of each existing entity among ``ids``."""
        ...

    # -- history -------------------------------------------------------------------------
    async def his_write(self, id: str, samples: Sequence[tuple[dt.datetime, Any]]) -> int:
        """Add samples; a sample at an existing timestamp replaces it.  Order does not
        matter.  Returns how many samples were written."""
        ...

    async def his_read(
        self,
        id: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        limit: int | None = None,
        tz: dt.tzinfo | None = None,
    ) -> Sequence[FrozenDict]:
        """Samples with ``start <= ts < end`` (open where ``None``), oldest first, as
        rows ``{ts, val}`` ready for a grid; timestamps in ``tz`` when given, else as
        they were written.  A store may hand out the same row objects every time
        (encoders then keep their JSON)."""
        ...

    # -- priority arrays -----------------------------------------------------------------
    async def get_priority(self, id: str) -> dict[int, PriorityLevel]:
        """The set levels of a point's priority array (unset levels are absent)."""
        ...

    async def set_priority(
        self, id: str, level: int, value: PriorityLevel | None
    ) -> dict[int, PriorityLevel]:
        """Set (or with ``None`` release) one level; the array afterwards."""
        ...

    # -- watches -------------------------------------------------------------------------
    async def watch_open(
        self, dis: str, owner: str, lease: dt.timedelta, now: dt.datetime
    ) -> Watch:
        """A new, empty watch with a fresh unguessable id."""
        ...

    async def watch_get(self, watch_id: str, now: dt.datetime) -> Watch | None:
        """The watch, or ``None`` if unknown or its lease ran out (then it is removed)."""
        ...

    async def watch_add(
        self, watch_id: str, ids: Sequence[str], lease: dt.timedelta | None, now: dt.datetime
    ) -> Watch | None:
        """Subscribe ids (marked as seen at their current version) and renew the lease."""
        ...

    async def watch_remove(self, watch_id: str, ids: Sequence[str]) -> None:
        """Unsubscribe ids."""
        ...

    async def watch_close(self, watch_id: str) -> None:
        """Close the watch."""
        ...

    async def watch_poll(self, watch_id: str, refresh: bool, now: dt.datetime) -> list[str] | None:
        """Ids changed since the last poll (all of them on ``refresh``), marking them
        seen and renewing the lease; ``None`` if the watch is gone."""
        ...

    async def watch_count(self, owner: str, now: dt.datetime) -> int:
        """How many live watches ``owner`` has."""
        ...

    async def wait_for_change(self, timeout: float) -> None:
        """Return when an entity may have changed, or after ``timeout`` seconds.  A store
        that cannot tell simply sleeps; watches then notice at the next poll."""
        ...

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        ...

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    async def put_user(self, user: User) -> None:
        """Create or replace a user."""
        ...

    async def delete_user(self, username: str) -> bool:
        """Remove a user; whether there was one."""
        ...

    # -- sessions and handshakes ---------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session."""
        ...

    async def get_session(self, token: str, now: dt.datetime) -> Session | None:
        """The session of a token, or ``None`` if unknown or expired."""
        ...

    async def delete_session(self, token: str) -> None:
        """Revoke one token."""
        ...

    async def delete_sessions_of(self, username: str) -> int:
        """Revoke every token of a user; how many there were."""
        ...

    async def put_handshake(
        self,
        token: str,
        state: Mapping[str, Any],
        *,
        client: str,
        ttl: dt.timedelta,
        per_client: int,
        total: int,
        now: dt.datetime,
    ) -> bool:
        """Keep an auth handshake's state until its next message.  Refuses (``False``)
        when ``client`` already has ``per_client`` live handshakes or the store has
        ``total``; one client's flood then cannot crowd out the others."""
        ...

    async def pop_handshake(self, token: str, now: dt.datetime) -> dict[str, Any] | None:
        """Take a handshake's state (each is usable once), ``None`` if unknown or expired."""
        ...

    # -- throttling ----------------------------------------------------------------------
    async def add_failure(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """Count a failed login under ``key``; the failures within ``window``."""
        ...

    async def count_failures(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """The failures under ``key`` within ``window``."""
        ...

    async def clear_failures(self, key: str) -> None:
        """Forget the failures under ``key`` (after a successful login)."""
        ...
