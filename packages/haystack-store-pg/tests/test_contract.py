"""The storage protocol's contract suite, on two PgStore instances sharing one schema
of the test database (as two server processes would share it), and what PostgreSQL
adds to it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import PriorityLevel
from projecthaystack.server.storetests import StoreContract
from projecthaystack.stores.pg import PgStore

from .conftest import PG_URL


class TestPgStore(StoreContract):
    @pytest.fixture
    async def stores(self, schema: str) -> AsyncIterator[tuple[PgStore, PgStore]]:
        a = PgStore(PG_URL, schema=schema, max_size=4)
        b = PgStore(PG_URL, schema=schema, max_size=4)
        await a.open()
        await b.open()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()

    async def reopen_with_schema(self, store: PgStore, schema: int) -> PgStore:  # type: ignore[override]
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (version, description) VALUES (%s, 'from the future')"
                ).format(sql.Identifier(store.schema, "schema_version")),
                [schema],
            )
        return PgStore(PG_URL, schema=store.schema)

    async def test_concurrent_point_writes_at_two_levels_keep_both(
        self, stores: tuple[PgStore, PgStore]
    ) -> None:
        # Found by the scale-out rig (tools/scaleout): a pointWrite that waited for the
        # point's row lock used to read the array as it was before the lock holder
        # committed (PostgreSQL re-reads only the locked row after the wait, not the
        # rows joined to it) and wrote it back, undoing the other worker's level.
        a, b = stores
        now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        await a.put_entities([{"id": Ref("p"), "point": Marker, "writable": Marker}])
        for i in range(60):
            await asyncio.gather(
                a.point_write("p", 10, PriorityLevel(Number(i), "a"), now=now),
                b.point_write("p", 11, PriorityLevel(Number(i), "b"), now=now),
            )
            levels = await a.point_write("p", None, None, now=now)
            assert levels is not None
            assert (levels[10].val, levels[10].who) == (Number(i), "a"), f"round {i}"
            assert (levels[11].val, levels[11].who) == (Number(i), "b"), f"round {i}"
        (point,) = await b.get_entities(["p"])
        assert point is not None
        assert point["writeVal"] == Number(59)
        assert point["writeLevel"] == Number(10)
