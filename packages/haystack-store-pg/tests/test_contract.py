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
from projecthaystack.server import HisChunk, PriorityLevel
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

    @pytest.mark.anyio
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

    @pytest.mark.anyio
    async def test_new_months_of_history_do_not_deadlock_readers(
        self, stores: tuple[PgStore, PgStore]
    ) -> None:
        # Found by the scale-out rig: a month's partitions used to be made with CREATE
        # TABLE ... PARTITION OF, which takes the parent's ACCESS EXCLUSIVE lock and
        # deadlocked with reads of several history tables (503s under load).
        a, b = stores
        ids = ["n", "s", "f", "w"]
        await a.put_entities(
            [{"id": Ref(i), "point": Marker, "his": Marker, "unit": "kW"} for i in ids]
        )
        t0 = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
        await a.his_write({i: HisChunk((t0,), (Number(1, "kW"),)) for i in ids})
        done = asyncio.Event()

        async def read() -> int:
            reads = 0
            while not done.is_set():
                await b.his_read(ids, t0, t0 + dt.timedelta(days=400), tz=dt.UTC)
                reads += 1
            return reads

        readers = [asyncio.ensure_future(read()) for _ in range(3)]
        try:
            for month in range(1, 9):
                ts = (t0 + dt.timedelta(days=31 * month),)
                await a.his_write(
                    {
                        "n": HisChunk(ts, (Number(2, "kW"),)),
                        "s": HisChunk(ts, ("text",)),
                        "f": HisChunk(ts, (True,)),
                        "w": HisChunk(ts, (Number(3, "W"),)),
                    }
                )
        finally:
            done.set()
        assert all(n > 0 for n in await asyncio.gather(*readers))
        (n,) = await b.his_read(["n"], t0, None, tz=dt.UTC)
        assert sum(len(c) for c in n) == 9
