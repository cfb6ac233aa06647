"""Schema migrations: a store made by an older version upgrades on open, keeping its
data; concurrent openers of a fresh schema do not race; URLs and names are checked."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest
from psycopg import sql

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk
from projecthaystack.stores.pg import LATEST_VERSION, PgStore, open_store
from projecthaystack.stores.pg._schema import MIGRATIONS, Names, migrate

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
