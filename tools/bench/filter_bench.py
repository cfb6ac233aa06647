"""Filter speed: parsing uncached, and evaluation over the Alpha building against a bare
``'point' in d`` loop over the same dicts, measured in the same run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from _timing import medians

from projecthaystack.codecs import json
from projecthaystack.filter import index_by_id, parse, select

ROOT = Path(__file__).resolve().parents[2]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)
SIMPLE = "point and temp and sensor"
PATH = 'equipRef->siteRef->geoCity == "Hugo"'


def _theirs(data: bytes) -> dict[str, Any]:
    try:
        import hs_py
        from hs_py.encoding import json as hjson
    except ImportError:
        return {}
    rows = list(hjson.decode_grid(data))
    by_id = {r["id"].val: r for r in rows if "id" in r}

    def uncached() -> object:
        hs_py.parse.cache_clear()
        return hs_py.parse(SIMPLE)

    simple, path = hs_py.parse(SIMPLE), hs_py.parse(PATH)
    resolver = lambda ref: by_id.get(ref.val)  # noqa: E731
    return {
        "parse": uncached,
        "simple": lambda: [r for r in rows if hs_py.evaluate(simple, r)],
        "path": lambda: [r for r in rows if hs_py.evaluate(path, r, resolver)],
        "bare": lambda: [r for r in rows if "point" in r],
    }


def main() -> None:
    """Print the filter table."""
    data = (BUILDINGS / "alpha.json").read_bytes()
    rows = list(json.decode_grid(data).rows)
    resolver = index_by_id(rows)  # a store keeps such an index; it is not per query
    simple, path = parse(SIMPLE), parse(PATH)
    # Parsing is timed on its own, many calls a sample, so that it is not measured
    # straight after a pass over the building has emptied the CPU caches.
    theirs = _theirs(data)
    # Limits other than the defaults skip the parse cache.
    parses = {"parse": lambda: parse(SIMPLE, max_length=8191)}
    if "parse" in theirs:
        parses["hs_py parse"] = theirs.pop("parse")
    t = medians(parses, rounds=15, inner=2000)
    cases = {
        "bare": lambda: [d for d in rows if "point" in d],
        "simple": lambda: select(simple, rows),
        "path": lambda: select(path, rows, resolver=resolver),
    }
    cases.update({f"hs_py {k}": v for k, v in theirs.items()})
    t.update(medians(cases, rounds=25, inner=20))
    bare = t["bare"]

    def other(key: str, floor_key: str) -> str:
        if f"hs_py {key}" not in t:
            return "n/a"
        return f"{t[f'hs_py {key}'] / t[f'hs_py {floor_key}']:.1f}x"

    hs_parse = f"{t['hs_py parse'] * 1e6:.1f} µs" if "hs_py parse" in t else "n/a"
    print("\n### Filters on Alpha (2,032 entities)\n")
    print("| operation | ours | target | haystack-py |")
    print("|---|---:|---:|---:|")
    print(f"| parse `{SIMPLE}`, uncached | {t['parse'] * 1e6:.1f} µs | ≤ 5 µs | {hs_parse} |")
    print(
        f"| select `{SIMPLE}` / bare `'point' in d` loop | {t['simple'] / bare:.2f}x | ≤ 2x "
        f"| {other('simple', 'bare')} |"
    )
    print(
        f"| select `{PATH}` / bare loop | {t['path'] / bare:.2f}x | ≤ 4x "
        f"| {other('path', 'bare')} |"
    )
