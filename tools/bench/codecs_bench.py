"""Codec speed on the example buildings against orjson on the same data.

Decode is compared with ``orjson.loads`` of the building's JSON bytes; encode with
``orjson.dumps`` of the same untyped structure (what ``orjson.loads`` returned).

Every encoder is timed on rows never encoded (a store that hands out fresh rows: each
call writes a copy of the grid whose rows are new objects), rows encoded once before in
that format, and rows encoded repeatedly (the same grid over and over: a store that
hands out the same row objects).  haystack-py and rusty-haystack are timed beside where
importable; neither keeps anything between calls.  Times are the CPU time of the
benchmark's process (medians of interleaved rounds), so that other work on a shared
machine does not count.  Under each table, every target that
is not met is followed by the measured floor of the approach and what it is made of.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import zoneinfo
from collections.abc import Callable, Iterator
from itertools import chain, compress, repeat
from operator import add
from pathlib import Path
from typing import Any

import msgspec
import orjson
from _timing import medians

from projecthaystack.codecs import json, trio, zinc
from projecthaystack.kinds import Coord, FrozenDict, Grid, Marker, Number, Ref

ROOT = Path(__file__).resolve().parents[2]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)

ROUNDS = 15

# Targets from issue #18, as multiples of the orjson floor, on Alpha.
TARGETS = {
    "JSON v4 decode": 1.8,
    "JSON v4 encode, rows never encoded": 3.0,
    "Zinc decode": 1.5,
    "Zinc encode, rows never encoded": 5.0,
    "Trio decode": 2.0,
    "Trio encode, rows never encoded": 5.0,
}

FRESH, ONCE, AGAIN = "rows never encoded", "rows encoded once", "rows encoded repeatedly"

HISTORY = "JSON v4 decode, history grid of 10,000 samples"
"""A hisWrite body: its floor is ``orjson.loads`` of the same bytes, not of the building."""


def floor_of(op: str) -> str:
    """The name of the floor case an operation is measured against."""
    if op == HISTORY:
        return "floor history"
    return "floor decode" if "decode" in op else "floor encode"


def history_body(samples: int = 10_000) -> bytes:
    """A hisWrite request body as a client sends it: a grid of ``ts`` (dateTimes in
    New York, every 15 minutes) and ``val`` (numbers in °F)."""
    start = datetime.datetime(2026, 1, 1, 5, tzinfo=datetime.UTC)
    zone = zoneinfo.ZoneInfo("America/New_York")
    rows = [
        {
            "ts": {
                "_kind": "dateTime",
                "val": (start + datetime.timedelta(minutes=15 * i)).astimezone(zone).isoformat(),
                "tz": "New_York",
            },
            "val": {"_kind": "number", "val": 60 + (i % 97) / 4, "unit": "°F"},
        }
        for i in range(samples)
    ]
    cols = [{"name": "ts"}, {"name": "val"}]
    return orjson.dumps({"_kind": "grid", "meta": {"ver": "3.0"}, "cols": cols, "rows": rows})


Encoder = Callable[[Grid], Any]


def _encoders() -> dict[str, Encoder]:
    return {
        "JSON v4": json.encode_grid_bytes,
        "JSON v3": lambda g: json.encode_grid_bytes(g, version=3),
        "Zinc": zinc.encode_grid_bytes,
        "Trio": trio.encode_grid_bytes,
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
        HISTORY: lambda: hjson.decode_grid(data["history"]),
        f"JSON v4 encode, {FRESH}": lambda: hjson.encode_grid(grid),
        "JSON v3 decode": lambda: hjson.decode_grid(v3, version=JsonVersion.V3),
        f"JSON v3 encode, {FRESH}": lambda: hjson.encode_grid(grid, version=JsonVersion.V3),
        "Zinc decode": lambda: hzinc.decode_grid(ztext),
        f"Zinc encode, {FRESH}": lambda: hzinc.encode_grid(grid),
        "Trio decode": lambda: htrio.parse_trio(ttext),
        f"Trio encode, {FRESH}": lambda: htrio.encode_trio(records),
    }


def _rusty(data: dict[str, bytes]) -> dict[str, Callable[[], Any]] | None:
    """rusty-haystack (Rust): decode to its own grid, and to Python dicts
    (``to_dict`` of each row, what a Python caller works with); encode of its own grid,
    which it keeps nothing of between calls."""
    try:
        import rusty_haystack as rh
    except ImportError:
        return None
    codecs = {"JSON v4": ("application/json", "json"), "Zinc": ("text/zinc", "zinc")}
    codecs["Trio"] = ("text/trio", "trio")
    out: dict[str, Callable[[], Any]] = {}
    for name, (mime, ext) in codecs.items():
        text = data[ext].decode()
        out[f"{name} decode"] = lambda m=mime, t=text: rh.decode_grid(m, t)
        out[f"{name} decode to Python"] = lambda m=mime, t=text: [
            r.to_dict() for r in rh.decode_grid(m, t).rows()
        ]

        def encode(m: str = mime, t: str = text) -> Any:
            grid = _RUSTY_GRIDS.get((m, t))
            if grid is None:
                grid = _RUSTY_GRIDS[(m, t)] = rh.decode_grid(m, t)
            return rh.encode_grid(m, grid)

        out[f"{name} encode, {FRESH}"] = encode
    history = data["history"].decode()
    out[HISTORY] = lambda: rh.decode_grid("application/json", history)
    out[f"{HISTORY} to Python"] = lambda: [
        r.to_dict() for r in rh.decode_grid("application/json", history).rows()
    ]
    return out


_RUSTY_GRIDS: dict[tuple[str, str], Any] = {}


def _copies(grid: Grid, count: int, enc: Encoder, written: int) -> Iterator[Grid]:
    """Copies of ``grid`` with rows of their own, each written ``written`` times already
    by ``enc``: the writers memoise on rows, so each memo state is timed on its own."""
    copies = [
        Grid.unchecked(grid.meta, grid.cols, tuple(FrozenDict(r) for r in grid.rows))
        for _ in range(count)
    ]
    for copy in copies:
        for _ in range(written):
            enc(copy)
    return iter(copies)


def _datetime_in(text: str, zone: datetime.tzinfo) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(zone)


def _floors(grid: Grid, data: dict[str, bytes]) -> dict[str, Callable[[], Any]]:
    """What the approach of each codec costs at the least, for the notes under the table.

    Each does only the part of the work that no pure-Python codec of this design can
    skip, with everything else given for free (every cell's value or text looked up in
    a table built beforehand)."""
    rows = grid.rows
    names = [c.name for c in grid.cols]
    ztext = data["zinc"].decode()
    zlines = ztext.split("\n")[2:]
    zcells = {cell for line in zlines for cell in line.split(",") if cell}
    zvals: dict[str, Any] = {}
    for cell in zcells:
        try:
            zvals[cell] = zinc.decode_value(cell)
        except Exception:  # a piece of a string that holds a comma: not a cell alone
            zvals[cell] = cell
    ncols = len(names)

    def zinc_split() -> list[FrozenDict]:
        # str.split of lines and cells, every cell's value found in a dict: no parsing.
        out = []
        get = zvals.__getitem__
        for line in ztext.split("\n")[2:]:
            cells = line.split(",")
            if len(cells) == ncols:
                vals = map(get, compress(cells, cells))
                out.append(FrozenDict(zip(compress(names, cells), vals, strict=True)))
        return out

    ttext = data["trio"].decode()
    tvals: dict[str, Any] = {}
    for line in ttext.split("\n"):
        _, sep, raw = line.partition(":")
        if sep:
            tvals.setdefault(raw.strip(), raw)

    def trio_split() -> Grid:
        # Lines split at the first colon, every value found in a dict, rows to a grid.
        records, tags = [], {}
        for line in ttext.split("\n"):
            if not line or line[0] in " \t/":
                continue  # blank lines, comments, the lines of nested blocks
            if line.startswith("-"):
                records.append(FrozenDict(tags))
                tags = {}
                continue
            name, sep, raw = line.partition(":")
            tags[name] = tvals[raw.strip()] if sep else Marker
        records.append(FrozenDict(tags))
        return Grid.from_rows(records)

    jbytes = data["json"]
    decoder = msgspec.json.Decoder()

    def json_parse_and_rows() -> list[FrozenDict]:
        # msgspec's parse (markers swapped as ours does), then one FrozenDict per row
        # built by a comprehension: one Python step per value, none converted.
        obj = decoder.decode(jbytes.replace(b'{"_kind":"marker"}', b'"\\u0000"'))
        # (A comprehension on purpose: dict(r) would copy in C, with no step per value.)
        return [FrozenDict({k: v for k, v in r.items()}) for r in obj["rows"]]  # noqa: C416

    values = list(chain.from_iterable(r.values() for r in rows))
    texts = {id(v): zinc.encode_value(v) for v in values}
    template = {tuple(r): ",".join("%s" if n in r else "" for n in names) for r in rows}

    def zinc_join() -> str:
        # One template per row shape, every cell's text found by identity: no formatting.
        get = texts.__getitem__
        return "\n".join([template[tuple(r)] % tuple(map(get, map(id, r.values()))) for r in rows])

    def trio_join() -> str:
        # name:text lines joined, every value's text found by identity: no formatting.
        get = texts.__getitem__
        return "\n---\n".join(
            [
                "\n".join(map(add, map(add, r, repeat(":")), map(get, map(id, r.values()))))
                for r in rows
            ]
        )

    encoder = msgspec.json.Encoder()
    plain = [FrozenDict(r) for r in rows]

    def json_check_and_write() -> bytes:
        # One type test per value (one pass in C), and msgspec's write of the rows as
        # they stand: the least a first write does that must know what to convert.
        set(map(type, chain.from_iterable(map(dict.values, plain))))
        return encoder.encode(plain)

    # Every value that is an object of its own, as a constructor and the parts it is
    # made from (strings, markers and bools are what a parse yields anyway).
    parts = []
    for v in values:
        t = type(v)
        if t is Ref:
            parts.append((Ref, (v.id, v.dis)))
        elif t is Number:
            parts.append((Number, (v.val, v.unit)))
        elif t is Coord:
            parts.append((Coord, (v.lat, v.lng)))
        elif t is FrozenDict:
            parts.append((FrozenDict, (dict(v),)))
        elif t is datetime.datetime:
            parts.append((_datetime_in, (v.isoformat(), v.tzinfo)))

    def making() -> list[Any]:
        # The kinds made from parts already split: what a decoder cannot skip on top of
        # the floors above, whatever its parser.
        return [make(*args) for make, args in parts]

    return {
        "making": making,
        "JSON v4 decode": json_parse_and_rows,
        f"JSON v4 encode, {FRESH}": json_check_and_write,
        "Zinc decode": zinc_split,
        f"Zinc encode, {FRESH}": zinc_join,
        "Trio decode": trio_split,
        f"Trio encode, {FRESH}": trio_join,
    }


_FLOOR_WHAT = {
    "JSON v4 decode": "msgspec's parse, then each row rebuilt by a dict comprehension: "
    "one Python step per value, none converted",
    f"JSON v4 encode, {FRESH}": "one type test per value in C plus msgspec's write",
    "Zinc decode": "str.split of lines and cells, each cell's value found in a dict: no parsing",
    f"Zinc encode, {FRESH}": "one template per row shape, each cell's text found in a "
    "dict: no formatting",
    "Trio decode": "lines split at the colon, each value found in a dict, then the grid",
    f"Trio encode, {FRESH}": "name:text lines joined, each value's text found in a dict: "
    "no formatting",
}


def run(building: str) -> str:
    """The table for one building, and the notes on targets not met."""
    data = {ext: (BUILDINGS / f"{building}.{ext}").read_bytes() for ext in ("json", "zinc", "trio")}
    data["history"] = history_body()
    grid = json.decode_grid(data["json"])
    v3 = json.encode_grid_bytes(grid, version=3)
    untyped = orjson.loads(data["json"])
    ours: dict[str, Callable[[], Any]] = {
        "JSON v4 decode": lambda: json.decode_grid(data["json"]),
        HISTORY: lambda: json.decode_grid(data["history"]),
        "JSON v3 decode": lambda: json.decode_grid(v3, version=3),
        "Zinc decode": lambda: zinc.decode_grid(data["zinc"]),
        "Trio decode": lambda: trio.decode_grid(data["trio"]),
    }
    kept_grids: dict[str, Grid] = {}
    for name, enc in _encoders().items():
        fresh = _copies(grid, ROUNDS + 1, enc, 0)
        once = _copies(grid, ROUNDS + 1, enc, 1)
        again = next(_copies(grid, 1, enc, 2))
        ours[f"{name} encode, {FRESH}"] = lambda e=enc, it=fresh: e(next(it))
        ours[f"{name} encode, {ONCE}"] = lambda e=enc, it=once: e(next(it))
        ours[f"{name} encode, {AGAIN}"] = lambda e=enc, g=again: e(g)
        if name in ("JSON v4", "Zinc"):
            kept_grids[name] = again
    floors = {"decode": lambda: orjson.loads(data["json"]), "encode": lambda: orjson.dumps(untyped)}
    floors["history"] = lambda: orjson.loads(data["history"])
    others = {"hs_py": _haystack_py(data) or {}, "rusty": _rusty(data) or {}}
    failed: dict[str, dict[str, str]] = {"hs_py": {}, "rusty": {}}
    for who, theirs in others.items():
        for op, fn in list(theirs.items()):
            try:
                fn()
            except Exception as exc:  # a benchmark reports another library's failure
                failed[who][op] = f"fails: {type(exc).__name__}"
                del theirs[op]
    approach = _floors(grid, data) if building == "alpha" else {}
    # The least a write of kept rows can do: join the kept bytes.
    kept4 = [r.memo.haystack_json4 for r in kept_grids["JSON v4"].rows]
    keptz = [r.memo.haystack_zinc[1] for r in kept_grids["Zinc"].rows]
    approach["JSON v4 join"] = lambda: b",".join(kept4)
    approach["Zinc join"] = lambda: b"\n".join(keptz)
    cases = {f"floor {k}": v for k, v in floors.items()}
    cases.update({f"ours {k}": v for k, v in ours.items()})
    cases.update({f"approach {k}": v for k, v in approach.items()})
    for who, theirs in others.items():
        cases.update({f"{who} {k}": v for k, v in theirs.items()})
    # CPU time of this process (of all its threads, should a library use more than
    # one): other work on a shared machine does not count.
    times = medians(cases, rounds=ROUNDS, clock=time.process_time)
    x = "\u00d7"
    lines = [
        "| operation | ours (ms) | floor (ms) | ours / floor | target | haystack-py / floor "
        "| rusty-haystack / floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for op in ours:
        floor = times[floor_of(op)]
        ratio = times[f"ours {op}"] / floor
        target = TARGETS.get(op) if building == "alpha" else None
        mark = "" if target is None else (" ✓" if ratio <= target else " ✗")
        hs = times.get(f"hs_py {op}")
        hs_text = failed["hs_py"].get(op) or ("n/a" if hs is None else f"{hs / floor:.2f}{x}")
        rs = times.get(f"rusty {op}")
        rs_text = failed["rusty"].get(op) or ("n/a" if rs is None else f"{rs / floor:.2f}{x}")
        py = times.get(f"rusty {op} to Python")
        if py is not None:
            rs_text += f" ({py / floor:.2f}{x} to Python)"
        lines.append(
            f"| {op} | {times[f'ours {op}'] * 1e3:.2f} | {floor * 1e3:.2f} | {ratio:.2f}{x}{mark} "
            f"| {'' if target is None else f'≤ {target}{x}'} | {hs_text} | {rs_text} |"
        )
        if target is not None and ratio > target and op in approach:
            least = times[f"approach {op}"]
            at = " (ours is at it)" if least >= times[f"ours {op}"] else ""
            note = (
                f"Not met, {op}: {ratio:.2f}{x}, target ≤ {target}{x}. Floor of the approach "
                f"measured as {least / floor:.2f}{x}{at} ({least * 1e3:.2f} ms: "
                f"{_FLOOR_WHAT[op]})."
            )
            if op.endswith("decode"):
                made = times["approach making"]
                note += (
                    " Making the values alone (each Ref, Number, Coord, DateTime and nested"
                    f" dict, from parts already split) costs {made * 1e3:.2f} ms more, another"
                    f" {made / floor:.2f}{x} the floor that no decoder to Python objects skips;"
                    " beyond both, ours tells each value's kind apart and checks it, one"
                    " Python step per value (compiled with mypyc where built), which only a"
                    " native parser would save."
                )
            notes.append(note)
    j_kept, z_kept = times[f"ours JSON v4 encode, {AGAIN}"], times[f"ours Zinc encode, {AGAIN}"]
    text = "\n".join(lines)
    text += (
        f"\n\nRows encoded repeatedly: Zinc costs {z_kept / j_kept:.2f}{x} JSON v4 (both "
        "join each row's kept bytes); the join alone takes "
        f"{times['approach JSON v4 join'] / j_kept:.2f} of JSON v4's time and "
        f"{times['approach Zinc join'] / z_kept:.2f} of Zinc's."
    )
    if notes:  # each with the measured floor of the approach taken
        text += "\n\n" + "\n\n".join(notes)
    return text


def main() -> None:
    """Print the codec tables for Alpha and Bravo."""
    if not BUILDINGS.exists():
        print(f"example buildings not found at {BUILDINGS} (set HAYSTACK_BUILDINGS)")
        return
    found = {name: _present(name) for name in ("hs_py", "rusty_haystack")}
    print(
        f"Python {sys.version.split()[0]}; haystack-py "
        f"{'present' if found['hs_py'] else 'absent'}; rusty-haystack "
        f"{'present' if found['rusty_haystack'] else 'absent'}"
    )
    for building in ("alpha", "bravo"):
        print(f"\n### Codecs on {building.title()}\n")
        print(run(building))


def _present(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
