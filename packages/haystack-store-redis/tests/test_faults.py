"""Faults against Redis servers these tests start themselves (never the shared one):
a restart gives StoreUnavailableError (HTTP 503) and then reconnection on its own; a
connection killed mid-write leaves the batch whole or absent."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis.exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from projecthaystack.filter import parse
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import HisChunk, HttpError
from projecthaystack.stores.redis import RedisStore, StoreUnavailableError
from projecthaystack.stores.redis._store import _mapped

from .conftest import RedisProcs, free_ports, unavailable

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def own() -> Iterator[RedisProcs]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is needed for the fault tests (apt-get install redis-server)")
    procs = RedisProcs(free_ports(1))
    procs.start(procs.ports[0])
    yield procs
    procs.close()


@pytest.fixture
async def store(own: RedisProcs) -> AsyncIterator[RedisStore]:
    s = RedisStore(
        f"redis://127.0.0.1:{own.ports[0]}/0",
        prefix="faults",
        socket_connect_timeout=1,
        socket_timeout=5,
    )
    await s.open()
    yield s
    await s.close()


@pytest.mark.anyio
@pytest.mark.parametrize(("options", "tries"), [({}, 3), ({"retry": Retry(NoBackoff(), 0)}, 1)])
async def test_an_unreachable_redis_is_tried_three_times_then_unavailable(
    options: dict[str, Any], tries: int
) -> None:
    # The store's own retry policy, not redis-py's default (ten tries with backoff in
    # redis-py 8, which would hold a request through a whole failover); retry= overrides.
    # A listener that drops every connection at once counts the tries.
    accepted = 0

    async def drop(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix="faults", **options)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            await store.open()
        assert info.value.status == 503
        assert accepted == tries
    finally:
        await store.close()
        server.close()


@pytest.mark.anyio
async def test_restart_is_503_then_reconnects(own: RedisProcs, store: RedisStore) -> None:
    await store.put_entities([{"id": Ref("a"), "site": Marker}])
    own.stop(own.ports[0])
    with pytest.raises(StoreUnavailableError) as info:
        await store.put_entities([{"id": Ref("b")}])
    assert isinstance(info.value, HttpError) and info.value.status == 503
    assert info.value.headers["Retry-After"] == "1"
    with pytest.raises(StoreUnavailableError):
        await store.get_entities(["a"])
    own.start(own.ports[0])  # a fresh, empty server on the same port
    # The pool reconnects and the scripts are loaded again, without reopening.
    await store.put_entities([{"id": Ref("c"), "site": Marker}])
    assert [r["id"] for r in await store.query(parse("site"))] == [Ref("c")]


@pytest.mark.anyio
async def test_a_killed_connection_leaves_a_batch_whole_or_absent(
    own: RedisProcs, store: RedisStore
) -> None:
    points = [f"p{i}" for i in range(4)]
    await store.put_entities([{"id": Ref(p)} for p in points])
    ts = tuple(T0 + dt.timedelta(seconds=i) for i in range(50_000))
    chunk = HisChunk(ts, tuple(Number(float(i)) for i in range(len(ts))))
    killer = Redis(port=own.ports[0])
    outcomes: list[str] = []

    async def write() -> None:
        try:
            await store.his_write(dict.fromkeys(points, chunk))
            outcomes.append("written")
        except StoreUnavailableError:
            outcomes.append("refused")

    async def kill() -> None:
        for _ in range(50):
            await anyio.sleep(0.01)
            await killer.client_kill_filter(_type="normal", skipme=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        tg.start_soon(kill)
    await killer.aclose()
    # A pooled connection killed while idle fails its next use (503); the one after
    # that reconnects.
    for _ in range(3):
        try:
            got = await store.his_read(points, None, None, tz=dt.UTC)
            break
        except StoreUnavailableError:
            continue
    sizes = {sum(map(len, chunks)) for chunks in got}
    assert outcomes and (sizes == {0} or sizes == {len(ts)}), (outcomes, sizes)
    if outcomes == ["written"]:
        assert sizes == {len(ts)}


@pytest.mark.parametrize(
    "exc",
    [
        rx.SlotNotCoveredError("Slot 1234 is not covered by the cluster."),
        rx.RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node: "
            "Error 111 connecting to 127.0.0.1:7000. Connection refused."
        ),
        # Also the rig's: a redirection the client does not follow (a MULTI pipeline
        # gave "internal error in pointWrite: MovedError"), a script not yet loaded on
        # the promoted replica, a node that asks to try again.
        rx.MovedError("4023 127.0.0.1:41925"),
        rx.AskError("4023 127.0.0.1:41925"),
        rx.NoScriptError("No matching script. Please use EVAL."),
        rx.ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"),
        rx.ResponseError("NOREPLICAS Not enough good replicas to write."),
        rx.ResponseError("CLUSTERDOWN The cluster is down"),
    ],
)
def test_a_cluster_that_lost_its_nodes_is_unavailable_not_an_error(exc: Exception) -> None:
    # Found by the scale-out rig: during a Redis Cluster failover a nav answered 500
    # (redis-py's RedisClusterException is no ConnectionError) instead of a 503.
    with pytest.raises(StoreUnavailableError, match=type(exc).__name__), _mapped():
        raise exc


def test_a_script_error_stays_an_error() -> None:
    wrong = rx.ResponseError("ERR user_script:3: Script attempted to access nonexistent global")
    with pytest.raises(rx.ResponseError, match="user_script"), _mapped():
        raise wrong


def test_a_cluster_client_refusal_stays_an_error() -> None:
    wrong = rx.RedisClusterException("Keys in request don't hash to the same slot")
    with pytest.raises(rx.RedisClusterException, match="same slot"), _mapped():
        raise wrong
