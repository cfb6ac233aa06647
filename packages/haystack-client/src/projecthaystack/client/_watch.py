"""Client-side watches: the current state of every watched entity, kept up to date.

A :class:`Watch` (for ``Client``) or :class:`AsyncWatch` (for ``AsyncClient`` and
``AsyncWebSocketClient``) subscribes to entities with ``watchSub`` and then holds one
record per entity.  Each poll (or, over a WebSocket, each push) is applied to it:

* a row replaces the entity's record (the spec's watchPoll answers whole records, so a
  tag the server dropped, such as ``writeVal`` once every level is released, goes);
  with ``partial=True`` a row is merged into the record instead, for servers that send
  only the changed tags;
* a tag whose value is ``Remove`` is deleted, and a row with a ``removed`` marker
  removes the entity, whatever the mode;
* a refresh (and a subscription) answers every entity: one it leaves out is gone.

When the server no longer knows the watch (its lease lapsed, the server restarted) the
next poll opens a new watch on the same ids and refreshes every record; a poll whose
answer was lost makes the next one a refresh.  Over a WebSocket the client re-subscribes
by itself when it reconnects, and the watch's records are refreshed from the answer.

The I/O is written once, as generators that yield ``(op, grid)`` and are sent the
result (or thrown the error); ``Watch`` and ``AsyncWatch`` only drive them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final

from projecthaystack.kinds import FrozenDict, Grid, Marker, Number, Ref, Remove

from ._core import ClientCore
from ._errors import (
    CallError,
    ClientError,
    RequestNotSentError,
    ResponseError,
)
from ._frames import to_pandas, to_polars

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = ["AsyncWatch", "Watch", "WatchChanges"]

# A row with this marker reports an entity that no longer exists.
REMOVED_TAG: Final = "removed"
_MAX_BACKOFF: Final = 30.0

_Flow = Generator[tuple[str, Grid], Grid, "WatchChanges"]


@dataclass(frozen=True, slots=True)
class WatchChanges:
    """What a poll, a push or a refresh changed in a watch: the ids of the records that
    are new or changed (``updated``) and of those that are gone (``removed``), in the
    order the server gave them.  False when nothing changed.

    >>> changes = WatchChanges(updated=("p1",))
    >>> bool(changes), bool(WatchChanges())
    (True, False)
    """

    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.updated or self.removed)

    def __or__(self, other: WatchChanges) -> WatchChanges:
        """Both changes, as if they had come at once (the later one wins for an id)."""
        updated = dict.fromkeys(self.updated)
        removed = dict.fromkeys(self.removed)
        for key in other.updated:
            removed.pop(key, None)
            updated[key] = None
        for key in other.removed:
            updated.pop(key, None)
            removed[key] = None
        return WatchChanges(tuple(updated), tuple(removed))


def _key(value: Ref | str) -> str:
    if isinstance(value, Ref):
        return value.id
    return value[1:] if value.startswith("@") else value


class _WatchBase:
    """The state and the flows, shared by :class:`Watch` and :class:`AsyncWatch`."""

    def __init__(
        self,
        core: ClientCore,
        ids: Iterable[Ref | str],
        *,
        dis: str | None,
        lease: Number | None,
        partial: bool,
    ) -> None:
        self._core = core
        # The ids watched, as the server spells them once it has answered.
        self._ids: dict[str, None] = dict.fromkeys(_key(i) for i in ids)
        self._records: dict[str, FrozenDict] = {}
        self._missing: dict[str, None] = {}
        self._dis = dis or "projecthaystack watch"
        self._lease = lease
        self._partial = partial
        self._watch_id: str | None = None
        self._stale = False  # a poll's answer was lost: the next poll refreshes
        self._closed = False

    # -- reading the state ------------------------------------------------------------------
    @property
    def watch_id(self) -> str | None:
        """The server's id for this watch (it changes when the watch is reopened), or
        ``None`` before it is opened and after it is closed."""
        return self._watch_id

    @property
    def lease(self) -> Number | None:
        """The lease the server granted (or the one asked for, before it answered)."""
        return self._lease

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids watched, as the server spells them."""
        return tuple(self._ids)

    @property
    def missing(self) -> tuple[str, ...]:
        """Ids asked for that the server did not know when they were subscribed (they
        are not watched)."""
        return tuple(self._missing)

    @property
    def records(self) -> Mapping[str, Mapping[str, Any]]:
        """The current record of every watched entity that exists, by id (a read-only
        view that follows the watch; the records themselves are immutable)."""
        return MappingProxyType(self._records)

    def __getitem__(self, entity: Ref | str) -> Mapping[str, Any]:
        return self._records[_key(entity)]

    def get(self, entity: Ref | str) -> Mapping[str, Any] | None:
        """The current record of ``entity``, or ``None``."""
        return self._records.get(_key(entity))

    def __contains__(self, entity: object) -> bool:
        return isinstance(entity, Ref | str) and _key(entity) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._records))

    def grid(self) -> Grid:
        """The current records as a grid, one row per entity, in the order watched."""
        rows = [self._records[i] for i in self._ids if i in self._records]
        names: dict[str, None] = {"id": None}
        for row in rows:
            names.update(dict.fromkeys(row))
        return Grid(list(names), rows, {"watchId": self._watch_id} if self._watch_id else None)

    def to_pandas(self) -> Any:
        """The current records as a pandas DataFrame indexed by id, one column per tag,
        plain Python values (the ``[pandas]`` extra)."""
        return to_pandas(self.grid()).set_index("id")

    def to_polars(self) -> Any:
        """The current records as a polars DataFrame with an ``id`` column (the
        ``[polars]`` extra)."""
        return to_polars(self.grid())

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._watch_id or '(not open)'}: "
            f"{len(self._records)} of {len(self._ids)} entities>"
        )

    # -- applying answers ---------------------------------------------------------------------
    def _apply_subscribed(self, asked: Sequence[str], grid: Grid, *, whole: bool) -> WatchChanges:
        """A watchSub answer: a row per id asked, in order, nulls for an unknown id.
        ``whole`` when every id was asked again (a re-subscription): what is not in the
        answer is gone."""
        wid = grid.meta.get("watchId")
        if isinstance(wid, str):
            self._watch_id = wid
        lease = grid.meta.get("lease")
        if isinstance(lease, Number):
            self._lease = lease
        updated: dict[str, None] = {}
        seen: dict[str, None] = {}
        rows = list(grid)
        for index, key in enumerate(asked):
            row = rows[index] if index < len(rows) else None
            ref = row.get("id") if row is not None else None
            if row is None or not isinstance(ref, Ref) or row.get(REMOVED_TAG) is Marker:
                self._ids.pop(key, None)
                self._missing[key] = None
                continue
            self._missing.pop(key, None)
            if ref.id != key:  # the server's spelling of the id
                self._ids = {ref.id if k == key else k: None for k in self._ids}
            self._ids.setdefault(ref.id, None)
            seen[ref.id] = None
            if self._set_record(ref.id, row):
                updated[ref.id] = None
        removed: list[str] = []
        if whole:
            for key in list(self._records):
                if key not in seen:
                    removed.append(key)
                    del self._records[key]
        return WatchChanges(tuple(updated), tuple(removed))

    def _apply_rows(self, grid: Grid, *, refresh: bool) -> WatchChanges:
        """A poll's or a push's rows; with ``refresh`` every entity is in them."""
        updated: dict[str, None] = {}
        removed: dict[str, None] = {}
        seen: set[str] = set()
        for row in grid:
            ref = row.get("id")
            if not isinstance(ref, Ref) or ref.id not in self._ids:
                continue  # unsubscribed meanwhile, or not an entity row
            key = ref.id
            seen.add(key)
            if row.get(REMOVED_TAG) is Marker:
                if self._records.pop(key, None) is not None:
                    removed[key] = None
                continue
            if self._partial and not refresh and key in self._records:
                merged = {**self._records[key], **row}
                changed = self._set_record(key, merged)
            else:
                changed = self._set_record(key, row)
            if changed or not refresh:
                updated[key] = None
        if refresh:
            for key in list(self._records):
                if key not in seen:
                    del self._records[key]
                    removed[key] = None
        return WatchChanges(tuple(updated), tuple(removed))

    def _set_record(self, key: str, row: Mapping[str, Any]) -> bool:
        record = FrozenDict((k, v) for k, v in row.items() if v is not Remove and v is not None)
        old = self._records.get(key)
        self._records[key] = record
        return old != record

    def _forget(self, keys: Iterable[str]) -> WatchChanges:
        removed = []
        for key in keys:
            self._ids.pop(key, None)
            self._missing.pop(key, None)
            if self._records.pop(key, None) is not None:
                removed.append(key)
        return WatchChanges(removed=tuple(removed))

    # -- the exchanges, written once ----------------------------------------------------------
    def _open_flow(self) -> _Flow:
        """Subscribe every id: a new watch when there is none, else the same watch again
        (after a reconnect); either way every record is refreshed."""
        self._check_open()
        asked = list(self._ids)
        if not asked:
            raise ValueError("a watch needs at least one id")
        grid = self._core.watch_sub_grid(asked, self._watch_id, self._dis, self._lease)
        try:
            result = yield "watchSub", grid
        except CallError:
            if self._watch_id is None:
                raise
            # The server no longer knows the watch: open a new one on the same ids.
            self._watch_id = None
            grid = self._core.watch_sub_grid(asked, None, self._dis, self._lease)
            result = yield "watchSub", grid
        self._stale = False
        return self._apply_subscribed(asked, result, whole=True)

    def _poll_flow(self, refresh: bool) -> _Flow:
        self._check_open()
        if self._watch_id is None:
            return (yield from self._open_flow())
        refresh = refresh or self._stale
        request = self._core.watch_poll_grid(self._watch_id, refresh)
        try:
            result = yield "watchPoll", request
        except CallError:
            # An error grid from watchPoll means the watch is no longer valid (spec).
            self._watch_id = None
            return (yield from self._open_flow())
        except ResponseError:
            self._stale = True  # the poll may have run: its changes are lost to us
            raise
        self._stale = False
        return self._apply_rows(result, refresh=refresh)

    def _add_flow(self, ids: Iterable[Ref | str]) -> _Flow:
        self._check_open()
        asked = [k for k in dict.fromkeys(_key(i) for i in ids) if k not in self._ids]
        if not asked:
            return WatchChanges()
        if self._watch_id is None:
            self._ids.update(dict.fromkeys(asked))
            return (yield from self._open_flow())
        grid = self._core.watch_sub_grid(asked, self._watch_id, None, self._lease)
        try:
            result = yield "watchSub", grid
        except CallError:
            self._ids.update(dict.fromkeys(asked))
            self._watch_id = None
            return (yield from self._open_flow())
        self._ids.update(dict.fromkeys(asked))
        return self._apply_subscribed(asked, result, whole=False)

    def _remove_flow(self, ids: Iterable[Ref | str]) -> _Flow:
        self._check_open()
        keys = [k for k in dict.fromkeys(_key(i) for i in ids) if k in self._ids]
        if not keys:
            return WatchChanges()
        changes = self._forget(keys)
        if self._watch_id is not None:
            try:
                yield "watchUnsub", self._core.watch_unsub_grid(self._watch_id, keys, False)
            except CallError:
                self._watch_id = None  # gone anyway: the next poll opens a new one
        return changes

    def _close_flow(self) -> Generator[tuple[str, Grid], Grid, None]:
        wid, self._watch_id = self._watch_id, None
        self._closed = True
        if wid is not None:
            with contextlib.suppress(CallError):  # already gone on the server
                yield "watchUnsub", self._core.watch_unsub_grid(wid, [], True)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this watch is closed")


def _step(flow: Generator[tuple[str, Grid], Grid, Any], value: Grid | BaseException) -> Any:
    if isinstance(value, BaseException):
        return flow.throw(value)
    return flow.send(value)


class Watch(_WatchBase):
    """The current state of watched entities, for the blocking :class:`Client`; made
    by :meth:`Client.watch`.

    Nothing is sent until the watch is opened: by a ``with`` block (which closes it on
    leaving), by :meth:`open`, or by the first :meth:`poll`.  Each :meth:`poll` applies
    what changed and returns a :class:`WatchChanges`; :meth:`changes` polls for you.

    >>> with client.watch(["@p1", "@p2"]) as watch:  # doctest: +SKIP
    ...     watch.poll()
    ...     watch["p1"]["curVal"]
    """

    def __init__(
        self,
        client: Client,
        ids: Iterable[Ref | str],
        *,
        dis: str | None = None,
        lease: Number | None = None,
        partial: bool = False,
    ) -> None:
        super().__init__(client._core, ids, dis=dis, lease=lease, partial=partial)
        self._client = client

    def _drive(self, flow: Generator[tuple[str, Grid], Grid, Any]) -> Any:
        try:
            op, grid = next(flow)
            while True:
                try:
                    result: Grid | BaseException = self._client.call(op, grid)
                except ClientError as exc:
                    result = exc
                op, grid = _step(flow, result)
        except StopIteration as done:
            return done.value

    def open(self) -> WatchChanges:
        """Subscribe (``watchSub``) and fetch every record; nothing is sent when the
        watch is open already."""
        if self._watch_id is not None:
            return WatchChanges()
        changes: WatchChanges = self._drive(self._open_flow())
        return changes

    def poll(self, *, refresh: bool = False) -> WatchChanges:
        """Ask for what changed (``watchPoll``; every record with ``refresh``) and apply
        it.  Opens the watch first if need be, and a new one when the server no longer
        knows it.  Raises the client's errors; after a :class:`ResponseError` the next
        poll is a refresh."""
        changes: WatchChanges = self._drive(self._poll_flow(refresh))
        return changes

    def refresh(self) -> WatchChanges:
        """Re-read every record (a refresh poll)."""
        return self.poll(refresh=True)

    def add(self, ids: Iterable[Ref | str]) -> WatchChanges:
        """Watch more entities (``watchSub`` on this watch)."""
        changes: WatchChanges = self._drive(self._add_flow(ids))
        return changes

    def remove(self, ids: Iterable[Ref | str]) -> WatchChanges:
        """Stop watching some entities (``watchUnsub``); their records go."""
        changes: WatchChanges = self._drive(self._remove_flow(ids))
        return changes

    def close(self) -> None:
        """Close the watch on the server (``watchUnsub`` with ``close``).  The records
        stay readable; the watch cannot be polled again."""
        self._drive(self._close_flow())

    def changes(self, interval: float = 1.0) -> Iterator[WatchChanges]:
        """Poll every ``interval`` seconds and yield what changed, for ever.

        A server that cannot be reached is tried again with a growing pause (up to
        30 s), and the watch is refreshed once it answers; a refused login or a
        refused op ends the loop with its error."""
        delay = interval
        while True:
            try:
                found = self.poll()
            except (RequestNotSentError, ResponseError):
                time.sleep(delay)
                delay = min(max(delay, 0.1) * 2, _MAX_BACKOFF)
                continue
            delay = interval
            if found:
                yield found
            time.sleep(interval)

    def __enter__(self) -> Watch:
        self.open()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None or issubclass(et, Exception):
            with contextlib.suppress(ClientError):
                self.close()
        else:
            self._closed = True


class AsyncWatch(_WatchBase):
    """The awaitable twin of :class:`Watch`, made by :meth:`AsyncClient.watch` and
    :meth:`AsyncWebSocketClient.watch`.

    Over a WebSocket the server pushes changes, which are applied as they arrive (no
    need to poll), and the client re-subscribes when it reconnects.  Over HTTP,
    :meth:`poll`; :meth:`changes` works for both.

    >>> async with ws.watch(["@p1"]) as watch:  # doctest: +SKIP
    ...     async for changes in watch.changes():
    ...         print(watch["p1"]["curVal"])
    """

    def __init__(
        self,
        client: AsyncClient,
        ids: Iterable[Ref | str],
        *,
        dis: str | None = None,
        lease: Number | None = None,
        partial: bool = False,
    ) -> None:
        super().__init__(client._core, ids, dis=dis, lease=lease, partial=partial)
        self._client = client
        self._pending = WatchChanges()
        # anyio loads with the first async watch, not with the package (see _client).
        import anyio

        self._arrived = anyio.Event()

    async def _drive(self, flow: Generator[tuple[str, Grid], Grid, Any]) -> Any:
        old = self._watch_id
        self._client._watch_opening(1)
        try:
            op, grid = next(flow)
            while True:
                try:
                    result: Grid | BaseException = await self._client.call(op, grid)
                except ClientError as exc:
                    result = exc
                op, grid = _step(flow, result)
        except StopIteration as done:
            return done.value
        finally:
            if self._watch_id != old:
                self._client._watch_moved(self, old, self._watch_id)
            self._client._watch_opening(-1)

    def _note(self, changes: WatchChanges) -> None:
        """Changes that arrived by themselves (pushes, a re-subscription after a
        reconnect), kept for :meth:`next_changes`."""
        if changes:
            self._pending = self._pending | changes
            self._arrived.set()

    def _pushed(self, grid: Grid) -> None:
        """A push from the server (WebSocket): the changed rows of this watch."""
        self._note(self._apply_rows(grid, refresh=False))

    async def open(self) -> WatchChanges:
        """Subscribe (``watchSub``) and fetch every record; nothing is sent when the
        watch is open already."""
        if self._watch_id is not None:
            return WatchChanges()
        changes: WatchChanges = await self._drive(self._open_flow())
        return changes

    async def resubscribe(self) -> WatchChanges:
        """Subscribe every id again and refresh every record (a new watch if the server
        no longer knows this one).  The WebSocket client does it after a reconnect."""
        changes: WatchChanges = await self._drive(self._open_flow())
        return changes

    async def poll(self, *, refresh: bool = False) -> WatchChanges:
        """Ask for what changed and apply it (see :meth:`Watch.poll`)."""
        changes: WatchChanges = await self._drive(self._poll_flow(refresh))
        return changes

    async def refresh(self) -> WatchChanges:
        """Re-read every record (a refresh poll)."""
        return await self.poll(refresh=True)

    async def add(self, ids: Iterable[Ref | str]) -> WatchChanges:
        """Watch more entities (``watchSub`` on this watch)."""
        changes: WatchChanges = await self._drive(self._add_flow(ids))
        return changes

    async def remove(self, ids: Iterable[Ref | str]) -> WatchChanges:
        """Stop watching some entities (``watchUnsub``); their records go."""
        changes: WatchChanges = await self._drive(self._remove_flow(ids))
        return changes

    async def close(self) -> None:
        """Close the watch on the server; the records stay readable."""
        await self._drive(self._close_flow())

    async def next_changes(
        self, timeout: float | None = None, *, interval: float = 1.0
    ) -> WatchChanges:
        """Everything that changed since the last call, waiting up to ``timeout``
        seconds for something to change (then ``TimeoutError``).  Over a WebSocket the
        changes are pushed; over HTTP it polls every ``interval`` seconds while it waits
        (a server out of reach is tried again with a growing pause, up to 30 s, and the
        watch refreshed once it answers).  A refused login or op raises its error."""
        import anyio

        with anyio.fail_after(timeout):
            delay = interval
            while not self._pending:
                if self._client._pushes_watches:
                    await self._arrived.wait()
                    continue
                try:
                    self._pending = self._pending | await self.poll()
                except (RequestNotSentError, ResponseError):
                    await anyio.sleep(delay)
                    delay = min(max(delay, 0.1) * 2, _MAX_BACKOFF)
                    continue
                delay = interval
                if not self._pending:
                    await anyio.sleep(interval)
        found, self._pending = self._pending, WatchChanges()
        self._arrived = anyio.Event()
        return found

    async def changes(self, interval: float = 1.0) -> AsyncIterator[WatchChanges]:
        """What changed, as it happens, for ever (see :meth:`next_changes`).  Changes
        that arrive while you are busy are gathered into the next item: nothing is
        missed and nothing piles up."""
        while True:
            yield await self.next_changes(interval=interval)

    async def __aenter__(self) -> AsyncWatch:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None or issubclass(et, Exception):
            with contextlib.suppress(ClientError):
                await self.close()
        else:
            self._closed = True
            self._client._watch_moved(self, self._watch_id, None)
