"""The server instances and the balancer in front of them.

Each instance is ``haystack-server serve --store URL --workers N`` on a port of its own
(a supervisor and N workers, one process group); every instance gets the same
``HAYSTACK_SECRET`` and admin, as a deployment must.  HAProxy balances round robin with
no stickiness, checks each instance's health on ``GET /`` (the home page, which needs
neither a login nor the store, so a store outage is answered by the servers with their
503 error grids instead of HAProxy's), retries a connection that failed on another
instance, and answers its own 502/503/504 with Haystack error grids too.
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from projecthaystack.codecs import zinc
from projecthaystack.server import error_grid

from ._backends import Unavailable
from ._procs import Proc, free_port, free_ports, wait_for

__all__ = ["Balancer", "Fleet", "haproxy_config", "server_command"]

BACKEND = "haystack"
"""The HAProxy backend's name (the runtime API addresses servers as ``haystack/s1``)."""

_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_SAYS = {
    502: "the Haystack server behind the balancer stopped answering (HAProxy 502); "
    "the request may have run: repeat it if it is safe to",
    503: "no Haystack server is available behind the balancer (HAProxy 503); retry later",
    504: "the Haystack server behind the balancer did not answer in time (HAProxy 504)",
}


def server_command() -> list[str]:
    """The ``haystack-server`` command of this environment."""
    beside = Path(sys.executable).parent / "haystack-server"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("haystack-server")
    if found is None:
        raise Unavailable(
            "the haystack-server command is not installed: run the rig with "
            "python3 tools/dev.py scaleout (or pip install -e packages/haystack-server)"
        )
    return [found]


class Fleet:
    """``count`` instances of ``haystack-server serve`` on one store."""

    def __init__(
        self,
        work: Path,
        store_url: str,
        count: int,
        *,
        workers: int,
        env: Mapping[str, str],
        prefix: str = "/api",
    ) -> None:
        self.work = work
        self.store_url = store_url
        self.workers = workers
        self.env = dict(env)
        self.prefix = prefix
        self.ports = free_ports(count)
        self.procs: list[Proc] = [self._proc(i) for i in range(count)]

    def _proc(self, i: int) -> Proc:
        args = [
            *server_command(),
            "serve",
            "--store",
            self.store_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[i]),
            "--prefix",
            self.prefix,
            "--workers",
            str(self.workers),
            "--trusted-proxy",
            "127.0.0.1",
            "--server-name",
            f"rig-s{i + 1}",
            "--log-level",
            "warning",
        ]
        return Proc(f"s{i + 1}", args, self.work / f"server-s{i + 1}.log", env=self.env)

    def url(self, i: int) -> str:
        """Instance ``i``'s own API URL (past the balancer)."""
        return f"http://127.0.0.1:{self.ports[i]}{self.prefix}"

    def _serves(self, i: int) -> bool:
        proc = self.procs[i]
        if not proc.alive():
            raise RuntimeError(f"instance s{i + 1} stopped:\n{proc.tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[i]}/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def start(self, *which: int) -> None:
        """Start the instances (all, or those given) and wait until each serves."""
        chosen = which or tuple(range(len(self.procs)))
        for i in chosen:
            self.procs[i] = self._proc(i)
            self.procs[i].start()
        for i in chosen:
            wait_for(functools.partial(self._serves, i), f"instance s{i + 1}", 120, 0.2)

    def kill(self, i: int) -> None:
        """``kill -9`` of instance ``i``: its supervisor and workers at once."""
        self.procs[i].kill()

    def stop(self) -> None:
        """Stop every instance (SIGTERM to each group, then SIGKILL)."""
        for proc in self.procs:
            proc.stop()

    def pids(self) -> list[int]:
        """The instances' supervisors (their workers are their children)."""
        return [p.pid for p in self.procs if p.alive()]


def _error_file(status: int) -> bytes:
    body = zinc.encode_grid(error_grid(_SAYS[status])).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: text/zinc; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-cache\r\n"
        + ("Retry-After: 1\r\n" if status == 503 else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def haproxy_config(
    *,
    port: int,
    servers: Sequence[int],
    socket_path: Path,
    error_dir: Path,
    check_interval_ms: int = 500,
) -> str:
    """An HAProxy configuration for the instances on ``servers`` (ports of 127.0.0.1):
    round robin, no stickiness, health checks on ``GET /``, a failed connection retried
    on another instance, Haystack error grids for HAProxy's own errors, and the runtime
    API on ``socket_path``."""
    lines = [
        "global",
        "    maxconn 4096",
        f"    stats socket {socket_path} mode 600 level admin",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 30s",
        # A connection refused by a dead instance is retried on another one: nothing
        # was sent, so it is always safe.  Requests that reached an instance are not.
        "    retries 2",
        "    retry-on conn-failure",
        "    option redispatch 1",
        *(f"    errorfile {s} {error_dir / f'{s}.http'}" for s in sorted(_REASONS)),
        "",
        "frontend haystack_api",
        f"    bind 127.0.0.1:{port}",
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto http",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri / ver HTTP/1.1 hdr Host haystack",
        "    http-check expect status 200",
        # Which instance answered, so the rig can show the spread (not needed in
        # production).
        "    http-response set-header X-Haystack-Instance %[srv_name]",
        f"    default-server inter {check_interval_ms}ms fastinter {check_interval_ms}ms "
        "fall 2 rise 2 on-marked-down shutdown-sessions",
        *(f"    server s{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(servers)),
        "",
    ]
    return "\n".join(lines)


class Balancer:
    """HAProxy in front of the fleet, started by the rig (``haproxy -db``, by PID)."""

    def __init__(self, work: Path, servers: Sequence[int]) -> None:
        exe = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if exe is None:
            raise Unavailable("HAProxy is not installed: apt-get install haproxy")
        self.exe = exe
        self.work = work
        self.port = free_port()
        self.socket = work / "haproxy.sock"
        self.servers = list(servers)
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        """The API URL through the balancer."""
        return f"http://127.0.0.1:{self.port}/api"

    def version(self) -> str:
        """``haproxy -v``, first line."""
        out = subprocess.run([self.exe, "-v"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0] if out.stdout else "HAProxy"

    def start(self) -> None:
        """Write the configuration and error files, check them, start HAProxy."""
        errors = self.work / "haproxy-errors"
        errors.mkdir(exist_ok=True)
        for status in _REASONS:
            (errors / f"{status}.http").write_bytes(_error_file(status))
        cfg = self.work / "haproxy.cfg"
        cfg.write_text(
            haproxy_config(
                port=self.port, servers=self.servers, socket_path=self.socket, error_dir=errors
            )
        )
        check = subprocess.run(
            [self.exe, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refuses its configuration: {check.stderr.strip()}")
        self.proc = Proc("haproxy", [self.exe, "-db", "-f", str(cfg)], self.work / "haproxy.log")
        self.proc.start()
        wait_for(lambda: len(self.up()) == len(self.servers), "HAProxy's health checks", 30, 0.2)

    def command(self, text: str) -> str:
        """One command of HAProxy's runtime API."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def up(self) -> list[str]:
        """Names of the servers HAProxy sends requests to now."""
        try:
            csv = self.command("show stat")
        except OSError:
            return []
        up = []
        for line in csv.splitlines():
            fields = line.split(",")
            if (
                len(fields) > 17
                and fields[0] == BACKEND
                and fields[1] != "BACKEND"
                and fields[17].startswith("UP")
            ):
                up.append(fields[1])
        return up

    def use(self, count: int) -> None:
        """Send requests to the first ``count`` instances only (the others in
        maintenance), and wait until HAProxy says so."""
        for i in range(len(self.servers)):
            state = "ready" if i < count else "maint"
            self.command(f"set server {BACKEND}/s{i + 1} state {state}")
        want = [f"s{i + 1}" for i in range(count)]
        wait_for(lambda: sorted(self.up()) == want, f"HAProxy on {count} instances", 30, 0.1)

    def wait_up(self, name: str, timeout: float = 60) -> float:
        """Wait until HAProxy's checks find ``name`` up; when (monotonic)."""
        wait_for(lambda: name in self.up(), f"HAProxy marking {name} up", timeout, 0.1)
        return time.monotonic()

    def wait_down(self, name: str, timeout: float = 30) -> float:
        """Wait until HAProxy's checks find ``name`` down; when (monotonic)."""
        wait_for(lambda: name not in self.up(), f"HAProxy marking {name} down", timeout, 0.05)
        return time.monotonic()

    def pids(self) -> list[int]:
        """HAProxy's process."""
        return [self.proc.pid] if self.proc is not None and self.proc.alive() else []

    def stop(self) -> None:
        """Stop HAProxy by PID."""
        if self.proc is not None:
            self.proc.stop(10)
