"""Cluster URLs listing several startup nodes: parsed strictly (a bad port, an empty host,
a node twice, too many nodes are refused, naming the problem and never the password);
on the test cluster, a dead node listed first does not stop a store from opening, and
nothing but dead nodes is a 503, not a hang."""

from __future__ import annotations

import doctest
import importlib
import random
from typing import Any

import anyio
import pytest

from projecthaystack.kinds import Marker, Ref
from projecthaystack.stores.redis import (
    RedisStore,
    RedisStoreError,
    StoreUnavailableError,
    open_store,
)
from projecthaystack.stores.redis._url import MAX_NODES, redact, scrub, split_nodes

from .conftest import RedisProcs, free_ports

SECRET = "s3cr%40t"  # the password as written in a URL (percent-encoded '@')


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://h:7000", (("h", 7000),)),
        ("redis+cluster://h", (("h", 6379),)),
        (
            "redis+cluster://h1:7000,h2:7001,h3:7002/?prefix=hs",
            (("h1", 7000), ("h2", 7001), ("h3", 7002)),
        ),
        ("rediss+cluster://u:pw@10.0.0.5:7000,10.0.0.6", (("10.0.0.5", 7000), ("10.0.0.6", 6379))),
        ("redis+cluster://[::1]:7000,[::1]:7001", (("::1", 7000), ("::1", 7001))),
        ("redis+cluster://[::1],127.0.0.1:7000", (("::1", 6379), ("127.0.0.1", 7000))),
        ("redis+cluster://[fe80::1%25eth0]:7000", (("fe80::1%eth0", 7000),)),
        ("redis+cluster://a-b.c_d.example:65535,x:1", (("a-b.c_d.example", 65535), ("x", 1))),
    ],
)
def test_cluster_urls_list_their_startup_nodes(url: str, nodes: tuple[Any, ...]) -> None:
    store = open_store(url)
    assert store.cluster and store.startup_nodes == nodes


def test_a_single_node_url_is_unchanged() -> None:
    store = open_store("redis://u:pw@h:6380/2?prefix=p&socket_timeout=2")
    assert not store.cluster and store.startup_nodes == ()
    assert store.url == "redis://u:pw@h:6380/2?socket_timeout=2"
    one = open_store("redis+cluster://h:7000/?prefix=p")
    assert one.url == "redis://h:7000/" and one.startup_nodes == (("h", 7000),)


def test_the_url_options_apply_to_every_node_and_win_over_keywords() -> None:
    store = RedisStore(
        f"rediss+cluster://app:{SECRET}@h1:7000,h2:7001/?socket_timeout=2",
        socket_timeout=9,
        socket_connect_timeout=1,
    )
    got = store._url_options()
    # As redis-py's from_url: unquoted credentials, TLS, the query over the keywords.
    assert got == {"username": "app", "password": "s3cr@t", "ssl": True, "socket_timeout": 2.0}
    assert store.url == f"rediss://app:{SECRET}@h1:7000,h2:7001/?socket_timeout=2"


@pytest.mark.parametrize(
    ("hosts", "problem"),
    [
        ("", "names no node"),
        ("h1:7000,", "node 2 of 2: an empty node"),
        (",h1:7000", "node 1 of 2: an empty node"),
        ("h1:7000,,h2:7000", "node 2 of 3: an empty node"),
        (":7000", "has no host"),
        ("h1:", "the port '' is not a number"),
        ("h1:70x0", "the port '70x0' is not a number"),
        ("h1:0", "the port '0' is not a number from 1 to 65535"),
        ("h1:65536", "the port '65536'"),
        ("h1:+700", "the port '\\+700'"),
        ("h1:7000,h1:7000", "node 2 of 2: h1:7000 is listed twice"),
        ("H1:7000,h1:7000", "is listed twice"),
        ("h1,h1:6379", "h1:6379 is listed twice"),
        ("[::1]:7000,[0:0::1]:7000", r"\[0:0::1\]:7000 is listed twice"),
        ("::1:7000", "an IPv6 address goes in brackets"),
        # urllib's own check (Python 3.11.4+) or ours, whichever sees it first.
        ("[::1:7000", "Invalid IPv6 URL|opens '\\[' without closing it"),
        ("[nope]:7000", "is not an IPv6 address|does not appear to be an IPv4 or IPv6"),
        ("[::1]:7000,[nope]:7000", "node 2 of 2: .*'nope' in brackets is not an IPv6 address"),
        ("[::1]:7000,[::2", "node 2 of 2: '\\[::2' opens '\\[' without closing it"),
        ("[::1]7000", "only ':port' may follow"),
        ("h 1:7000", "is not a host name"),
        ("h1;h2:7000", "is not a host name"),
    ],
)
def test_bad_node_lists_are_refused_saying_why(hosts: str, problem: str) -> None:
    url = f"redis+cluster://app:{SECRET}@{hosts}/?prefix=p"
    with pytest.raises(RedisStoreError, match=problem) as caught:
        open_store(url)
    assert isinstance(caught.value, ValueError)
    assert SECRET not in str(caught.value) and "s3cr" not in str(caught.value)
    assert "app:***@" in str(caught.value)


def test_at_most_max_nodes() -> None:
    hosts = ",".join(f"10.0.0.{i}:7000" for i in range(1, MAX_NODES + 1))
    assert len(open_store(f"redis+cluster://{hosts}").startup_nodes) == MAX_NODES
    with pytest.raises(RedisStoreError, match=f"lists {MAX_NODES + 1} nodes; at most {MAX_NODES}"):
        open_store(f"redis+cluster://{hosts},10.0.0.99:7000")


def test_several_nodes_need_a_cluster_url() -> None:
    with pytest.raises(RedisStoreError, match="several nodes need a cluster URL") as caught:
        RedisStore(f"redis://app:{SECRET}@h1:6379,h2:6379/0")
    assert "s3cr" not in str(caught.value)
    with pytest.raises(RedisStoreError, match="not a Unix socket"):
        RedisStore("unix:///run/redis.sock", cluster=True)
    # The cluster flag also reads the list (a store's url handed to another instance).
    assert RedisStore("redis://h1:7000,h2:7001", cluster=True).startup_nodes == (
        ("h1", 7000),
        ("h2", 7001),
    )


def test_passwords_never_shown() -> None:
    assert redact("redis://u:pw@h/0") == "redis://u:***@h/0"
    assert redact("redis://h/0?password=pw&db=1") == "redis://h/0?password=***&db=1"
    assert redact("redis://:p:w@h1,h2") == "redis://:***@h1,h2"
    assert redact("redis://u@h/0") == "redis://u@h/0"
    assert scrub("x pw y", "redis://u:pw@h") == "x *** y"
    assert scrub("x qq y", "redis://h/?password=qq") == "x *** y"
    with pytest.raises(RedisStoreError) as caught:
        RedisStore("http://u:topsecret@h/")
    assert "topsecret" not in str(caught.value)
    with pytest.raises(RedisStoreError, match="bad Redis URL") as caught:
        open_store("redis+cluster://u:topsecret@[::1/")
    assert "topsecret" not in str(caught.value)


@pytest.mark.parametrize("module", ["", "._url", "._query"])
def test_docstring_examples(module: str) -> None:
    # tests-integration/test_doctests.py does not cover the store packages.  The
    # package's public names (RedisStore, open_store) carry its name as their module.
    mod = importlib.import_module(f"projecthaystack.stores.redis{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_split_nodes_alone() -> None:
    assert split_nodes("a,b:1") == (("a", 6379), ("b", 1))
    with pytest.raises(ValueError, match="names no node"):
        split_nodes("")


# -- on the cluster the tests start ---------------------------------------------------------


@pytest.fixture
def in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py shuffles the startup nodes; kept in order here, so the dead node listed
    first is the one tried first."""
    monkeypatch.setattr(random, "shuffle", lambda seq: None)


@pytest.mark.anyio
@pytest.mark.usefixtures("in_order")
async def test_a_dead_first_node_does_not_stop_a_store_opening(
    cluster: RedisProcs, prefix: str
) -> None:
    dead = free_ports(2)  # nothing listens there
    nodes = [f"127.0.0.1:{p}" for p in dead] + [f"127.0.0.1:{p}" for p in cluster.ports]
    url = f"redis+cluster://{','.join(nodes)}/?prefix={prefix}&socket_connect_timeout=2"
    store = open_store(url)
    with anyio.fail_after(60):  # a bound against a hang, not a timing assertion
        await store.open()
    try:
        await store.put_entities([{"id": Ref("s"), "site": Marker}])
        other = open_store(url)
        await other.open()
        try:
            got = await other.get_entities(["s"])
            assert got[0] is not None and got[0]["site"] is Marker
        finally:
            await other.close()
        # The URL's options reached every node, those discovered too.
        known = store.redis.get_nodes()
        assert {n.port for n in known} >= set(cluster.ports)
        assert all(n.connection_kwargs["socket_connect_timeout"] == 2.0 for n in known)
        info = await store.info()
        assert info.backend.startswith(f"redis+cluster://127.0.0.1:{dead[0]},127.0.0.1:{dead[1]},")
    finally:
        await store.drop()
        await store.close()


@pytest.mark.anyio
@pytest.mark.usefixtures("in_order")
async def test_only_dead_nodes_is_a_503_not_a_hang(prefix: str) -> None:
    dead = free_ports(3)
    nodes = ",".join(f"127.0.0.1:{p}" for p in dead)
    store = open_store(
        f"redis+cluster://app:{SECRET}@{nodes}/?prefix={prefix}&socket_connect_timeout=2"
    )
    with anyio.fail_after(60), pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert caught.value.status == 503
    assert "cannot be connected" in str(caught.value)
    assert "s3cr" not in str(caught.value)
    await store.close()
