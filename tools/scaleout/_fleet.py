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

import datetime as dt
import functools
import ipaddress
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from projecthaystack.codecs import zinc
from projecthaystack.server import error_grid

from ._backends import Unavailable
from ._guide import (
    GuideError,
    guide_block,
    haproxy_from_guide,
    mtls_frontend_from_guide,
    serve_args_from_guide,
)
from ._procs import Proc, free_ports, wait_for

__all__ = ["Balancer", "Fleet", "make_certificates", "server_command"]

ANNOUNCED = b"haystack-server: the Haystack API is at "
"""What ``haystack-server serve`` prints once every worker serves."""

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
        # The guide's systemd unit's command, on this machine's addresses.
        args = serve_args_from_guide(
            server_command(),
            {
                "--host": "127.0.0.1",
                "--port": str(self.ports[i]),
                "--workers": str(self.workers),
                "--trusted-proxy": "127.0.0.1",
            },
            {"HAYSTACK_STORE": self.store_url},
        )
        args += ["--prefix", self.prefix, "--server-name", f"rig-s{i + 1}"]
        return Proc(f"s{i + 1}", args, self.work / f"server-s{i + 1}.log", env=self.env)

    def url(self, i: int) -> str:
        """Instance ``i``'s own API URL (past the balancer)."""
        return f"http://127.0.0.1:{self.ports[i]}{self.prefix}"

    def _serves(self, i: int, log_from: int) -> bool:
        proc = self.procs[i]
        if not proc.alive():
            raise RuntimeError(f"instance s{i + 1} stopped:\n{proc.tail()}")
        # Every worker serves once the supervisor says where the API is (one worker
        # answering GET / is not enough: the others may still be opening the store).
        try:
            with proc.log.open("rb") as log:
                log.seek(log_from)
                if ANNOUNCED not in log.read():
                    return False
            return httpx.get(f"http://127.0.0.1:{self.ports[i]}/", timeout=2).status_code == 200
        except (OSError, httpx.TransportError):
            return False

    def start(self, *which: int) -> None:
        """Start the instances (all, or those given) and wait until all the workers of
        each serve."""
        chosen = which or tuple(range(len(self.procs)))
        offsets = {}
        for i in chosen:
            self.procs[i] = self._proc(i)
            offsets[i] = self.procs[i].log.stat().st_size if self.procs[i].log.exists() else 0
            self.procs[i].start()
        for i in chosen:
            wait_for(functools.partial(self._serves, i, offsets[i]), f"instance s{i + 1}", 120, 0.2)

    def stopped(self) -> dict[str, str]:
        """The instances that are no longer running: name -> the end of their log."""
        return {p.name: p.tail(6) for p in self.procs if not p.alive()}

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


def make_certificates(work: Path) -> tuple[Path, Path, Path]:
    """A CA of the rig's own, HAProxy's certificate for ``127.0.0.1`` signed by it (the
    PEM HAProxy wants: certificate and key) and a client certificate named ``admin``
    (PEM, certificate and key): paths ``(ca, server_pem, client_pem)``."""
    now = dt.datetime.now(dt.UTC)

    def cert(
        name: str, key: Any, issuer: x509.Name, signer: Any, ca: bool, ip: bool = False
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # Key identifiers and the CA's key usage: Python 3.13's default TLS context
            # verifies strictly (VERIFY_X509_STRICT) and refuses certificates without them.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        if ca:
            usage = x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            )
            builder = builder.add_extension(usage, critical=True)
        if ip:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    def pem(c: x509.Certificate, key: Any | None = None) -> bytes:
        out = c.public_bytes(serialization.Encoding.PEM)
        if key is not None:
            out += key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return out

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "haystack rig CA")])
    ca_cert = cert("haystack rig CA", ca_key, ca_name, ca_key, True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = cert("127.0.0.1", server_key, ca_name, ca_key, False, ip=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = cert("admin", client_key, ca_name, ca_key, False)
    paths = (work / "ca.pem", work / "haproxy.pem", work / "client.pem")
    paths[0].write_bytes(pem(ca_cert))
    paths[1].write_bytes(pem(server_cert, server_key))
    paths[2].write_bytes(pem(client_cert, client_key))
    return paths


class Balancer:
    """HAProxy in front of the fleet, started by the rig (``haproxy -db``, by PID)."""

    def __init__(self, work: Path, servers: Sequence[int], *, log_requests: bool = False) -> None:
        exe = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if exe is None:
            raise Unavailable("HAProxy is not installed: apt-get install haproxy")
        self.exe = exe
        self.work = work
        self.port, self.tls_port, self.mtls_port = free_ports(3)
        self.socket = work / "haproxy.sock"
        self.servers = list(servers)
        self.log_requests = log_requests
        self.proc: Proc | None = None
        # The rig's CA, HAProxy's certificate and a client's (made by start()).
        self.ca = work / "ca.pem"
        self.pem = work / "haproxy.pem"
        self.client_pem = work / "client.pem"

    @property
    def url(self) -> str:
        """The API URL through the balancer (plain HTTP: the load)."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def tls_url(self) -> str:
        """The API URL through the balancer's TLS listener (the guide's ``bind``)."""
        return f"https://127.0.0.1:{self.tls_port}/api"

    @property
    def mtls_url(self) -> str:
        """The API URL through the guide's mTLS frontend."""
        return f"https://127.0.0.1:{self.mtls_port}/api"

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
        # The guide shows the 502 file whole: it must be the one HAProxy gets here.
        shown = guide_block("HTTP/1.1 502 Bad Gateway").encode()
        if shown != _error_file(502).replace(b"\r\n", b"\n"):
            raise GuideError(
                "docs/deployment.md: the 502 error file shown is not the one the rig writes:\n"
                + _error_file(502).decode()
            )
        self.ca, self.pem, self.client_pem = make_certificates(self.work)
        cfg = self.work / "haproxy.cfg"
        text = (
            haproxy_from_guide(
                port=self.port,
                tls_port=self.tls_port,
                pem=self.pem,
                servers=self.servers,
                socket_path=self.socket,
                error_dir=errors,
            )
            + "\n"
            + mtls_frontend_from_guide(port=self.mtls_port, pem=self.pem, ca=self.ca)
        )
        if self.log_requests:
            # One line per request with its timers and termination state, into the log
            # (for --keep: what HAProxy did with a request that failed).
            text = text.replace(
                "global\n", "global\n    log stderr format short local0 info\n", 1
            ).replace("defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        cfg.write_text(text)
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
