"""Two separate ``haystack-server serve --store postgresql://...`` processes on one
database act as one server: a login on one is honoured by the other, a watch on one
sees writes made through the other, and eight concurrent writers of 10,000 samples each
(through both) lose nothing.

Uses the shared PostgreSQL on 127.0.0.1:5432 (database ``test``, or ``HAYSTACK_PG_URL``)
with a schema of its own, dropped afterwards.  Outside CI, without PostgreSQL, these
tests skip (start PostgreSQL); under ``CI=true`` they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from projecthaystack.client import Client
from projecthaystack.kinds import Number, Ref

PG_URL = os.environ.get("HAYSTACK_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN, PASSWORD = "admin", "two-servers-one-database"
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

BUILDING = """\
id:@site
dis:"Site"
site
tz:"UTC"
---
id:@shared
dis:"Shared meter"
point
his
kind:"Number"
unit:"kWh"
tz:"UTC"
siteRef:@site
---
id:@sp
dis:"Setpoint"
point
writable
cur
kind:"Number"
unit:"°F"
tz:"UTC"
siteRef:@site
"""


def _require_pg() -> None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        message = f"PostgreSQL is not reachable at {PG_URL}: start it (or set HAYSTACK_PG_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command() -> list[str]:
    script = Path(sys.executable).parent / "haystack-server"
    if script.exists():
        return [str(script)]
    found = shutil.which("haystack-server")
    assert found, "the haystack-server command is not installed"
    return [found]


class Servers:
    def __init__(self, tmp: Path) -> None:
        self.schema = "hs_it_" + secrets.token_hex(5)
        separator = "&" if "?" in PG_URL else "?"
        self.store = f"{PG_URL}{separator}schema={self.schema}"
        (tmp / "building.trio").write_text(BUILDING, encoding="utf-8")
        env = {
            **os.environ,
            "HAYSTACK_SECRET": secrets.token_hex(32),
            "HAYSTACK_ADMIN_USER": ADMIN,
            "HAYSTACK_ADMIN_PASSWORD": PASSWORD,
        }
        self.urls: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for n in range(2):
            port = _free_port()
            log = tmp / f"server{n}.log"
            args = [*_command(), "serve", "--store", self.store, "--port", str(port)]
            args += ["--log-level", "warning", "--load", str(tmp / "building.trio")]
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(args, env=env, stdout=out, stderr=out))
            self.logs.append(log)
            self.urls.append(f"http://127.0.0.1:{port}/api")
        for n, url in enumerate(self.urls):
            self._wait(n, url)

    def _wait(self, n: int, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.procs[n].poll() is not None:
                raise AssertionError(f"server {n} stopped:\n{self.logs[n].read_text()}")
            try:
                if httpx.get(url + "/about", timeout=2).status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server {n} did not start:\n{self.logs[n].read_text()}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    _require_pg()
    s = Servers(tmp_path_factory.mktemp("pg-servers"))
    try:
        yield s
    finally:
        s.stop()


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
