"""The JSON v4 writer.

The kinds are msgspec Structs tagged with ``_kind`` as JSON v4 tags them, so msgspec
writes rows of strings, markers and refs as they stand; everything else is converted
first.  What the writer learns of a row (whether it needs converting; its JSON, once it
is written again) it keeps in the row's ``memo``, in the entries all the writers share
(see ``_memo``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any, Final

import msgspec

from projecthaystack.kinds import (
    Coord,
    FrozenDict,
    Grid,
    MarkerType,
    NAType,
    Number,
    Ref,
    RemoveType,
    Symbol,
    Uri,
    XStr,
    format_float,
)

from ._encoding import check_names, encoder_for
from ._memo import CONVERT, PLAIN, Kept, Seen
from ._text import format_datetime, format_time

__all__ = ["encode_grid4", "encode_value4"]

_encoder: Final = msgspec.json.Encoder()


_MAX_EXACT: Final = 2.0**53


def _json_num(f: float) -> float | int:
    # Whole numbers are written without ".0", as other Haystack implementations do.
    if f.is_integer() and -_MAX_EXACT < f < _MAX_EXACT:
        return int(f)
    return f


def _e4_number(n: Number) -> Any:
    v = n.val
    if math.isfinite(v):
        if n.unit is None:
            return _json_num(v)
        return {"_kind": "number", "val": _json_num(v), "unit": n.unit}
    out: dict[str, Any] = {"_kind": "number", "val": format_float(v)}
    if n.unit is not None:
        out["unit"] = n.unit
    return out


def _e4_float(f: float) -> Any:
    return _e4_number(Number(float(f)))


def _same(v: Any) -> Any:
    return v


# Haystack names of the tzinfo objects seen so far (zoneinfo caches its zones, so
# there are few); history grids repeat one zone thousands of times.
_TZ_NAMES: dict[_dt.tzinfo, str] = {}


def _e4_datetime(dt: _dt.datetime) -> dict[str, Any]:
    tz = dt.tzinfo
    name = _TZ_NAMES.get(tz) if tz is not None else None
    if name is None:
        iso, name = format_datetime(dt)
        if tz is not None and len(_TZ_NAMES) < 1024:
            _TZ_NAMES[tz] = name
        return {"_kind": "dateTime", "val": iso, "tz": name}
    # format_datetime's text, without its zone lookup: the zone's name is known.
    us = dt.microsecond
    if not us:
        iso = dt.isoformat()
    else:
        iso = dt.isoformat(timespec="milliseconds" if us % 1000 == 0 else "microseconds")
    if name == "UTC" and iso.endswith("+00:00"):
        iso = iso[:-6] + "Z"
    return {"_kind": "dateTime", "val": iso, "tz": name}


def _e4_list(items: Any) -> list[Any]:
    return [_enc4(v) for v in items]


def _is_plain(d: FrozenDict, names: bool = True) -> bool:
    """Whether msgspec can write ``d`` as it stands."""
    if names:
        check_names(d)
    native = _NATIVE4
    fd = FrozenDict
    return all(type(v) in native or (type(v) is fd and _plain_nested(v)) for v in d.values())


def _plain_nested(d: FrozenDict) -> bool:
    memo = getattr(d, "memo", None)
    if type(memo) is Seen or type(memo) is Kept:
        known = memo.plain
        if known is not None:
            return known
    plain = _is_plain(d)
    if type(memo) is Kept:
        memo.plain = plain
    else:
        d.memo = PLAIN if plain else CONVERT
    return plain


def _e4_dict(d: Mapping[str, Any]) -> Mapping[str, Any]:
    check_names(d)
    native = _NATIVE4
    if native.issuperset(map(type, d.values())):
        return d
    enc = _ENC4
    try:
        # Each value's encoder straight from the table: nested dicts are common (Bravo's
        # rows all hold one), and the general lookup costs a call apiece.
        return {
            k: v if type(v) in native else enc[type(v)](v) for k, v in d.items() if v is not None
        }
    except KeyError:  # a subclass of a kind (an int, a str): the general path
        return {k: v if type(v) in native else _enc4(v) for k, v in d.items() if v is not None}


def _e4_head(g: Grid) -> dict[str, Any]:
    """A grid's JSON v4 object without its rows."""
    meta: dict[str, Any] = {"ver": "3.0"}
    if g.meta:
        meta.update((k, v) for k, v in _e4_dict(g.meta).items() if k != "ver")
    cols = [
        {"name": c.name, "meta": _e4_dict(c.meta)} if c.meta else {"name": c.name} for c in g.cols
    ]
    return {"_kind": "grid", "meta": meta, "cols": cols}


def _e4_grid_bytes(g: Grid) -> bytes:
    rows = g.rows
    if rows and type(getattr(rows[0], "memo", None)) is Kept:
        # Stored rows, likely all kept: one copy of their JSON into the answer, the
        # brackets and commas joined in with it.  The attribute's name is this writer's
        # own: another tool's entry (AttributeError) or a row whose JSON is not kept yet
        # (None: TypeError) is a miss, found without a test per row.
        try:
            parts = [r.memo.haystack_json4 for r in rows]
            parts[0] = _encoder.encode(_e4_head(g))[:-1] + b',"rows":[' + parts[0]
            parts[-1] = parts[-1] + b"]}"
            return b",".join(parts)
        except (AttributeError, TypeError):
            pass
    return _encoder.encode(_e4_grid(g))


def _e4_grid(g: Grid) -> dict[str, Any]:
    grid = _e4_head(g)
    if len(g.rows) >= _COLUMNAR_MIN:
        columnar = _e4_columnar(g)
        if columnar is not None:
            grid["rows"] = columnar
            return grid
    if _fresh(g.rows):
        grid["rows"] = _e4_fresh(g.rows)
        return grid
    rows: list[Any] = []
    check = True
    raw_t = msgspec.Raw
    for row in g.rows:
        memo: Any = getattr(row, "memo", None)
        t = type(memo)
        if t is Kept:
            raw = memo.haystack_json4
            if raw is None:  # kept by another writer: this one keeps its JSON too
                plain = memo.plain
                if plain is None:
                    plain = memo.plain = _is_plain(row, names=False)
                raw = memo.haystack_json4 = _encoder.encode(row if plain else _e4_row(row))
            rows.append(raw_t(raw))
            continue
        if t is Seen:
            # Written before and asked for again: a row that lives on (a stored entity,
            # a stored sample).  Keep its JSON: from now on it is copied, not rebuilt.
            plain = memo.plain
            if plain is None:
                plain = _is_plain(row, names=False)
            raw = _encoder.encode(row if plain else _e4_row(row))
            row.memo = Kept(raw, plain)
            rows.append(raw_t(raw))
            continue
        if check:
            plain = _is_plain(row, names=False)
            # Once a fresh row needs converting (a hisRead's ts/val, say), convert
            # the rest straight away: checking first would double the work.
            check = plain
        else:
            plain = False
        row.memo = PLAIN if plain else CONVERT  # another tool's entry gives way
        rows.append(row if plain else _e4_row(row))
    grid["rows"] = rows
    return grid


def _fresh(rows: tuple[FrozenDict, ...]) -> bool:
    """Whether the rows look never written: the first and the last were not.  (Reading
    every row's memo costs an exception apiece where there is none; a grid that mixes
    kept rows with fresh ones between those two is written right, only slower.)"""
    if not rows:
        return False
    t0, t1 = type(getattr(rows[0], "memo", None)), type(getattr(rows[-1], "memo", None))
    return t0 is not Seen and t0 is not Kept and t1 is not Seen and t1 is not Kept


_VERDICTS: Final = (CONVERT, PLAIN)
_PROBE: Final = 8


def _e4_fresh(rows: tuple[FrozenDict, ...]) -> list[Any]:
    """Rows none of which was written before, a pass at a time rather than a row at a
    time (each pass a comprehension or a loop in C): whether each is plain, the rows
    that need converting converted, and the verdicts kept in their memos."""
    native, fd, nested = _NATIVE4, FrozenDict, _plain_nested
    plains = [
        all(type(v) in native or (type(v) is fd and nested(v)) for v in r.values())
        for r in rows[:_PROBE]
    ]
    if len(rows) <= _PROBE or any(plains):
        plains += [
            all(type(v) in native or (type(v) is fd and nested(v)) for v in r.values())
            for r in rows[_PROBE:]
        ]
    else:
        # The first rows all need converting (a hisRead's ts/val, rows that all hold a
        # dateTime): convert the rest straight away, checking first would double the work.
        plains += [False] * (len(rows) - _PROBE)
    # Another tool's entry gives way.
    list(map(setattr, rows, repeat("memo"), map(_VERDICTS.__getitem__, plains)))
    if all(plains):
        return list(rows)
    enc = _e4_row
    return [r if p else enc(r) for r, p in zip(rows, plains, strict=True)]


def _e4_row(row: Mapping[str, Any]) -> Mapping[str, Any]:
    native, enc = _NATIVE4, _ENC4
    try:
        return {k: v if type(v) in native else enc[type(v)](v) for k, v in row.items()}
    except KeyError:  # a subclass of a kind (an int, a str): the general path
        return _e4_dict(row)


_COLUMNAR_MIN: Final = 256


def _e4_dt_column(vals: list[_dt.datetime]) -> list[Any] | None:
    """A column of whole-second DateTimes in one zone (a history's ``ts``), or None."""
    tz = vals[0].tzinfo
    if tz is None or {v.tzinfo for v in vals} != {tz} or any(v.microsecond for v in vals):
        return None
    name = format_datetime(vals[0])[1]
    return [{"_kind": "dateTime", "val": v.isoformat(), "tz": name} for v in vals]


def _e4_number_column(vals: list[Number]) -> list[Any]:
    units = {v.unit for v in vals}
    if len(units) == 1 and all(math.isfinite(v.val) for v in vals):
        (unit,) = units
        nums = [v.val for v in vals]
        big = _MAX_EXACT
        nums = [int(f) if f.is_integer() and -big < f < big else f for f in nums]
        if unit is None:
            return nums
        return [{"_kind": "number", "val": f, "unit": unit} for f in nums]
    return [_e4_number(v) for v in vals]


def _e4_columnar(g: Grid) -> list[dict[str, Any]] | None:
    """Rows converted a column at a time, for big grids of fresh rows that fill every
    column (history, mostly): one type test per column instead of one per cell.  None
    when the grid is not like that, or its rows already know they need no converting."""
    first = g.rows[0]
    memo = getattr(first, "memo", None)
    if type(memo) is Seen or type(memo) is Kept:
        return None  # rows written before: their memos are the fast path
    names = [c.name for c in g.cols]
    width = len(names)
    if any(len(row) != width for row in g.rows):
        return None
    columns: list[list[Any]] = []
    for name in names:
        vals = [row[name] for row in g.rows]
        types = set(map(type, vals))
        out: list[Any] | None = None
        if types <= _NATIVE4:
            out = vals
        elif types == {_dt.datetime}:
            out = _e4_dt_column(vals)
        elif types == {Number}:
            out = _e4_number_column(vals)
        if out is None:
            try:
                out = [v if type(v) in _NATIVE4 else _ENC4[type(v)](v) for v in vals]
            except KeyError:
                return None
        columns.append(out)
    # Mark the grid as seen (its first row will do): if these rows are written again,
    # they are rows that live on, and the row path keeps their JSON.
    first.memo = CONVERT
    if width == 2:  # ts and val: a dict display is cheaper than dict(zip(...))
        k0, k1 = names
        return [{k0: a, k1: b} for a, b in zip(columns[0], columns[1], strict=True)]
    return [dict(zip(names, cells, strict=True)) for cells in zip(*columns, strict=True)]


# Types msgspec encodes exactly as Haystack JSON v4 wants them: the kinds are msgspec
# Structs tagged with "_kind" (see projecthaystack.kinds).
_NATIVE4: Final = frozenset(
    {str, bool, MarkerType, NAType, RemoveType, Ref, Symbol, Uri, XStr, Coord}
)


_ENC4: Final[dict[type, Callable[[Any], Any]]] = {
    str: lambda s: s,
    bool: lambda b: b,
    type(None): lambda _: None,
    Number: _e4_number,
    int: _e4_float,
    float: _e4_float,
    MarkerType: _same,
    NAType: _same,
    RemoveType: _same,
    Ref: _same,
    Symbol: _same,
    Uri: _same,
    _dt.datetime: _e4_datetime,
    _dt.date: lambda d: {"_kind": "date", "val": d.isoformat()},
    _dt.time: lambda t: {"_kind": "time", "val": format_time(t)},
    Coord: _same,
    XStr: _same,
    list: _e4_list,
    tuple: _e4_list,
    dict: _e4_dict,
    FrozenDict: _e4_dict,
    Grid: _e4_grid,
}


def _enc4(v: Any) -> Any:
    return encoder_for(_ENC4, v)(v)


def encode_value4(value: Any) -> bytes:
    """One value as JSON v4 bytes."""
    return _encoder.encode(_enc4(value))


def encode_grid4(grid: Grid) -> bytes:
    """A grid as JSON v4 bytes."""
    return _e4_grid_bytes(grid)
