"""The store's tables, created and upgraded by numbered migrations.

Every store lives in its own PostgreSQL schema (``haystack`` unless told otherwise).
``schema_version`` records each migration applied; :func:`migrate` applies the missing
ones in order, in one transaction, under an advisory lock so that workers opening the
same store at once do not race.  A store written by a newer version of this package is
refused (:class:`~projecthaystack.server.SchemaError`) rather than guessed at.

The layout (see the package README for sizes):

=================  =====================================================================
table              what
=================  =====================================================================
``meta``           ``epoch`` (a random name of this store, in every feed cursor),
                   ``feed_floor`` (the feed position trimmed up to), ``history``
                   (``partitions`` or ``timescaledb``)
``entities``       one row per entity: ``id``, ``seq`` (first put, the query order),
                   ``tags`` (JSONB, Haystack JSON v4; GIN index)
``changes``        the change feed, one row per write: ``ids`` (the entities written, at
                   consecutive positions), ``n`` (how many), ``seq`` (the last
                   position, from ``change_seq``; the first is ``seq - n + 1``)
``his_points``     one row per point with history: ``pid`` (a small integer the samples
                   carry), ``unit`` (its Numbers' unit, kept once)
``his``            samples packed in chunks of up to :data:`CHUNK_SAMPLES`, one row per
                   chunk: ``pid``, ``t_lo`` (its first instant), ``ts`` (its instants,
                   ascending), and one array per kind, ``num`` (``float8``, Numbers in
                   the point's unit), ``bool``, ``str`` (``text``) and ``other`` (JSON
                   text: other kinds, Numbers in another unit, Strs with NUL), each NULL
                   when the chunk has no such sample, else as long as ``ts`` with NULLs
                   where another kind is; partitioned by month (UTC) of ``t_lo``, no
                   chunk crossing a month; primary key ``(pid, t_lo)``
``priority``       ``id``, ``levels`` (``storeforms.encode_levels``)
``watches``        ``id``, ``owner``, ``dis``, ``lease``, ``expires``, ``cursor``
                   (feed position of the last poll), ``size``
``watch_ids``      ``(watch, id)`` with ``since`` (feed position when added)
``users``          ``username``, ``data`` (``storeforms.encode_user``)
``sessions``       ``token_hash``, ``username``, ``expires``
``claims``         completed handshakes: ``key``, ``expires``
``attempts``       login attempts: ``key``, ``at``
=================  =====================================================================
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from projecthaystack.server import SchemaError

__all__ = [
    "CHUNK_SAMPLES",
    "HIS",
    "LATEST_VERSION",
    "MIGRATIONS",
    "Migration",
    "Names",
    "add_partition",
    "migrate",
    "month_start",
    "partition",
    "schema_version",
]

HIS: Final = "his"
CHUNK_SAMPLES: Final = 120
"""Samples a history chunk holds at most.  120 Numbers make a row of just under 2 KB,
the size above which PostgreSQL would compress it or move it out of line (TOAST): rows
stay inline, four to a page, about 17 bytes a sample with the index."""

# The sample tables of schema version 2 and 3, one row per sample.
_V2_TABLES: Final = (
    ("his_num", "float8"),
    ("his_bool", "boolean"),
    ("his_str", "text"),
    ("his_any", "jsonb"),
)


class Names:
    """Schema-qualified identifiers of one store's tables."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.ident = sql.Identifier(schema)

    def __call__(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)


Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, its statements (which may
    depend on whether TimescaleDB is there), and a step that moves data, run after
    them in the same transaction."""

    version: int
    description: str
    statements: Callable[[Names, bool], Sequence[sql.Composed]]
    data: Callable[[Conn, Names, bool], Awaitable[None]] | None = None


def month_start(when: dt.datetime) -> dt.datetime:
    """The first instant of ``when``'s month in UTC (the history's partitions)."""
    utc = when.astimezone(dt.UTC)
    return dt.datetime(utc.year, utc.month, 1, tzinfo=dt.UTC)


def next_month(start: dt.datetime) -> dt.datetime:
    """The first instant of the month after the one starting at ``start``."""
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def partition(n: Names, table: str, start: dt.datetime) -> sql.Composed:
    """The statement that makes ``table``'s partition for the month starting at
    ``start`` unless it is there."""
    create = "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
    return sql.SQL(create).format(
        n(f"{table}_{start.year:04d}{start.month:02d}"),
        n(table),
        sql.Literal(start),
        sql.Literal(next_month(start)),
    )


async def add_partition(conn: Conn, n: Names, table: str, start: dt.datetime) -> None:
    """Make ``table``'s partition for the month starting at ``start`` unless it is there,
    without stopping readers: ``CREATE TABLE ... PARTITION OF`` takes an ACCESS EXCLUSIVE
    lock on the parent, waits behind every read of history and deadlocks with a read
    holding another table; a table made apart and then attached (``ATTACH PARTITION``
    locks the parent only against other DDL) does not.  Callers hold the store's
    partition lock, so two never make the same one."""
    name = f"{table}_{start.year:04d}{start.month:02d}"
    cur = await conn.execute(
        "SELECT 1 FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = %s AND c.relname = %s",
        [n.schema, name],
    )
    if await cur.fetchone() is not None:
        return
    await conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(n(name), n(table)))
    attach = sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})")
    await conn.execute(
        attach.format(n(table), n(name), sql.Literal(start), sql.Literal(next_month(start)))
    )


def _v1(n: Names, timescale: bool) -> list[sql.Composed]:
    return [
        sql.SQL("CREATE TABLE {} (key text PRIMARY KEY, value text NOT NULL)").format(n("meta")),
        sql.SQL("INSERT INTO {} VALUES ('epoch', {}), ('feed_floor', '0')").format(
            n("meta"), sql.Literal(secrets.token_hex(8))
        ),
        sql.SQL("CREATE SEQUENCE {} AS bigint").format(n("entity_seq")),
        sql.SQL(
            "CREATE TABLE {} (id text PRIMARY KEY, seq bigint NOT NULL, tags jsonb NOT NULL)"
        ).format(n("entities")),
        # jsonb_ops (not jsonb_path_ops): it answers both `?` (has) and `@>` (==).
        sql.SQL("CREATE INDEX entities_tags ON {} USING gin (tags)").format(n("entities")),
        sql.SQL("CREATE INDEX entities_seq ON {} (seq)").format(n("entities")),
        sql.SQL("CREATE SEQUENCE {} AS bigint").format(n("change_seq")),
        sql.SQL("CREATE TABLE {} (seq bigint PRIMARY KEY, id text NOT NULL)").format(n("changes")),
    ]


def _v2(n: Names, timescale: bool) -> list[sql.Composed]:
    out = [
        sql.SQL(
            "CREATE TABLE {} ("
            " id text PRIMARY KEY,"
            " pid integer GENERATED ALWAYS AS IDENTITY UNIQUE,"
            " unit text,"
            " kinds smallint NOT NULL DEFAULT 0)"
        ).format(n("his_points")),
        sql.SQL("INSERT INTO {} VALUES ('history', {})").format(
            n("meta"), sql.Literal("timescaledb" if timescale else "partitions")
        ),
    ]
    for table, kind in _V2_TABLES:
        # Columns in this order pack a row into 24 bytes of data (ts, val, pid) for
        # numbers; the primary key's index also serves every range read.
        out.append(
            sql.SQL(
                "CREATE TABLE {} (ts timestamptz NOT NULL, val {} NOT NULL, pid integer NOT NULL,"
                " PRIMARY KEY (pid, ts) WITH (fillfactor = 100)){}"
            ).format(
                n(table),
                sql.SQL(kind),
                sql.SQL("") if timescale else sql.SQL(" PARTITION BY RANGE (ts)"),
            )
        )
        if timescale:
            from ._timescale import hypertable

            out.append(hypertable(n, table, "ts"))
    return out


def _v3(n: Names, timescale: bool) -> list[sql.Composed]:
    return [
        sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, levels text NOT NULL)").format(
            n("priority")
        ),
        sql.SQL(
            "CREATE TABLE {} ("
            " id text PRIMARY KEY,"
            " owner text NOT NULL,"
            " dis text NOT NULL,"
            " lease interval NOT NULL,"
            " expires timestamptz NOT NULL,"
            " cursor bigint NOT NULL,"
            " size integer NOT NULL DEFAULT 0)"
        ).format(n("watches")),
        sql.SQL("CREATE INDEX watches_owner ON {} (owner, expires)").format(n("watches")),
        sql.SQL(
            "CREATE TABLE {} ("
            " watch text NOT NULL REFERENCES {} ON DELETE CASCADE,"
            " id text NOT NULL,"
            " since bigint NOT NULL,"
            " PRIMARY KEY (watch, id))"
        ).format(n("watch_ids"), n("watches")),
        sql.SQL("CREATE TABLE {} (username text PRIMARY KEY, data text NOT NULL)").format(
            n("users")
        ),
        sql.SQL(
            "CREATE TABLE {} ("
            " token_hash text PRIMARY KEY,"
            " username text NOT NULL,"
            " expires timestamptz NOT NULL)"
        ).format(n("sessions")),
        sql.SQL("CREATE INDEX sessions_user ON {} (username)").format(n("sessions")),
        sql.SQL("CREATE INDEX sessions_expires ON {} (expires)").format(n("sessions")),
        sql.SQL("CREATE TABLE {} (key text PRIMARY KEY, expires timestamptz NOT NULL)").format(
            n("claims")
        ),
        sql.SQL(
            "CREATE TABLE {} ("
            " n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " key text NOT NULL,"
            " at timestamptz NOT NULL)"
        ).format(n("attempts")),
        sql.SQL("CREATE INDEX attempts_key ON {} (key, at)").format(n("attempts")),
    ]


def _v4(n: Names, timescale: bool) -> list[sql.Composed]:
    out = [
        sql.SQL(
            "CREATE TABLE {} ("
            " pid integer NOT NULL,"
            " t_lo timestamptz NOT NULL,"
            " ts timestamptz[] NOT NULL,"
            " num float8[],"
            " bool boolean[],"
            " str text[],"
            " other text[],"
            " PRIMARY KEY (pid, t_lo)){}"
        ).format(n(HIS), sql.SQL("") if timescale else sql.SQL(" PARTITION BY RANGE (t_lo)"))
    ]
    if timescale:
        from ._timescale import hypertable

        out.append(hypertable(n, HIS, "t_lo"))
    return out


async def _v4_data(conn: Conn, n: Names, timescale: bool) -> None:
    """Pack the samples of the one-row-per-sample tables into chunks, then drop them."""
    old = [
        sql.SQL("SELECT pid, ts, {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("val::text" if table == "his_any" else "val")
                if table == other
                else sql.SQL("NULL::{}").format(sql.SQL("text" if other == "his_any" else kind))
                for other, kind in _V2_TABLES
            ),
            n(table),
        )
        for table, _ in _V2_TABLES
    ]
    samples = sql.SQL(" UNION ALL ").join(old)
    if not timescale:
        cur = await conn.execute(
            sql.SQL(
                "SELECT DISTINCT date_trunc('month', s.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                " FROM ({}) s(pid, ts, num, b, s, o)"
            ).format(samples)
        )
        for (start,) in await cur.fetchall():
            await conn.execute(partition(n, HIS, month_start(start)))
    await conn.execute(
        sql.SQL(
            "INSERT INTO {his} (pid, t_lo, ts, num, bool, str, other)"
            " SELECT pid, min(ts), array_agg(ts ORDER BY ts),"
            "  CASE WHEN count(num) > 0 THEN array_agg(num ORDER BY ts) END,"
            "  CASE WHEN count(b) > 0 THEN array_agg(b ORDER BY ts) END,"
            "  CASE WHEN count(s) > 0 THEN array_agg(s ORDER BY ts) END,"
            "  CASE WHEN count(o) > 0 THEN array_agg(o ORDER BY ts) END"
            " FROM (SELECT x.*, date_trunc('month', x.ts AT TIME ZONE 'UTC') AS month,"
            "  (row_number() OVER (PARTITION BY x.pid, date_trunc('month', x.ts AT TIME ZONE 'UTC')"
            "   ORDER BY x.ts) - 1) / {size} AS chunk"
            "  FROM ({samples}) x(pid, ts, num, b, s, o)) y"
            " GROUP BY pid, month, chunk"
        ).format(his=n(HIS), samples=samples, size=sql.Literal(CHUNK_SAMPLES))
    )
    for table, _ in _V2_TABLES:
        await conn.execute(sql.SQL("DROP TABLE {}").format(n(table)))
    await conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN kinds").format(n("his_points")))


def _v5(n: Names, timescale: bool) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE TABLE {} (seq bigint PRIMARY KEY, n integer NOT NULL, ids text[] NOT NULL)"
        ).format(n("changes_batches")),
        sql.SQL("INSERT INTO {} (seq, n, ids) SELECT seq, 1, ARRAY[id] FROM {}").format(
            n("changes_batches"), n("changes")
        ),
        sql.SQL("DROP TABLE {}").format(n("changes")),
        sql.SQL("ALTER TABLE {} RENAME TO changes").format(n("changes_batches")),
        sql.SQL("ALTER INDEX {} RENAME TO changes_pkey").format(n("changes_batches_pkey")),
    ]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "entities (JSONB tags, GIN index, first-put order) and the change feed", _v1),
    Migration(2, "history: typed sample tables partitioned by month, points with units", _v2),
    Migration(3, "priority arrays, watches, users, sessions, handshake claims, attempts", _v3),
    Migration(4, "history packed in chunks of samples, one row each, by month", _v4, _v4_data),
    Migration(5, "the change feed: one row per write, its ids at consecutive positions", _v5),
)
LATEST_VERSION: Final = MIGRATIONS[-1].version


async def schema_version(conn: Conn, names: Names) -> int:
    """The version of the store's schema, 0 when it has none yet."""
    cur = await conn.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
        [names.schema, "schema_version"],
    )
    if await cur.fetchone() is None:
        return 0
    cur = await conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(names("schema_version"))
    )
    row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def _has_timescale(conn: Conn) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb'")
    return await cur.fetchone() is not None


async def migrate(
    conn: Conn,
    names: Names,
    *,
    upto: int = LATEST_VERSION,
    timescale: bool | None = None,
) -> tuple[int, int]:
    """Bring the store's schema up to version ``upto``; ``(before, after)``.

    Runs in one transaction on ``conn``: either every missing migration is applied or
    none is.  Raises :class:`~projecthaystack.server.SchemaError` when the store is
    newer than this package.  History uses TimescaleDB hypertables when the extension
    is installed in the database (``timescale=None`` looks), else native partitions.
    """
    async with conn.transaction():
        # One opener at a time per schema; the others wait, then find nothing to do.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7414))", [names.schema]
        )
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(names.ident))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " version int PRIMARY KEY,"
                " description text NOT NULL,"
                " applied timestamptz NOT NULL DEFAULT now())"
            ).format(names("schema_version"))
        )
        before = await schema_version(conn, names)
        if before > LATEST_VERSION:
            raise SchemaError(
                f"the store in schema {names.schema!r} has schema version {before}, newer than"
                f" this haystack-store-pg knows ({LATEST_VERSION}): upgrade the package"
            )
        if timescale is None:
            timescale = await _has_timescale(conn)
        for step in MIGRATIONS:
            if before < step.version <= upto:
                for statement in step.statements(names, timescale):
                    await conn.execute(statement)
                if step.data is not None:
                    await step.data(conn, names, timescale)
                await conn.execute(
                    sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(
                        names("schema_version")
                    ),
                    [step.version, step.description],
                )
    return before, max(before, min(upto, LATEST_VERSION))
