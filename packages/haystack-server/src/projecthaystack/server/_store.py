"""The storage protocol: everything a server keeps between requests.

Entities, history, priority arrays, watches, users, sessions, handshake replay records
and login throttles all live behind this one protocol, so that several server processes
(on one host or many) sharing a store answer as one server: a handshake begun on one
finishes on another, a token minted on one is honoured by all, a watch sees writes made
anywhere.  :class:`MemoryStore <projecthaystack.server.MemoryStore>` implements it in one
process; the PostgreSQL and Redis stores implement it for many.

The rules (``DESIGN.md``, "Storage"):

**One call per decision.**  Whatever must be atomic is one call with the rule inside it:
a watch's caps are checked and applied by :meth:`Store.watch_sub`; a priority array, its
expiry and the ``writeVal`` it yields by :meth:`Store.point_write`; a user is created only
if absent by :meth:`Store.create_user`; a batch of history for many points is written
all-or-nothing by :meth:`Store.his_write`; a login attempt is counted and judged by
:meth:`Store.throttle`.  The server never reads, decides and writes back across two calls,
so a store makes each call atomic (a transaction, one statement, a script) and needs
nothing spanning two.

**Round trips independent of size.**  Every call takes its batch whole (ids, points,
watches), and an op costs a fixed number of calls whatever the number of ids: reading by
ids, a batch hisRead or hisWrite, a watch's subscribe, poll or unsubscribe, a pointWrite
and the authentication of a request (one :meth:`Store.authenticate`, the token given as
its hash).

**Changes are news, not polls.**  Every write of an entity (put, update, delete, and the
``writeVal`` of a pointWrite) is recorded in a change feed: :meth:`Store.changes_since`
and :meth:`Store.wait_changes` say which ids changed after a *cursor*, an opaque string
only the store that made it understands.  Watches and WebSocket pushes are driven by it,
so their cost follows the changes, not the number of watches.

**The store speaks plain data.**  A filter arrives as an AST of
:mod:`projecthaystack.filter` whose names are plain tags: the server rewrites spec names
(``ahu``'s subtypes, ``ph::Meter``) through the def namespace first, so a store can push
the whole filter down.  History crosses as columns (:class:`HisChunk`: timestamps and
values, in the zone asked for).  What a store serialises (entities, levels, watches,
sessions, users) has one form, defined in :mod:`projecthaystack.server.storeforms`.

**Secrets stay secret at rest.**  A store never sees a bearer token, only its
:func:`~projecthaystack.server.storeforms.token_hash`; passwords only as SCRAM keys.  A
login handshake's state travels in its authenticated handshake token, so a store keeps
nothing for a half-open handshake: only a replay record once a proof is valid
(:meth:`Store.claim_handshake`).

**Time comes from the server.**  Every call that expires something takes ``now``, the
server's (injectable) clock, so all processes judge expiry alike and tests need not
sleep.  Expired things are treated as absent at once; a store removes them when it
likes.

Ids are the plain strings of Refs (``"site-1"``, without ``@``); entities are
:class:`~projecthaystack.kinds.FrozenDict` records whose ``id`` is a
:class:`~projecthaystack.kinds.Ref`.  Errors a store reports on purpose are the
:class:`StoreError` subclasses below; anything else is a failure of the store.

::

    ServerError
    └── StoreError            a store refused or failed a call
        ├── SchemaError       the backend holds another schema or protocol version
        ├── UserExistsError   create_user: the name is taken
        ├── UnknownUserError  update_user: no such user
        ├── UnknownEntityError  his_write: a point that does not exist
        ├── WatchLimitError   watch_sub: a per-user or per-watch cap would be passed
        └── StoreUnavailableError  the backend cannot be reached (also an HttpError: 503)

The contract suite :mod:`projecthaystack.server.storetests` checks an implementation
against all of this, on two instances of the store on one backend.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from projecthaystack.auth import ScramCredentials
from projecthaystack.filter import Filter
from projecthaystack.kinds import FrozenDict, Number, Remove

from ._errors import HttpError, ServerError

__all__ = [
    "PRIORITY_LEVELS",
    "PROTOCOL_VERSION",
    "Changes",
    "HisChunk",
    "PointWrite",
    "PriorityLevel",
    "Role",
    "SchemaError",
    "Session",
    "Store",
    "StoreError",
    "StoreInfo",
    "StoreUnavailableError",
    "UnknownEntityError",
    "UnknownUserError",
    "User",
    "UserChanges",
    "UserExistsError",
    "Watch",
    "WatchLimitError",
    "WatchSub",
    "apply_point_write",
]

PROTOCOL_VERSION: Final = 2
"""The version of this protocol; :meth:`Store.info` reports the one a store implements
and the server refuses to start on another."""

PRIORITY_LEVELS: Final = 17
"""Levels of a writable point's priority array: 1 is the highest, 17 the default."""


# -- errors -------------------------------------------------------------------------------


class StoreError(ServerError):
    """A store refused a call on purpose (a conflict, a cap) or cannot serve this server."""


class SchemaError(StoreError, RuntimeError):
    """The backend holds data of another schema, or the store speaks another protocol
    version than the server: raised by :meth:`Store.open`, and by the server at start."""


class UserExistsError(StoreError, ValueError):
    """:meth:`Store.create_user` found the name taken; nothing was changed."""


class UnknownUserError(StoreError, LookupError):
    """:meth:`Store.update_user` found no such user; nothing was changed."""


class UnknownEntityError(StoreError, LookupError):
    """:meth:`Store.his_write` was given a point that does not exist; nothing of the
    batch was written.  ``ids`` are the missing ones."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = tuple(ids)
        shown = ", ".join(f"@{i}" for i in self.ids[:5])
        super().__init__(f"unknown id {shown}" + (" ..." if len(self.ids) > 5 else ""))


class WatchLimitError(StoreError, ValueError):
    """:meth:`Store.watch_sub` would pass a cap: ``limit`` is ``"watches"`` (the user's
    live watches) or ``"ids"`` (one watch's ids).  Nothing was changed."""

    def __init__(self, limit: str, cap: int) -> None:
        self.limit = limit
        self.cap = cap
        if limit == "watches":
            message = f"already {cap} watches open; close one first"
        else:
            message = f"a watch holds at most {cap} ids"
        super().__init__(message)


class StoreUnavailableError(StoreError, HttpError):
    """The store's backend cannot be reached, is restarting or failing over, or had no
    connection in time: the server answers HTTP 503 with ``Retry-After``, and the client
    may retry.  A store raises it only when nothing was half-applied (each write is one
    transaction or script, applied whole or not at all).  Every store package raises
    this one class, so callers catch one exception whatever the backend."""

    def __init__(self, message: str) -> None:
        HttpError.__init__(self, 503, f"store unavailable: {message}", {"Retry-After": "1"})


# -- values -------------------------------------------------------------------------------


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
        """A JSON-friendly form (see :mod:`projecthaystack.server.storeforms`)."""
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
class UserChanges:
    """What :meth:`Store.update_user` changes; ``None`` leaves a field as it is."""

    role: Role | None = None
    enabled: bool | None = None
    credentials: ScramCredentials | None = None

    @property
    def revokes(self) -> bool:
        """Whether the change ends the user's sessions (a new password, or disabling)."""
        return self.credentials is not None or self.enabled is False

    def apply(self, user: User) -> User:
        """``user`` with these changes (the rule every store applies)."""
        return User(
            user.username,
            user.role if self.role is None else self.role,
            user.credentials if self.credentials is None else self.credentials,
            user.enabled if self.enabled is None else self.enabled,
            user.created,
        )


@dataclass(frozen=True, slots=True)
class Session:
    """An auth token's session, kept under the token's hash (never the token itself)."""

    token_hash: str
    """:func:`projecthaystack.server.storeforms.token_hash` of the bearer token."""
    username: str
    expires: dt.datetime


@dataclass(frozen=True, slots=True)
class PriorityLevel:
    """One level of a priority array; ``expires`` is set for timed level-8 writes."""

    val: Any
    who: str
    expires: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PointWrite:
    """What :func:`apply_point_write` decides: the array afterwards, and the tags to
    merge into the point (``Remove`` deletes one; empty when nothing changes)."""

    levels: dict[int, PriorityLevel]
    changes: dict[str, Any]


def apply_point_write(
    entity: Mapping[str, Any],
    levels: Mapping[int, PriorityLevel],
    level: int | None,
    entry: PriorityLevel | None,
    now: dt.datetime,
) -> PointWrite:
    """The rule of a pointWrite, for a store to run inside its atomic section.

    Levels whose ``expires`` is at or before ``now`` are dropped; then ``level`` is set
    to ``entry`` (or released when ``entry`` is ``None``; nothing when ``level`` is
    ``None``).  The point's ``writeVal`` and ``writeLevel`` follow the highest set level
    (both removed when none is), and so does ``curVal`` on a point with the ``cur``
    marker.  ``changes`` holds only what differs from ``entity``.

    >>> import datetime as dt
    >>> from projecthaystack.kinds import Number, Ref
    >>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> out = apply_point_write({"id": Ref("p")}, {}, 8, PriorityLevel(Number(70), "me"), now)
    >>> out.changes
    {'writeVal': Number(val=70.0), 'writeLevel': Number(val=8.0)}
    """
    live = {n: lv for n, lv in levels.items() if lv.expires is None or lv.expires > now}
    if level is not None:
        if entry is None:
            live.pop(level, None)
        else:
            live[level] = entry
    want: dict[str, Any]
    if live:
        top = min(live)
        want = {"writeVal": live[top].val, "writeLevel": Number(top)}
        if "cur" in entity:
            want["curVal"] = live[top].val
    else:
        want = {"writeVal": Remove, "writeLevel": Remove}
    changes = {
        name: val
        for name, val in want.items()
        # ``not ==``: kinds' Number answers ``!=`` wrongly for equal numbers.
        if (name in entity if val is Remove else not entity.get(name) == val)  # noqa: SIM201
    }
    return PointWrite(dict(sorted(live.items())), changes)


@dataclass(frozen=True, slots=True)
class Watch:
    """A watch's header: who owns it, its lease, how many ids it holds.  The ids and
    what was last reported for them stay in the store."""

    id: str
    dis: str
    owner: str
    lease: dt.timedelta
    expires: dt.datetime
    size: int = 0


@dataclass(frozen=True, slots=True)
class WatchSub:
    """What :meth:`Store.watch_sub` answers: the watch afterwards, and the current record
    of each id asked for (``None`` for an unknown id, which is not subscribed)."""

    watch: Watch
    entities: list[FrozenDict | None]


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class HisChunk:
    """A run of one point's history as two columns: timestamps (ascending, distinct,
    timezone-aware, in the zone asked for) and their values (never ``None``).

    >>> import datetime as dt
    >>> from projecthaystack.kinds import Number
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> len(HisChunk((t,), (Number(1),)))
    1

    Chunks compare (and hash) by identity: comparing millions of samples by value is
    never what is meant.
    """

    ts: Sequence[dt.datetime]
    val: Sequence[Any]

    def __post_init__(self) -> None:
        if len(self.ts) != len(self.val):
            raise ValueError("a history chunk needs as many values as timestamps")

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class Changes:
    """What the change feed says: the ids written (put, updated, deleted) after the
    cursor given, and the cursor to give next time.

    ``reset`` means the store no longer knows what happened after that cursor (its feed
    was trimmed, or the cursor is not one of its own): anything may have changed, and a
    consumer treats every id it follows as changed.
    """

    cursor: str
    ids: frozenset[str] = frozenset()
    reset: bool = False


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """What a store says of itself: checked by the server at start."""

    protocol: int
    """The :data:`PROTOCOL_VERSION` the store implements."""
    schema: int
    """The version of the store's own layout of data in its backend."""
    backend: str
    """A short description for logs (``memory``, ``postgresql://host/db``)."""
    shared: bool
    """Whether several processes may share the backend (``False`` for one process)."""


# -- the protocol ---------------------------------------------------------------------------


@runtime_checkable
class Store(Protocol):
    """What the server needs from storage.  Every call is atomic on its own; see the
    module docstring for the rules, and :mod:`projecthaystack.server.storetests` for the
    contract suite that defines them by example."""

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect; create the schema in an empty backend, check it in one that holds
        data (:class:`SchemaError` if it is another version).  Called once before use."""
        ...

    async def close(self) -> None:
        """Release connections; the data stays in the backend."""
        ...

    async def info(self) -> StoreInfo:
        """The protocol version this store implements, its schema version and backend."""
        ...

    # -- entities ------------------------------------------------------------------------
    async def get_entities(self, ids: Sequence[str]) -> list[FrozenDict | None]:
        """The entities with these ids, in order, ``None`` where there is none.  One
        round trip however many ids there are."""
        ...

    async def query(self, flt: Filter, *, limit: int | None = None) -> list[FrozenDict]:
        """The entities matching ``flt``, at most ``limit`` (``None``: all), oldest first
        (in the order their ids were first put).

        ``flt`` is an AST of :mod:`projecthaystack.filter` made of ``Has``, ``Missing``,
        ``Cmp``, ``And`` and ``Or`` over plain tag names: never an ``IsSpec`` (the server
        rewrites spec names into tags first; a store may raise
        :class:`~projecthaystack.filter.FilterError` on one).  Paths (``equipRef->siteRef``)
        are resolved within the store.  A store pushes down what it can; the result must
        equal :func:`projecthaystack.filter.select` over every entity.
        """
        ...

    async def count_entities(self) -> int:
        """How many entities there are."""
        ...

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id, all or none (``ValueError`` for a
        record without a Ref ``id``, and then none is written).  Each is a change."""
        ...

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> FrozenDict | None:
        """Merge ``changes`` into an entity (``Remove`` deletes a tag; ``id`` cannot
        change) and return it; ``None`` if there is none.  A change."""
        ...

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities with their history and priority arrays; how many there were.
        Each is a change."""
        ...

    # -- the change feed -------------------------------------------------------------------
    async def changes_since(self, cursor: str | None) -> Changes:
        """The ids changed after ``cursor``; with ``None``, no ids and the cursor of
        *now* (where a consumer starts following)."""
        ...

    async def wait_changes(self, cursor: str, timeout: float) -> Changes:
        """Like :meth:`changes_since`, but when nothing changed after ``cursor`` yet,
        wait up to ``timeout`` seconds for a change (from any process sharing the
        backend) before answering, possibly with no ids.  Cancellation-safe."""
        ...

    # -- history -------------------------------------------------------------------------
    async def his_write(self, batch: Mapping[str, HisChunk]) -> int:
        """Add samples to several points at once, all or nothing: a sample at an instant
        already stored replaces it (instants compare as
        :func:`~projecthaystack.server.storeforms.ts_key`); within a chunk the instants
        are distinct (the server makes sure) and in no particular order.  Raises
        :class:`UnknownEntityError` (writing nothing) if any point does not exist.  The
        server has checked every sample (kind, unit, the point's zone).  Returns how
        many samples were written.  History is not a change of the entity."""
        ...

    async def his_read(
        self,
        ids: Sequence[str],
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        tz: dt.tzinfo,
        limit: int | None = None,
    ) -> list[Sequence[HisChunk]]:
        """For each id in order, its samples with ``start <= ts < end`` (open where
        ``None``), oldest first, as chunks with timestamps in ``tz``.  At most ``limit``
        samples in all, taken point by point in the order of ``ids``.  An id without
        history (or without an entity) has no chunks.  One round trip for all ids."""
        ...

    # -- priority arrays -----------------------------------------------------------------
    async def point_write(
        self,
        id: str,
        level: int | None,
        entry: PriorityLevel | None,
        *,
        now: dt.datetime,
    ) -> dict[int, PriorityLevel] | None:
        """A pointWrite as one decision: expire, apply ``level`` (set to ``entry``, or
        released when ``entry`` is ``None``; with ``level`` ``None`` only expire), store
        the array, and merge the tags it yields into the point, exactly as
        :func:`apply_point_write` says.  Concurrent calls serialise: the stored
        ``writeVal`` is always that of the stored array.  A change of the point when its
        tags change.  Returns the set levels afterwards (unset levels absent), or
        ``None`` if the point does not exist."""
        ...

    # -- watches -------------------------------------------------------------------------
    async def watch_sub(
        self,
        watch_id: str | None,
        ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        dis: str,
        lease: dt.timedelta,
        now: dt.datetime,
        max_watches: int,
        max_ids: int,
    ) -> WatchSub | None:
        """Open a watch (``watch_id`` ``None``) owned by ``user``, or add to one, and
        subscribe those ``ids`` that are entities; renews the lease to ``lease``.

        Atomic with its caps: opening fails with :class:`WatchLimitError` when ``user``
        already has ``max_watches`` live watches; adding fails likewise when the watch
        would hold more than ``max_ids`` ids.  Then nothing changes.  An id is reported
        by later polls only for changes after this call.  Returns ``None`` when the
        watch is unknown, expired, or not ``user``'s (unless ``any_owner``).  The
        answer's entities are the records of ``ids`` as subscribed (``None`` where
        unknown), so one call serves the whole watchSub.
        """
        ...

    async def watch_unsub(
        self,
        watch_id: str,
        ids: Sequence[str],
        *,
        close: bool,
        user: str,
        any_owner: bool,
        now: dt.datetime,
    ) -> bool:
        """Unsubscribe ``ids``, or with ``close`` remove the whole watch.  ``False`` when
        the watch is unknown, expired, or not ``user``'s (unless ``any_owner``); the
        owner is checked here, without the watch's ids ever leaving the store."""
        ...

    async def watch_poll(
        self,
        watch_ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        refresh: bool,
        now: dt.datetime,
    ) -> list[list[str] | None]:
        """For each watch, the ids it holds that changed since it last reported them
        (every id it holds on ``refresh``), marking them reported and renewing the
        lease; ``None`` for a watch unknown, expired, or not ``user``'s (unless
        ``any_owner``).  An id deleted since may be among them (the caller finds no
        record).  Cost follows the changes (read from the change feed), not the ids
        a watch holds; one round trip for all the watches (a WebSocket polls all of its
        own at once)."""
        ...

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        ...

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    async def create_user(self, user: User) -> None:
        """Add a user if the name is free; :class:`UserExistsError` otherwise."""
        ...

    async def update_user(self, username: str, changes: UserChanges) -> User:
        """Apply ``changes`` (:meth:`UserChanges.apply`) and return the user afterwards;
        when they revoke (:attr:`UserChanges.revokes`), end every session of the user in
        the same step.  :class:`UnknownUserError` if there is no such user."""
        ...

    async def delete_user(self, username: str) -> bool:
        """Remove a user and every session of theirs; whether there was one."""
        ...

    # -- sessions ------------------------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session (under its token hash)."""
        ...

    async def authenticate(self, token_hash: str, now: dt.datetime) -> tuple[Session, User] | None:
        """The live session of a token hash with its user, in one round trip; ``None``
        if the session is unknown, expired, or its user is gone.  (The server refuses a
        disabled user.)"""
        ...

    async def delete_session(self, token_hash: str) -> None:
        """Revoke one session."""
        ...

    # -- handshakes and throttling ---------------------------------------------------------
    async def claim_handshake(self, key: str, expires: dt.datetime, now: dt.datetime) -> bool:
        """Record that the handshake ``key`` has completed: ``True`` the first time,
        ``False`` when it was claimed before (a replay).  Exactly one of any number of
        concurrent claims of one key wins.  The record is kept until ``expires`` (the
        handshake token's own expiry, after which the token is refused anyway).  This is
        all a store keeps of a login handshake."""
        ...

    async def throttle(
        self,
        limits: Mapping[str, int],
        window: dt.timedelta,
        now: dt.datetime,
        *,
        record: bool = True,
    ) -> bool:
        """Judge a login attempt against counters, as one decision: ``limits`` maps each
        counter key (``"c:<address>"``, ``"u:<user>|<address>"``) to the attempts it
        allows within ``window`` before ``now``.  ``False`` if any key is at its limit;
        otherwise ``True``, and with ``record`` the attempt is counted under every key
        (without ``record`` the call only looks, and stores nothing)."""
        ...

    async def forgive(self, *, refund: Sequence[str] = (), clear: Sequence[str] = ()) -> None:
        """After a successful login: take one attempt off each ``refund`` key (the
        attempt that succeeded) and every attempt off each ``clear`` key."""
        ...
