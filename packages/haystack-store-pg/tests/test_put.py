"""Puts of entities: large batches of new ids go in by COPY, the others by one upsert,
and both keep first-put order, replace whole records and feed the change feed."""

from __future__ import annotations

import asyncio
import json
import math
from typing import cast

import psycopg
import pytest
from psycopg import sql

from projecthaystack.filter import parse
from projecthaystack.kinds import FrozenDict, Marker, Number, Ref
from projecthaystack.stores.pg import PgStore
from projecthaystack.stores.pg._store import _COPY_FROM

from .conftest import PG_URL

ODD = {
    "nul": "a\x00b",
    "ones": "\x01\x01\x00",
    "copy": "tab\there\nnew line\r\\N \\. \\\\ end",
    "nan": Number(math.nan),
    "inf": Number(math.inf, "kW"),
    "dict": FrozenDict({"inner": "\x00\t", "n": Number(-0.0)}),
}


def name(k: int) -> str:
    # Ids out of their sorted order: the COPY sorts them, the query order must not.
    return f"e{k * 7919 % 10_007:05d}"


def batch(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"id": Ref(name(k)), "n": Number(k), "point": Marker, **ODD}
        for k in range(start, start + count)
    ]


def ids(records: list[dict[str, object]]) -> list[str]:
    return [cast(Ref, r["id"]).id for r in records]


async def ids_in_order(store: PgStore) -> list[str]:
    return ids([dict(r) for r in await store.query(parse("point"))])


@pytest.mark.anyio
async def test_a_large_new_batch_round_trips_in_put_order(store: PgStore) -> None:
    records = batch(_COPY_FROM + 5)
    cursor = (await store.changes_since(None)).cursor
    await store.put_entities(records)
    got = await store.get_entities(ids(records))
    assert got == records
    assert await ids_in_order(store) == ids(records)
    assert await store.query(parse('copy == "tab\\there\\nnew line\\r\\\\N \\\\. \\\\\\\\ end"'))
    changes = await store.changes_since(cursor)
    assert changes.ids == set(ids(records))


@pytest.mark.anyio
async def test_a_large_batch_with_a_known_id_replaces_it_in_place(store: PgStore) -> None:
    first = batch(3)
    await store.put_entities(first)
    records = batch(_COPY_FROM + 5, start=2)  # its first id is first[2]'s
    records[0] = {"id": records[0]["id"], "point": Marker, "only": "this"}
    await store.put_entities(records)
    (got,) = await store.get_entities([name(2)])
    assert got == records[0]
    assert await ids_in_order(store) == ids(first) + ids(records[1:])


@pytest.mark.anyio
async def test_a_refused_batch_keeps_nothing(store: PgStore) -> None:
    records = batch(_COPY_FROM + 5)
    records[-1] = {"id": Ref("bad"), "v": object()}
    with pytest.raises(Exception, match="object"):
        await store.put_entities(records)
    assert await store.count_entities() == 0


@pytest.mark.anyio
async def test_an_id_put_by_another_writer_during_the_copy(store: PgStore) -> None:
    """Another writer inserts one of the batch's ids after the check: the COPY waits for
    it, fails whole when it commits, and the batch goes in by the upsert instead."""
    records = batch(_COPY_FROM + 5)
    taken = name(10)
    async with await psycopg.AsyncConnection.connect(PG_URL) as other:
        await other.execute(
            sql.SQL("INSERT INTO {} (id, seq, tags) VALUES (%s, -1, %s)").format(
                sql.Identifier(store.schema, "entities")
            ),
            [taken, json.dumps({"id": {"_kind": "ref", "val": taken}, "theirs": True})],
        )
        task = asyncio.create_task(store.put_entities(records))
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as watch:
            for _ in range(500):  # until the COPY waits for the uncommitted row
                cur = await watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE 'COPY %%'"
                    " AND datname = current_database()"
                )
                row = await cur.fetchone()
                if row and row[0]:
                    break
                await asyncio.sleep(0.01)
            else:
                task.cancel()
                pytest.fail("the COPY never waited for the other writer's row")
        await other.commit()
    await task
    assert await store.get_entities(ids(records)) == records
    assert await store.count_entities() == len(records)
