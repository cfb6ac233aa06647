"""The stores under the rig: a PostgreSQL cluster and a Redis Cluster the rig starts
itself (in temporary directories, on free ports of 127.0.0.1, stopped by PID), or an
existing server given by URL (with a schema or key prefix of the rig's own, removed at
the end; no fault can be injected there).

Each backend says which store URL the servers get, which processes to count CPU for,
how much memory the store's data takes, and how to break it: a PostgreSQL restart, or
the crash of the Redis master that holds the store's slot (its replica takes over).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._procs import Proc, free_port, free_ports, wait_for

__all__ = [
    "Backend",
    "ExternalPostgres",
    "ExternalRedis",
    "FaultReport",
    "OwnPostgres",
    "OwnRedisCluster",
    "Unavailable",
]


class Unavailable(RuntimeError):
    """A tool the backend needs is not installed; the message says what to install."""


@dataclass
class FaultReport:
    """What a fault did: when it began and when the store was back (monotonic seconds),
    and what was done."""

    what: str
    began: float
    store_back: float


class Backend(Protocol):
    """A store the rig's servers share."""

    kind: str
    """``postgresql`` or ``redis-cluster`` (or ``redis``)."""
    url: str
    """The store URL every server instance gets (``--store``)."""

    def start(self) -> None:
        """Start (or reach) the backend; :attr:`url` is valid afterwards."""
        ...

    def stop(self) -> None:
        """Stop what was started and remove what was made (temp dirs, schema, keys)."""
        ...

    def pids(self) -> list[int]:
        """Processes whose CPU counts as the store's (none for an external one)."""
        ...

    def version(self) -> str:
        """The backend's version, for the report."""
        ...

    def data_bytes(self) -> int:
        """Bytes the store's data takes now (the shard's memory; the schema's size)."""
        ...

    def can_fault(self) -> bool:
        """Whether :meth:`fault` is possible (only on a backend the rig started)."""
        ...

    def fault(self, gap: float) -> FaultReport:
        """Break the store for about ``gap`` seconds, then let it come back; returns once
        it serves again."""
        ...


def _run(args: list[str], *, user: str | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, user=user
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# -- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0),
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("postgres")
    if which:
        return Path(which).parent
    raise Unavailable(
        "PostgreSQL's server programs (postgres, initdb) are not installed: "
        "apt-get install postgresql"
    )


def _schema_bytes(conninfo: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


class OwnPostgres:
    """A PostgreSQL cluster of the rig's own: ``initdb`` into a temporary directory (as
    the ``postgres`` OS user when run as root, since PostgreSQL refuses root), the
    ``postgres`` server on a free port, stopped and started by PID."""

    kind = "postgresql"

    def __init__(self, work: Path, *, pool_max: int = 4) -> None:
        self.bin = _pg_bin()
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable(
                    "running as root needs the postgres OS user (apt-get install postgresql "
                    "makes it)"
                ) from None
            self.user = "postgres"
        # Not under ``work``: the postgres user must reach it, and ``work`` is private.
        self.dir = Path(tempfile.mkdtemp(prefix="haystack-scaleout-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.schema = "haystack"
        self.conninfo = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = (
            f"{self.conninfo}?schema={self.schema}&pool_max={pool_max}&pool_timeout=3"
            "&connect_timeout=3"
        )
        self.proc: Proc | None = None

    def _server(self) -> Proc:
        args = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=120",
            # A test cluster: durability against power loss is not what is measured.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=on",
            "-c",
            "shared_buffers=128MB",
        ]
        return Proc("postgres", args, self.dir / "postgres.log", user=self.user).start()

    def _ready(self) -> bool:
        import psycopg

        if self.proc is None or not self.proc.alive():
            raise RuntimeError(f"PostgreSQL stopped:\n{self.proc.tail() if self.proc else ''}")
        try:
            psycopg.connect(self.conninfo, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        _run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            user=self.user,
        )
        self.proc = self._server()
        wait_for(self._ready, "PostgreSQL", 60)

    def stop(self) -> None:
        """Stop the server (fast shutdown by SIGINT to its PID) and remove the cluster."""
        if self.proc is not None:
            self._shutdown(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _shutdown(proc: Proc) -> None:
        if proc.popen is not None and proc.popen.poll() is None:
            import signal

            os.kill(proc.pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                proc.popen.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def pids(self) -> list[int]:
        """The postmaster (its backends are its children)."""
        return [self.proc.pid] if self.proc is not None and self.proc.alive() else []

    def version(self) -> str:
        """``postgres --version``."""
        return _run([str(self.bin / "postgres"), "--version"]).strip()

    def data_bytes(self) -> int:
        """Tables, indexes and TOAST of the store's schema."""
        return _schema_bytes(self.conninfo, self.schema)

    def can_fault(self) -> bool:
        """Always: the rig owns this cluster."""
        return True

    def fault(self, gap: float) -> FaultReport:
        """A restart: fast shutdown (every connection is cut), ``gap`` seconds down, start."""
        assert self.proc is not None
        began = time.monotonic()
        self._shutdown(self.proc)
        time.sleep(gap)
        self.proc = self._server()
        wait_for(self._ready, "PostgreSQL after its restart", 60)
        return FaultReport(
            f"PostgreSQL restarted (fast shutdown, {gap:g} s down)", began, time.monotonic()
        )


class ExternalPostgres:
    """An existing PostgreSQL (``--pg-url``): a schema of the rig's own, dropped at the
    end.  No fault can be injected: the rig never stops a server it did not start."""

    kind = "postgresql"

    def __init__(self, conninfo: str, *, pool_max: int = 4) -> None:
        self.conninfo = conninfo
        self.schema = "hs_scaleout_" + secrets.token_hex(4)
        sep = "&" if "?" in conninfo else "?"
        self.url = f"{conninfo}{sep}schema={self.schema}&pool_max={pool_max}&pool_timeout=3"

    def start(self) -> None:
        """Check that the server answers."""
        import psycopg

        try:
            psycopg.connect(self.conninfo, connect_timeout=3).close()
        except psycopg.OperationalError as exc:
            raise Unavailable(f"PostgreSQL at {self.conninfo} is not reachable: {exc}") from None

    def stop(self) -> None:
        """Drop the rig's schema (and only it)."""
        import psycopg
        from psycopg import sql

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.conninfo, autocommit=True) as conn,
        ):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    def pids(self) -> list[int]:
        """None: the server is not the rig's."""
        return []

    def version(self) -> str:
        """``SHOW server_version``."""
        import psycopg

        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'} (external)"

    def data_bytes(self) -> int:
        """Tables, indexes and TOAST of the rig's schema."""
        return _schema_bytes(self.conninfo, self.schema)

    def can_fault(self) -> bool:
        """Never."""
        return False

    def fault(self, gap: float) -> FaultReport:
        """Refused: the server is not the rig's."""
        raise RuntimeError("no fault on an external PostgreSQL")


# -- Redis ------------------------------------------------------------------------------------


def _redis(port: int) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)


def _cli(port: int, *args: str) -> str:
    """A command's raw answer through ``redis-cli`` (redis-py parses the cluster ones
    into shapes that differ between its versions)."""
    return _run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], timeout=10)


class OwnRedisCluster:
    """A Redis Cluster of the rig's own: three masters and a replica each
    (``redis-server --cluster-enabled yes`` in temporary directories, joined by
    ``redis-cli --cluster create``), every node started and stopped by PID.

    The store puts all its keys in one hash slot (its prefix is the hash tag), so it
    lives on one master and that master's replica: :meth:`fault` kills that master
    (``kill -9``), waits for the replica to be promoted, and starts the old master again,
    which comes back as the new master's replica."""

    kind = "redis-cluster"

    def __init__(self, work: Path, *, masters: int = 3, node_timeout_ms: int = 2000) -> None:
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed: apt-get install redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=work))
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.ports = free_ports(masters * 2, bus=True)
        self.procs: dict[int, Proc] = {}
        self.prefix = "hs-scaleout-" + secrets.token_hex(4)
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}?prefix={self.prefix}"

    def _node(self, port: int) -> Proc:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--dir",
            str(node_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        return Proc(f"redis-{port}", args, node_dir / "redis.log").start()

    def _pings(self, port: int) -> bool:
        import redis

        if not self.procs[port].alive():
            raise RuntimeError(f"redis-server on {port} stopped:\n{self.procs[port].tail()}")
        try:
            return bool(_redis(port).ping())
        except redis.RedisError:
            return False

    def _cluster_ok(self) -> bool:
        import redis

        try:
            for port in self.ports:
                if "cluster_state:ok" not in _cli(port, "CLUSTER", "INFO"):
                    return False
            return all(self._replica_synced(port) for port in self.replicas())
        except (redis.RedisError, RuntimeError, subprocess.TimeoutExpired):
            return False

    def _replica_synced(self, port: int) -> bool:
        info = _redis(port).info("replication")
        return bool(info.get("master_link_status") == "up")

    def start(self) -> None:
        """Start six nodes, make them a cluster of three masters with a replica each, and
        wait until every slot is served and every replica is in sync."""
        for port in self.ports:
            self.procs[port] = self._node(port)
        for port in self.ports:
            wait_for(functools.partial(self._pings, port), f"redis-server on {port}", 30)
        _run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            timeout=60,
        )
        wait_for(self._cluster_ok, "the Redis Cluster", 60, 0.3)

    def stop(self) -> None:
        """Stop every node by PID and remove the cluster's directory."""
        for proc in self.procs.values():
            proc.stop(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """Every node (masters and replicas)."""
        return [p.pid for p in self.procs.values() if p.alive()]

    def version(self) -> str:
        """``redis-server --version``, and the cluster's shape."""
        version = _run(["redis-server", "--version"]).split()[2].removeprefix("v=")
        return f"Redis {version}, cluster of {self.masters} masters with a replica each"

    def _nodes(self) -> list[dict[str, Any]]:
        """``CLUSTER NODES`` as seen by a live node."""
        for port in self.ports:
            if not self.procs[port].alive():
                continue
            try:
                text = _cli(port, "CLUSTER", "NODES")
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            if not text.strip() or "ERR" in text[:10]:
                continue
            nodes = []
            for line in text.splitlines():
                parts = line.split()
                if len(parts) < 8:
                    continue
                addr = parts[1].split("@")[0]
                nodes.append(
                    {
                        "id": parts[0],
                        "port": int(addr.rsplit(":", 1)[1]),
                        "flags": parts[2].split(","),
                        "master_id": parts[3],
                        "slots": parts[8:],
                    }
                )
            return nodes
        raise RuntimeError("no Redis Cluster node answers")

    def replicas(self) -> list[int]:
        """Ports of the nodes that are replicas now."""
        return [n["port"] for n in self._nodes() if "slave" in n["flags"]]

    def _slot(self) -> int:
        live = next(p for p in self.ports if self.procs[p].alive())
        return int(_cli(live, "CLUSTER", "KEYSLOT", f"{{{self.prefix}}}").strip())

    def store_master(self) -> int:
        """The port of the master serving the store's slot now."""
        slot = self._slot()
        for node in self._nodes():
            if "master" not in node["flags"] or "fail" in node["flags"]:
                continue
            for spec in node["slots"]:
                if spec.startswith("["):
                    continue  # a slot being migrated
                lo, _, hi = spec.partition("-")
                if int(lo) <= slot <= int(hi or lo):
                    return int(node["port"])
        raise RuntimeError(f"no master serves slot {slot}")

    def data_bytes(self) -> int:
        """``used_memory`` of the master holding the store (its only shard)."""
        return int(_redis(self.store_master()).info("memory")["used_memory"])

    def can_fault(self) -> bool:
        """Always: the rig owns this cluster."""
        return True

    def fault(self, gap: float) -> FaultReport:
        """``kill -9`` of the store's master; the cluster promotes its replica after the
        node timeout (``gap`` is not used: the cluster decides).  The old master is then
        started again and rejoins as a replica."""
        victim = self.store_master()
        began = time.monotonic()
        self.procs[victim].kill()

        def promoted() -> bool:
            try:
                return self.store_master() != victim
            except RuntimeError:
                return False

        wait_for(promoted, "a replica's promotion", 60, 0.1)
        back = time.monotonic()
        new_master = self.store_master()
        self.procs[victim] = self._node(victim)
        wait_for(self._cluster_ok, "the old master's return as a replica", 60, 0.3)
        return FaultReport(
            f"kill -9 of the Redis master holding the store (port {victim}); "
            f"its replica (port {new_master}) promoted",
            began,
            back,
        )


class ExternalRedis:
    """An existing Redis (``--redis-url``, single node or cluster): a key prefix of the
    rig's own, removed at the end; no fault is injected."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self.base = url
        self.prefix = "hs-scaleout-" + secrets.token_hex(4)
        sep = "&" if "?" in url else "?"
        self.url = f"{url}{sep}prefix={self.prefix}"

    def start(self) -> None:
        """Check that it answers (by opening the store once)."""
        import asyncio

        from projecthaystack.server import open_store

        async def probe() -> None:
            store = open_store(self.url)
            await store.open()
            await store.close()

        try:
            asyncio.run(probe())
        except Exception as exc:
            raise Unavailable(f"Redis at {self.base} is not usable: {exc}") from None

    def stop(self) -> None:
        """Remove the rig's keys (SCAN and UNLINK of its prefix only)."""
        import asyncio

        from projecthaystack.server import open_store

        async def drop() -> None:
            store: Any = open_store(self.url)
            await store.open()
            try:
                await store.drop()
            finally:
                await store.close()

        with contextlib.suppress(Exception):
            asyncio.run(drop())

    def pids(self) -> list[int]:
        """None: the server is not the rig's."""
        return []

    def version(self) -> str:
        """What the URL names."""
        return "Redis (external)"

    def data_bytes(self) -> int:
        """Not measured on a shared server (its memory holds others' data too)."""
        return 0

    def can_fault(self) -> bool:
        """Never."""
        return False

    def fault(self, gap: float) -> FaultReport:
        """Refused: the server is not the rig's."""
        raise RuntimeError("no fault on an external Redis")
