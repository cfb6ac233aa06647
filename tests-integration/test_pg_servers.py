"""Two separate ``haystack-server serve --store postgresql://...`` processes on one
database act as one server: a login on one is honoured by the other, a watch on one
sees writes made through the other, and eight concurrent writers of 10,000 samples each
(through both) lose nothing.  The processes are started by ``conftest.serve_store``
(the building they load is ``conftest.SERVE_BUILDING``) and stopped by PID.

Uses the shared PostgreSQL on 127.0.0.1:5432 (database ``test``, or ``HAYSTACK_PG_URL``)
with a schema of its own, dropped afterwards.  Outside CI, without PostgreSQL, these
tests skip (start PostgreSQL); under ``CI=true`` they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from projecthaystack.client import Client
from projecthaystack.kinds import Number, Ref

PG_URL = os.environ.get("HAYSTACK_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN, PASSWORD = "admin", "two-servers-one-database"
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def _require_pg() -> None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        message = f"PostgreSQL is not reachable at {PG_URL}: start it (or set HAYSTACK_PG_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Servers:
    """Two servers (``conftest.ServeProcesses``) on one schema of the shared database."""

    urls: list[str]
    schema: str


@pytest.fixture(scope="module")
def servers(serve_store: Callable[..., Any]) -> Iterator[Servers]:
    _require_pg()
    schema = "hs_it_" + secrets.token_hex(5)
    separator = "&" if "?" in PG_URL else "?"
    procs = None
    try:
        procs = serve_store(f"{PG_URL}{separator}schema={schema}", PASSWORD)
        yield Servers(procs.urls, schema)
    finally:
        if procs is not None:
            procs.stop()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_a_login_on_one_is_honoured_by_the_other(servers: Servers) -> None:
    a, b = servers.urls
    client = Client(a, ADMIN, PASSWORD)
    try:
        token = client.login()
        assert client.read("site")[0]["id"] == Ref("site")
        response = httpx.get(
            b + "/about",
            headers={"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"},
        )
        assert response.status_code == 200
        assert "haystackVersion" in response.text
        # Ending the session on one server ends it on the other.
        client.close_session()
        response = httpx.get(b + "/about", headers={"Authorization": f"BEARER authToken={token}"})
        assert response.status_code in (401, 403)
    finally:
        client.close()
    response = httpx.get(b + "/about", headers={"Authorization": "BEARER authToken=" + "0" * 64})
    assert response.status_code in (401, 403)


def test_a_watch_on_one_sees_writes_through_the_other(servers: Servers) -> None:
    a, b = servers.urls
    with Client(a, ADMIN, PASSWORD) as on_a, Client(b, ADMIN, PASSWORD) as on_b:
        sub = on_a.watch_sub(["sp"], dis="it")
        watch_id = sub.meta["watchId"]
        assert on_a.watch_poll(watch_id).rows == ()
        on_b.point_write("sp", 8, Number(68, "°F"), who="other server")
        changed = on_a.watch_poll(watch_id)
        assert [r["id"] for r in changed] == [Ref("sp")]
        assert changed[0]["writeVal"] == Number(68, "°F")
        assert on_a.watch_poll(watch_id).rows == ()


def test_eight_concurrent_writers_lose_nothing(servers: Servers) -> None:
    writers, each, batch = 8, 10_000, 2_000

    def write(k: int) -> int:
        with Client(servers.urls[k % 2], ADMIN, PASSWORD, timeout=120) as client:
            for start in range(0, each, batch):
                slots = [writers * i + k for i in range(start, start + batch)]
                items = [(T0 + dt.timedelta(seconds=n), Number(float(n), "kWh")) for n in slots]
                client.his_write("shared", items)
        return k

    with ThreadPoolExecutor(writers) as pool:
        assert sorted(pool.map(write, range(writers))) == list(range(writers))
    with Client(servers.urls[0], ADMIN, PASSWORD, timeout=120) as client:
        his = client.his_read("shared", "2026-03-02,2026-03-04")
    values = [r["val"].val for r in his]
    assert len(values) == writers * each
    assert values == [float(n) for n in range(writers * each)]
