"""Schema migrations: a store made by an older version upgrades on open, keeping its
data (a version-3 store's samples, one row each, are packed into chunks; a version-4
store's change feed, one row per id, becomes one row per write); concurrent
openers of a fresh schema do not race; URLs and names are checked."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref, tz_from_name
from projecthaystack.server import HisChunk
from projecthaystack.stores.pg import LATEST_VERSION, PgStore, open_store
from projecthaystack.stores.pg._jsonb import encode_value
from projecthaystack.stores.pg._schema import CHUNK_SAMPLES, MIGRATIONS, Names, migrate

from .conftest import PG_URL

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    assert all(m.description for m in MIGRATIONS)


@pytest.mark.anyio
async def test_a_version_1_store_upgrades_on_open(schema: str) -> None:
    # What the first version of the schema made, with an entity written as it wrote them.
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        assert await migrate(conn, Names(schema), upto=1) == (0, 1)
        await conn.execute(
            sql.SQL("INSERT INTO {} (id, seq, tags) VALUES ('s', nextval({}), %s::jsonb)").format(
                sql.Identifier(schema, "entities"),
                sql.Literal(sql.Identifier(schema, "entity_seq").as_string(conn)),
            ),
            ['{"id": {"_kind": "ref", "val": "s"}, "site": {"_kind": "marker"}}'],
        )
    store = PgStore(PG_URL, schema=schema)
    await store.open()
    try:
        assert (await store.info()).schema == LATEST_VERSION
        assert await store.query(parse("site")) == [{"id": Ref("s"), "site": Marker}]
        # What the later versions added works on the upgraded store.
        await store.put_entities([{"id": Ref("p"), "point": Marker}])
        await store.his_write({"p": HisChunk((T0,), (Number(1.5, "kW"),))})
        (chunks,) = await store.his_read(["p"], None, None, tz=dt.UTC)
        assert [c.val for c in chunks] == [(Number(1.5, "kW"),)]
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT version FROM {} ORDER BY version").format(
                sql.Identifier(schema, "schema_version")
            )
        )
        assert [r[0] for r in await cur.fetchall()] == list(range(1, LATEST_VERSION + 1))


async def _v3_samples(
    schema: str, pid: int, rows: dict[str, list[tuple[dt.datetime, Any]]]
) -> None:
    """Samples written as version 3 wrote them: a row each, in the table of its kind,
    in monthly partitions."""
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        for table, samples in rows.items():
            for y, m in sorted({(t.year, t.month) for t, _ in samples}):
                await conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
                    ).format(
                        sql.Identifier(schema, f"{table}_{y:04d}{m:02d}"),
                        sql.Identifier(schema, table),
                        sql.Literal(dt.datetime(y, m, 1, tzinfo=dt.UTC)),
                        sql.Literal(dt.datetime(y + m // 12, m % 12 + 1, 1, tzinfo=dt.UTC)),
                    )
                )
            cast = {"his_num": "float8", "his_bool": "boolean", "his_str": "text"}.get(
                table, "jsonb"
            )
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (ts, val, pid) SELECT t, v::{}, %s"
                    " FROM unnest(%s::timestamptz[], %s::text[]) u(t, v)"
                ).format(sql.Identifier(schema, table), sql.SQL(cast)),
                [
                    pid,
                    [t for t, _ in samples],
                    [str(v).lower() if type(v) is bool else str(v) for _, v in samples],
                ],
            )


@pytest.mark.anyio
async def test_a_version_3_store_gets_its_samples_packed(schema: str) -> None:
    store = PgStore(PG_URL, schema=schema)
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        assert await migrate(conn, Names(schema), upto=3) == (0, 3)
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, unit, kinds) VALUES ('p', 'kW', 15), ('q', NULL, 1)"
            ).format(sql.Identifier(schema, "his_points"))
        )
    ny = tz_from_name("New_York")
    # p: 300 Numbers over a month end, with a Bool, a Str and two others among them.
    start = dt.datetime(2026, 1, 31, 20, tzinfo=dt.UTC)
    times = [start + dt.timedelta(minutes=5 * i) for i in range(300)]
    want: dict[dt.datetime, Any] = {t: Number(float(i), "kW") for i, t in enumerate(times)}
    want[times[3]], want[times[150]] = True, "a\\"
    want[times[7]], want[times[8]] = Number(2.5, "W"), "nul\x00"
    kinds: dict[str, list[tuple[dt.datetime, Any]]] = {
        k: [] for k in ("his_num", "his_bool", "his_str", "his_any")
    }
    for t, v in want.items():
        if type(v) is Number and v.unit == "kW":
            kinds["his_num"].append((t, v.val))
        elif type(v) is bool:
            kinds["his_bool"].append((t, v))
        elif type(v) is str and "\x00" not in v:
            kinds["his_str"].append((t, v))
        else:
            kinds["his_any"].append((t, encode_value(v)))
    await _v3_samples(schema, 1, kinds)
    await _v3_samples(schema, 2, {"his_num": [(start, -0.0)]})
    await store.open()
    try:
        assert (await store.info()).schema == LATEST_VERSION
        got_p, got_q = await store.his_read(["p", "q"], None, None, tz=ny)
        (p,) = got_p
        assert [t.astimezone(dt.UTC) for t in p.ts] == times
        assert list(p.val) == [want[t] for t in times]
        assert [type(v) for v in p.val] == [type(want[t]) for t in times]
        assert [str(v) for v in got_q[0].val] == [str(Number(-0.0))]
        # The upgraded store goes on as a new one would.
        await store.put_entities([{"id": Ref("p")}])
        await store.his_write({"p": HisChunk((times[0], times[-1]), (Number(9, "kW"), False))})
        (again,) = (await store.his_read(["p"], times[0], None, tz=ny))[0]
        assert again.val[0] == Number(9, "kW") and again.val[-1] is False and len(again) == 300
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT pid, to_char(t_lo AT TIME ZONE 'UTC', 'YYYY-MM'), cardinality(ts)"
                " FROM {} ORDER BY pid, t_lo"
            ).format(sql.Identifier(schema, "his"))
        )
        chunks = await cur.fetchall()
        # 300 samples: 48 in January (from 20:00 to 23:55), 252 in February.
        assert chunks == [
            (1, "2026-01", 48),
            (1, "2026-02", CHUNK_SAMPLES),
            (1, "2026-02", CHUNK_SAMPLES),
            (1, "2026-02", 12),
            (2, "2026-01", 1),
        ]
        cur = await conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = %s"
            " AND tablename ~ '^his_(num|bool|str|any)'",
            [schema],
        )
        assert await cur.fetchone() == (0,)


@pytest.mark.anyio
async def test_a_version_4_feed_keeps_its_positions(schema: str) -> None:
    """Version 4 kept a feed row per id; version 5 a row per write: the rows move over
    with their positions, so a cursor handed out before the upgrade reads on after it."""
    n = Names(schema)
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        assert await migrate(conn, n, upto=4) == (0, 4)
        seq = sql.Literal(n("change_seq").as_string(conn))
        for id in ("a", "b", "a"):
            await conn.execute(
                sql.SQL("INSERT INTO {} (seq, id) VALUES (nextval({}), %s)").format(
                    n("changes"), seq
                ),
                [id],
            )
        cur = await conn.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'epoch'").format(n("meta"))
        )
        row = await cur.fetchone()
        assert row is not None
        epoch = row[0]
    store = PgStore(PG_URL, schema=schema)
    await store.open()
    try:
        assert (await store.info()).schema == LATEST_VERSION
        first = await store.changes_since(f"{epoch}:1")
        assert (first.ids, first.cursor, first.reset) == ({"a", "b"}, f"{epoch}:3", False)
        assert (await store.changes_since(f"{epoch}:2")).ids == {"a"}
        assert (await store.changes_since(f"{epoch}:3")).ids == frozenset()
        await store.put_entities([{"id": Ref("x")}, {"id": Ref("y")}, {"id": Ref("z")}])
        assert (await store.changes_since(f"{epoch}:3")).ids == {"x", "y", "z"}
        # A cursor inside a write's row sees only the ids after it.
        later = await store.changes_since(f"{epoch}:4")
        assert (later.ids, later.cursor) == ({"y", "z"}, f"{epoch}:6")
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT seq, n, ids FROM {} ORDER BY seq").format(n("changes"))
        )
        assert await cur.fetchall() == [
            (1, 1, ["a"]),
            (2, 1, ["b"]),
            (3, 1, ["a"]),
            (6, 3, ["x", "y", "z"]),
        ]


@pytest.mark.anyio
async def test_concurrent_openers_of_a_fresh_schema(schema: str) -> None:
    stores = [PgStore(PG_URL, schema=schema, max_size=1) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        infos = {await s.info() for s in stores}
        assert len(infos) == 1
        await stores[0].put_entities([{"id": Ref("x")}])
        assert await stores[3].count_entities() == 1
    finally:
        for s in stores:
            await s.close()


def test_urls_and_names() -> None:
    store = open_store("postgresql://u@h:5433/db?schema=a_b&pool_max=3&sslmode=disable")
    assert store.schema == "a_b"
    assert open_store("postgres://u@h/db").schema == "haystack"
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        open_store("mysql://u@h/db")
    with pytest.raises(ValueError, match="numbers"):
        open_store("postgresql://u@h/db?pool_max=many")
    with pytest.raises(ValueError, match="schema"):
        PgStore(PG_URL, schema="x" * 64)
    with pytest.raises(ValueError, match="pool"):
        PgStore(PG_URL, min_size=5, max_size=2)


@pytest.mark.anyio
async def test_info_never_shows_a_password() -> None:
    store = open_store("postgresql://user:sekrit@127.0.0.1:5999/db?schema=s")
    info = await store.info()
    assert "sekrit" not in info.backend and "127.0.0.1:5999/db" in info.backend
