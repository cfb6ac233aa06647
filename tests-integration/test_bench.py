"""The Redis benchmark (``python3 tools/dev.py bench redis``) says why it skips when it
has no Redis to measure, instead of failing the whole benchmark run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench"


def test_the_redis_bench_skips_without_a_redis() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "redis_bench.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HAYSTACK_BENCH_REDIS": "redis://127.0.0.1:1/0"},
    )
    assert done.returncode == 0, done.stderr
    assert "redis bench: no Redis at redis://127.0.0.1:1/0" in done.stdout
    assert "set HAYSTACK_BENCH_REDIS; skipped" in done.stdout
