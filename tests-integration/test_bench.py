"""The benchmark runner (tools/bench/run.py, which needs the bench env's orjson) names
the Redis benchmark, and that one says why it skips when it has no Redis to measure
(instead of failing the whole run)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench"


def test_the_runner_has_the_redis_bench() -> None:
    tree = ast.parse((BENCH / "run.py").read_text(encoding="utf-8"))
    benches = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "BENCHES" for t in node.targets)
    )
    assert isinstance(benches, ast.Dict)
    named = {
        k.value: ast.unparse(v)
        for k, v in zip(benches.keys, benches.values, strict=True)
        if isinstance(k, ast.Constant)
    }
    assert "redis_bench.main(" in named["redis"]


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
