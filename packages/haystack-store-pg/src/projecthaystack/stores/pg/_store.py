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
from psycopg.types.json import Jsonb
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
from ._jsonb import (
    decode_many,
    decode_tags,
    decode_value,
    encode_many,
    encode_tags,
    encode_value,
)
from ._schema import HIS_ANY, LATEST_VERSION, Names, migrate

__all__ = ["DEFAULT_SCHEMA", "FEED_SIZE", "PgStore", "open_store", "split_url"]

DEFAULT_SCHEMA: Final = "haystack"
FEED_SIZE: Final = 100_000
"""Changes the feed keeps; a cursor older than that gets a reset."""
_OUR_PARAMS: Final = ("schema", "pool_min", "pool_max", "pool_timeout")
_SWEEP_EVERY: Final = 60.0  # seconds between sweeps of expired rows, per store object
_POLL_FALLBACK: Final = 1.0  # seconds between feed checks while LISTEN is down

# Sample tables, each a bit in his_points.kinds.
_NUM, _BOOL, _STR, _ANY = 1, 2, 4, 8
_TABLE_BITS: Final = {"his_num": _NUM, "his_bool": _BOOL, "his_str": _STR, HIS_ANY: _ANY}
_TYPES: Final = {"his_num": "float8", "his_bool": "bool", "his_str": "text", HIS_ANY: "jsonb"}

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


def _identity(text: Any) -> Any:
    return text


def _month(when: dt.datetime) -> tuple[int, int]:
    utc = when.astimezone(dt.UTC)
    return utc.year, utc.month


def _months(lo: dt.datetime, hi: dt.datetime) -> list[tuple[int, int]]:
    """Every (year, month) in UTC from ``lo``'s to ``hi``'s."""
    (y, m), last = _month(lo), _month(hi)
    out = []
    while (y, m) <= last:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _nones(like: Sequence[Any]) -> list[None]:
    return [None] * len(like)


def _month_start(y: int, m: int) -> dt.datetime:
    return dt.datetime(y, m, 1, tzinfo=dt.UTC)


async def _configure(conn: Conn) -> None:
    # Filter queries are many small plans whose estimates can pass jit_above_cost;
    # compiling them takes seconds, running them milliseconds.
    await conn.execute("SET jit = off")


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
        self._partitions: set[tuple[str, int, int]] = set()
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
        """The entities with these ids, in order, ``None`` where there is none."""
        if not ids:
            return []
        query = sql.SQL(
            "SELECT '[' || string_agg(coalesce(e.tags::text, 'null'), ',' ORDER BY u.ord) || ']'"
            " FROM unnest(%s::text[]) WITH ORDINALITY u(id, ord) LEFT JOIN {} e ON e.id = u.id"
        ).format(self._entities)

        async def run(conn: Conn) -> list[FrozenDict | None]:
            cur = await conn.execute(query, [list(ids)])
            row = await cur.fetchone()
            return decode_many(row[0]) if row and row[0] else [None] * len(ids)

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
        """Insert or replace whole entities by id, all or none: one statement (the batch
        travels as one JSON array, encoded in one call and parsed once by the server)
        and the feed, in one transaction."""
        batch: dict[str, Mapping[str, Any]] = {}
        for record in records:
            batch[entity_id(record)] = record
        if not batch:
            return
        text = encode_many(batch.values())

        async def run(conn: Conn) -> None:
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
                [text],
            )
            await self._record_changes(conn, list(batch))

        await self._call(run)

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
                for table in _TABLE_BITS:
                    await conn.execute(
                        sql.SQL("DELETE FROM {} WHERE pid = ANY(%s)").format(self._n(table)),
                        [pids],
                    )
            await self._record_changes(conn, gone)
            return len(gone)

        return await self._call(run)

    # -- the change feed -------------------------------------------------------------------
    async def _record_changes(self, conn: Conn, ids: Sequence[str]) -> None:
        """Append ``ids`` to the feed inside the caller's transaction, and announce it.

        The advisory lock is held to the end of the transaction, so feed positions
        commit in order: a reader that has seen position n has seen every one below."""
        cur = await conn.execute(
            sql.SQL(
                "WITH lock AS (SELECT pg_advisory_xact_lock(hashtextextended(%(schema)s, 1))),"
                " ins AS (INSERT INTO {} (seq, id)"
                "  SELECT nextval({}), u.id FROM lock, unnest(%(ids)s::text[]) u(id)"
                "  RETURNING seq)"
                " SELECT pg_notify(%(channel)s, ''), (SELECT max(seq) FROM ins)"
            ).format(self._changes, self._change_seq),
            {"schema": self.schema, "ids": list(ids), "channel": self._channel},
        )
        row = await cur.fetchone()
        top = int(row[1]) if row and row[1] is not None else 0
        if top // 1024 != (top - len(ids)) // 1024:  # about every 1024 changes
            await conn.execute(
                sql.SQL(
                    "WITH cut AS (DELETE FROM {c} WHERE seq <= %(floor)s)"
                    " UPDATE {m} SET value = greatest(value::bigint, %(floor)s)::text"
                    " WHERE key = 'feed_floor'"
                ).format(c=self._changes, m=self._meta),
                {"floor": top - FEED_SIZE},
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
            " ARRAY(SELECT DISTINCT id FROM {c} WHERE seq > %s)"
            " FROM (SELECT value::bigint AS floor FROM {m} WHERE key = 'feed_floor') f"
        ).format(c=self._changes, m=self._meta)

        async def run(conn: Conn) -> Changes:
            cur = await conn.execute(query, [2**62 if seq is None else seq])
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
    async def _ensure_partitions(self, needed: set[tuple[str, int, int]]) -> None:
        """Create the monthly partitions that samples about to be written need, in their
        own transaction (DDL inside the write would lock the tables until its end)."""
        missing = needed - self._partitions
        if not missing or self._timescale:
            return

        async def run(conn: Conn) -> None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", [self.schema]
            )
            for table, y, m in sorted(missing):
                name = f"{table}_{y:04d}{m:02d}"
                cur = await conn.execute(
                    "SELECT 1 FROM pg_catalog.pg_class c"
                    " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
                    " WHERE s.nspname = %s AND c.relname = %s",
                    [self.schema, name],
                )
                if await cur.fetchone() is None:
                    end = (y + 1, 1) if m == 12 else (y, m + 1)
                    # Made apart, then attached: ATTACH PARTITION locks the parent only
                    # against other DDL, where CREATE TABLE ... PARTITION OF takes its
                    # ACCESS EXCLUSIVE lock, waits behind every read of history and
                    # deadlocks with a read that holds another history table.
                    await conn.execute(
                        sql.SQL("CREATE TABLE {} (LIKE {})").format(self._n(name), self._n(table))
                    )
                    attach = sql.SQL(
                        "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                    )
                    await conn.execute(
                        attach.format(
                            self._n(table),
                            self._n(name),
                            sql.Literal(_month_start(y, m)),
                            sql.Literal(_month_start(*end)),
                        )
                    )

        await self._call(run)
        self._partitions |= missing

    async def his_write(self, batch: Mapping[str, HisChunk]) -> int:
        """Add samples to several points in one transaction: all of them or none.

        Each sample goes to the table of its kind (``his_num`` for Numbers in the
        point's unit, ``his_bool``, ``his_str``, ``his_any`` for the rest); a sample at
        an instant already stored replaces it, whichever table held it.
        """
        ids = list(batch)
        if not ids:
            return 0
        needed: set[tuple[str, int, int]] = set()
        first_unit: dict[str, str | None] = {}
        for id, chunk in batch.items():
            if not len(chunk):
                continue
            tables: set[str] = set()
            for v in chunk.val:
                t = type(v)
                if t is Number:
                    tables.update(("his_num", HIS_ANY))
                    first_unit.setdefault(id, v.unit)
                elif t is bool:
                    tables.add("his_bool")
                else:
                    tables.update(("his_str", HIS_ANY) if t is str else (HIS_ANY,))
                if len(tables) == 4:
                    break
            for month in _months(min(chunk.ts), max(chunk.ts)):
                needed.update((table, *month) for table in tables)
        await self._ensure_partitions(needed)
        try:
            return await self._call(self._his_write_tx(ids, batch, first_unit))
        except pgerrors.CheckViolation:
            # A partition this process believed in is gone (dropped or archived): make
            # the partitions again and write once more (nothing was applied).
            self._partitions.clear()
            await self._ensure_partitions(needed)
            return await self._call(self._his_write_tx(ids, batch, first_unit))

    def _his_write_tx(
        self, ids: list[str], batch: Mapping[str, HisChunk], first_unit: Mapping[str, str | None]
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
            written = [i for i in ids if len(batch[i])]
            if not written:
                return 0
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, unit) SELECT * FROM unnest(%s::text[], %s::text[])"
                    " ON CONFLICT (id) DO NOTHING"
                ).format(self._points),
                [written, [first_unit.get(i) for i in written]],
            )
            cur = await conn.execute(
                sql.SQL(
                    "SELECT id, pid, unit, kinds FROM {} WHERE id = ANY(%s)"
                    " ORDER BY id FOR NO KEY UPDATE"
                ).format(self._points),
                [written],
            )
            points = {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}
            return await self._his_rows(conn, batch, points)

        return run

    async def _his_rows(
        self,
        conn: Conn,
        batch: Mapping[str, HisChunk],
        points: Mapping[str, tuple[int, str | None, int]],
    ) -> int:
        rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLE_BITS}
        kinds_after: dict[int, int] = {}
        mixed = False
        count = 0
        for id, (pid, unit, kinds) in points.items():
            chunk = batch[id]
            count += len(chunk)
            num, bools, strs = rows["his_num"], rows["his_bool"], rows["his_str"]
            other = rows[HIS_ANY]
            bits = 0
            for ts, v in zip(chunk.ts, chunk.val, strict=True):
                t = type(v)
                if t is Number and v.unit == unit:
                    num.append((ts, v.val, pid))
                    bits |= _NUM
                elif t is bool:
                    bools.append((ts, v, pid))
                    bits |= _BOOL
                elif t is str and "\x00" not in v:
                    strs.append((ts, v, pid))
                    bits |= _STR
                else:
                    other.append((ts, Jsonb(encode_value(v), dumps=_identity), pid))
                    bits |= _ANY
            if (kinds | bits) != bits or bits & (bits - 1):
                mixed = True  # an instant may move from one table to another
            if kinds | bits != kinds:
                kinds_after[pid] = kinds | bits
        for table, table_rows in rows.items():
            if table_rows:
                await self._write_samples(conn, table, table_rows, staged=mixed)
        if mixed:
            await self._drop_moved(conn, rows)
        if kinds_after:
            await conn.execute(
                sql.SQL(
                    "UPDATE {} p SET kinds = u.kinds"
                    " FROM unnest(%s::int[], %s::smallint[]) u(pid, kinds) WHERE p.pid = u.pid"
                ).format(self._points),
                [list(kinds_after), list(kinds_after.values())],
            )
        return count

    async def _write_samples(
        self, conn: Conn, table: str, rows: list[tuple[Any, ...]], *, staged: bool
    ) -> None:
        """COPY rows into ``table``: straight in when none of them is there yet (the
        usual case, new samples), else through a staging table and an upsert."""
        types = ["timestamptz", _TYPES[table], "int4"]
        target = self._n(table)
        if not staged:
            try:
                async with conn.transaction():  # a savepoint: a clash undoes only this
                    await self._copy(conn, target, types, rows)
                return
            except pgerrors.UniqueViolation:
                pass
        stage = sql.Identifier(f"haystack_stage_{table}")
        await conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (ts timestamptz, val {}, pid int4)"
                " ON COMMIT DELETE ROWS"
            ).format(stage, sql.SQL(_TYPES[table]))
        )
        await self._copy(conn, stage, types, rows)
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (ts, val, pid) SELECT ts, val, pid FROM {}"
                " ON CONFLICT (pid, ts) DO UPDATE SET val = EXCLUDED.val"
            ).format(target, stage)
        )

    @staticmethod
    async def _copy(
        conn: Conn, table: sql.Identifier, types: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        statement = sql.SQL("COPY {} (ts, val, pid) FROM STDIN WITH (FORMAT BINARY)")
        async with conn.cursor().copy(statement.format(table)) as cp:
            cp.set_types(types)
            write = cp.write_row
            for row in rows:
                await write(row)

    async def _drop_moved(self, conn: Conn, rows: Mapping[str, list[tuple[Any, ...]]]) -> None:
        """Delete the samples of other tables at the instants just written to one (a
        sample that changed kind moves tables)."""
        for table, table_rows in rows.items():
            if not table_rows:
                continue
            stage = sql.Identifier(f"haystack_stage_{table}")
            for other in _TABLE_BITS:
                if other != table:
                    await conn.execute(
                        sql.SQL(
                            "DELETE FROM {o} t USING {s} s WHERE t.pid = s.pid AND t.ts = s.ts"
                        ).format(o=self._n(other), s=stage)
                    )

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

        One statement for all the points: each sample table is read by its primary key
        ``(pid, ts)`` within the partitions of the range only, a table only when the
        point has samples in it, and each point's samples come back as one row of
        arrays (timestamps already in ``tz``), which psycopg loads in C.
        """
        if not ids:
            return []
        if limit is not None and limit <= 0:
            return [() for _ in ids]
        query = self._his_sql(len(ids) > 1 and limit is not None, limit is not None)
        params: dict[str, Any] = {"ids": list(ids), "lo": start, "hi": end, "limit": limit}
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
        for ord_, unit, tss, nums, bools, strs, anys in rows:
            if not tss:
                continue
            if nums is not None and bools is None and strs is None and anys is None:
                vals: list[Any] = [Number(v, unit) for v in nums]
            else:
                vals = [
                    Number(n, unit)
                    if n is not None
                    else b
                    if b is not None
                    else s
                    if s is not None
                    else decode_value(j)
                    for n, b, s, j in zip(
                        nums or _nones(tss),
                        bools or _nones(tss),
                        strs or _nones(tss),
                        anys or _nones(tss),
                        strict=True,
                    )
                ]
            times: list[dt.datetime] = tss
            if any(a >= b for a, b in itertools.pairwise(times)):
                pairs = sorted(zip(times, vals, strict=True), key=lambda pair: pair[0])
                times, vals = [t for t, _ in pairs], [v for _, v in pairs]
            zoned = times if times[0].tzinfo is tz else [t.astimezone(tz) for t in times]
            out[ord_ - 1] = (HisChunk(tuple(zoned), tuple(vals)),)
        return out

    def _his_sql(self, quotas: bool, limited: bool) -> sql.Composed:
        """The statement of :meth:`his_read`: with ``quotas``, each point gets what the
        points before it in ``ids`` left of ``%(limit)s`` (counted, at most the limit
        each, in the same statement)."""
        branches = []
        for table, bit in _TABLE_BITS.items():
            cols = ["NULL::float8", "NULL::boolean", "NULL::text", "NULL::text"]
            cols[list(_TABLE_BITS).index(table)] = "val::text" if table == HIS_ANY else "val"
            branches.append(
                sql.SQL(
                    "SELECT ts, {cols} FROM {t} h WHERE p.kinds & {bit} <> 0 AND h.pid = p.pid"
                    " AND h.ts >= coalesce(%(lo)s::timestamptz, '-infinity')"
                    " AND h.ts < coalesce(%(hi)s::timestamptz, 'infinity')"
                ).format(cols=sql.SQL(", ").join(map(sql.SQL, cols)), t=self._n(table), bit=bit)
            )
        samples = sql.SQL(" UNION ALL ").join(branches)
        points = sql.SQL(
            "SELECT u.ord, h.pid, h.unit, h.kinds FROM unnest(%(ids)s::text[])"
            " WITH ORDINALITY u(id, ord) JOIN {} h ON h.id = u.id"
        ).format(self._points)
        if quotas:
            points = sql.SQL(
                "SELECT c.*, greatest(0, least(c.n, %(limit)s - coalesce(sum(c.n) OVER"
                " (ORDER BY c.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS q"
                " FROM (SELECT p.*, (SELECT count(*) FROM ({samples} LIMIT %(limit)s) k) AS n"
                "  FROM ({points}) p) c"
            ).format(samples=samples, points=points)
            quota = sql.SQL("p.q")
        else:
            quota = sql.SQL("%(limit)s" if limited else "ALL")
        # Aggregated in the order of the sorted subquery (PostgreSQL keeps it; the
        # caller still checks), which spares a second sort of every sample.
        return sql.SQL(
            "SELECT p.ord, p.unit, s.* FROM ({points}) p CROSS JOIN LATERAL ("
            " SELECT array_agg(x.ts) AS ts,"
            "  CASE WHEN p.kinds & 1 <> 0 THEN array_agg(x.num) END,"
            "  CASE WHEN p.kinds & 2 <> 0 THEN array_agg(x.b) END,"
            "  CASE WHEN p.kinds & 4 <> 0 THEN array_agg(x.s) END,"
            "  CASE WHEN p.kinds & 8 <> 0 THEN array_agg(x.j) END"
            " FROM ({samples} ORDER BY ts LIMIT {quota}) x(ts, num, b, s, j)) s"
        ).format(points=points, samples=samples, quota=quota)

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
                cur = await conn.execute(
                    sql.SQL("SELECT owner, expires FROM {} WHERE id = %s FOR UPDATE").format(
                        self._watches
                    ),
                    [watch_id],
                )
                row = await cur.fetchone()
                if row is None or row[1] <= now or (row[0] != user and not any_owner):
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
            cur = await conn.execute(
                sql.SQL("SELECT owner, expires FROM {} WHERE id = %s FOR UPDATE").format(
                    self._watches
                ),
                [watch_id],
            )
            row = await cur.fetchone()
            if row is None or row[1] <= now or (row[0] != user and not any_owner):
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
                        " JOIN {c} c ON c.seq > w.cursor AND c.seq <= %s"
                        " JOIN {wi} i ON i.watch = w.id AND i.id = c.id AND c.seq > i.since"
                        " WHERE w.id = ANY(%s)"
                    ).format(w=self._watches, c=self._changes, wi=self._watch_ids),
                    [top, partial],
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
