"""The codecs' two implementations side by side: pure Python and compiled (mypyc).

Both are timed in one process, in CPU time of the process, interleaved with the orjson
floors (``orjson.loads`` of the building's JSON for decoders, of the hisWrite body for
the history row, ``orjson.dumps`` of the same untyped structure for encoders), on the same
buildings and under the same operation names as ``codecs_bench`` (encoders on rows never
encoded, encoded once and encoded repeatedly); the table gives each as a multiple of its
floor and the speed-up the compilation brings.  The compiled modules are the ones
``python3 tools/dev.py compile`` builds; without them this says so and times nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson
from _timing import medians
from codecs_bench import (
    AGAIN,
    BUILDINGS,
    FRESH,
    HISTORY,
    ONCE,
    TARGETS,
    _copies,
    floor_of,
    history_body,
)

from projecthaystack.codecs._impl import compiled_modules, pure_modules

ROUNDS = 11

PURE = pure_modules()


def _cases(m: dict[str, ModuleType], data: dict[str, bytes]) -> dict[str, Callable[[], Any]]:
    """Each operation of one implementation on one building, named as in codecs_bench.

    Every encoder is timed on rows never encoded, rows encoded once before and rows
    encoded repeatedly (the writers memoise on rows; each implementation gets copies of
    its own, so that one does not find the other's memo)."""
    js, zr, zw, tr = m["_json"], m["_zinc_read"], m["_zinc_write"], m["_trio"]
    grid = js.decode_grid(data["json"])
    v3 = js.encode_grid_bytes(grid, version=3)
    cases: dict[str, Callable[[], Any]] = {
        "JSON v4 decode": lambda: js.decode_grid(data["json"]),
        HISTORY: lambda: js.decode_grid(data["history"]),
        "JSON v3 decode": lambda: js.decode_grid(v3, version=3),
        "Zinc decode": lambda: zr.decode_grid(data["zinc"]),
        "Trio decode": lambda: tr.decode_grid(data["trio"]),
    }
    encoders: dict[str, Callable[[Any], Any]] = {
        "JSON v4": js.encode_grid_bytes,
        "JSON v3": lambda g: js.encode_grid_bytes(g, version=3),
        "Zinc": zw.encode_grid_bytes,
        "Trio": tr.encode_grid_bytes,
    }
    n = ROUNDS + 1
    for name, enc in encoders.items():
        fresh, once = _copies(grid, n, enc, 0), _copies(grid, n, enc, 1)
        again = next(_copies(grid, 1, enc, 2))
        cases[f"{name} encode, {FRESH}"] = lambda e=enc, it=fresh: e(next(it))
        cases[f"{name} encode, {ONCE}"] = lambda e=enc, it=once: e(next(it))
        cases[f"{name} encode, {AGAIN}"] = lambda e=enc, g=again: e(g)
    return cases


def run(building: str, compiled: dict[str, ModuleType]) -> str:
    """The table for one building."""
    data = {ext: (BUILDINGS / f"{building}.{ext}").read_bytes() for ext in ("json", "zinc", "trio")}
    data["history"] = history_body()
    untyped = orjson.loads(data["json"])
    cases: dict[str, Callable[[], Any]] = {
        "floor decode": lambda: orjson.loads(data["json"]),
        "floor history": lambda: orjson.loads(data["history"]),
        "floor encode": lambda: orjson.dumps(untyped),
    }
    pure, comp = _cases(PURE, data), _cases(compiled, data)
    cases.update({f"python {op}": fn for op, fn in pure.items()})
    cases.update({f"compiled {op}": fn for op, fn in comp.items()})
    # CPU time of this process, as codecs_bench: other work on a shared machine does not count.
    times = medians(cases, rounds=ROUNDS, clock=time.process_time)
    x = "\u00d7"
    out = [
        "| operation | python / floor | compiled / floor | python / compiled | target |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in pure:
        floor = times[floor_of(op)]
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
