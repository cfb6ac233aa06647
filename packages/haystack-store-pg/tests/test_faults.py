"""Faults: a PostgreSQL cluster of this test's own (initdb into a temporary directory, on
a free port, started and stopped with pg_ctl; never the shared server) goes away and
comes back.  Calls fail with StoreUnavailableError (HTTP 503), the pool reconnects by
itself, a waiter's LISTEN comes back, and a write cut off by a crash leaves nothing.

Needs PostgreSQL's server binaries (``/usr/lib/postgresql/*/bin``) and, when run as root,
the ``postgres`` OS user (PostgreSQL refuses to run as root).  Outside CI, without them,
these tests skip; under ``CI=true`` they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk, create_app
from projecthaystack.stores.pg import PgStore, StoreUnavailableError
from projecthaystack.stores.pg._schema import CHUNK_SAMPLES

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster: initdb'd on creation, ``start``/``stop`` by pg_ctl."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            self._unavailable("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
        self.bin = Path(bins[-1]).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                self._unavailable("running as root needs the postgres OS user for initdb")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="haystack-pg-fault-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @staticmethod
    def _unavailable(message: str) -> None:
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"{message}; install or start what it names to run the fault tests")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=40"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def ensure_started(self) -> None:
        """Start it unless it runs."""
        status = subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        if status.returncode != 0:
            self.start()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    cluster.ensure_started()  # a test that failed midway may have left it stopped
    return cluster


async def _store(cluster: Cluster, schema: str) -> PgStore:
    store = PgStore(cluster.url, schema=schema, max_size=3, timeout=3)
    await store.open()
    return store


@pytest.mark.anyio
async def test_unreachable_at_open_is_a_clear_503() -> None:
    store = PgStore(f"postgresql://postgres@127.0.0.1:{_free_port()}/x", timeout=1)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert caught.value.status == 503 and "PostgreSQL" in str(caught.value)


@pytest.mark.anyio
async def test_a_restart_fails_calls_cleanly_then_the_pool_recovers(running: Cluster) -> None:
    store = await _store(running, "restart")
    other = await _store(running, "restart")
    try:
        await store.put_entities([{"id": Ref("a"), "site": Marker}])
        cursor = (await store.changes_since(None)).cursor
        # A waiter is listening before the restart ...
        assert (await store.wait_changes(cursor, 0.01)).ids == frozenset()
        running.stop("fast")
        with pytest.raises(StoreUnavailableError) as caught:
            await store.get_entities(["a"])
        assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"
        with pytest.raises(StoreUnavailableError):
            await store.put_entities([{"id": Ref("b")}])
        running.start()
        # Reads try a fresh connection; writes work once the pool has replaced its own.
        assert await store.get_entities(["a"]) == [{"id": Ref("a"), "site": Marker}]
        for _ in range(20):
            try:
                await store.put_entities([{"id": Ref("b")}])
                break
            except StoreUnavailableError:
                await asyncio.sleep(0.2)
        assert await other.count_entities() == 2
        # ... and hears of changes again after it (or polls while it reconnects).
        waiter = asyncio.create_task(
            store.wait_changes((await store.changes_since(None)).cursor, 30)
        )
        await asyncio.sleep(0.2)
        await other.put_entities([{"id": Ref("c")}])
        assert (await asyncio.wait_for(waiter, 30)).ids == {"c"}
    finally:
        await store.close()
        await other.close()


@pytest.mark.anyio
async def test_a_crash_mid_write_leaves_nothing(running: Cluster) -> None:
    store = await _store(running, "crash")
    try:
        await store.put_entities([{"id": Ref("n")}, {"id": Ref("b")}])
        await store.his_write({"b": HisChunk((T0,), (False,))})
        times = tuple(T0 + dt.timedelta(minutes=i) for i in range(1, 5001))
        batch = {
            "n": HisChunk(times, tuple(Number(i) for i in range(5000))),
            "b": HisChunk(times, tuple(i % 2 == 0 for i in range(5000))),
        }
        # An uncommitted chunk of b where the batch's second chunk of b starts (its
        # first holds the sample at T0 and the batch's first 119): the batch's COPY
        # waits on it, after n's chunks and b's first are already written.
        blocker = await psycopg.AsyncConnection.connect(running.url)
        look = await psycopg.AsyncConnection.connect(running.url, autocommit=True)
        try:
            cur = await blocker.execute("SELECT pid FROM crash.his_points WHERE id = 'b'")
            row = await cur.fetchone()
            assert row is not None
            await blocker.execute(
                "INSERT INTO crash.his (pid, t_lo, ts, bool) VALUES (%s, %s, ARRAY[%s], '{t}')",
                [row[0], times[CHUNK_SAMPLES - 1], times[CHUNK_SAMPLES - 1]],
            )
            write = asyncio.create_task(store.his_write(batch))
            for _ in range(400):
                cur = await look.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE 'COPY%'"
                )
                waiting = await cur.fetchone()
                if waiting and waiting[0]:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the write never reached b's second chunk")
            running.stop("immediate")  # a crash: no transaction gets to finish
            with pytest.raises(StoreUnavailableError):
                await write
        finally:
            for conn in (blocker, look):
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
    finally:
        running.ensure_started()
        await store.close()
    store = await _store(running, "crash")
    try:
        n, b = await store.his_read(["n", "b"], None, None, tz=dt.UTC)
        assert n == () and [list(c.val) for c in b] == [[False]]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_server_answers_503_while_postgresql_is_down(running: Cluster) -> None:
    store = await _store(running, "http")
    app = create_app(store, admin=("admin", "a long admin password"))
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            running.stop("fast")
            response = await client.get(
                "/api/about", headers={"Authorization": "BEARER authToken=" + "ab" * 32}
            )
            assert response.status_code == 503
            assert response.headers.get("Retry-After") == "1"
            assert "store unavailable" in response.text
    finally:
        running.ensure_started()
        await store.close()
