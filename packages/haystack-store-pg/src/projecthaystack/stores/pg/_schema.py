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
``changes``        the change feed: ``seq`` (from ``change_seq``), ``id``
``his_points``     one row per point with history: ``pid`` (a small integer the samples
                   carry), ``unit`` (its Numbers' unit, kept once), ``kinds`` (which
                   sample tables hold its samples, a bit each)
``his_num``        ``(pid, ts, val float8)``; ``his_bool`` (``val bool``), ``his_str``
                   (``val text``), ``his_any`` (``val jsonb``: other kinds, Numbers in
                   another unit, Strs with NUL): each partitioned by month of ``ts``,
                   primary key ``(pid, ts)``
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

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from projecthaystack.server import SchemaError

__all__ = [
    "HIS_TABLES",
    "LATEST_VERSION",
    "MIGRATIONS",
    "Migration",
    "Names",
    "migrate",
    "schema_version",
]

HIS_TABLES: Final = (("his_num", "float8"), ("his_bool", "boolean"), ("his_str", "text"))
HIS_ANY: Final = "his_any"


class Names:
    """Schema-qualified identifiers of one store's tables."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.ident = sql.Identifier(schema)

    def __call__(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, and its statements (which
    may depend on the database, hence the connection)."""

    version: int
    description: str
    statements: Callable[[Names, bool], Sequence[sql.Composed]]


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
    for table, kind in (*HIS_TABLES, (HIS_ANY, "jsonb")):
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

            out.append(hypertable(n, table))
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


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "entities (JSONB tags, GIN index, first-put order) and the change feed", _v1),
    Migration(2, "history: typed sample tables partitioned by month, points with units", _v2),
    Migration(3, "priority arrays, watches, users, sessions, handshake claims, attempts", _v3),
)
LATEST_VERSION: Final = MIGRATIONS[-1].version

Conn = psycopg.AsyncConnection[Any]


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
                await conn.execute(
                    sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(
                        names("schema_version")
                    ),
                    [step.version, step.description],
                )
    return before, max(before, min(upto, LATEST_VERSION))
