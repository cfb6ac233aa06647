"""Interleaved timing: every candidate is measured in each round, so load on a shared
machine falls on all of them alike and the ratios stay meaningful."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def medians(
    cases: dict[str, Callable[[], object]],
    rounds: int = 15,
    inner: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each case, rounds interleaved.

    ``clock=time.process_time`` counts the CPU time of this process only: on a machine
    shared with other work, time spent descheduled is left out."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm caches, imports and lazily built tables
        fn()
    gc_was = gc.isenabled()
    try:
        for _ in range(rounds):
            for name, fn in cases.items():
                gc.collect()
                gc.disable()
                start = clock()
                for _ in range(inner):
                    fn()
                samples[name].append((clock() - start) / inner)
                gc.enable()
    finally:
        if gc_was:
            gc.enable()
    return {name: statistics.median(vals) for name, vals in samples.items()}


def table(rows: list[tuple[str, float, float, float | None, float | None]]) -> str:
    """Rows of (operation, ours, floor, target, haystack-py) as a Markdown table."""
    x = "\u00d7"  # the multiplication sign
    out = [
        "| operation | ours (ms) | floor (ms) | ours / floor | target | haystack-py / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op, ours, floor, target, other in rows:
        ratio = ours / floor
        mark = "" if target is None else (" ✓" if ratio <= target else " ✗")
        out.append(
            f"| {op} | {ours * 1e3:.2f} | {floor * 1e3:.2f} | {ratio:.2f}{x}{mark} | "
            f"{'' if target is None else f'≤ {target}{x}'} | "
            f"{'n/a' if other is None else f'{other / floor:.2f}{x}'} |"
        )
    return "\n".join(out)
