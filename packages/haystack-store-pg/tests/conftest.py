"""A PostgreSQL for the tests: the shared server on 127.0.0.1:5432 (database ``test``),
or ``HAYSTACK_PG_URL``.  Every test gets its own schema, dropped afterwards.

Outside CI a missing server skips these tests (start PostgreSQL, or set
``HAYSTACK_PG_URL``); under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from projecthaystack.stores.pg import PgStore

PG_URL = os.environ.get("HAYSTACK_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[3]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)

_reachable: bool | None = None


def require_pg() -> None:
    """Skip (or, under CI, fail) when PostgreSQL is not there."""
    global _reachable
    if _reachable is None:
        try:
            psycopg.connect(PG_URL, connect_timeout=3).close()
            _reachable = True
        except psycopg.OperationalError:
            _reachable = False
    if not _reachable:
        message = f"PostgreSQL is not reachable at {PG_URL}: start it (or set HAYSTACK_PG_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def new_schema() -> str:
    return "hs_test_" + secrets.token_hex(6)


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def schema() -> Iterator[str]:
    require_pg()
    name = new_schema()
    try:
        yield name
    finally:
        drop_schema(name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PgStore]:
    s = PgStore(PG_URL, schema=schema, max_size=4)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def building_path(name: str) -> Path:
    path = BUILDINGS / f"{name}.json"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must have the example buildings")
        pytest.skip(f"example buildings not found at {BUILDINGS} (set HAYSTACK_BUILDINGS)")
    return path
