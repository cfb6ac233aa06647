"""The JSON v3 reader: the Haystack 3 encoding, scalars as type-prefixed strings such as
``"n:72 °F"``, read with the v4 reader's walk over the JSON structure."""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

from projecthaystack.kinds import (
    NA,
    Col,
    Coord,
    Marker,
    Number,
    Ref,
    Remove,
    Symbol,
    Uri,
    XStr,
)

from ._json4_read import DATE_RE, TIME_RE, PathError, V4Reader, checked_iso
from ._limits import Limits
from ._text import make_datetime

__all__ = ["V3Reader"]


_V3_NUM = re.compile(r"(-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|INF)|NaN)(?: (.+))?")


def _v3_str(s: str) -> Any:
    if len(s) < 2 or s[1] != ":":
        return s
    tag, body = s[0], s[2:]
    if tag == "s":
        return body
    if tag == "m" and not body:
        return Marker
    if tag == "n":
        m = _V3_NUM.fullmatch(body)
        if m is None:
            raise PathError(f"invalid number {s!r}")
        num, unit = m.groups()
        val = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}.get(num)
        return Number(float(num) if val is None else val, unit)
    if tag == "r":
        rid, _, dis = body.partition(" ")
        return Ref(rid, dis or None)
    if tag == "d":
        return _dt.date.fromisoformat(checked_iso(body, DATE_RE))
    if tag == "h":
        return _dt.time.fromisoformat(checked_iso(body, TIME_RE))
    if tag == "t":
        iso, _, tz = body.partition(" ")
        return make_datetime(iso, tz or None)
    if tag == "u":
        return Uri(body)
    if tag == "y":
        return Symbol(body)
    if tag == "c":
        lat, sep, lng = body.partition(",")
        if not sep:
            raise PathError(f"invalid coord {s!r}")
        return Coord(float(lat), float(lng))
    if tag == "x" or tag == "b":
        if tag == "b":
            return XStr("Bin", body)
        typ, sep, text = body.partition(":")
        if not sep:
            raise PathError(f"invalid xstr {s!r}")
        return XStr(typ, text)
    if tag == "z" and not body:
        return NA
    if tag == "-" and not body:
        return Remove
    # Any other "<char>:" string is an ordinary string (the spec's last note).
    return s


class _V3Strings(dict[str, Any]):
    """v3 string → value, parsed once per decode (v3 writes every scalar as a string)."""

    __slots__ = ()

    def __missing__(self, text: str) -> Any:
        try:
            val = _v3_str(text)
        except PathError:
            raise
        except ValueError as exc:
            raise PathError(str(exc)) from None
        if len(self) < 65536:
            self[text] = val
        return val


class V3Reader(V4Reader):
    __slots__ = ()

    def __init__(self, limits: Limits, swapped: bool = False) -> None:
        super().__init__(limits, swapped)
        self.strs = _V3Strings()

    def value(self, v: Any) -> Any:
        if type(v) is str and self.strs is not None:
            return self.strs[v] if v != self.marker else Marker
        if type(v) is dict and "_kind" not in v and _is_v3_grid(v):
            return self.nested(self.grid, v)
        return super().value(v)

    def cols(self, cols: Any) -> tuple[Col, ...]:
        # v3 columns carry their meta beside "name" rather than under "meta".
        if type(cols) is not list:
            raise PathError("grid 'cols' must be a list")
        fixed = []
        for c in cols:
            if type(c) is dict and "meta" not in c:
                meta = {k: v for k, v in c.items() if k != "name"}
                fixed.append({"name": c.get("name"), "meta": meta})
            else:
                fixed.append(c)
        return super().cols(fixed)


def _is_v3_grid(v: dict[str, Any]) -> bool:
    meta = v.get("meta")
    return (
        type(meta) is dict
        and "ver" in meta
        and type(v.get("cols")) is list
        and type(v.get("rows", [])) is list
    )
