"""Shared fixtures: an ASGI app served by uvicorn on 127.0.0.1 in a thread, and
``haystack-server serve`` processes on one store (the two-process tests of the stores),
started here and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from projecthaystack.server.testing import free_port, serve


@pytest.fixture(scope="module")
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """Serve an ASGI app for the module; returns its base URL (``.../api``)."""
    with contextlib.ExitStack() as stack:

        def serve_app(app: Any) -> str:
            # h11 keeps the case of header names (httptools lower-cases them): pyhaystack
            # finds WWW-Authenticate only as SkySpark spells it.
            return stack.enter_context(serve(app, path="/api", http="h11"))

        yield serve_app


SERVE_ADMIN = "admin"
SERVE_TIMEOUT = 60.0  # seconds any one wait may take (a start, a stop)
SERVE_BUILDING = """\
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
"""A site, a history point ``shared`` (kWh) and a writable point ``sp`` (°F)."""


def haystack_server_command() -> list[str]:
    """The ``haystack-server`` command of this environment."""
    script = Path(sys.executable).parent / "haystack-server"
    if script.exists():
        return [str(script)]
    found = shutil.which("haystack-server")
    assert found, "the haystack-server command is not installed"
    return [found]


def descendants(pid: int) -> list[int]:
    """The PIDs of every process below ``pid`` (from /proc: Linux)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name is in parentheses and may hold spaces: split after it.
        fields = text[text.rindex(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


class ServeProcesses:
    """``haystack-server serve --store STORE`` processes, one per entry of ``workers``
    (its ``--workers``), each loading :data:`SERVE_BUILDING`, with the admin
    :data:`SERVE_ADMIN` / ``password``.  ``urls`` are their ``.../api`` bases."""

    def __init__(
        self, tmp: Path, store: str, password: str, workers: Sequence[int] = (1, 1)
    ) -> None:
        (tmp / "building.trio").write_text(SERVE_BUILDING, encoding="utf-8")
        env = {
            **os.environ,
            "HAYSTACK_SECRET": secrets.token_hex(32),
            "HAYSTACK_ADMIN_USER": SERVE_ADMIN,
            "HAYSTACK_ADMIN_PASSWORD": password,
        }
        self.urls: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        try:
            for n, count in enumerate(workers):
                port = free_port()
                log = tmp / f"server{n}.log"
                args = [*haystack_server_command(), "serve", "--store", store]
                args += ["--port", str(port), "--log-level", "warning"]
                args += ["--load", str(tmp / "building.trio"), "--workers", str(count)]
                with log.open("wb") as out:
                    self.procs.append(subprocess.Popen(args, env=env, stdout=out, stderr=out))
                self.logs.append(log)
                self.urls.append(f"http://127.0.0.1:{port}/api")
            for n, url in enumerate(self.urls):
                self._wait(n, url)
        except BaseException:
            self.stop()
            raise

    def _wait(self, n: int, url: str) -> None:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while time.monotonic() < deadline:
            if self.procs[n].poll() is not None:
                raise AssertionError(f"server {n} stopped:\n{self.logs[n].read_text()}")
            try:
                if httpx.get(url + "/about", timeout=2).status_code == 401:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server {n} did not start:\n{self.logs[n].read_text()}")

    def below(self, n: int) -> list[int]:
        """The PIDs of the processes below server ``n`` (its workers, ...)."""
        return descendants(self.procs[n].pid)

    def stop(self) -> None:
        """SIGTERM to each server's PID (it stops its workers), SIGKILL to whatever of
        ours is left after the timeout.  Stopping twice does nothing more."""
        below = {proc.pid: descendants(proc.pid) for proc in self.procs}
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(SERVE_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(SERVE_TIMEOUT)
        for pids in below.values():
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def serve_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServeProcesses]]:
    """Start ``haystack-server serve`` processes on a store:
    ``serve_store(url, password, workers=(1, 1))`` (see :class:`ServeProcesses`);
    whatever is still running at the end of the module is stopped."""
    started: list[ServeProcesses] = []

    def start(store: str, password: str, workers: Sequence[int] = (1, 1)) -> ServeProcesses:
        procs = ServeProcesses(tmp_path_factory.mktemp("serve"), store, password, workers)
        started.append(procs)
        return procs

    try:
        yield start
    finally:
        for procs in started:
            procs.stop()
