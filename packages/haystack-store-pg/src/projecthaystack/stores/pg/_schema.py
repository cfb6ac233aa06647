"""The store's tables, created and upgraded by numbered migrations.

Every store lives in its own PostgreSQL schema (``haystack`` unless told otherwise).
``schema_version`` records each migration applied; :func:`migrate` applies the missing
ones in order, in one transaction, under an advisory lock so that workers opening the
same store at once do not race.  A store written by a newer version of this package is
refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg import sql

from ._errors import SchemaError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "Names", "migrate", "schema_version"]


class Names:
    """Schema-qualified identifiers of one store's tables."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.ident = sql.Identifier(schema)

    def __call__(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, and its statements."""

    version: int
    description: str
    statements: Callable[[Names], Sequence[sql.Composed]]


def _v1(n: Names) -> list[sql.Composed]:
    # seq orders entities as first inserted; version (from the same sequence) changes
    # on every write, which watches compare.
    return [
        sql.SQL("CREATE SEQUENCE {} AS bigint").format(n("entity_seq")),
        sql.SQL(
            "CREATE TABLE {} ("
            " id text PRIMARY KEY,"
            " seq bigint NOT NULL,"
            " version bigint NOT NULL,"
            " tags jsonb NOT NULL)"
        ).format(n("entities")),
        # jsonb_ops (not jsonb_path_ops): it answers both `?` (has) and `@>` (==).
        sql.SQL("CREATE INDEX entities_tags ON {} USING gin (tags)").format(n("entities")),
        sql.SQL("CREATE INDEX entities_seq ON {} (seq)").format(n("entities")),
    ]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "entities: JSONB tags, GIN index, insertion order", _v1),
)
LATEST_VERSION: Final = MIGRATIONS[-1].version


async def schema_version(conn: psycopg.AsyncConnection[tuple[object, ...]], names: Names) -> int:
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
    return int(row[0]) if row is not None else 0  # type: ignore[call-overload]


async def migrate(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    names: Names,
    *,
    upto: int = LATEST_VERSION,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> tuple[int, int]:
    """Bring the store's schema up to version ``upto``; ``(before, after)``.

    Runs in one transaction on ``conn``: either every missing migration is applied or
    none is.  Raises :class:`SchemaError` when the store is newer than this package.
    """
    async with conn.transaction():
        # One opener at a time per schema; others wait, then find nothing to do.
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
        for step in migrations:
            if before < step.version <= upto:
                for statement in step.statements(names):
                    await conn.execute(statement)
                await conn.execute(
                    sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(
                        names("schema_version")
                    ),
                    [step.version, step.description],
                )
        after = max(before, min(upto, LATEST_VERSION))
    return before, after
