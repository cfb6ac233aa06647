"""The in-memory store: one process, tag indexes, nothing kept across restarts."""

from __future__ import annotations

import bisect
import datetime as dt
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio

from projecthaystack.filter import And, Cmp, Filter, Has, Or, compile_filter
from projecthaystack.filter import Namespace as FilterNamespace
from projecthaystack.kinds import FrozenDict, Ref, Remove

from ._store import PriorityLevel, Session, User, Watch

__all__ = ["MemoryStore"]


def entity_id(record: Mapping[str, Any]) -> str:
    """The id string of a record, or ``ValueError`` if it has no Ref ``id``."""
    ref = record.get("id")
    if type(ref) is not Ref:
        raise ValueError("an entity needs a Ref 'id' tag")
    return ref.id


class _Candidates:
    """Narrows a filter to the ids it can match, from the tag indexes: ``None`` means
    the indexes cannot tell (a ``not``, a path) and every entity is a candidate."""

    def __init__(self, tags: Mapping[str, set[str]], entities: Mapping[str, Any]) -> None:
        self._tags = tags
        self._entities = entities

    def ids(self, node: Filter) -> set[str] | None:
        if isinstance(node, Has | Cmp) and len(node.path.names) == 1:
            name = node.path.names[0]
            if isinstance(node, Cmp) and name == "id" and node.op == "==":
                if type(node.value) is Ref and node.value.id in self._entities:
                    return {node.value.id}
                return set()
            return self._tags.get(name, set())
        if isinstance(node, And):
            known = [found for op in node.operands if (found := self.ids(op)) is not None]
            if not known:
                return None
            known.sort(key=len)
            return known[0].intersection(*known[1:]) if len(known) > 1 else known[0]
        if isinstance(node, Or):
            union: set[str] = set()
            for operand in node.operands:
                found = self.ids(operand)
                if found is None:
                    return None
                union |= found
            return union
        return None


def _exact(node: Filter) -> bool:
    """Whether the tag index answers ``node`` exactly (a plain tag, no path)."""
    return isinstance(node, Has) and len(node.path.names) == 1


def _residual(flt: Filter) -> Filter | None:
    """What is left to test once the index has answered ``flt``'s plain tags (the
    candidates intersect every term of an ``and``); ``None``: nothing is."""
    if _exact(flt):
        return None
    if isinstance(flt, And):
        rest = [op for op in flt.operands if not _exact(op)]
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else And(tuple(rest))
    return flt


class _Series:
    """One point's history: rows ``{ts, val}`` sorted by instant, and the zones of
    their timestamps (usually just the point's)."""

    __slots__ = ("keys", "rows", "zones")

    def __init__(self) -> None:
        self.keys: list[float] = []
        self.rows: list[FrozenDict] = []
        self.zones: set[dt.tzinfo | None] = set()


class MemoryStore:
    """A :class:`~projecthaystack.server.Store` in this process's memory.

    Entities are kept as immutable dicts with an index from each tag name to the ids
    that have it, which answers the marker and comparison terms of a filter before any
    record is looked at.  Good for development, tests and a single worker; use the
    PostgreSQL or Redis store when several workers must act as one.

    >>> import anyio
    >>> from projecthaystack.filter import parse
    >>> from projecthaystack.kinds import Marker, Ref
    >>> store = MemoryStore()
    >>> async def demo():
    ...     await store.put_entities([{"id": Ref("s"), "site": Marker}])
    ...     return await store.query(parse("site"))
    >>> [dict(r) for r in anyio.run(demo)]
    [{'id': Ref(id='s'), 'site': Marker}]
    """

    def __init__(self) -> None:
        self._entities: dict[str, FrozenDict] = {}
        self._order: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._tags: dict[str, set[str]] = {}
        self._seq = 0
        self._history: dict[str, _Series] = {}
        self._priority: dict[str, dict[int, PriorityLevel]] = {}
        self._watches: dict[str, Watch] = {}
        self._users: dict[str, User] = {}
        self._sessions: dict[str, Session] = {}
        self._handshakes: dict[str, tuple[dt.datetime, str, dict[str, Any]]] = {}
        self._by_client: dict[str, set[str]] = {}  # handshake tokens of each client
        self._failures: dict[str, deque[dt.datetime]] = {}
        self._changed: anyio.Event | None = None

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    # -- entities ------------------------------------------------------------------------
    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _index(self, id: str, record: Mapping[str, Any] | None) -> None:
        old = self._entities.get(id)
        if old is not None:
            for name in old:
                self._tags[name].discard(id)
        if record is None:
            self._entities.pop(id, None)
            self._versions.pop(id, None)
            self._order.pop(id, None)
            return
        frozen = record if isinstance(record, FrozenDict) else FrozenDict(record)
        self._entities[id] = frozen
        for name in frozen:
            self._tags.setdefault(name, set()).add(id)
        self._seq += 1
        self._versions[id] = self._seq
        self._order.setdefault(id, self._seq)

    async def get_entities(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        return [self._entities.get(i) for i in ids]

    async def query(
        self,
        flt: Filter,
        *,
        limit: int | None = None,
        namespace: FilterNamespace | None = None,
    ) -> list[dict[str, Any]]:
        """The entities matching ``flt``, narrowed by the tag indexes first."""
        entities = self._entities
        candidates = _Candidates(self._tags, entities).ids(flt)
        residual = _residual(flt) if candidates is not None else flt
        test = None
        if residual is not None:
            test = compile_filter(
                residual, resolver=lambda ref: entities.get(ref.id), namespace=namespace
            )
        pool: Iterable[str]
        if candidates is None:
            pool = entities
        elif len(candidates) * 8 > len(entities):
            # Many candidates: walking every id in order beats sorting them.
            pool = [i for i in entities if i in candidates]
        else:
            pool = sorted(candidates, key=self._order.__getitem__)
        out: list[dict[str, Any]] = []
        if limit is not None and limit <= 0:
            return out
        if test is None:
            out = [entities[i] for i in pool]
            return out if limit is None else out[:limit]
        for i in pool:
            rec = entities[i]
            if test(rec):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    async def count_entities(self) -> int:
        """How many entities there are."""
        return len(self._entities)

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id."""
        pending = [(entity_id(r), r) for r in records]
        for id, record in pending:
            self._index(id, record)
        self._notify()

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes``; ``Remove`` deletes a tag.  The id itself cannot change."""
        old = self._entities.get(id)
        if old is None:
            return None
        merged = dict(old)
        for name, val in changes.items():
            if name == "id":
                continue
            if val is Remove:
                merged.pop(name, None)
            else:
                merged[name] = val
        self._index(id, merged)
        self._notify()
        return self._entities[id]

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities with their history and priority arrays."""
        gone = 0
        for i in ids:
            if i in self._entities:
                self._index(i, None)
                self._history.pop(i, None)
                self._priority.pop(i, None)
                gone += 1
        self._notify()
        return gone

    async def entity_versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The current version of each existing entity among ``ids``."""
        versions = self._versions
        return {i: versions[i] for i in ids if i in versions}

    # -- history -------------------------------------------------------------------------
    async def his_write(self, id: str, samples: Sequence[tuple[dt.datetime, Any]]) -> int:
        """Add samples, replacing any at the same instant."""
        series = self._history.get(id)
        if series is None:
            series = self._history[id] = _Series()
        keys, rows = series.keys, series.rows
        for ts, val in samples:
            series.zones.add(ts.tzinfo)
            key = ts.timestamp()
            row = FrozenDict(ts=ts, val=val)
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                rows[at] = row
            else:
                keys.insert(at, key)
                rows.insert(at, row)
        return len(samples)

    async def his_read(
        self,
        id: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        limit: int | None = None,
        tz: dt.tzinfo | None = None,
    ) -> list[FrozenDict]:
        """Samples with ``start <= ts < end``, oldest first: the stored rows themselves
        when they are in ``tz`` already."""
        series = self._history.get(id)
        if series is None:
            return []
        keys = series.keys
        lo = 0 if start is None else bisect.bisect_left(keys, start.timestamp())
        hi = len(keys) if end is None else bisect.bisect_left(keys, end.timestamp())
        if limit is not None:
            hi = min(hi, lo + max(limit, 0))
        rows = series.rows[lo:hi]
        if tz is None or series.zones <= {tz}:
            return rows
        return [
            r if r["ts"].tzinfo is tz else FrozenDict(ts=r["ts"].astimezone(tz), val=r["val"])
            for r in rows
        ]

    # -- priority arrays -----------------------------------------------------------------
    async def get_priority(self, id: str) -> dict[int, PriorityLevel]:
        """The set levels of a point's priority array."""
        return dict(self._priority.get(id, {}))

    async def set_priority(
        self, id: str, level: int, value: PriorityLevel | None
    ) -> dict[int, PriorityLevel]:
        """Set or release one level."""
        levels = self._priority.setdefault(id, {})
        if value is None:
            levels.pop(level, None)
        else:
            levels[level] = value
        return dict(levels)

    # -- watches -------------------------------------------------------------------------
    def _live_watch(self, watch_id: str, now: dt.datetime) -> Watch | None:
        watch = self._watches.get(watch_id)
        if watch is not None and watch.expires <= now:
            del self._watches[watch_id]
            return None
        return watch

    async def watch_open(
        self, dis: str, owner: str, lease: dt.timedelta, now: dt.datetime
    ) -> Watch:
        """A new, empty watch."""
        watch = Watch("w-" + secrets.token_hex(12), dis, owner, lease, now + lease)
        self._watches[watch.id] = watch
        return watch

    async def watch_get(self, watch_id: str, now: dt.datetime) -> Watch | None:
        """The live watch, or ``None``."""
        return self._live_watch(watch_id, now)

    async def watch_add(
        self, watch_id: str, ids: Sequence[str], lease: dt.timedelta | None, now: dt.datetime
    ) -> Watch | None:
        """Subscribe ids at their current versions and renew the lease."""
        watch = self._live_watch(watch_id, now)
        if watch is None:
            return None
        seen = dict(watch.ids)
        for i in ids:
            seen[i] = self._versions.get(i, 0)
        lease = lease or watch.lease
        watch = Watch(watch.id, watch.dis, watch.owner, lease, now + lease, seen)
        self._watches[watch_id] = watch
        return watch

    async def watch_remove(self, watch_id: str, ids: Sequence[str]) -> None:
        """Unsubscribe ids."""
        watch = self._watches.get(watch_id)
        if watch is not None:
            seen = {i: v for i, v in watch.ids.items() if i not in set(ids)}
            self._watches[watch_id] = Watch(
                watch.id, watch.dis, watch.owner, watch.lease, watch.expires, seen
            )

    async def watch_close(self, watch_id: str) -> None:
        """Close the watch."""
        self._watches.pop(watch_id, None)

    async def watch_poll(self, watch_id: str, refresh: bool, now: dt.datetime) -> list[str] | None:
        """Changed ids since the last poll (every live one on ``refresh``)."""
        watch = self._live_watch(watch_id, now)
        if watch is None:
            return None
        versions = self._versions
        changed = [
            i for i, seen in watch.ids.items() if i in versions and (refresh or versions[i] != seen)
        ]
        seen = {i: versions.get(i, 0) for i in watch.ids}
        self._watches[watch_id] = Watch(
            watch.id, watch.dis, watch.owner, watch.lease, now + watch.lease, seen
        )
        return changed

    async def watch_count(self, owner: str, now: dt.datetime) -> int:
        """How many live watches ``owner`` has."""
        return sum(
            1
            for w in list(self._watches.values())
            if w.owner == owner and self._live_watch(w.id, now) is not None
        )

    async def wait_for_change(self, timeout: float) -> None:
        """Wake on the next entity change or after ``timeout`` seconds."""
        if self._changed is None:
            self._changed = anyio.Event()
        with anyio.move_on_after(timeout):
            await self._changed.wait()

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        return self._users.get(username)

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        return [self._users[n] for n in sorted(self._users)]

    async def put_user(self, user: User) -> None:
        """Create or replace a user."""
        self._users[user.username] = user

    async def delete_user(self, username: str) -> bool:
        """Remove a user."""
        return self._users.pop(username, None) is not None

    # -- sessions and handshakes ---------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session."""
        self._sessions[session.token] = session

    async def get_session(self, token: str, now: dt.datetime) -> Session | None:
        """The live session of a token."""
        session = self._sessions.get(token)
        if session is not None and session.expires <= now:
            del self._sessions[token]
            return None
        return session

    async def delete_session(self, token: str) -> None:
        """Revoke one token."""
        self._sessions.pop(token, None)

    async def delete_sessions_of(self, username: str) -> int:
        """Revoke every token of a user."""
        doomed = [t for t, s in self._sessions.items() if s.username == username]
        for token in doomed:
            del self._sessions[token]
        return len(doomed)

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
        """Keep a handshake's state, within the per-client and total caps."""
        table = self._handshakes
        if len(table) >= total or len(table) % 256 == 0:
            for t in [t for t, (exp, _, _) in table.items() if exp <= now]:
                self._drop_handshake(t)
        if len(table) >= total:
            return False
        mine = self._by_client.get(client, set())
        for t in [t for t in mine if table[t][0] <= now]:  # at most per_client of them
            self._drop_handshake(t)
        if len(self._by_client.get(client, ())) >= per_client:
            return False
        self._drop_handshake(token)  # a token reused replaces its handshake
        table[token] = (now + ttl, client, dict(state))
        self._by_client.setdefault(client, set()).add(token)
        return True

    def _drop_handshake(self, token: str) -> tuple[dt.datetime, str, dict[str, Any]] | None:
        entry = self._handshakes.pop(token, None)
        if entry is not None:
            tokens = self._by_client.get(entry[1])
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._by_client[entry[1]]
        return entry

    async def pop_handshake(self, token: str, now: dt.datetime) -> dict[str, Any] | None:
        """Take a live handshake's state."""
        entry = self._drop_handshake(token)
        if entry is None or entry[0] <= now:
            return None
        return entry[2]

    # -- throttling ----------------------------------------------------------------------
    def _window(self, key: str, window: dt.timedelta, now: dt.datetime) -> deque[dt.datetime]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        return times

    async def add_failure(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """Count a failure; the failures within ``window``."""
        times = self._window(key, window, now)
        times.append(now)
        return len(times)

    async def count_failures(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """The failures within ``window``."""
        times = self._window(key, window, now)
        if not times:
            del self._failures[key]
        return len(times)

    async def clear_failures(self, key: str) -> None:
        """Forget the failures under ``key``."""
        self._failures.pop(key, None)
