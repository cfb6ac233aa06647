"""Benchmarks, reported as ratios measured in one run (never lone absolute times).

    python3 tools/dev.py bench                      # every benchmark
    python3 tools/dev.py bench codecs               # one of them
    python3 tools/dev.py bench --json report.json   # also write the tables as JSON

Each benchmark times our operation and its floor (``orjson`` on the same building) with
the same method in the same process, interleaved, and prints the median of each and
their ratio; where haystack-py (``hs_py``) is importable it is timed the same way.

``--json FILE`` writes what the benchmarks printed as data: for each benchmark, every
Markdown table with the heading above it and its cells as printed. The documentation's
charts are drawn from that file (``docs/benchmarks/results.json``, by
``tools/docs/charts.py``), so they show exactly what a run printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client_bench
import codecs_bench
import filter_bench
import impl_bench
import otel_bench
import pg_bench
import redis_bench
import server_bench
import ws_bench
from _report import tables

BENCHES = {
    "codecs": codecs_bench.main,
    "impl": impl_bench.main,  # the codecs pure and compiled (python3 tools/dev.py compile)
    "filter": filter_bench.main,
    "server": server_bench.main,
    "client": client_bench.main,
    "ws": ws_bench.main,
    "otel": otel_bench.main,
    # The stores' benchmarks need PostgreSQL and Redis on 127.0.0.1 (as the tests do).
    "pg": pg_bench.main,  # HAYSTACK_BENCH_BIG=1 adds its 10-million-sample read
    "redis": lambda: redis_bench.main([]),
}


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.copy = out, io.StringIO()

    def write(self, text: str) -> int:
        self.out.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.out.flush()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _in_own_process(name: str) -> str:
    """Run one benchmark in a fresh interpreter, its output passed on as it comes, and
    return it: what one benchmark leaves in memory would otherwise weigh on the next
    (the garbage collector walks every live object)."""
    child = subprocess.Popen(
        [sys.executable, __file__, name], stdout=subprocess.PIPE, text=True, encoding="utf-8"
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    if child.wait() != 0:
        raise SystemExit(f"benchmark {name!r} failed (exit {child.returncode})")
    return "".join(lines)


def main(argv: list[str]) -> int:
    """Run the named benchmarks, or all of them."""
    report = None
    if "--json" in argv:
        at = argv.index("--json")
        if at + 1 >= len(argv):
            print("--json needs a file name", file=sys.stderr)
            return 2
        report, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    names = argv or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; have {', '.join(BENCHES)}", file=sys.stderr)
            return 2
    printed: dict[str, str] = {}
    for name in names:
        if len(names) == 1:
            tee = _Tee(sys.stdout)
            with contextlib.redirect_stdout(tee):
                BENCHES[name]()
            printed[name] = tee.copy.getvalue()
        else:
            printed[name] = _in_own_process(name)
    if report is not None:
        data = {
            "date": dt.datetime.now(dt.UTC).date().isoformat(),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "haystack_py": _version("haystack-py"),
            "benches": {name: tables(text) for name, text in printed.items()},
        }
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
