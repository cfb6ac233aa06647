"""Codec speed on the example buildings against orjson on the same data.

Decode is compared with ``orjson.loads`` of the building's JSON bytes; encode with
``orjson.dumps`` of the same untyped structure (what ``orjson.loads`` returned).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from _timing import medians, table

from projecthaystack.codecs import json, trio, zinc
from projecthaystack.kinds import FrozenDict, Grid

ROOT = Path(__file__).resolve().parents[2]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)

ROUNDS = 15

# Targets from the codecs issue, as multiples of the orjson floor, on Alpha.
TARGETS = {
    "JSON v4 decode": 1.8,
    "JSON v4 encode": 1.8,
    "JSON v3 decode": 2.5,
    "Zinc decode": 3.0,
    "Zinc encode": 5.0,
    "Trio decode": 3.5,
    "Trio encode": 5.0,
}


def _haystack_py(data: dict[str, bytes]) -> dict[str, Callable[[], Any]] | None:
    try:
        from hs_py.encoding import json as hjson
        from hs_py.encoding import trio as htrio
        from hs_py.encoding import zinc as hzinc
        from hs_py.encoding.json import JsonVersion
    except ImportError:
        return None
    grid = hjson.decode_grid(data["json"])
    v3 = hjson.encode_grid(grid, version=JsonVersion.V3)
    ztext, ttext = data["zinc"].decode(), data["trio"].decode()
    records = htrio.parse_trio(ttext)
    return {
        "JSON v4 decode": lambda: hjson.decode_grid(data["json"]),
        "JSON v4 encode": lambda: hjson.encode_grid(grid),
        "JSON v3 decode": lambda: hjson.decode_grid(v3, version=JsonVersion.V3),
        "JSON v3 encode": lambda: hjson.encode_grid(grid, version=JsonVersion.V3),
        "Zinc decode": lambda: hzinc.decode_grid(ztext),
        "Zinc encode": lambda: hzinc.encode_grid(grid),
        "Trio decode": lambda: htrio.parse_trio(ttext),
        "Trio encode": lambda: htrio.encode_trio(records),
    }


def _copies(grid: Grid, count: int, written: int) -> Iterator[Grid]:
    """Copies of ``grid`` with rows of their own, each written ``written`` times already.

    JSON v4 memoises on rows (whether they need converting once written, their bytes
    once written twice): each memo state is timed on its own, one copy per call."""
    copies = [
        Grid.unchecked(grid.meta, grid.cols, tuple(FrozenDict(r) for r in grid.rows))
        for _ in range(count)
    ]
    for copy in copies:
        for _ in range(written):
            json.encode_grid_bytes(copy)
    return iter(copies)


def run(building: str) -> str:
    """The table for one building."""
    data = {ext: (BUILDINGS / f"{building}.{ext}").read_bytes() for ext in ("json", "zinc", "trio")}
    grid = json.decode_grid(data["json"])
    v3 = json.encode_grid_bytes(grid, version=3)
    untyped = orjson.loads(data["json"])
    fresh, once = _copies(grid, ROUNDS + 1, 0), _copies(grid, ROUNDS + 1, 1)
    ours: dict[str, Callable[[], Any]] = {
        "JSON v4 decode": lambda: json.decode_grid(data["json"]),
        "JSON v4 encode": lambda: json.encode_grid_bytes(next(fresh)),
        "JSON v4 encode, rows written once before": lambda: json.encode_grid_bytes(next(once)),
        "JSON v4 encode, rows written twice before": lambda: json.encode_grid_bytes(grid),
        "JSON v3 decode": lambda: json.decode_grid(v3, version=3),
        "JSON v3 encode": lambda: json.encode_grid_bytes(grid, version=3),
        "Zinc decode": lambda: zinc.decode_grid(data["zinc"]),
        "Zinc encode": lambda: zinc.encode_grid(grid),
        "Trio decode": lambda: trio.decode_grid(data["trio"]),
        "Trio encode": lambda: trio.encode_grid(grid),
    }
    floors = {"decode": lambda: orjson.loads(data["json"]), "encode": lambda: orjson.dumps(untyped)}
    theirs = _haystack_py(data) or {}
    failed: dict[str, str] = {}
    for op, fn in list(theirs.items()):
        try:
            fn()
        except Exception as exc:  # a benchmark reports another library's failure, not raises it
            failed[op] = f"fails: {type(exc).__name__}"
            del theirs[op]
    cases = {"floor decode": floors["decode"], "floor encode": floors["encode"]}
    cases.update({f"ours {k}": v for k, v in ours.items()})
    cases.update({f"hs_py {k}": v for k, v in theirs.items()})
    times = medians(cases, rounds=ROUNDS)
    rows = []
    for op in ours:
        floor = times["floor decode" if "decode" in op else "floor encode"]
        target = TARGETS.get(op) if building == "alpha" else None
        rows.append((op, times[f"ours {op}"], floor, target, times.get(f"hs_py {op}")))
    text = table(rows)
    for op, why in failed.items():
        text = text.replace(f"| {op} |", f"| {op} (haystack-py {why}) |", 1)
    return text


def main() -> None:
    """Print the codec tables for Alpha and Bravo."""
    if not BUILDINGS.exists():
        print(f"example buildings not found at {BUILDINGS} (set HAYSTACK_BUILDINGS)")
        return
    other = "present" if _haystack_py_present() else "absent"
    print(f"Python {sys.version.split()[0]}; haystack-py {other}")
    for building in ("alpha", "bravo"):
        print(f"\n### Codecs on {building.title()}\n")
        print(run(building))


def _haystack_py_present() -> bool:
    try:
        import hs_py  # noqa: F401
    except ImportError:
        return False
    return True
