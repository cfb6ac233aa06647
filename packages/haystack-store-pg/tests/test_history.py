"""History: chunks in monthly partitions made as data arrives, range reads that touch
only the partitions of their range, samples that change kind or unit, and values kept
exactly (NaN, ±INF, -0.0, NUL in a Str, long strings, any kind)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projecthaystack.kinds import NA, Coord, FrozenDict, Marker, Number, Ref, tz_from_name
from projecthaystack.server import HisChunk, UnknownEntityError
from projecthaystack.stores.pg import PgStore

from .conftest import PG_URL

NY = tz_from_name("New_York")
T0 = dt.datetime(2026, 1, 20, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def chunk(pairs: list[tuple[dt.datetime, Any]]) -> HisChunk:
    return HisChunk(tuple(t for t, _ in pairs), tuple(v for _, v in pairs))


async def read(store: PgStore, id: str, **kw: Any) -> list[tuple[dt.datetime, Any]]:
    (chunks,) = await store.his_read([id], kw.pop("start", None), kw.pop("end", None), tz=NY, **kw)
    return [pair for c in chunks for pair in zip(c.ts, c.val, strict=True)]


async def partitions(schema: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_inherits i"
            " JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
            " WHERE s.nspname = %s AND c.relkind = 'r' ORDER BY 1",
            [schema],
        )
        return [r[0] for r in await cur.fetchall()]


@pytest.mark.anyio
async def test_partitions_are_made_by_month_as_data_arrives(store: PgStore, schema: str) -> None:
    await store.put_entities([{"id": Ref("p")}, {"id": Ref("b")}])
    assert await partitions(schema) == []
    # Samples from January 20 to March 1 (UTC): three months, Numbers only.
    samples = [(T0 + i * 24 * HOUR, Number(float(i), "kW")) for i in range(41)]
    assert await store.his_write({"p": chunk(samples)}) == 41
    assert await partitions(schema) == ["his_202601", "his_202602", "his_202603"]
    await store.his_write({"b": chunk([(T0 - 30 * 24 * HOUR, True)])})
    assert await partitions(schema) == ["his_202512", "his_202601", "his_202602", "his_202603"]
    got = await read(store, "p", start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    assert [v.val for _, v in got] == [float(i) for i in range(12, 41)]


@pytest.mark.anyio
async def test_a_range_read_plans_only_its_partitions(store: PgStore, schema: str) -> None:
    await store.put_entities([{"id": Ref("p")}])
    samples = [(T0 + i * 24 * HOUR, Number(float(i))) for i in range(60)]
    await store.his_write({"p": chunk(samples)})
    lo, hi = dt.datetime(2026, 2, 3, tzinfo=dt.UTC), dt.datetime(2026, 2, 4, tzinfo=dt.UTC)
    query = store._his_sql[False, False]
    params = {"ids": ["p"], "lo": lo, "hi": hi, "ms": lo.replace(day=1), "limit": None}
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params)
        row = await cur.fetchone()
        assert row is not None
        plan = json.dumps(row[0])
    assert "his_202602" in plan
    assert "his_202601" not in plan and "his_202603" not in plan
    assert [v.val for _, v in await read(store, "p", start=lo, end=hi)] == [14.0]


@pytest.mark.anyio
async def test_a_dropped_partition_is_made_again(store: PgStore, schema: str) -> None:
    await store.put_entities([{"id": Ref("p")}])
    await store.his_write({"p": chunk([(T0, Number(1))])})
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        # An operator archives January: the store's own notion of its partitions is stale.
        await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, "his_202601")))
    assert await store.his_write({"p": chunk([(T0 + HOUR, Number(2))])}) == 1
    assert [v for _, v in await read(store, "p")] == [Number(2)]


@pytest.mark.anyio
async def test_samples_change_kind_and_unit_in_place(store: PgStore) -> None:
    await store.put_entities([{"id": Ref("p")}])
    t = [T0 + i * HOUR for i in range(4)]
    await store.his_write({"p": chunk([(t[0], Number(1, "kW")), (t[1], Number(2, "kW"))])})
    await store.his_write({"p": chunk([(t[1], "two"), (t[2], True)])})
    await store.his_write({"p": chunk([(t[2], Number(3, "W")), (t[3], Number(4, "kW"))])})
    assert [v for _, v in await read(store, "p")] == [
        Number(1, "kW"),
        "two",
        Number(3, "W"),  # another unit than the point's first: kept exactly all the same
        Number(4, "kW"),
    ]
    await store.his_write({"p": chunk([(t[1], Number(2, "kW"))])})
    assert [v for _, v in await read(store, "p")][1] == Number(2, "kW")


EXACT: list[Any] = [
    Number(math.nan),
    Number(math.inf, "kW"),
    Number(-math.inf),
    Number(-0.0),
    Number(5e-324),
    Number(1.7976931348623157e308, "m"),
    "",
    "nul \x00 inside",
    "\x01\x00\x01",
    "x" * 1_000_000,
    "é😀\\\"'",
    True,
    False,
    Marker,
    NA,
    Ref("r", "Dis"),
    Coord(45.5, -120.25),
    FrozenDict({"a": Number(1), "b": [Ref("x"), "\x00"]}),
    dt.date(2026, 1, 1),
    dt.time(12, 30, 0, 123000),
    dt.datetime(2026, 1, 1, 12, tzinfo=NY),
]


@pytest.mark.anyio
async def test_values_round_trip_exactly(store: PgStore) -> None:
    await store.put_entities([{"id": Ref("p")}])
    pairs = [(T0 + i * HOUR, v) for i, v in enumerate(EXACT)]
    await store.his_write({"p": chunk(pairs)})
    got = await read(store, "p")
    assert [t for t, _ in got] == [t for t, _ in pairs]
    for (_, want), (_, have) in zip(pairs, got, strict=True):
        assert have == want and type(have) is type(want)
        if type(want) is Number:
            assert math.copysign(1, have.val) == math.copysign(1, want.val)


@pytest.mark.anyio
async def test_a_big_batch_over_many_points_and_months(store: PgStore) -> None:
    ids = [f"p{i}" for i in range(20)]
    await store.put_entities([{"id": Ref(i)} for i in ids])
    start = dt.datetime(2025, 12, 31, tzinfo=NY)
    batch = {
        id: chunk([(start + dt.timedelta(minutes=15 * k), Number(k + n)) for k in range(5000)])
        for n, id in enumerate(ids)
    }
    assert await store.his_write(batch) == 100_000
    got = await store.his_read(ids, None, None, tz=NY)
    assert [sum(len(c) for c in chunks) for chunks in got] == [5000] * 20
    assert got[3][0].val[10] == Number(13)
    capped = await store.his_read(ids[:3], None, None, tz=NY, limit=7000)
    assert [sum(len(c) for c in chunks) for chunks in capped] == [5000, 2000, 0]
    # All or nothing: with one unknown point, not one sample more is kept.
    later = {id: chunk([(start - HOUR, Number(-1))]) for id in ids}
    with pytest.raises(UnknownEntityError):
        await store.his_write({**later, "nope": chunk([(start, Number(0))])})
    after = await store.his_read(ids, None, None, tz=NY)
    assert [c[0].val[0] for c in after] == [Number(n) for n in range(20)]
