"""A cluster shard failing over under load, on a cluster of three primaries each with a
replica that these tests start on 127.0.0.1 ports and stop by PID.

While a writer puts batches of entities and of history and a reader (another store
instance) checks what it sees, the primary holding the store's slot either is killed
(``SIGKILL``) or hands over to its replica (``CLUSTER FAILOVER``).  Calls in the gap fail
with :class:`StoreUnavailableError` (503 through the server) and nothing else; afterwards
the same store objects work again without being reopened; every acknowledged write is
there and no batch is ever seen, or left, half applied.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk, Session, create_app
from projecthaystack.server.storeforms import token_hash
from projecthaystack.server.testing import serve
from projecthaystack.stores.redis import RedisStore, StoreUnavailableError, open_store

from .conftest import RedisProcs, cli, start_cluster, unavailable, wait_for

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
POINTS = [f"p{i}" for i in range(4)]
BATCH = 10  # entities per put_entities batch
SAMPLES = 20  # samples per point per his_write batch
OPTIONS = "socket_connect_timeout=1&socket_timeout=5"


@pytest.fixture
def replicated() -> Iterator[RedisProcs]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is needed for the failover tests (apt-get install redis-server)")
    procs = start_cluster(masters=3, replicas=1)
    yield procs
    procs.close()


def shard_of(procs: RedisProcs, store: RedisStore) -> tuple[int, int]:
    """The ports of the primary holding the store's slot and of its replica, each as
    the node itself says (other nodes learn of a change by gossip, later)."""
    alive = [p for p in procs.ports if p in procs.procs]
    slot = int(cli(alive[0], "CLUSTER", "KEYSLOT", store.keys.entities))
    for port in alive:
        me = next(n.split() for n in cli(port, "CLUSTER", "NODES").splitlines() if "myself" in n)
        spans = [span.partition("-") for span in me[8:]]
        if "master" in me[2] and any(int(lo) <= slot <= int(hi or lo) for lo, _, hi in spans):
            replicas = [
                r for r in alive if cli(r, "ROLE").split()[:3] == ["slave", "127.0.0.1", str(port)]
            ]
            assert len(replicas) == 1, (port, replicas)
            return port, replicas[0]
    raise AssertionError(f"no primary holds slot {slot}")


def repl_offset(port: int, field_name: str) -> int:
    for line in cli(port, "INFO", "replication").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split(":")[1])
    raise AssertionError(f"no {field_name} on {port}")


async def has_role(port: int, role: str, timeout: float = 30) -> None:
    """Wait (without blocking the other tasks) until the node on ``port`` has ``role``
    (``master`` or ``slave``)."""
    await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: cli(port, "ROLE").startswith(role), f"{port} as {role}", timeout)
    )


async def hand_over(replica: int) -> None:
    """``CLUSTER FAILOVER`` on ``replica`` until it is the primary: a manual failover
    gives up after 5 s when the replica cannot catch up (a loaded machine), and an
    operator then asks again."""
    for _ in range(5):
        answer = cli(replica, "CLUSTER", "FAILOVER")
        assert answer == "OK", answer
        try:
            await has_role(replica, "master", timeout=15)
            return
        except RuntimeError:
            continue
    raise AssertionError(f"the replica on {replica} never took over")


@dataclass
class Load:
    """A writer of batches and a reader that checks each batch is whole; what was
    acknowledged, refused and seen."""

    writer: RedisStore
    reader: RedisStore
    acked_entities: list[int] = field(default_factory=list)
    acked_his: list[int] = field(default_factory=list)
    acked_updates: list[int] = field(default_factory=list)
    tried: int = 0
    refused: int = 0
    reads: int = 0
    reads_refused: int = 0
    paused: bool = False
    idle: anyio.Event = field(default_factory=anyio.Event)
    stop: bool = False

    @property
    def acked(self) -> int:
        return len(self.acked_entities) + len(self.acked_his) + len(self.acked_updates)

    async def write(self) -> None:
        while not self.stop:
            if self.paused:
                self.idle.set()
                await anyio.sleep(0.01)
                continue
            n = self.tried
            self.tried += 1
            try:
                if n % 3 == 2:
                    # Read, decide, write if unchanged: the path pointWrite takes too.
                    await self.writer.update_entity(POINTS[0], {"n": Number(n)})
                    self.acked_updates.append(n)
                elif n % 3 == 1:
                    ts = tuple(T0 + dt.timedelta(seconds=n * SAMPLES + j) for j in range(SAMPLES))
                    vals = tuple(Number(float(n)) for _ in ts)
                    await self.writer.his_write(dict.fromkeys(POINTS, HisChunk(ts, vals)))
                    self.acked_his.append(n)
                else:
                    batch = [
                        {"id": Ref(f"e{n}-{i}"), "e": Marker, "batch": Number(n)}
                        for i in range(BATCH)
                    ]
                    await self.writer.put_entities(batch)
                    self.acked_entities.append(n)
            except StoreUnavailableError:
                self.refused += 1
                await anyio.sleep(0.05)

    async def read(self) -> None:
        while not self.stop:
            try:
                await self.check(self.reader)
                self.reads += 1
            except StoreUnavailableError:
                self.reads_refused += 1
            await anyio.sleep(0.05)

    async def check(self, store: RedisStore) -> tuple[set[int], set[int]]:
        """The entity and history batches ``store`` holds, each asserted whole."""
        sizes = Counter(int(r["batch"].val) for r in await store.query(parse("e")))
        assert set(sizes.values()) <= {BATCH}, f"half an entity batch: {sizes}"
        got = await store.his_read(POINTS, None, None, tz=dt.UTC)
        per_point = [Counter(int(v.val) for c in chunks for v in c.val) for chunks in got]
        assert all(p == per_point[0] for p in per_point), "a history batch on some points only"
        assert set(per_point[0].values()) <= {SAMPLES}, f"half a history batch: {per_point[0]}"
        return set(sizes), set(per_point[0])

    async def until(self, more: int, timeout: float = 60) -> None:
        """Run until ``more`` further writes are acknowledged."""
        goal = self.acked + more
        with anyio.fail_after(timeout):
            while self.acked < goal:
                await anyio.sleep(0.05)


@pytest.fixture
async def load(replicated: RedisProcs) -> AsyncIterator[Load]:
    prefix = "failover-" + secrets.token_hex(4)
    url = f"redis+cluster://127.0.0.1:{replicated.ports[0]}?prefix={prefix}&{OPTIONS}"
    writer, reader = open_store(url), open_store(url)
    await writer.open()
    await reader.open()
    await writer.put_entities([{"id": Ref(p), "point": Marker, "his": Marker} for p in POINTS])
    yield Load(writer, reader)
    await writer.drop()
    await writer.close()
    await reader.close()


async def verify(load: Load) -> None:
    """Everything acknowledged is there, every batch whole; read through the same store
    objects as before (not reopened)."""
    entities, his = await load.check(load.writer)
    assert set(load.acked_entities) <= entities
    assert set(load.acked_his) <= his
    entities_b, his_b = await load.check(load.reader)
    assert (entities_b, his_b) == (entities, his)
    if load.acked_updates:  # a refused update may have landed too: never an older one
        (point,) = await load.reader.get_entities([POINTS[0]])
        assert point is not None and point["n"].val >= max(load.acked_updates)


@pytest.mark.anyio
async def test_a_killed_primary_gives_503_then_its_replica_serves_everything(
    replicated: RedisProcs, load: Load
) -> None:
    primary, replica = shard_of(replicated, load.writer)
    # The server on a third store instance, for what a client sees in the gap.
    app_store = RedisStore(load.writer.url, prefix=load.writer.keys.prefix, cluster=True)
    app = create_app(app_store, admin=("admin", "failover-admin-password"))
    token = secrets.token_hex(32)
    headers = {"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"}
    with serve(app) as base:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        await load.writer.put_session(Session(token_hash(token), "admin", expires))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            assert (await http.get("/read", params={"filter": "point"})).status_code == 200
            async with anyio.create_task_group() as tg:
                tg.start_soon(load.write)
                tg.start_soon(load.read)
                await load.until(10)
                # Every write acknowledged so far has reached the replica: Redis
                # replicates asynchronously, so only those can survive a crash.
                load.paused = True
                await load.idle.wait()
                target = repl_offset(primary, "master_repl_offset")
                wait_for(lambda: repl_offset(replica, "slave_repl_offset") >= target, "sync")
                replicated.stop(primary)  # SIGKILL, by PID
                load.paused = False
                # In the gap: refusals, a 503 error grid from the server.
                gap = await http.get("/read", params={"filter": "point"})
                assert gap.status_code == 503, gap.text
                assert gap.headers["Retry-After"] == "1"
                assert "err" in gap.text
                with anyio.fail_after(60):
                    while not load.refused:
                        await anyio.sleep(0.05)
                # The replica takes over; the same store objects carry on.
                await has_role(replica, "master")
                await load.until(10)
                load.stop = True
            after = await http.get("/read", params={"filter": "point"})
            assert after.status_code == 200 and after.text.count("@p") == len(POINTS)
    assert load.refused >= 1 and load.reads >= 1
    await verify(load)


@pytest.mark.anyio
async def test_a_handover_to_the_replica_loses_no_acknowledged_write(
    replicated: RedisProcs, load: Load
) -> None:
    primary, replica = shard_of(replicated, load.writer)
    # A store instance idle through the handover: its map of the slots still names the
    # old primary, which now answers MOVED.
    idle = RedisStore(load.writer.url, prefix=load.writer.keys.prefix, cluster=True)
    await idle.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(load.write)
        tg.start_soon(load.read)
        await load.until(10)
        # Writes keep going while the replica takes over (a planned failover: the
        # primary stops taking writes until the replica has caught up).
        await hand_over(replica)
        await has_role(primary, "slave")  # the old primary follows the new one
        await load.until(10)
        load.stop = True
    assert shard_of(replicated, load.writer) == (replica, primary)
    await verify(load)
    # Its first calls read, decide and write (update, pointWrite) on that old map: they
    # are redirected, not failed.
    try:
        updated = await idle.update_entity(POINTS[1], {"moved": Marker})
        assert updated is not None and updated["moved"] is Marker
        levels = await idle.point_write(POINTS[1], None, None, now=dt.datetime.now(dt.UTC))
        assert levels == {}
    finally:
        await idle.close()
