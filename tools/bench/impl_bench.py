"""The codecs' two implementations side by side: pure Python and compiled (mypyc).

Both are timed in one process, interleaved with the orjson floors (``orjson.loads`` of the
building's JSON for decoders, ``orjson.dumps`` of the same untyped structure for
encoders), on the same buildings as ``codecs_bench``; the table gives each as a multiple
of its floor and the speed-up the compilation brings.  The compiled modules are the ones
``python3 tools/dev.py compile`` builds; without them this says so and times nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import orjson
from _timing import medians
from codecs_bench import BUILDINGS, TARGETS

from projecthaystack.codecs import _csv, _json, _trio, _zinc_read, _zinc_write
from projecthaystack.codecs._impl import compiled_modules
from projecthaystack.kinds import FrozenDict, Grid

ROUNDS = 11

PURE: dict[str, ModuleType] = {
    "_json": _json,
    "_zinc_read": _zinc_read,
    "_zinc_write": _zinc_write,
    "_trio": _trio,
    "_csv": _csv,
}


def _copies(grid: Grid, count: int, encode: Callable[[Grid], Any], written: int) -> Iterator[Grid]:
    """Copies of ``grid`` with rows of their own, each written ``written`` times already
    (JSON v4 memoises on rows: each state is timed on its own, one copy per call)."""
    copies = [
        Grid.unchecked(grid.meta, grid.cols, tuple(FrozenDict(r) for r in grid.rows))
        for _ in range(count)
    ]
    for copy in copies:
        for _ in range(written):
            encode(copy)
    return iter(copies)


def _cases(m: dict[str, ModuleType], data: dict[str, bytes]) -> dict[str, Callable[[], Any]]:
    """Each operation of one implementation on one building."""
    js, zr, zw, tr, cs = m["_json"], m["_zinc_read"], m["_zinc_write"], m["_trio"], m["_csv"]
    grid = js.decode_grid(data["json"])
    v3 = js.encode_grid_bytes(grid, version=3)
    n = ROUNDS + 1
    fresh, once = (_copies(grid, n, js.encode_grid_bytes, w) for w in (0, 1))
    zinc_fresh, trio_fresh = (_copies(grid, n, js.encode_grid_bytes, 0) for _ in range(2))
    return {
        "JSON v4 decode": lambda: js.decode_grid(data["json"]),
        "JSON v4 encode": lambda: js.encode_grid_bytes(next(fresh)),
        "JSON v4 encode, rows written once before": lambda: js.encode_grid_bytes(next(once)),
        "JSON v4 encode, rows written twice before": lambda: js.encode_grid_bytes(grid),
        "JSON v3 decode": lambda: js.decode_grid(v3, version=3),
        "JSON v3 encode": lambda: js.encode_grid_bytes(grid, version=3),
        "Zinc decode": lambda: zr.decode_grid(data["zinc"]),
        "Zinc encode": lambda: zw.encode_grid(next(zinc_fresh)),
        "Trio decode": lambda: tr.decode_grid(data["trio"]),
        "Trio encode": lambda: tr.encode_grid(next(trio_fresh)),
        "CSV encode": lambda: cs.encode_grid(grid),
    }


def run(building: str, compiled: dict[str, ModuleType]) -> str:
    """The table for one building."""
    data = {ext: (BUILDINGS / f"{building}.{ext}").read_bytes() for ext in ("json", "zinc", "trio")}
    untyped = orjson.loads(data["json"])
    cases: dict[str, Callable[[], Any]] = {
        "floor decode": lambda: orjson.loads(data["json"]),
        "floor encode": lambda: orjson.dumps(untyped),
    }
    pure, comp = _cases(PURE, data), _cases(compiled, data)
    cases.update({f"python {op}": fn for op, fn in pure.items()})
    cases.update({f"compiled {op}": fn for op, fn in comp.items()})
    times = medians(cases, rounds=ROUNDS)
    x = "\u00d7"
    out = [
        "| operation | python / floor | compiled / floor | python / compiled | target |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in pure:
        floor = times["floor decode" if "decode" in op else "floor encode"]
        py, cc = times[f"python {op}"], times[f"compiled {op}"]
        target = TARGETS.get(op) if building == "alpha" else None
        out.append(
            f"| {op} | {py / floor:.2f}{x} | {cc / floor:.2f}{x} | {py / cc:.2f}{x} | "
            f"{'' if target is None else f'≤ {target}{x}'} |"
        )
    return "\n".join(out)


def main() -> None:
    """Print the python-against-compiled tables for Alpha and Bravo."""
    if not BUILDINGS.exists():
        print(f"example buildings not found at {BUILDINGS} (set HAYSTACK_BUILDINGS)")
        return
    try:
        compiled = compiled_modules()
    except ImportError as exc:
        print(f"compiled codecs not measured: {exc}")
        return
    print(f"Python {sys.version.split()[0]}; the codecs pure and compiled with mypyc")
    for building in ("alpha", "bravo"):
        print(f"\n### Codec implementations on {building.title()}\n")
        print(run(building, compiled))


if __name__ == "__main__":
    main()
