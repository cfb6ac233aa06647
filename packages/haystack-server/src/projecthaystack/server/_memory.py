"""The in-memory store: one process, tag indexes, nothing kept across restarts."""

from __future__ import annotations

import bisect
import datetime as dt
import secrets
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Final

import anyio
from msgspec.structs import force_setattr

from projecthaystack.filter import And, Cmp, Filter, Has, Or, Path, compile_filter
from projecthaystack.kinds import FrozenDict, Number, Ref, Remove

from ._store import (
    PROTOCOL_VERSION,
    Changes,
    HisChunk,
    PriorityLevel,
    Session,
    StoreInfo,
    UnknownEntityError,
    UnknownUserError,
    User,
    UserChanges,
    UserExistsError,
    Watch,
    WatchLimitError,
    WatchSub,
    apply_point_write,
)
from .storeforms import entity_id, ts_from_key, ts_key

__all__ = ["MemoryStore"]

SCHEMA: Final = 1
FEED_SIZE: Final = 100_000
"""Changes the feed remembers; a cursor older than that gets a reset."""


_NONE: Final[set[str]] = set()  # never changed


class _Planner:
    """Answers a filter from the indexes: the tag index (tag name to ids) and the Ref
    index (tag name to the id referred to, to the ids referring to it).

    :meth:`exact` gives the ids matching a node exactly, or ``None`` where the indexes
    cannot tell (a ``not``); a path such as ``siteRef->geoCity == "Hugo"`` is resolved
    from its far end: the entities with ``geoCity == "Hugo"``, then those whose
    ``siteRef`` refers to one of them, so no entity is looked up once per record.
    :meth:`superset` gives ids that may match (``None``: any may).  Sets handed out may
    be the indexes' own: nobody changes them."""

    def __init__(self, b: _Backend) -> None:
        self._b = b

    def _test(self, node: Filter) -> Callable[[Mapping[str, Any]], bool]:
        return compile_filter(node, resolver=self._b.resolve)

    def exact(self, node: Filter) -> set[str] | None:
        b = self._b
        if isinstance(node, Has | Cmp):
            names = node.path.names
            if len(names) == 1:
                name = names[0]
                if isinstance(node, Has):
                    return b.tags.get(name, _NONE)
                if name == "id" and node.op == "==":
                    if type(node.value) is Ref and node.value.id in b.entities:
                        return {node.value.id}
                    return set()
                test = self._test(node)
                entities = b.entities
                return {i for i in b.tags.get(name, ()) if test(entities[i])}
            first, rest = names[0], Path(names[1:])
            far: Filter = Has(rest) if isinstance(node, Has) else Cmp(rest, node.op, node.value)
            inner = self.exact(far)
            if inner is None:
                return None
            found: set[str] = _NONE
            referring = b.refs.get(first)
            if referring:
                hits = [s for t in inner if (s := referring.get(t))]
                found = hits[0] if len(hits) == 1 else set().union(*hits)
            nested = b.nested.get(first)
            if nested:
                # Paths into nested dicts are walked record by record (they are rare).
                test = self._test(node)
                found = found.union(i for i in nested if test(b.entities[i]))
            return found
        if isinstance(node, And | Or):
            parts: list[set[str]] = []
            for op in node.operands:
                found_op = self.exact(op)
                if found_op is None:
                    return None
                parts.append(found_op)
            if isinstance(node, Or):
                return set().union(*parts)
            parts.sort(key=len)
            return parts[0].intersection(*parts[1:])
        return None

    def superset(self, node: Filter) -> set[str] | None:
        if isinstance(node, Has | Cmp):
            return self._b.tags.get(node.path.names[0], set())
        if isinstance(node, And):
            known = [found for op in node.operands if (found := self.superset(op)) is not None]
            if not known:
                return None
            known.sort(key=len)
            return known[0].intersection(*known[1:])
        if isinstance(node, Or):
            union: set[str] = set()
            for operand in node.operands:
                found = self.superset(operand)
                if found is None:
                    return None
                union |= found
            return union
        return None

    def plan(self, flt: Filter) -> tuple[set[str] | None, Filter | None]:
        """The candidates (``None``: every entity) and what is left to test on them
        (``None``: nothing, the candidates are the answer)."""
        if not isinstance(flt, And):
            exact = self.exact(flt)
            return (exact, None) if exact is not None else (self.superset(flt), flt)
        sets: list[set[str]] = []
        rest: list[Filter] = []
        for op in flt.operands:
            found = self.exact(op)
            if found is None:
                rest.append(op)
                found = self.superset(op)
            if found is not None:
                sets.append(found)
        sets.sort(key=len)
        candidates = sets[0].intersection(*sets[1:]) if sets else None
        if not rest:
            return candidates, None
        return candidates, rest[0] if len(rest) == 1 else And(tuple(rest))


_NUM: Final = "num"
_BOOL: Final = "bool"
_ANY: Final = "any"
_HIS_KEPT: Final = 1 << 18
"""Samples of history answers kept as objects for reads of the same span again, in all
(about 30 MB): a full-range read of every point must not hold the history twice."""
_FLOAT_SAFE: Final = 4_000_000_000 * 1_000_000
"""Keys (microseconds) within this of the epoch survive ``key / 1e6`` as a float to the
microsecond (below 2**32 s the float's spacing is under half a microsecond)."""


def _pack(vals: Sequence[Any]) -> tuple[str, str | None, Any]:
    """A column of values in its most compact form: Numbers of one unit as float64s (the
    unit kept once), Bools as bytes, anything else as a list."""
    kinds = set(map(type, vals))
    if kinds == {Number}:
        units = {v.unit for v in vals}
        if len(units) == 1:
            return _NUM, units.pop(), array("d", [v.val for v in vals])
    elif kinds == {bool}:
        return _BOOL, None, array("b", vals)
    return _ANY, None, list(vals)


def _numbers(vals: Iterable[float], unit: str | None) -> list[Number]:
    """Numbers from floats checked when they were written: copies of one template with
    the value set, which skips the (already passed) checks of ``Number()``."""
    # msgspec Structs have a C __copy__ (mypy's stubs do not say so); copy.copy is slower.
    copy = Number(0.0, unit).__copy__  # type: ignore[attr-defined]
    out: list[Number] = []
    append = out.append
    for v in vals:
        n = copy()
        force_setattr(n, "val", v)
        append(n)
    return out


def _datetimes(keys: Sequence[int], tz: dt.tzinfo) -> list[dt.datetime]:
    """The datetimes of ``ts_key`` keys, in ``tz``."""
    if keys and keys[0] > -_FLOAT_SAFE and keys[-1] < _FLOAT_SAFE:
        at = dt.datetime.fromtimestamp
        return [at(k / 1e6, tz) for k in keys]
    return [ts_from_key(k, tz) for k in keys]


def _sorted_columns(chunk: HisChunk) -> tuple[Sequence[int], Sequence[Any]]:
    """A chunk's instants (``ts_key``) and values, ascending by instant."""
    keys = getattr(chunk, "keys", None)  # a KeyedChunk: sorted, its keys made already
    if keys is not None:
        return keys, chunk.val
    keys = list(map(ts_key, chunk.ts))
    if all(a < b for a, b in pairwise(keys)):
        return keys, chunk.val
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], [chunk.val[i] for i in order]


class _Series:
    """One point's history as columns: instants (``ts_key``, int64) in order, and values
    in the most compact form that holds them all (float64 with one unit, bytes for Bools,
    else a list); and the last answer handed out.  A million Numbers take 16 MB."""

    __slots__ = ("form", "keys", "last", "unit", "vals")

    def __init__(self) -> None:
        self.keys: array[int] = array("q")
        self.form: str | None = None  # None until the first sample
        self.unit: str | None = None
        self.vals: Any = None
        # The last chunk read, by (lo, hi, zone): read again unchanged, it is handed
        # out again (immutable, so sharing it is safe) rather than rebuilt.
        self.last: tuple[int, int, dt.tzinfo, HisChunk] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def values(self, lo: int, hi: int) -> list[Any]:
        """The values of positions ``lo`` to ``hi`` as kinds."""
        if self.form == _NUM:
            return _numbers(self.vals[lo:hi], self.unit)
        if self.form == _BOOL:
            return [v == 1 for v in self.vals[lo:hi]]
        return list(self.vals[lo:hi])

    def merge(self, keys: Sequence[int], vals: Sequence[Any]) -> None:
        """Add samples (``keys`` distinct, ascending), replacing any at the same instant."""
        self.last = None
        form, unit, col = _pack(vals)
        if self.form is None:
            self.form, self.unit, self.vals = form, unit, col[:0]
        elif form != self.form or unit != self.unit:
            # Mixed kinds or units: the whole series widens to a list of values.
            if self.form != _ANY:
                self.vals = self.values(0, len(self.keys))
                self.form, self.unit = _ANY, None
            col = list(vals)
        old = self.keys
        if not old or keys[0] > old[-1]:  # the usual case: newer samples
            old.extend(keys)
            self.vals.extend(col)
            return
        merged = dict(zip(old, self.vals, strict=True))
        merged.update(zip(keys, col, strict=True))
        ordered = sorted(merged)
        self.keys = array("q", ordered)
        picked = [merged[k] for k in ordered]
        self.vals = array(self.vals.typecode, picked) if self.form != _ANY else picked

    def kept(self, lo: int, hi: int, tz: dt.tzinfo) -> HisChunk | None:
        """The answer handed out last, if it was for the same positions and zone."""
        last = self.last
        if last is not None and last[0] == lo and last[1] == hi and last[2] is tz:
            return last[3]
        return None

    def read(self, lo: int, hi: int, tz: dt.tzinfo) -> HisChunk:
        """Positions ``lo`` to ``hi`` as a chunk of datetimes in ``tz`` and kinds."""
        return HisChunk(tuple(_datetimes(self.keys[lo:hi], tz)), tuple(self.values(lo, hi)))


@dataclass(slots=True)
class _WatchState:
    watch: Watch
    ids: dict[str, int] = field(default_factory=dict)  # id -> feed position when added
    cursor: int = 0  # feed position of the last poll


@dataclass(slots=True)
class _Backend:
    """What every view of one memory store shares."""

    epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    entities: dict[str, FrozenDict] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    next_order: int = 0
    tags: dict[str, set[str]] = field(default_factory=dict)
    # tag name -> id referred to -> ids referring to it (Refs and lists of Refs)
    refs: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # tag name -> ids whose value is a dict (a path walks into it)
    nested: dict[str, set[str]] = field(default_factory=dict)
    seq: int = 0
    feed_seqs: list[int] = field(default_factory=list)
    feed_ids: list[str] = field(default_factory=list)
    changed: anyio.Event | None = None
    history: dict[str, _Series] = field(default_factory=dict)
    # The series whose last answer is kept (as objects, ~120 bytes a sample beside the
    # columns' 16), oldest first, with their sizes: bounded by _HIS_KEPT samples in all.
    his_kept: OrderedDict[str, int] = field(default_factory=OrderedDict)
    his_kept_total: int = 0
    priority: dict[str, dict[int, PriorityLevel]] = field(default_factory=dict)
    watches: dict[str, _WatchState] = field(default_factory=dict)
    watches_of: dict[str, set[str]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    sessions_of: dict[str, set[str]] = field(default_factory=dict)
    last_now: dt.datetime | None = None  # the latest ``now`` seen, for sweeping
    claims: dict[str, dt.datetime] = field(default_factory=dict)
    attempts: dict[str, deque[dt.datetime]] = field(default_factory=dict)

    def resolve(self, ref: Ref) -> FrozenDict | None:
        """The entity a Ref refers to (the resolver of filter paths)."""
        return self.entities.get(ref.id)


class MemoryStore:
    """A :class:`~projecthaystack.server.Store` in this process's memory.

    Entities are kept as immutable dicts with an index from each tag name to the ids
    that have it, which answers the marker and comparison terms of a filter before any
    record is looked at.  Every call runs without yielding to the event loop, so each is
    atomic.  Good for development, tests and a single worker; use the PostgreSQL or
    Redis store when several workers must act as one.

    :meth:`view` gives another store object on the same memory, as a second worker
    would see a shared backend (the contract suite runs its checks on two of them).

    >>> import anyio
    >>> from projecthaystack.kinds import Marker, Ref
    >>> store = MemoryStore()
    >>> anyio.run(store.put_entities, [{"id": Ref("s1"), "site": Marker}])
    >>> anyio.run(store.view().count_entities)
    1
    """

    def __init__(self) -> None:
        self._b = _Backend()

    def view(self) -> MemoryStore:
        """Another store object on this store's memory."""
        other = MemoryStore()
        other._b = self._b
        return other

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def info(self) -> StoreInfo:
        """Protocol and schema versions; one process only."""
        return StoreInfo(PROTOCOL_VERSION, SCHEMA, "memory", shared=False)

    # -- entities ------------------------------------------------------------------------
    def _changed(self, ids: Iterable[str]) -> None:
        b = self._b
        for i in ids:
            b.seq += 1
            b.feed_seqs.append(b.seq)
            b.feed_ids.append(i)
        if len(b.feed_seqs) > 2 * FEED_SIZE:
            del b.feed_seqs[:-FEED_SIZE], b.feed_ids[:-FEED_SIZE]
        if b.changed is not None:
            b.changed.set()
            b.changed = None

    def _index(self, id: str, record: Mapping[str, Any] | None) -> None:
        b = self._b
        old = b.entities.get(id)
        if old is not None:
            for name, val in old.items():
                b.tags[name].discard(id)
                if type(val) is Ref or type(val) is list or isinstance(val, Mapping):
                    self._link(name, val, id, add=False)
        if record is None:
            b.entities.pop(id, None)
            b.order.pop(id, None)
            return
        frozen = record if isinstance(record, FrozenDict) else FrozenDict(record)
        b.entities[id] = frozen
        for name, val in frozen.items():
            b.tags.setdefault(name, set()).add(id)
            if type(val) is Ref or type(val) is list or isinstance(val, Mapping):
                self._link(name, val, id, add=True)
        if id not in b.order:
            b.order[id] = b.next_order
            b.next_order += 1

    def _link(self, name: str, val: Any, id: str, *, add: bool) -> None:
        """Keep the Ref index (and the set of nested dicts) in step with one tag."""
        b = self._b
        if isinstance(val, Mapping):
            if add:
                b.nested.setdefault(name, set()).add(id)
            else:
                b.nested[name].discard(id)
            return
        targets = [val.id] if type(val) is Ref else [v.id for v in val if type(v) is Ref]
        if not targets:
            return
        referring = b.refs.setdefault(name, {})
        for target in targets:
            if add:
                referring.setdefault(target, set()).add(id)
            else:
                sources = referring.get(target)
                if sources is not None:
                    sources.discard(id)
                    if not sources:
                        del referring[target]

    async def get_entities(self, ids: Sequence[str]) -> list[FrozenDict | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        get = self._b.entities.get
        return [get(i) for i in ids]

    async def query(self, flt: Filter, *, limit: int | None = None) -> list[FrozenDict]:
        """The entities matching ``flt``, narrowed by the tag indexes first."""
        entities = self._b.entities
        candidates, residual = _Planner(self._b).plan(flt)
        test = None if residual is None else compile_filter(residual, resolver=self._b.resolve)
        pool: Iterable[str]
        if candidates is None:
            pool = entities
        elif len(candidates) * 8 > len(entities):
            # Many candidates: walking every id in order beats sorting them.
            pool = [i for i in entities if i in candidates]
        else:
            pool = sorted(candidates, key=self._b.order.__getitem__)
        out: list[FrozenDict] = []
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
        return len(self._b.entities)

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id."""
        pending = [(entity_id(r), r) for r in records]
        for id, record in pending:
            self._index(id, record)
        self._changed(id for id, _ in pending)

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> FrozenDict | None:
        """Merge ``changes``; ``Remove`` deletes a tag.  The id itself cannot change."""
        old = self._b.entities.get(id)
        if old is None:
            return None
        self._merge(id, old, changes)
        return self._b.entities[id]

    def _merge(self, id: str, old: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        merged = dict(old)
        for name, val in changes.items():
            if name == "id":
                continue
            if val is Remove:
                merged.pop(name, None)
            else:
                merged[name] = val
        self._index(id, merged)
        self._changed((id,))

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities with their history and priority arrays."""
        b = self._b
        gone = [i for i in dict.fromkeys(ids) if i in b.entities]
        for i in gone:
            self._index(i, None)
            b.history.pop(i, None)
            b.his_kept_total -= b.his_kept.pop(i, 0)
            b.priority.pop(i, None)
        self._changed(gone)
        return len(gone)

    # -- the change feed -------------------------------------------------------------------
    def _cursor(self, seq: int) -> str:
        return f"{self._b.epoch}:{seq}"

    def _seq_of(self, cursor: str) -> int | None:
        """The feed position of one of this backend's cursors, else ``None``."""
        epoch, _, seq = cursor.partition(":")
        if epoch != self._b.epoch or not seq.isdigit():
            return None
        return int(seq)

    def _since(self, seq: int | None) -> Changes:
        b = self._b
        oldest = b.feed_seqs[0] - 1 if b.feed_seqs else b.seq
        if seq is None or seq < oldest or seq > b.seq:
            return Changes(self._cursor(b.seq), frozenset(), reset=True)
        at = bisect.bisect_right(b.feed_seqs, seq)
        return Changes(self._cursor(b.seq), frozenset(b.feed_ids[at:]))

    async def changes_since(self, cursor: str | None) -> Changes:
        """The ids changed after ``cursor`` (none, and the cursor of now, for ``None``)."""
        if cursor is None:
            return Changes(self._cursor(self._b.seq))
        return self._since(self._seq_of(cursor))

    async def wait_changes(self, cursor: str, timeout: float) -> Changes:
        """The ids changed after ``cursor``, waiting up to ``timeout`` for the first."""
        seq = self._seq_of(cursor)
        if seq is None or seq != self._b.seq:
            return self._since(seq)
        b = self._b
        if b.changed is None:
            b.changed = anyio.Event()
        with anyio.move_on_after(timeout):
            await b.changed.wait()
        return self._since(seq)

    # -- history -------------------------------------------------------------------------
    async def his_write(self, batch: Mapping[str, HisChunk]) -> int:
        """Add samples to several points, replacing any at the same instant."""
        b = self._b
        missing = [i for i in batch if i not in b.entities]
        if missing:
            raise UnknownEntityError(missing)
        written = 0
        for id, chunk in batch.items():
            if len(chunk):
                series = b.history.get(id)
                if series is None:
                    series = b.history[id] = _Series()
                series.merge(*_sorted_columns(chunk))
                b.his_kept_total -= b.his_kept.pop(id, 0)  # merge dropped the kept answer
                written += len(chunk)
        return written

    async def his_read(
        self,
        ids: Sequence[str],
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        tz: dt.tzinfo,
        limit: int | None = None,
    ) -> list[Sequence[HisChunk]]:
        """Each point's samples in ``[start, end)``, within ``limit`` in all."""
        left = limit
        out: list[Sequence[HisChunk]] = []
        lo_key = None if start is None else ts_key(start)
        hi_key = None if end is None else ts_key(end)
        for id in ids:
            series = self._b.history.get(id)
            if series is None or (left is not None and left <= 0):
                out.append(())
                continue
            keys = series.keys
            lo = 0 if lo_key is None else bisect.bisect_left(keys, lo_key)
            hi = len(keys) if hi_key is None else bisect.bisect_left(keys, hi_key)
            if left is not None:
                hi = min(hi, lo + left)
            if hi <= lo:
                out.append(())
                continue
            chunk = series.kept(lo, hi, tz)
            if chunk is None:
                chunk = series.read(lo, hi, tz)
                self._keep(id, series, (lo, hi, tz, chunk))
            else:
                self._b.his_kept.move_to_end(id)
            if left is not None:
                left -= len(chunk)
            out.append((chunk,))
        return out

    def _keep(self, id: str, series: _Series, last: tuple[int, int, dt.tzinfo, HisChunk]) -> None:
        """Keep ``series``'s answer for the next read of the same span (the encoders
        then reuse what they made of it), within :data:`_HIS_KEPT` samples in all: the
        answers read longest ago are let go first."""
        b = self._b
        b.his_kept_total -= b.his_kept.pop(id, 0)
        size = last[1] - last[0]
        if size > _HIS_KEPT:
            series.last = None
            return
        while b.his_kept and b.his_kept_total + size > _HIS_KEPT:
            old, n = b.his_kept.popitem(last=False)
            b.his_kept_total -= n
            gone = b.history.get(old)
            if gone is not None:
                gone.last = None
        series.last = last
        b.his_kept[id] = size
        b.his_kept_total += size

    # -- priority arrays -----------------------------------------------------------------
    async def point_write(
        self,
        id: str,
        level: int | None,
        entry: PriorityLevel | None,
        *,
        now: dt.datetime,
    ) -> dict[int, PriorityLevel] | None:
        """Expire, set or release a level, and keep ``writeVal`` in step."""
        b = self._b
        entity = b.entities.get(id)
        if entity is None:
            return None
        decided = apply_point_write(entity, b.priority.get(id, {}), level, entry, now)
        if decided.levels:
            b.priority[id] = decided.levels
        else:
            b.priority.pop(id, None)
        if decided.changes:
            self._merge(id, entity, decided.changes)
        return dict(decided.levels)

    # -- watches -------------------------------------------------------------------------
    def _live_watch(self, watch_id: str, now: dt.datetime) -> _WatchState | None:
        b = self._b
        state = b.watches.get(watch_id)
        if state is not None and state.watch.expires <= now:
            self._drop_watch(watch_id)
            return None
        return state

    def _drop_watch(self, watch_id: str) -> None:
        b = self._b
        state = b.watches.pop(watch_id, None)
        if state is not None:
            mine = b.watches_of.get(state.watch.owner)
            if mine is not None:
                mine.discard(watch_id)
                if not mine:
                    del b.watches_of[state.watch.owner]

    def _owned(
        self, watch_id: str, user: str, any_owner: bool, now: dt.datetime
    ) -> _WatchState | None:
        state = self._live_watch(watch_id, now)
        if state is None or (state.watch.owner != user and not any_owner):
            return None
        return state

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
        """Open or add to a watch, within its caps."""
        b = self._b
        if watch_id is None:
            mine = b.watches_of.get(user, set())
            for wid in list(mine):
                self._live_watch(wid, now)
            if len(b.watches_of.get(user, ())) >= max_watches:
                raise WatchLimitError("watches", max_watches)
            state = _WatchState(
                Watch("w-" + secrets.token_hex(12), dis, user, lease, now + lease),
                cursor=b.seq,
            )
        else:
            found = self._owned(watch_id, user, any_owner, now)
            if found is None:
                return None
            state = found
        records = [b.entities.get(i) for i in ids]
        fresh = {i for i, rec in zip(ids, records, strict=True) if rec is not None}
        fresh.difference_update(state.ids)
        if len(state.ids) + len(fresh) > max_ids:
            raise WatchLimitError("ids", max_ids)
        for i in fresh:
            state.ids[i] = b.seq
        state.watch = replace(state.watch, lease=lease, expires=now + lease, size=len(state.ids))
        if state.watch.id not in b.watches:
            b.watches[state.watch.id] = state
            b.watches_of.setdefault(user, set()).add(state.watch.id)
        return WatchSub(state.watch, records)

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
        """Unsubscribe ids, or close the watch."""
        state = self._owned(watch_id, user, any_owner, now)
        if state is None:
            return False
        if close:
            self._drop_watch(watch_id)
        else:
            for i in ids:
                state.ids.pop(i, None)
            state.watch = replace(state.watch, size=len(state.ids))
        return True

    async def watch_poll(
        self,
        watch_ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        refresh: bool,
        now: dt.datetime,
    ) -> list[list[str] | None]:
        """Each watch's ids changed since its last poll, from the change feed."""
        b = self._b
        out: list[list[str] | None] = []
        for wid in watch_ids:
            state = self._owned(wid, user, any_owner, now)
            if state is None:
                out.append(None)
                continue
            held = state.ids
            oldest = b.feed_seqs[0] - 1 if b.feed_seqs else b.seq
            if refresh or state.cursor < oldest:
                changed = list(held)
            else:
                at = bisect.bisect_right(b.feed_seqs, state.cursor)
                seen: dict[str, None] = {}
                for seq, i in zip(b.feed_seqs[at:], b.feed_ids[at:], strict=True):
                    since = held.get(i)
                    if since is not None and seq > since:
                        seen[i] = None
                changed = list(seen)
            state.cursor = b.seq
            state.watch = replace(state.watch, expires=now + state.watch.lease)
            out.append(changed)
        return out

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        return self._b.users.get(username)

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        users = self._b.users
        return [users[n] for n in sorted(users)]

    async def create_user(self, user: User) -> None:
        """Add a user whose name is free."""
        if user.username in self._b.users:
            raise UserExistsError(f"user {user.username!r} already exists")
        self._b.users[user.username] = user

    async def update_user(self, username: str, changes: UserChanges) -> User:
        """Change a user; a new password or disabling ends their sessions."""
        user = self._b.users.get(username)
        if user is None:
            raise UnknownUserError(f"no user {username!r}")
        updated = self._b.users[username] = changes.apply(user)
        if changes.revokes:
            self._revoke(username)
        return updated

    async def delete_user(self, username: str) -> bool:
        """Remove a user and their sessions."""
        self._revoke(username)
        return self._b.users.pop(username, None) is not None

    def _revoke(self, username: str) -> None:
        b = self._b
        for token_hash in b.sessions_of.pop(username, ()):
            b.sessions.pop(token_hash, None)

    # -- sessions ------------------------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session."""
        b = self._b
        b.sessions[session.token_hash] = session
        b.sessions_of.setdefault(session.username, set()).add(session.token_hash)
        if len(b.sessions) % 1024 == 0 and b.last_now is not None:
            # Expired sessions are dropped when presented; these never were.
            for token_hash, s in list(b.sessions.items()):
                if s.expires <= b.last_now:
                    self._drop_session(token_hash)

    def _drop_session(self, token_hash: str) -> None:
        b = self._b
        session = b.sessions.pop(token_hash, None)
        if session is not None:
            mine = b.sessions_of.get(session.username)
            if mine is not None:
                mine.discard(token_hash)
                if not mine:
                    del b.sessions_of[session.username]

    async def authenticate(self, token_hash: str, now: dt.datetime) -> tuple[Session, User] | None:
        """The live session of a token hash, with its user."""
        b = self._b
        b.last_now = now
        session = b.sessions.get(token_hash)
        if session is None:
            return None
        if session.expires <= now:
            self._drop_session(token_hash)
            return None
        user = b.users.get(session.username)
        return None if user is None else (session, user)

    async def delete_session(self, token_hash: str) -> None:
        """Revoke one session."""
        self._drop_session(token_hash)

    # -- handshakes and throttling ---------------------------------------------------------
    async def claim_handshake(self, key: str, expires: dt.datetime, now: dt.datetime) -> bool:
        """Record a completed handshake, once."""
        claims = self._b.claims
        if len(claims) % 256 == 255:
            for k in [k for k, until in claims.items() if until <= now]:
                del claims[k]
        until = claims.get(key)
        if until is not None and until > now:
            return False
        claims[key] = expires
        return True

    async def throttle(
        self,
        limits: Mapping[str, int],
        window: dt.timedelta,
        now: dt.datetime,
        *,
        record: bool = True,
    ) -> bool:
        """Judge and count a login attempt."""
        attempts = self._b.attempts
        cutoff = now - window
        for key, limit in limits.items():
            times = attempts.get(key)
            if times is None:
                continue
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del attempts[key]
            elif len(times) >= limit:
                return False
        if record:
            for key in limits:
                attempts.setdefault(key, deque()).append(now)
        return True

    async def forgive(self, *, refund: Sequence[str] = (), clear: Sequence[str] = ()) -> None:
        """Take back the attempt that succeeded, and clear keys."""
        attempts = self._b.attempts
        for key in refund:
            times = attempts.get(key)
            if times:
                times.pop()
                if not times:
                    del attempts[key]
        for key in clear:
            attempts.pop(key, None)
