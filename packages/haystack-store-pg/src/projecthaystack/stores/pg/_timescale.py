"""History on TimescaleDB, used only where the extension is installed.

UNTESTED HERE: TimescaleDB is not installable on the machines this package is built and
tested on, so this path is kept to the one statement that differs.  With the
``timescaledb`` extension in the database when a store's schema is first created, the
sample tables are made hypertables with monthly chunks instead of natively partitioned
tables; TimescaleDB then creates chunks as data arrives, so the store creates no
partitions itself (``meta.history`` says which layout a store has).  Everything else
(the primary key ``(pid, ts)``, the upserts, the range reads) is the same SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from ._schema import Names

__all__ = ["hypertable"]


def hypertable(n: Names, table: str) -> sql.Composed:
    """The statement that makes ``table`` (a plain table with a ``ts`` column) a
    hypertable of monthly chunks."""
    # The table named by catalogue lookup, so that no identifier is quoted by hand.
    return sql.SQL(
        "SELECT create_hypertable("
        "(SELECT c.oid FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = {} AND c.relname = {})::regclass,"
        " 'ts', chunk_time_interval => interval '1 month')"
    ).format(sql.Literal(n.schema), sql.Literal(table))
