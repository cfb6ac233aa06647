"""History on TimescaleDB, used only where the extension is installed.

UNTESTED HERE: TimescaleDB is not installable on the machines this package is built and
tested on, so this path is kept to the one statement that differs.  With the
``timescaledb`` extension in the database when a store's schema is first created, the
history table is made a hypertable with monthly chunks (on ``t_lo``, the first instant
of each packed run of samples) instead of a natively partitioned table; TimescaleDB then
creates its chunks as data arrives, so the store creates no partitions itself
(``meta.history`` says which layout a store has).  Everything else (the primary key
``(pid, t_lo)``, the writes, the range reads) is the same SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from ._schema import Names

__all__ = ["hypertable"]


def hypertable(n: Names, table: str, column: str) -> sql.Composed:
    """The statement that makes ``table`` a hypertable of monthly chunks by the
    timestamp ``column``."""
    # The table named by catalogue lookup, so that no identifier is quoted by hand.
    return sql.SQL(
        "SELECT create_hypertable("
        "(SELECT c.oid FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = {} AND c.relname = {})::regclass,"
        " {}, chunk_time_interval => interval '1 month')"
    ).format(sql.Literal(n.schema), sql.Literal(table), sql.Literal(column))
