"""The PostgreSQL store: psycopg 3 (async) over a psycopg_pool connection pool.

Every call of the protocol is one transaction (or one statement), so each decision is
atomic however many workers share the database: a pointWrite locks its point's row, a
watch opening locks its owner's name, a batch hisWrite writes all its points or none,
a login attempt is counted under locks on its counters.  The change feed is a table
written under one advisory lock (so its positions commit in order, and a cursor never
skips a change) and announced with ``NOTIFY`` (so waiters in every process wake).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import operator
import random
import secrets
import time
import urllib.parse
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from projecthaystack.filter import Filter
from projecthaystack.kinds import FrozenDict, Number, Remove
from projecthaystack.server import (
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
from projecthaystack.server.storeforms import (
    decode_levels,
    decode_user,
    encode_levels,
    encode_user,
    entity_id,
)

from ._errors import PgStoreError, StoreUnavailableError
from ._filter import compile_sql
from ._history import (
    COPY_TYPES,
    Header,
    Run,
    Samples,
    decode_chunk,
    merge,
    months,
    pieces,
    plan,
    prepare,
    read_sql,
    samples_of,
    stored,
)
from ._jsonb import decode_many, decode_tags, encode_tags
from ._schema import (
    CHUNK_SAMPLES,
    HIS,
    LATEST_VERSION,
    Names,
    add_partition,
    migrate,
    month_start,
    next_month,
)

__all__ = ["DEFAULT_SCHEMA", "FEED_SIZE", "PgStore", "open_store", "split_url"]

DEFAULT_SCHEMA: Final = "haystack"
FEED_SIZE: Final = 100_000
"""Changes the feed keeps; a cursor older than that gets a reset."""
_OUR_PARAMS: Final = ("schema", "pool_min", "pool_max", "pool_timeout")
_COPY_FROM: Final = 64
"""Entities a put must have to try COPY (below that, one statement is quicker than the
check and the COPY)."""
_SWEEP_EVERY: Final = 60.0  # seconds between sweeps of expired rows, per store object
_POLL_FALLBACK: Final = 1.0  # seconds between feed checks while LISTEN is down

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without this store's own query parameters, and those parameters.

    >>> split_url("postgresql://u@h/db?schema=site1&sslmode=disable")
    ('postgresql://u@h/db?sslmode=disable', {'schema': 'site1'})
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r} (expected postgresql://...)")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_PARAMS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _OUR_PARAMS])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), ours


async def _configure(conn: Conn) -> None:
    # Filter queries are many small plans whose estimates can pass jit_above_cost;
    # compiling them takes seconds, running them milliseconds.
    await conn.execute("SET jit = off")


def _first_unit(values: Sequence[Any]) -> str | None:
    return next((v.unit for v in values if type(v) is Number), None)


class PgStore:
    """A :class:`~projecthaystack.server.Store` in PostgreSQL, shared by every worker
    and host that opens the same database and schema.

    ``conninfo`` is a libpq URL or keyword string; the store's tables live in
    ``schema``, created on :meth:`open` (and upgraded when an older version of this
    package made them).  ``min_size``/``max_size`` bound the connection pool;
    ``timeout`` is how long a call waits for a connection before it fails with
    :class:`StoreUnavailableError`.  Most code calls :func:`open_store` with a URL.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
    ) -> None:
        if not schema or len(schema.encode()) > 63 or "\x00" in schema:
            raise ValueError("schema must be a name of 1 to 63 bytes")
        if min_size < 0 or max_size < max(min_size, 1):
            raise ValueError("the pool needs 0 <= min_size <= max_size and max_size >= 1")
        self.schema = schema
        self._conninfo = conninfo
        self._timeout = timeout
        self._n = n = Names(schema)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True},
            configure=_configure,
            name=f"haystack-{schema}",
        )
        self._epoch = ""
        self._timescale = False
        self._partitions: set[dt.datetime] = set()
        self._chunk = CHUNK_SAMPLES  # samples a chunk holds (tests make it small)
        self._feed_size = FEED_SIZE  # changes the feed keeps (tests make it small)
        self._his_sql = {
            (quotas, limited): read_sql(n, quotas=quotas, limited=limited)
            for quotas in (False, True)
            for limited in (False, True)
        }
        self._last_sweep = 0.0
        self._channel = "haystack_" + hashlib.sha256(schema.encode()).hexdigest()[:20]
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Table names, composed once.
        self._entities = n("entities")
        self._changes = n("changes")
        self._meta = n("meta")
        self._points = n("his_points")
        self._priority = n("priority")
        self._watches = n("watches")
        self._watch_ids = n("watch_ids")
        self._users = n("users")
        self._sessions = n("sessions")
        self._claims = n("claims")
        self._attempts = n("attempts")
        # nextval() takes a sequence's name as text, which psycopg quotes in open().
        self._entity_seq: sql.Composable = sql.SQL("NULL")
        self._change_seq: sql.Composable = sql.SQL("NULL")

    # -- plumbing ------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreUnavailableError(f"PostgreSQL ({self._where()}): {detail}")

    def _where(self) -> str:
        try:
            info = conninfo_to_dict(self._conninfo)
        except psycopg.ProgrammingError:
            return "?"
        host = info.get("host") or "localhost"
        port = info.get("port") or "5432"
        return f"{host}:{port}/{info.get('dbname') or ''}"

    async def _call(
        self, fn: Callable[[Conn], Awaitable[T]], *, read_only: bool = False, tx: bool = True
    ) -> T:
        """Run ``fn`` on a pooled connection (in a transaction unless ``tx`` is false).

        Deadlocks and serialization failures (nothing applied) are tried again; a lost
        connection becomes :class:`StoreUnavailableError`, after one more try for a
        read (its connection may simply have died with a server restart while idle).
        """
        for attempt in range(4):
            conn: Conn | None = None
            try:
                async with self._pool.connection() as conn:
                    if not tx:
                        return await fn(conn)
                    async with conn.transaction():
                        return await fn(conn)
            except pgerrors.TransactionRollback as exc:
                if attempt == 3:
                    raise self._unavailable(exc) from exc
                await asyncio.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
            except PoolTimeout as exc:
                raise self._unavailable(exc) from exc
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                broken = conn is None or conn.closed or conn.broken
                if broken:
                    # Other idle connections likely died too: have the pool check them.
                    self._check_pool_soon()
                if read_only and broken and attempt == 0:
                    continue
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_pool_soon(self) -> None:
        async def check() -> None:
            with contextlib.suppress(Exception):  # the next call reports what is wrong
                await self._pool.check()

        task = asyncio.get_running_loop().create_task(check())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, then create the schema, or upgrade one an older version made
        (:class:`~projecthaystack.server.SchemaError` for one a newer version made)."""
        try:
            await self._pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout as exc:
            await self._pool.close()
            raise self._unavailable(exc) from exc

        async def setup(conn: Conn) -> None:
            await migrate(conn, self._n)
            self._entity_seq = sql.Literal(self._n("entity_seq").as_string(conn))
            self._change_seq = sql.Literal(self._n("change_seq").as_string(conn))
            cur = await conn.execute(sql.SQL("SELECT key, value FROM {}").format(self._meta))
            meta = dict(await cur.fetchall())
            self._epoch = meta["epoch"]
            self._timescale = meta.get("history") == "timescaledb"

        try:
            await self._call(setup, tx=False)
        except BaseException:
            await self._pool.close()
            raise

    async def close(self) -> None:
        """Stop listening and close every connection; the data stays."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        await self._pool.close()

    async def info(self) -> StoreInfo:
        """Protocol and schema versions, and where the data is (never a password)."""
        return StoreInfo(
            PROTOCOL_VERSION,
            LATEST_VERSION,
            f"postgresql://{self._where()} schema={self.schema}",
            shared=True,
        )

    # -- entities ------------------------------------------------------------------------
    async def get_entities(self, ids: Sequence[str]) -> list[FrozenDict | None]:
        """The entities with these ids, in order, ``None`` where there is none: one
        statement however many ids there are."""
        wanted = list(ids)

        async def run(conn: Conn) -> list[FrozenDict | None]:
            return await self._records(conn, wanted)

        return await self._call(run, read_only=True, tx=False)

    async def query(self, flt: Filter, *, limit: int | None = None) -> list[FrozenDict]:
        """The entities matching ``flt`` in first-put order: the whole filter runs in
        SQL (see ``_filter``), one statement."""
        compiled = compile_sql(flt, self._entities)
        if limit is not None and limit <= 0:
            return []
        params = dict(compiled.params)
        cut = sql.SQL("")
        if limit is not None:
            params["limit"] = limit
            cut = sql.SQL(" ORDER BY e.seq LIMIT %(limit)s")
        query = sql.SQL(
            "{}SELECT '[' || coalesce(string_agg(q.tags::text, ',' ORDER BY q.seq), '') || ']'"
            " FROM (SELECT e.tags, e.seq FROM {} e WHERE {}{}) q"
        ).format(compiled.with_clause(), self._entities, compiled.where, cut)

        async def run(conn: Conn) -> list[FrozenDict]:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
            return decode_many(row[0]) if row else []

        return await self._call(run, read_only=True, tx=False)

    async def count_entities(self) -> int:
        """How many entities there are."""

        async def run(conn: Conn) -> int:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._entities))
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._call(run, read_only=True, tx=False)

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id, all or none, with the feed, in one
        transaction.

        A large batch of new ids (a building being loaded) goes in by COPY, the fastest way
        into PostgreSQL: one statement checks that none of its ids is there and takes
        their positions in first-put order, then the rows are copied in id order (so
        concurrent batches cannot deadlock).  Otherwise, or when another writer put one
        of the ids in the meantime (the COPY then fails whole and nothing is kept), the
        batch goes as one JSON array to one ``INSERT ... ON CONFLICT``.
        """
        batch: dict[str, Mapping[str, Any]] = {}
        for record in records:
            batch[entity_id(record)] = record
        if not batch:
            return
        texts = [encode_tags(r) for r in batch.values()]
        ids = list(batch)

        async def upsert(conn: Conn) -> None:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {e} (id, seq, tags)"
                    " SELECT id, n, tags FROM ("
                    "  SELECT r.tags -> 'id' ->> 'val' AS id, r.tags, nextval({s}) AS n"
                    "  FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY r(tags, ord)"
                    "  ORDER BY r.ord) v"
                    # Rows locked in id order: concurrent batches cannot deadlock.
                    " ORDER BY id"
                    " ON CONFLICT (id) DO UPDATE SET tags = EXCLUDED.tags"
                ).format(e=self._entities, s=self._entity_seq),
                ["[" + ",".join(texts) + "]"],
            )
            await self._record_changes(conn, ids)

        async def run(conn: Conn) -> None:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM {e} WHERE id = ANY(%(ids)s))"
                    " THEN (SELECT array_agg(nextval({s}) ORDER BY i)"
                    "  FROM generate_series(1, %(n)s) i) END"
                ).format(e=self._entities, s=self._entity_seq),
                {"ids": ids, "n": len(ids)},
            )
            row = await cur.fetchone()
            if row is None or row[0] is None:
                await upsert(conn)
                return
            # New ids: positions in first-put order, rows in id order.
            copy = sql.SQL("COPY {} (id, seq, tags) FROM STDIN").format(self._entities)
            async with conn.cursor().copy(copy) as cp:
                for item in sorted(zip(ids, row[0], texts, strict=True)):
                    await cp.write_row(item)
            await self._record_changes(conn, ids)

        if len(ids) < _COPY_FROM:
            await self._call(upsert)
            return
        try:
            await self._call(run)
        except pgerrors.UniqueViolation:
            # Another writer put one of the ids since the check: nothing was kept.
            await self._call(upsert)

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> FrozenDict | None:
        """Merge ``changes`` into an entity in one statement; ``Remove`` deletes a tag,
        and the ``id`` never changes."""
        removed, patch = self._patch(changes)

        async def run(conn: Conn) -> FrozenDict | None:
            return await self._merge(conn, id, removed, patch)

        return await self._call(run)

    @staticmethod
    def _patch(changes: Mapping[str, Any]) -> tuple[list[str], str]:
        removed = [k for k, v in changes.items() if (v is Remove or v is None) and k != "id"]
        patch = {
            k: v for k, v in changes.items() if v is not Remove and v is not None and k != "id"
        }
        return removed, encode_tags(patch)

    async def _merge(
        self, conn: Conn, id: str, removed: list[str], patch: str
    ) -> FrozenDict | None:
        cur = await conn.execute(
            sql.SQL(
                "UPDATE {} SET tags = (tags - %s::text[]) || %s::jsonb WHERE id = %s"
                " RETURNING tags::text"
            ).format(self._entities),
            [removed, patch, id],
        )
        row = await cur.fetchone()
        if row is None:
            return None
        await self._record_changes(conn, [id])
        return decode_tags(row[0])

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities with their history and priority arrays; how many were."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s) RETURNING id").format(self._entities),
                [wanted],
            )
            gone = [r[0] for r in await cur.fetchall()]
            if not gone:
                return 0
            await conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._priority), [gone]
            )
            cur = await conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s) RETURNING pid").format(self._points),
                [gone],
            )
            pids = [r[0] for r in await cur.fetchall()]
            if pids:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE pid = ANY(%s)").format(self._n(HIS)), [pids]
                )
            await self._record_changes(conn, gone)
            return len(gone)

        return await self._call(run)

    # -- the change feed -------------------------------------------------------------------
    async def _record_changes(self, conn: Conn, ids: Sequence[str]) -> None:
        """Append ``ids`` to the feed inside the caller's transaction, and announce it:
        one row for the whole batch, its ids at consecutive positions.

        The advisory lock is held to the end of the transaction, so feed positions
        commit in order: a reader that has seen position n has seen every one below."""
        await conn.execute(
            sql.SQL(
                "WITH lock AS (SELECT pg_advisory_xact_lock(hashtextextended(%(schema)s, 1))),"
                # The batch takes the next n positions, as one row: only holders of the
                # lock move the sequence, so nextval then setval reserves them all.
                " pos AS (SELECT setval({s}, nextval({s}) + %(n)s - 1) AS top FROM lock),"
                " ins AS (INSERT INTO {c} (seq, n, ids)"
                "  SELECT top, %(n)s, %(ids)s::text[] FROM pos),"
                # About every 1024 positions, the feed is cut to its last FEED_SIZE.
                " cut AS (SELECT top - %(size)s AS floor FROM pos"
                "  WHERE top / 1024 <> (top - %(n)s) / 1024),"
                " gone AS (DELETE FROM {c} WHERE seq <= (SELECT floor FROM cut)),"
                " moved AS (UPDATE {m} SET value = greatest(value::bigint, cut.floor)::text"
                "  FROM cut WHERE key = 'feed_floor')"
                " SELECT pg_notify(%(channel)s, '')"
            ).format(c=self._changes, s=self._change_seq, m=self._meta),
            {
                "schema": self.schema,
                "ids": list(ids),
                "n": len(ids),
                "size": self._feed_size,
                "channel": self._channel,
            },
        )

    def _cursor(self, seq: int) -> str:
        return f"{self._epoch}:{seq}"

    def _seq_of(self, cursor: str) -> int | None:
        epoch, _, seq = cursor.partition(":")
        if epoch != self._epoch or not seq.isdigit() or len(seq) > 18:
            return None
        return int(seq)

    async def _top(self, conn: Conn) -> tuple[int, int]:
        """The feed's last position and the position it was trimmed up to."""
        cur = await conn.execute(
            sql.SQL(
                "SELECT (SELECT value::bigint FROM {m} WHERE key = 'feed_floor'),"
                " (SELECT max(seq) FROM {c})"
            ).format(m=self._meta, c=self._changes)
        )
        row = await cur.fetchone()
        assert row is not None
        floor = int(row[0])
        return (floor if row[1] is None else max(int(row[1]), floor)), floor

    async def changes_since(self, cursor: str | None) -> Changes:
        """The ids changed after ``cursor``; with ``None``, the cursor of now."""
        seq = None if cursor is None else self._seq_of(cursor)
        query = sql.SQL(
            "SELECT f.floor, greatest(f.floor, (SELECT max(seq) FROM {c})),"
            " ARRAY(SELECT DISTINCT u.id FROM {c} c, unnest(c.ids) WITH ORDINALITY u(id, k)"
            "  WHERE c.seq > %(seq)s AND c.seq - c.n + u.k > %(seq)s)"
            " FROM (SELECT value::bigint AS floor FROM {m} WHERE key = 'feed_floor') f"
        ).format(c=self._changes, m=self._meta)

        async def run(conn: Conn) -> Changes:
            cur = await conn.execute(query, {"seq": 2**62 if seq is None else seq})
            row = await cur.fetchone()
            assert row is not None
            floor, top, ids = int(row[0]), int(row[1]), row[2]
            if cursor is None:
                return Changes(self._cursor(top))
            if seq is None or seq < floor or seq > top:
                return Changes(self._cursor(top), frozenset(), reset=True)
            return Changes(self._cursor(top), frozenset(ids))

        # One statement, so the ids and the new cursor come from one snapshot.
        return await self._call(run, read_only=True, tx=False)

    async def wait_changes(self, cursor: str, timeout: float) -> Changes:
        """Like :meth:`changes_since`, waiting up to ``timeout`` seconds for a change
        announced by any process (``LISTEN``); while the listening connection is down,
        the feed is checked every second instead."""
        await self._ensure_listener()
        generation = self._generation
        found = await self.changes_since(cursor)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while not found.ids and not found.reset:
            left = deadline - loop.time()
            if left <= 0:
                break
            self._wakeup.clear()  # before the check: a change announced after it sets it
            if self._generation == generation:
                step = left if self._listening.is_set() else min(left, _POLL_FALLBACK)
                try:
                    await asyncio.wait_for(self._wakeup.wait(), step)
                except TimeoutError:
                    if self._listening.is_set():
                        continue
            generation = self._generation
            found = await self.changes_since(cursor)
        return found

    async def _ensure_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        # Listening before the first check: a change announced in between is not lost.
        # (When it cannot listen, wait_changes polls instead.)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 2.0)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=5
                )
                try:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._listening.set()
                    self._bump()  # whatever happened while not listening
                    delay = 0.1
                    async for _ in conn.notifies():
                        self._bump()
                finally:
                    self._listening.clear()
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _bump(self) -> None:
        self._generation += 1
        self._wakeup.set()

    # -- history -------------------------------------------------------------------------
    async def _ensure_partitions(self, needed: set[dt.datetime]) -> None:
        """Create the monthly partitions (by their first instant, UTC) that samples
        about to be written need, in their own transaction (DDL inside the write would
        lock the table until its end)."""
        missing = needed - self._partitions
        if not missing or self._timescale:
            return

        async def run(conn: Conn) -> None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", [self.schema]
            )
            for start in sorted(missing):
                await add_partition(conn, self._n, HIS, start)

        await self._call(run)
        self._partitions |= missing

    async def his_write(self, batch: Mapping[str, HisChunk]) -> int:
        """Add samples to several points in one transaction: all of them or none.

        The samples are packed into chunks (``_history`` says how); a sample at an
        instant already stored replaces it, whatever its kind.  New chunks go in by
        binary COPY; the chunks that get samples among theirs are read, deleted and
        written again, merged, in the same transaction.
        """
        ids = list(batch)
        if not ids:
            return 0
        runs = {id: prepare(chunk.ts, chunk.val) for id, chunk in batch.items() if len(chunk)}
        needed = {start for run in runs.values() for start, _, _ in months(run.ts)}
        await self._ensure_partitions(needed)
        try:
            return await self._call(self._his_write_tx(ids, runs))
        except pgerrors.CheckViolation:
            # A partition this process believed in is gone (dropped or archived): make
            # the partitions again and write once more (nothing was applied).
            self._partitions.clear()
            await self._ensure_partitions(needed)
            return await self._call(self._his_write_tx(ids, runs))

    def _his_write_tx(
        self, ids: list[str], runs: Mapping[str, Run]
    ) -> Callable[[Conn], Awaitable[int]]:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                sql.SQL("SELECT id FROM {} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE").format(
                    self._entities
                ),
                [ids],
            )
            found = {r[0] for r in await cur.fetchall()}
            if len(found) < len(ids):
                raise UnknownEntityError(i for i in ids if i not in found)
            written = [i for i in ids if i in runs]
            if not written:
                return 0
            # A point's Numbers are kept in the unit of its first one.
            units = [_first_unit(runs[i].val) for i in written]
            cur = await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, unit) SELECT * FROM unnest(%s::text[], %s::text[])"
                    " ON CONFLICT (id) DO NOTHING RETURNING id"
                ).format(self._points),
                [written, units],
            )
            fresh = {r[0] for r in await cur.fetchall()}
            cur = await conn.execute(
                sql.SQL(
                    "SELECT id, pid, unit FROM {} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
                ).format(self._points),
                [written],
            )
            points = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
            groups: list[tuple[int, dt.datetime, Samples]] = []
            lookup: list[int] = []  # the groups of points that may have chunks already
            for id in written:
                pid, unit = points[id]
                his = runs[id]
                for start, a, b in months(his.ts):
                    if id not in fresh:
                        lookup.append(len(groups))
                    groups.append((pid, start, samples_of(his.ts[a:b], his.val[a:b], unit)))
            headers = await self._headers(conn, groups, lookup)
            rows: list[Any] = []
            rewrite: list[tuple[int, Header, Samples]] = []
            for k, (pid, _, new) in enumerate(groups):
                plan_ = plan(new, headers.get(k, ()), self._chunk)
                rewrite.extend((pid, head, part) for head, part in plan_.rewrite)
                for part in plan_.alone:
                    rows.extend(pieces(pid, part, self._chunk))
            if rewrite:
                cur = conn.cursor(binary=True)
                await cur.execute(
                    sql.SQL(
                        "DELETE FROM {} h USING unnest(%s::int4[], %s::timestamptz[])"
                        " WITH ORDINALITY d(pid, t_lo, k)"
                        " WHERE h.pid = d.pid AND h.t_lo = d.t_lo"
                        " RETURNING d.k, h.ts, h.num, h.bool, h.str, h.other"
                    ).format(self._n(HIS)),
                    [[pid for pid, _, _ in rewrite], [head.t_lo for _, head, _ in rewrite]],
                )
                before = {r[0]: stored(r[1:]) for r in await cur.fetchall()}
                for k, (pid, head, part) in enumerate(rewrite, 1):
                    merged = merge(before[k], part)
                    # Samples past a chunk's end fill it up; samples among its own
                    # leave room in every piece for more.
                    inside = part.ts[0] <= head.last
                    rows.extend(pieces(pid, merged, self._chunk, balanced=inside))
            async with conn.cursor().copy(
                sql.SQL(
                    "COPY {} (pid, t_lo, ts, num, bool, str, other) FROM STDIN WITH (FORMAT BINARY)"
                ).format(self._n(HIS))
            ) as cp:
                cp.set_types(COPY_TYPES)
                write = cp.write_row
                for row in rows:
                    await write(row)
            return sum(len(runs[i].ts) for i in written)

        return run

    async def _headers(
        self, conn: Conn, groups: Sequence[tuple[int, dt.datetime, Samples]], which: list[int]
    ) -> dict[int, list[Header]]:
        """For the groups numbered ``which`` (each a point's month of new samples), the
        headers of the chunks its samples may belong to: from the floor chunk of its
        first sample (or that sample) to its last sample, within the month; one
        statement."""
        if not which:
            return {}
        chosen = [groups[k] for k in which]
        cur = await conn.execute(
            sql.SQL(
                "SELECT g.i, c.t_lo, c.ts[cardinality(c.ts)], cardinality(c.ts)"
                " FROM unnest(%s::int4[], %s::int4[], %s::timestamptz[], %s::timestamptz[],"
                "  %s::timestamptz[], %s::timestamptz[]) g(i, pid, lo, hi, ms, me)"
                " CROSS JOIN LATERAL (SELECT c.t_lo, c.ts FROM {his} c"
                "  WHERE c.pid = g.pid AND c.t_lo >= g.ms AND c.t_lo < g.me AND c.t_lo <= g.hi"
                "  AND c.t_lo >= coalesce((SELECT max(f.t_lo) FROM {his} f WHERE f.pid = g.pid"
                "   AND f.t_lo >= g.ms AND f.t_lo <= g.lo), g.lo)) c"
                " ORDER BY g.i, c.t_lo"
            ).format(his=self._n(HIS)),
            [
                which,
                [pid for pid, _, _ in chosen],
                [s.ts[0] for _, _, s in chosen],
                [s.ts[-1] for _, _, s in chosen],
                [start for _, start, _ in chosen],
                [next_month(start) for _, start, _ in chosen],
            ],
        )
        out: dict[int, list[Header]] = {}
        for i, t_lo, last, n in await cur.fetchall():
            out.setdefault(i, []).append(Header(t_lo, last, n))
        return out

    async def his_read(
        self,
        ids: Sequence[str],
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        tz: dt.tzinfo,
        limit: int | None = None,
    ) -> list[Sequence[HisChunk]]:
        """Each point's samples in ``[start, end)``, oldest first, at most ``limit`` in
        all (taken point by point in the order of ``ids``).

        One statement for all the points: each point's chunks of the range are found
        by the primary key ``(pid, t_lo)`` within the partitions of the range only, and
        come back cut to the range as arrays (timestamps already in ``tz``), which
        psycopg loads in C.
        """
        if not ids:
            return []
        if limit is not None and limit <= 0:
            return [() for _ in ids]
        query = self._his_sql[len(ids) > 1 and limit is not None, limit is not None]
        params: dict[str, Any] = {
            "ids": list(ids),
            "lo": start,
            "hi": end,
            "ms": None if start is None else month_start(start),
            "limit": limit,
        }
        zone = tz.key if isinstance(tz, zoneinfo.ZoneInfo) and tz.key else "UTC"

        async def run(conn: Conn) -> list[Any]:
            if conn.info.parameter_status("TimeZone") != zone:
                try:
                    await conn.execute("SELECT set_config('TimeZone', %s, false)", [zone])
                except psycopg.DataError:  # a zone PostgreSQL does not know: convert here
                    await conn.execute("SELECT set_config('TimeZone', 'UTC', false)")
            cur = conn.cursor(binary=True)
            await cur.execute(query, params)
            return await cur.fetchall()

        rows = await self._call(run, read_only=True, tx=False)
        out: list[Sequence[HisChunk]] = [() for _ in ids]
        for ord_, point in itertools.groupby(rows, key=operator.itemgetter(0)):
            times: list[dt.datetime] = []
            vals: list[Any] = []
            for _, unit, ts, num, bools, strs, other in point:
                times += ts
                vals += decode_chunk(unit, num, bools, strs, other, len(ts))
            if times[0].tzinfo is not tz:
                times = [t.astimezone(tz) for t in times]
            out[ord_ - 1] = (HisChunk(tuple(times), tuple(vals)),)
        return out

    # -- priority arrays -----------------------------------------------------------------
    async def point_write(
        self,
        id: str,
        level: int | None,
        entry: PriorityLevel | None,
        *,
        now: dt.datetime,
    ) -> dict[int, PriorityLevel] | None:
        """A pointWrite in one transaction holding the point's row: expire, apply the
        level, store the array, and merge the ``writeVal`` it yields into the point."""

        async def run(conn: Conn) -> dict[int, PriorityLevel] | None:
            cur = await conn.execute(
                sql.SQL("SELECT tags::text FROM {} WHERE id = %s FOR NO KEY UPDATE").format(
                    self._entities
                ),
                [id],
            )
            row = await cur.fetchone()
            if row is None:
                return None
            # The array is read by a statement of its own, after the lock is held: a
            # statement that waited for a row lock re-reads only the locked row, so an
            # array joined to it would be the one from before the lock holder's commit,
            # and writing it back would undo that writer's level.
            cur = await conn.execute(
                sql.SQL("SELECT levels FROM {} WHERE id = %s").format(self._priority), [id]
            )
            held = await cur.fetchone()
            entity = decode_tags(row[0])
            levels = decode_levels(held[0]) if held is not None and held[0] else {}
            decided = apply_point_write(entity, levels, level, entry, now)
            if decided.levels != levels:
                if decided.levels:
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (id, levels) VALUES (%s, %s)"
                            " ON CONFLICT (id) DO UPDATE SET levels = EXCLUDED.levels"
                        ).format(self._priority),
                        [id, encode_levels(decided.levels)],
                    )
                else:
                    await conn.execute(
                        sql.SQL("DELETE FROM {} WHERE id = %s").format(self._priority), [id]
                    )
            if decided.changes:
                removed, patch = self._patch(decided.changes)
                await self._merge(conn, id, removed, patch)
            return dict(decided.levels)

        return await self._call(run)

    # -- watches -------------------------------------------------------------------------
    def _watch(self, row: Sequence[Any]) -> Watch:
        wid, dis, owner, lease, expires, size = row
        return Watch(wid, dis, owner, lease, expires, size)

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
        """Open or add to a watch in one transaction, within its caps (the owner's
        name is locked while watches are counted, the watch's row while ids are)."""
        wanted = list(dict.fromkeys(ids))

        async def run(conn: Conn) -> WatchSub | None:
            await self._sweep(conn, now)
            top, _ = await self._top(conn)
            if watch_id is None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 3))",
                    [self.schema + "\x1f" + user],
                )
                cur = await conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE owner = %s AND expires > %s").format(
                        self._watches
                    ),
                    [user, now],
                )
                row = await cur.fetchone()
                if row is not None and row[0] >= max_watches:
                    raise WatchLimitError("watches", max_watches)
                wid = "w-" + secrets.token_hex(12)
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, owner, dis, lease, expires, cursor)"
                        " VALUES (%s, %s, %s, %s, %s, %s)"
                    ).format(self._watches),
                    [wid, user, dis, lease, now + lease, top],
                )
            else:
                if not await self._lock_watch(conn, watch_id, user, any_owner, now):
                    return None
                wid = watch_id
            cur = await conn.execute(
                sql.SQL(
                    "WITH fresh AS ("
                    "  SELECT u.id FROM unnest(%(ids)s::text[]) u(id) JOIN {e} e ON e.id = u.id"
                    "  WHERE NOT EXISTS"
                    "   (SELECT 1 FROM {wi} w WHERE w.watch = %(w)s AND w.id = u.id)),"
                    " held AS (SELECT size FROM {w} WHERE id = %(w)s)"
                    " SELECT (SELECT size FROM held), (SELECT count(*) FROM fresh),"
                    "  ARRAY(SELECT id FROM fresh)"
                ).format(e=self._entities, wi=self._watch_ids, w=self._watches),
                {"ids": wanted, "w": wid},
            )
            row = await cur.fetchone()
            assert row is not None
            size, fresh, fresh_ids = int(row[0]), int(row[1]), row[2]
            if size + fresh > max_ids:
                raise WatchLimitError("ids", max_ids)
            if fresh_ids:
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (watch, id, since) SELECT %s, u.id, %s"
                        " FROM unnest(%s::text[]) u(id)"
                    ).format(self._watch_ids),
                    [wid, top, fresh_ids],
                )
            cur = await conn.execute(
                sql.SQL(
                    "UPDATE {} SET lease = %s, expires = %s, size = size + %s WHERE id = %s"
                    " RETURNING id, dis, owner, lease, expires, size"
                ).format(self._watches),
                [lease, now + lease, fresh, wid],
            )
            header = await cur.fetchone()
            assert header is not None
            records = await self._records(conn, list(ids))
            return WatchSub(self._watch(header), records)

        return await self._call(run)

    async def _lock_watch(
        self, conn: Conn, watch_id: str, user: str, any_owner: bool, now: dt.datetime
    ) -> bool:
        """Lock a watch's row; whether it is live and ``user``'s (or ``any_owner``)."""
        cur = await conn.execute(
            sql.SQL("SELECT owner, expires FROM {} WHERE id = %s FOR UPDATE").format(self._watches),
            [watch_id],
        )
        row = await cur.fetchone()
        return row is not None and row[1] > now and (row[0] == user or any_owner)

    async def _records(self, conn: Conn, ids: list[str]) -> list[FrozenDict | None]:
        if not ids:
            return []
        cur = await conn.execute(
            sql.SQL(
                "SELECT '[' || string_agg(coalesce(e.tags::text, 'null'), ',' ORDER BY u.ord)"
                " || ']' FROM unnest(%s::text[]) WITH ORDINALITY u(id, ord)"
                " LEFT JOIN {} e ON e.id = u.id"
            ).format(self._entities),
            [ids],
        )
        row = await cur.fetchone()
        return decode_many(row[0]) if row and row[0] else [None] * len(ids)

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
        """Unsubscribe ids, or close the watch; the owner is checked in the same
        transaction."""

        async def run(conn: Conn) -> bool:
            if not await self._lock_watch(conn, watch_id, user, any_owner, now):
                return False
            if close:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE id = %s").format(self._watches), [watch_id]
                )
                return True
            if ids:
                await conn.execute(
                    sql.SQL(
                        "WITH gone AS (DELETE FROM {wi} WHERE watch = %(w)s AND id = ANY(%(ids)s)"
                        " RETURNING 1)"
                        " UPDATE {w} SET size = size - (SELECT count(*) FROM gone) WHERE id = %(w)s"
                    ).format(wi=self._watch_ids, w=self._watches),
                    {"w": watch_id, "ids": list(ids)},
                )
            return True

        return await self._call(run)

    async def watch_poll(
        self,
        watch_ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        refresh: bool,
        now: dt.datetime,
    ) -> list[list[str] | None]:
        """Each watch's ids changed since its last poll, read from the change feed (the
        cost follows the changes, not the ids held), in one transaction."""
        wanted = list(dict.fromkeys(watch_ids))

        async def run(conn: Conn) -> list[list[str] | None]:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT id, owner, expires, cursor FROM {} WHERE id = ANY(%s)"
                    " ORDER BY id FOR UPDATE"
                ).format(self._watches),
                [wanted],
            )
            live: dict[str, int] = {}
            for wid, owner, expires, cursor in await cur.fetchall():
                if expires > now and (owner == user or any_owner):
                    live[wid] = cursor
            if not live:
                return [None] * len(watch_ids)
            top, floor = await self._top(conn)
            whole = [w for w, c in live.items() if refresh or c < floor]
            partial = [w for w in live if w not in whole]
            changed: dict[str, list[str]] = {w: [] for w in live}
            if whole:
                cur = await conn.execute(
                    sql.SQL("SELECT watch, id FROM {} WHERE watch = ANY(%s)").format(
                        self._watch_ids
                    ),
                    [whole],
                )
                for wid, id in await cur.fetchall():
                    changed[wid].append(id)
            if partial:
                cur = await conn.execute(
                    sql.SQL(
                        "SELECT DISTINCT w.id, i.id FROM {w} w"
                        " JOIN {c} c ON c.seq > w.cursor"
                        " CROSS JOIN LATERAL unnest(c.ids) WITH ORDINALITY u(id, k)"
                        " JOIN {wi} i ON i.watch = w.id AND i.id = u.id"
                        # The position of each id in its batch row.
                        "  AND c.seq - c.n + u.k > i.since"
                        " WHERE w.id = ANY(%(watches)s) AND c.seq - c.n + u.k > w.cursor"
                        " AND c.seq - c.n + u.k <= %(top)s"
                    ).format(w=self._watches, c=self._changes, wi=self._watch_ids),
                    {"top": top, "watches": partial},
                )
                for wid, id in await cur.fetchall():
                    changed[wid].append(id)
            await conn.execute(
                sql.SQL(
                    "UPDATE {} SET cursor = %s, expires = %s::timestamptz + lease"
                    " WHERE id = ANY(%s)"
                ).format(self._watches),
                [top, now, list(live)],
            )
            return [changed.get(w) if w in live else None for w in watch_ids]

        return await self._call(run)

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""

        async def run(conn: Conn) -> User | None:
            cur = await conn.execute(
                sql.SQL("SELECT data FROM {} WHERE username = %s").format(self._users),
                [username],
            )
            row = await cur.fetchone()
            return None if row is None else decode_user(row[0])

        return await self._call(run, read_only=True, tx=False)

    async def list_users(self) -> list[User]:
        """Every user, by name."""

        async def run(conn: Conn) -> list[User]:
            cur = await conn.execute(
                sql.SQL('SELECT data FROM {} ORDER BY username COLLATE "C"').format(self._users)
            )
            return [decode_user(r[0]) for r in await cur.fetchall()]

        return await self._call(run, read_only=True, tx=False)

    async def create_user(self, user: User) -> None:
        """Add a user whose name is free (one statement: of concurrent creates, one
        wins and the others get :class:`~projecthaystack.server.UserExistsError`)."""

        async def run(conn: Conn) -> None:
            cur = await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (username, data) VALUES (%s, %s) ON CONFLICT DO NOTHING"
                ).format(self._users),
                [user.username, encode_user(user)],
            )
            if cur.rowcount != 1:
                raise UserExistsError(f"user {user.username!r} already exists")

        await self._call(run, tx=False)

    async def update_user(self, username: str, changes: UserChanges) -> User:
        """Change a user, and end their sessions in the same transaction when the
        change revokes (a new password, disabling)."""

        async def run(conn: Conn) -> User:
            cur = await conn.execute(
                sql.SQL("SELECT data FROM {} WHERE username = %s FOR UPDATE").format(self._users),
                [username],
            )
            row = await cur.fetchone()
            if row is None:
                raise UnknownUserError(f"no user {username!r}")
            updated = changes.apply(decode_user(row[0]))
            await conn.execute(
                sql.SQL("UPDATE {} SET data = %s WHERE username = %s").format(self._users),
                [encode_user(updated), username],
            )
            if changes.revokes:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE username = %s").format(self._sessions),
                    [username],
                )
            return updated

        return await self._call(run)

    async def delete_user(self, username: str) -> bool:
        """Remove a user and every session of theirs."""

        async def run(conn: Conn) -> bool:
            await conn.execute(
                sql.SQL("DELETE FROM {} WHERE username = %s").format(self._sessions), [username]
            )
            cur = await conn.execute(
                sql.SQL("DELETE FROM {} WHERE username = %s").format(self._users), [username]
            )
            return cur.rowcount > 0

        return await self._call(run)

    # -- sessions ------------------------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session under its token hash."""

        async def run(conn: Conn) -> None:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (token_hash, username, expires) VALUES (%s, %s, %s)"
                    " ON CONFLICT (token_hash) DO UPDATE"
                    " SET username = EXCLUDED.username, expires = EXCLUDED.expires"
                ).format(self._sessions),
                [session.token_hash, session.username, session.expires],
            )

        await self._call(run, tx=False)

    async def authenticate(self, token_hash: str, now: dt.datetime) -> tuple[Session, User] | None:
        """The live session of a token hash with its user: one statement."""

        async def run(conn: Conn) -> tuple[Session, User] | None:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT s.username, s.expires, u.data FROM {} s"
                    " JOIN {} u ON u.username = s.username"
                    " WHERE s.token_hash = %s AND s.expires > %s"
                ).format(self._sessions, self._users),
                [token_hash, now],
            )
            row = await cur.fetchone()
            if row is None:
                return None
            return Session(token_hash, row[0], row[1]), decode_user(row[2])

        return await self._call(run, read_only=True, tx=False)

    async def delete_session(self, token_hash: str) -> None:
        """Revoke one session."""

        async def run(conn: Conn) -> None:
            await conn.execute(
                sql.SQL("DELETE FROM {} WHERE token_hash = %s").format(self._sessions),
                [token_hash],
            )

        await self._call(run, tx=False)

    # -- handshakes and throttling ---------------------------------------------------------
    async def claim_handshake(self, key: str, expires: dt.datetime, now: dt.datetime) -> bool:
        """Record a completed handshake: one statement, so exactly one concurrent
        claim inserts (or takes over an expired record)."""

        async def run(conn: Conn) -> bool:
            await self._sweep(conn, now)
            cur = await conn.execute(
                sql.SQL(
                    "INSERT INTO {c} AS c (key, expires) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires"
                    " WHERE c.expires <= %s RETURNING 1"
                ).format(c=self._claims),
                [key, expires, now],
            )
            return await cur.fetchone() is not None

        return await self._call(run)

    async def throttle(
        self,
        limits: Mapping[str, int],
        window: dt.timedelta,
        now: dt.datetime,
        *,
        record: bool = True,
    ) -> bool:
        """Judge and count a login attempt in one transaction, under an advisory lock
        per counter (taken in a fixed order)."""
        keys = sorted(limits)
        if not keys:
            return True
        cutoff = now - window

        async def run(conn: Conn) -> bool:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s || k, 5))"
                " FROM unnest(%s::text[]) WITH ORDINALITY u(k, o) ORDER BY o",
                [self.schema + "\x1f", keys],
            )
            # A key's window starts at its first attempt (in the order recorded) that is
            # younger than the window: the same as by time while ``now`` only grows.
            cur = await conn.execute(
                sql.SQL(
                    "SELECT a.key, count(*) FROM {a} a WHERE a.key = ANY(%(keys)s) AND a.n >= ("
                    " SELECT min(b.n) FROM {a} b WHERE b.key = a.key AND b.at > %(cut)s)"
                    " GROUP BY a.key"
                ).format(a=self._attempts),
                {"keys": keys, "cut": cutoff},
            )
            counts = dict(await cur.fetchall())
            if any(counts.get(k, 0) >= limits[k] for k in keys):
                return False
            if record:
                await conn.execute(
                    sql.SQL(
                        "WITH old AS (DELETE FROM {a} a"
                        "  WHERE a.key = ANY(%(keys)s) AND a.n < coalesce("
                        "   (SELECT min(b.n) FROM {a} b WHERE b.key = a.key AND b.at > %(cut)s),"
                        "   9223372036854775807))"
                        " INSERT INTO {a} (key, at)"
                        "  SELECT k, %(now)s FROM unnest(%(keys)s::text[]) k"
                    ).format(a=self._attempts),
                    {"keys": keys, "cut": cutoff, "now": now},
                )
            return True

        return await self._call(run)

    async def forgive(self, *, refund: Sequence[str] = (), clear: Sequence[str] = ()) -> None:
        """Take back the attempt that succeeded under each ``refund`` key, and forget
        every attempt under each ``clear`` key."""
        if not refund and not clear:
            return

        async def run(conn: Conn) -> None:
            await conn.execute(
                sql.SQL(
                    "DELETE FROM {a} WHERE key = ANY(%(clear)s) OR n IN ("
                    " SELECT max(n) FROM {a} WHERE key = ANY(%(refund)s) GROUP BY key)"
                ).format(a=self._attempts),
                {"clear": list(clear), "refund": list(refund)},
            )

        await self._call(run)

    # -- upkeep --------------------------------------------------------------------------
    async def _sweep(self, conn: Conn, now: dt.datetime) -> None:
        """Now and then, delete what has expired (expired things are already treated as
        absent; this only keeps the tables small)."""
        clock = time.monotonic()
        if clock - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = clock
        for table in (self._sessions, self._claims, self._watches):
            await conn.execute(sql.SQL("DELETE FROM {} WHERE expires <= %s").format(table), [now])
        await conn.execute(
            sql.SQL("DELETE FROM {} WHERE at <= %s").format(self._attempts),
            [now - dt.timedelta(days=2)],
        )


def open_store(url: str) -> PgStore:
    """A :class:`PgStore` for ``postgresql://user@host:port/dbname?schema=name``, the
    entry point of the ``projecthaystack.stores`` group for ``postgresql:`` and
    ``postgres:`` URLs.

    ``schema`` (default ``haystack``), ``pool_min``, ``pool_max`` (default 1 and 8
    connections) and ``pool_timeout`` (seconds to wait for a connection, default 10)
    are read here; every other parameter goes to libpq.  The store is not connected
    until ``await store.open()``.

    >>> open_store("postgresql://app@db.example/bms?schema=site_a&pool_max=20").schema
    'site_a'
    """
    conninfo, ours = split_url(url)
    try:
        pool_min = int(ours.get("pool_min", "1"))
        pool_max = int(ours.get("pool_max", str(max(8, pool_min))))
        timeout = float(ours.get("pool_timeout", "10"))
    except ValueError:
        raise PgStoreError("pool_min, pool_max and pool_timeout must be numbers") from None
    return PgStore(
        conninfo,
        schema=ours.get("schema", DEFAULT_SCHEMA),
        min_size=pool_min,
        max_size=pool_max,
        timeout=timeout,
    )
