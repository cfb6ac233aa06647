"""The JSON v3 writer: the Haystack 3 encoding, scalars as type-prefixed strings."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from projecthaystack.kinds import (
    Coord,
    FrozenDict,
    Grid,
    Marker,
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
from ._text import format_datetime, format_time

__all__ = ["encode_grid3", "encode_value3"]

_encoder: Final = msgspec.json.Encoder()


def _v3_num(n: Number) -> str:
    text = format_float(n.val)
    return "n:" + text + " " + n.unit if n.unit else "n:" + text


def _v3_datetime(dt: _dt.datetime) -> str:
    iso, tz = format_datetime(dt)
    return "t:" + iso + " " + tz


def _v3_ref(r: Ref) -> str:
    return "r:" + r.id + " " + r.dis if r.dis else "r:" + r.id


def _e3_str(s: str) -> str:
    # The Json chapter: a Str that holds a colon *must* carry the prefix.
    return "s:" + s if ":" in s else s


def _e3_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    check_names(d)
    return {k: _enc3(v) for k, v in d.items() if v is not None}


def _e3_grid(g: Grid) -> dict[str, Any]:
    meta: dict[str, Any] = {"ver": "3.0"}
    meta.update((k, v) for k, v in _e3_dict(g.meta).items() if k != "ver")
    cols = [{"name": c.name, **_e3_dict(c.meta)} for c in g.cols]
    enc = _ENC3
    rows = []
    for row in g.rows:
        try:
            out = {
                k: (v if ":" not in v else "s:" + v)
                if type(v) is str
                else "m:"
                if v is Marker
                else enc[type(v)](v)
                for k, v in row.items()
            }
        except KeyError:
            out = _e3_dict(row)
        rows.append(out)
    return {"meta": meta, "cols": cols, "rows": rows}


_ENC3: Final[dict[type, Callable[[Any], Any]]] = {
    str: _e3_str,
    bool: lambda b: b,
    type(None): lambda _: None,
    Number: _v3_num,
    int: lambda i: _v3_num(Number(float(i))),
    float: lambda f: _v3_num(Number(float(f))),
    MarkerType: lambda _: "m:",
    NAType: lambda _: "z:",
    RemoveType: lambda _: "-:",
    Ref: _v3_ref,
    Symbol: lambda s: "y:" + s.val,
    Uri: lambda u: "u:" + u.val,
    _dt.datetime: _v3_datetime,
    _dt.date: lambda d: "d:" + d.isoformat(),
    _dt.time: lambda t: "h:" + format_time(t),
    Coord: lambda c: f"c:{format_float(c.lat)},{format_float(c.lng)}",
    XStr: lambda x: "x:" + x.type + ":" + x.val,
    list: lambda items: [_enc3(v) for v in items],
    tuple: lambda items: [_enc3(v) for v in items],
    dict: _e3_dict,
    FrozenDict: _e3_dict,
    Grid: _e3_grid,
}


def _enc3(v: Any) -> Any:
    return encoder_for(_ENC3, v)(v)


def encode_value3(value: Any) -> bytes:
    """One value as JSON v3 bytes."""
    return _encoder.encode(_enc3(value))


def encode_grid3(grid: Grid) -> bytes:
    """A grid as JSON v3 bytes."""
    return _encoder.encode(_e3_grid(grid))
