"""The storage protocol's contract suite, on two PgStore instances sharing one schema
of the test database (as two server processes would share it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

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
