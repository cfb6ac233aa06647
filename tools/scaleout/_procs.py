"""Processes the rig starts, and the CPU time they use.

Every process is started by the rig in a session of its own, so that stopping it
(``Proc.stop``) or killing it (``Proc.kill``) reaches its children too (a
``haystack-server serve --workers 2`` is a supervisor and two workers) through its own
process group, and nothing else.  CPU time is read from ``/proc`` (Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CpuMeter",
    "MachineCpu",
    "Proc",
    "free_port",
    "free_ports",
    "machine_cpu",
    "rss_bytes",
    "tree_pids",
    "wait_for",
]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port(*, bus: bool = False) -> int:
    """A free TCP port of 127.0.0.1 (with ``bus``, one whose +10000 is free too, for a
    Redis Cluster node's bus port)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port + 10000))
                return port
    raise RuntimeError("no free port found")


def free_ports(n: int, *, bus: bool = False) -> list[int]:
    """``n`` distinct free ports."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port(bus=bus)
        if port not in ports and all(abs(port - p) != 10000 for p in ports):
            ports.append(port)
    return ports


@dataclass
class Proc:
    """A process the rig started (in a new session), with its log file."""

    name: str
    args: Sequence[str]
    log: Path
    env: Mapping[str, str] | None = None
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        """Start it; its output goes to :attr:`log`."""
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(self.args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None,
                start_new_session=True,
                user=self.user,
            )
        return self

    @property
    def pid(self) -> int:
        """The process id (of the group leader)."""
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for an error message."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """``kill -9`` of the process and every process of its group, at once."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the group; SIGKILL after ``timeout`` seconds."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Children that outlived their leader (a worker between two signals) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = raw[raw.rindex(b")") + 2 :].split()
    ppid = int(fields[1])
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ppid, ticks / _TICK


def _table() -> dict[int, tuple[int, float]]:
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _stat(int(entry))
            if got is not None:
                table[int(entry)] = got
    return table


def tree_pids(roots: Iterable[int]) -> set[int]:
    """The given processes and all their descendants that are alive now."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class CpuMeter:
    """CPU seconds used by process trees, by group name (``servers``, ``store``, ...).

    :meth:`sample` remembers the last CPU time seen of every process of each tree, so a
    process killed in the middle of a measurement still counts what it used until the
    last sample; :meth:`mark` starts a measurement and :meth:`since` ends it.
    """

    def __init__(self) -> None:
        self.roots: dict[str, list[int]] = {}
        self._last: dict[str, dict[int, float]] = {}

    def track(self, group: str, pids: Iterable[int]) -> None:
        """Follow these processes (and their descendants) under ``group``."""
        self.roots.setdefault(group, []).extend(pids)

    def sample(self) -> None:
        """Read every tracked process's CPU time now."""
        table = _table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        for group, roots in self.roots.items():
            last = self._last.setdefault(group, {})
            todo = [r for r in roots if r in table]
            seen: set[int] = set()
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                last[pid] = table[pid][1]
                todo.extend(children.get(pid, ()))

    def mark(self) -> dict[str, dict[int, float]]:
        """The CPU times now, to give :meth:`since` later."""
        self.sample()
        return {g: dict(t) for g, t in self._last.items()}

    def since(self, mark: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
        """CPU seconds per group used after ``mark``."""
        self.sample()
        used: dict[str, float] = {}
        for group, now in self._last.items():
            before = mark.get(group, {})
            used[group] = sum(max(0.0, t - before.get(pid, 0.0)) for pid, t in now.items())
        return used


@dataclass(frozen=True)
class MachineCpu:
    """The whole machine's CPU seconds so far (``/proc/stat``, all cores summed): busy
    (user, nice, system, irq, softirq), idle (idle, iowait) and stolen by the host."""

    busy: float
    idle: float
    steal: float

    def __sub__(self, other: MachineCpu) -> MachineCpu:
        return MachineCpu(self.busy - other.busy, self.idle - other.idle, self.steal - other.steal)


def machine_cpu() -> MachineCpu:
    """The machine's CPU seconds now (zeros where ``/proc/stat`` cannot be read)."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return MachineCpu(0.0, 0.0, 0.0)
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is
    # already counted in user).
    t = [int(x) / _TICK for x in line[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = (t + [0.0] * 8)[:8]
    return MachineCpu(user + nice + system + irq + softirq, idle + iowait, steal)


def wait_for(check: Callable[[], bool], what: str, timeout: float, interval: float = 0.1) -> None:
    """Call ``check()`` until it is true; ``TimeoutError`` naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:g} s")


def rss_bytes(roots: Iterable[int]) -> int:
    """Resident memory of these processes and their descendants, in bytes."""
    total = 0
    for pid in tree_pids(roots):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total
