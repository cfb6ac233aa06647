"""JSON: Haystack 4 ("Hayson", objects tagged with ``_kind``) and the Haystack 3 encoding
(type-prefixed strings such as ``"n:72 °F"``).

Parsing of the JSON text itself is msgspec's; this module turns the resulting plain
Python structure into Haystack values and back.  Errors name the JSON path of the
offending value, such as ``rows[3].siteRef``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec

from projecthaystack.kinds import (
    NA,
    Col,
    Coord,
    DecodeError,
    EncodeError,
    FrozenDict,
    Grid,
    InvalidValueError,
    Marker,
    MarkerType,
    NAType,
    Number,
    Ref,
    Remove,
    RemoveType,
    Symbol,
    Uri,
    XStr,
    format_float,
    is_tag_name,
)

from ._limits import DEFAULT_LIMITS, Limits
from ._names import check_names
from ._rowmemo import CONVERT, PLAIN, Kept, Seen
from ._zinc import format_datetime, format_time, make_datetime

__all__ = ["decode_grid", "decode_value", "encode_grid", "encode_grid_bytes", "encode_value"]

Version = Literal[3, 4]

_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


class _PathError(Exception):
    """A value error on its way up, collecting the path as it goes."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.parts: list[str] = []

    def to_decode_error(self) -> DecodeError:
        path = ""
        for part in reversed(self.parts):
            path += part if part.startswith("[") else ("." + part if path else part)
        return DecodeError(self.message, path=path)


def _load(data: bytes | str, limits: Limits) -> tuple[Any, bool]:
    if isinstance(data, str | bytes | bytearray | memoryview):
        limits.check_size(len(data))
    else:
        raise TypeError(f"expected bytes or str, not {type(data).__name__}")
    # Markers are most of the values in entity data, and a dict apiece costs msgspec an
    # allocation and us a lookup.  In valid JSON the exact bytes {"_kind":"marker"} can
    # only be a marker object (a '{' inside a string would have to be followed by a
    # closing quote and then bare text), so they become the string "\u0000", which no
    # other value can decode to once the input is known not to spell that escape itself.
    if isinstance(data, str):
        swapped = "\\u0000" not in data
        if swapped:
            data = data.replace('{"_kind":"marker"}', '"\\u0000"')
    else:
        swapped = b"\\u0000" not in data
        if swapped:
            data = bytes(data).replace(b'{"_kind":"marker"}', b'"\\u0000"')
    try:
        return _decoder.decode(data), swapped
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None


# ----------------------------------------------------------------------------- v4 decode


def _num_val(v: Any) -> float:
    t = type(v)
    if t is float or t is int:
        return float(v)
    if v == "INF":
        return math.inf
    if v == "-INF":
        return -math.inf
    if v == "NaN":
        return math.nan
    raise _PathError(f"invalid number value {v!r}")


def _str_field(obj: Mapping[str, Any], key: str, kind: str) -> str:
    v = obj.get(key)
    if type(v) is not str:
        raise _PathError(f"{kind} needs a string {key!r}")
    return v


def _opt_str(obj: Mapping[str, Any], key: str, kind: str) -> str | None:
    v = obj.get(key)
    if v is not None and type(v) is not str:
        raise _PathError(f"{kind} {key!r} must be a string")
    return v


def _k_number(o: dict[str, Any], d: _V4) -> Number:
    return Number(_num_val(o.get("val")), _opt_str(o, "unit", "number"))


def _k_ref(o: dict[str, Any], d: _V4) -> Ref:
    return Ref(_str_field(o, "val", "ref"), _opt_str(o, "dis", "ref"))


def _k_datetime(o: dict[str, Any], d: _V4) -> _dt.datetime:
    return make_datetime(_str_field(o, "val", "dateTime"), _opt_str(o, "tz", "dateTime") or "GMT")


def _k_coord(o: dict[str, Any], d: _V4) -> Coord:
    lat, lng = o.get("lat"), o.get("lng")
    if type(lat) not in (int, float) or type(lng) not in (int, float):
        raise _PathError("coord needs numbers 'lat' and 'lng'")
    return Coord(float(lat), float(lng))  # type: ignore[arg-type]


def _k_grid(o: dict[str, Any], d: _V4) -> Grid:
    return d.grid(o)


def _k_dict(o: dict[str, Any], d: _V4) -> FrozenDict:
    return d.dict_(o)


_DATE_RE: Final = re.compile(r"\d{4}-\d\d-\d\d")
_TIME_RE: Final = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?")


_KINDS4: Final[dict[str, Callable[[dict[str, Any], _V4], Any]]] = {
    "marker": lambda o, d: Marker,
    "na": lambda o, d: NA,
    "remove": lambda o, d: Remove,
    "number": _k_number,
    "ref": _k_ref,
    "symbol": lambda o, d: Symbol(_str_field(o, "val", "symbol")),
    "uri": lambda o, d: Uri(_str_field(o, "val", "uri")),
    "date": lambda o, d: _dt.date.fromisoformat(_iso(_str_field(o, "val", "date"), _DATE_RE)),
    "time": lambda o, d: _dt.time.fromisoformat(_iso(_str_field(o, "val", "time"), _TIME_RE)),
    "dateTime": _k_datetime,
    "coord": _k_coord,
    "xstr": lambda o, d: XStr(_str_field(o, "type", "xstr"), _str_field(o, "val", "xstr")),
    "grid": _k_grid,
    "dict": _k_dict,
}


def _iso(text: str, pattern: re.Pattern[str]) -> str:
    # fromisoformat() also takes compact and week forms, which Haystack does not allow.
    if pattern.fullmatch(text) is None:
        raise _PathError(f"invalid date or time {text!r}")
    return text


class _V4:
    __slots__ = ("depth", "marker", "max_depth", "names", "refs", "strs")

    def __init__(self, limits: Limits, swapped: bool = False) -> None:
        # v3 reads a string through this table (see _V3Strings); v4 takes it as it is.
        self.strs: dict[str, Any] | None = None
        # The string that stands for a marker (see _load), or one no string equals.
        self.marker: object = "\x00" if swapped else object()
        self.max_depth = limits.max_depth
        self.depth = 0
        self.names: set[str] = set()  # keys already known to be valid tag names
        self.refs: dict[str, Ref] = {}  # ids seen without a dis: one Ref per id

    def value(self, v: Any) -> Any:
        t = type(v)
        if t is str:
            return v if v != self.marker else Marker
        if t is bool or v is None:
            return v
        if t is float or t is int:
            return Number(float(v))
        if t is dict:
            kind = v.get("_kind")
            if kind is None:
                return self.nested(self.dict_, v)
            if kind == "marker":
                return Marker
            if kind == "ref" and len(v) == 2:
                rid = v.get("val")
                ref = self.refs.get(rid) if type(rid) is str else None
                if ref is None:
                    ref = self.kind(v, kind)
                    self.refs[rid] = ref
                return ref
            return self.kind(v, kind)
        if t is list:
            return self.nested(self.list_, v)
        raise _PathError(f"unexpected JSON value {v!r}")

    def kind(self, v: dict[str, Any], kind: Any) -> Any:
        fn = _KINDS4.get(kind) if type(kind) is str else None
        if fn is None:
            raise _PathError(f"unknown _kind {kind!r}")
        if fn is _k_grid or fn is _k_dict:
            return self.nested(lambda o: fn(o, self), v)
        try:
            return fn(v, self)
        except _PathError:
            raise
        except ValueError as exc:  # InvalidValueError and the date/time parsers
            raise _PathError(str(exc)) from None

    def nested(self, fn: Callable[[Any], Any], v: Any) -> Any:
        self.depth += 1
        if self.depth > self.max_depth:
            raise _PathError(f"nesting deeper than {self.max_depth}")
        try:
            return fn(v)
        finally:
            self.depth -= 1

    def list_(self, items: list[Any]) -> list[Any]:
        out = []
        value = self.value
        i = 0
        try:
            for i, item in enumerate(items):  # noqa: B007 - i names the failing item
                out.append(value(item))
        except _PathError as exc:
            exc.parts.append(f"[{i}]")
            raise
        return out

    def dict_(self, obj: dict[str, Any]) -> FrozenDict:
        out = {}
        value = self.value
        names = self.names
        marker = self.marker
        strs = self.strs
        k = ""
        try:
            for k, v in obj.items():
                if k not in names:
                    if not is_tag_name(k):
                        continue  # the spec: keys that are not tag names are ignored
                    names.add(k)
                t = type(v)
                if t is str:
                    if v == marker:
                        out[k] = Marker
                    else:
                        out[k] = v if strs is None else strs[v]
                elif t is dict and v.get("_kind") == "marker":
                    out[k] = Marker
                elif v is not None:
                    out[k] = value(v)
        except _PathError as exc:
            exc.parts.append(k)
            raise
        return FrozenDict(out)

    def meta(self, obj: Any, what: str) -> FrozenDict:
        if obj is None:
            return FrozenDict()
        if type(obj) is not dict:
            raise _PathError(f"{what} must be an object")
        meta = self.dict_(obj)
        if "ver" in meta:
            meta = FrozenDict((k, v) for k, v in meta.items() if k != "ver")
        return meta

    def cols(self, cols: Any) -> tuple[Col, ...]:
        if type(cols) is not list:
            raise _PathError("grid 'cols' must be a list")
        out = []
        seen = set()
        for i, c in enumerate(cols):
            try:
                if type(c) is not dict:
                    raise _PathError("a column must be an object")
                name = c.get("name")
                if type(name) is not str or not is_tag_name(name):
                    raise _PathError(f"invalid column name {name!r}")
                if name in seen:
                    raise _PathError(f"duplicate column {name!r}")
                seen.add(name)
                try:
                    meta = self.meta(c.get("meta"), "column meta")
                except _PathError as exc:
                    exc.parts.append("meta")
                    raise
                out.append(Col.unchecked(name, meta))
            except _PathError as exc:
                exc.parts.append(f"[{i}]")
                exc.parts.append("cols")
                raise
        return tuple(out)

    def grid(self, obj: dict[str, Any]) -> Grid:
        try:
            meta = self.meta(obj.get("meta"), "grid meta")
        except _PathError as exc:
            exc.parts.append("meta")
            raise
        cols = self.cols(obj.get("cols"))
        names = {c.name for c in cols}
        rows_in = obj.get("rows", [])
        if type(rows_in) is not list:
            raise _PathError("grid 'rows' must be a list")
        rows = []
        dict_ = self.dict_
        for i, r in enumerate(rows_in):
            try:
                if type(r) is not dict:
                    raise _PathError("a row must be an object")
                row = dict_(r)
                if not names.issuperset(row):
                    extra = sorted(set(row) - names)
                    raise _PathError(f"row has tags that are not columns: {extra}")
            except _PathError as exc:
                exc.parts.append(f"[{i}]")
                exc.parts.append("rows")
                raise
            rows.append(row)
        return Grid.unchecked(meta, cols, tuple(rows))


# ----------------------------------------------------------------------------- v3 decode

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
            raise _PathError(f"invalid number {s!r}")
        num, unit = m.groups()
        val = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}.get(num)
        return Number(float(num) if val is None else val, unit)
    if tag == "r":
        rid, _, dis = body.partition(" ")
        return Ref(rid, dis or None)
    if tag == "d":
        return _dt.date.fromisoformat(_iso(body, _DATE_RE))
    if tag == "h":
        return _dt.time.fromisoformat(_iso(body, _TIME_RE))
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
            raise _PathError(f"invalid coord {s!r}")
        return Coord(float(lat), float(lng))
    if tag == "x" or tag == "b":
        if tag == "b":
            return XStr("Bin", body)
        typ, sep, text = body.partition(":")
        if not sep:
            raise _PathError(f"invalid xstr {s!r}")
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
        except _PathError:
            raise
        except ValueError as exc:
            raise _PathError(str(exc)) from None
        if len(self) < 65536:
            self[text] = val
        return val


class _V3(_V4):
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
            raise _PathError("grid 'cols' must be a list")
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


# ----------------------------------------------------------------------------- entry points


def decode_grid(
    data: bytes | str, *, version: Version = 4, limits: Limits = DEFAULT_LIMITS
) -> Grid:
    """Decode a JSON grid, Haystack 4 encoding by default, ``version=3`` for the old one.

    >>> g = decode_grid(b'{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"a"}],'
    ...                 b'"rows":[{"a":{"_kind":"number","val":5,"unit":"kW"}}]}')
    >>> g[0]["a"]
    Number(val=5.0, unit='kW')
    """
    obj, swapped = _load(data, limits)
    reader = _V3(limits, swapped) if version == 3 else _V4(limits, swapped)
    if type(obj) is not dict:
        raise DecodeError("a JSON grid must be an object", path="")
    kind = obj.get("_kind", "grid")
    if kind != "grid":
        raise DecodeError(f"expected a grid, found _kind {kind!r}", path="_kind")
    try:
        return reader.grid(obj)
    except _PathError as exc:
        raise exc.to_decode_error() from None
    except (InvalidValueError, ValueError) as exc:
        raise DecodeError(str(exc), path="") from None


def decode_value(
    data: bytes | str, *, version: Version = 4, limits: Limits = DEFAULT_LIMITS
) -> Any:
    """Decode one JSON value into Haystack values.

    >>> decode_value('{"_kind":"ref","val":"s1","dis":"HQ"}')
    Ref(id='s1', dis='HQ')
    >>> decode_value('"n:72 °F"', version=3)
    Number(val=72.0, unit='°F')
    """
    obj, swapped = _load(data, limits)
    reader = _V3(limits, swapped) if version == 3 else _V4(limits, swapped)
    try:
        return reader.value(obj)
    except _PathError as exc:
        raise exc.to_decode_error() from None
    except (InvalidValueError, ValueError) as exc:
        raise DecodeError(str(exc), path="") from None


# ----------------------------------------------------------------------------- encode

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
    if name is None or dt.microsecond:
        iso, name = format_datetime(dt)
        if tz is not None and len(_TZ_NAMES) < 1024:
            _TZ_NAMES[tz] = name
        return {"_kind": "dateTime", "val": iso, "tz": name}
    return {"_kind": "dateTime", "val": dt.isoformat(), "tz": name}


def _e4_list(items: Any) -> list[Any]:
    return [_enc4(v) for v in items]


def _is_plain(d: FrozenDict, names: bool = True) -> bool:
    """Whether msgspec can write ``d`` as it stands."""
    if names:
        check_names(d)
    return all(
        type(v) in _NATIVE4 or (type(v) is FrozenDict and _plain_nested(v)) for v in d.values()
    )


def _plain_nested(d: FrozenDict) -> bool:
    memo = getattr(d, "memo", None)
    if type(memo) is Seen or type(memo) is Kept:
        return memo.plain
    plain = _is_plain(d)
    d.memo = PLAIN if plain else CONVERT
    return plain


def _e4_dict(d: Mapping[str, Any]) -> Mapping[str, Any]:
    check_names(d)
    if _NATIVE4.issuperset(map(type, d.values())):
        return d
    return {k: v if type(v) in _NATIVE4 else _enc4(v) for k, v in d.items() if v is not None}


def _e4_head(g: Grid) -> dict[str, Any]:
    """A grid's JSON v4 object without its rows."""
    meta: dict[str, Any] = {"ver": "3.0"}
    if g.meta:
        meta.update((k, v) for k, v in _e4_dict(g.meta).items() if k != "ver")
    cols = [
        {"name": c.name, "meta": _e4_dict(c.meta)} if c.meta else {"name": c.name} for c in g.cols
    ]
    return {"_kind": "grid", "meta": meta, "cols": cols}


def _kept_rows(g: Grid) -> list[bytes] | None:
    """The JSON of every row, when every row was written twice before (and so kept it)."""
    rows = g.rows
    if not rows or type(getattr(rows[0], "memo", None)) is not Kept:
        return None  # the usual miss, found without the cost of an exception
    try:
        # The attribute's name is this writer's own: any other entry (a Seen, another
        # tool's), or none, is a miss.  One chained read a row is the fastest check.
        return [r.memo.haystack_json4 for r in rows]
    except AttributeError:
        return None


def _e4_grid_bytes(g: Grid) -> bytes:
    kept = _kept_rows(g)
    if kept is None:
        return _encoder.encode(_e4_grid(g))
    # Stored rows all: one copy of their JSON into the answer, the brackets and commas
    # joined in with it.
    head = _encoder.encode(_e4_head(g))[:-1] + b',"rows":['
    parts = [head + kept[0], *kept[1:]]
    parts[-1] = parts[-1] + b"]}"
    return b",".join(parts)


def _e4_grid(g: Grid) -> dict[str, Any]:
    grid = _e4_head(g)
    if len(g.rows) >= _COLUMNAR_MIN:
        columnar = _e4_columnar(g)
        if columnar is not None:
            grid["rows"] = columnar
            return grid
    rows: list[Any] = []
    check = True
    raw_t = msgspec.Raw
    for row in g.rows:
        memo: Any = getattr(row, "memo", None)
        t = type(memo)
        if t is Kept:
            rows.append(raw_t(memo.haystack_json4))
            continue
        if t is Seen:
            # Written before and asked for again: a row that lives on (a stored entity,
            # a stored sample).  Keep its JSON: from now on it is copied, not rebuilt.
            plain = memo.plain
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
    # Mark the grid as seen (its first row will do): if these rows are written again,
    # they are rows that live on, and the row path keeps their JSON.
    first.memo = CONVERT
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


def _lookup(table: dict[type, Callable[[Any], Any]], v: Any) -> Callable[[Any], Any]:
    fn = table.get(type(v))
    if fn is not None:
        return fn
    for cls, f in table.items():
        if isinstance(v, cls) and cls is not int:
            return f
    if isinstance(v, Mapping):
        return table[dict]
    raise EncodeError(f"{type(v).__name__} is not a Haystack kind")


def _enc4(v: Any) -> Any:
    return _lookup(_ENC4, v)(v)


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
    return _lookup(_ENC3, v)(v)


def encode_value(value: Any, *, version: Version = 4) -> str:
    """One value as JSON text.

    >>> encode_value(Number(72, "°F"))
    '{"_kind":"number","val":72,"unit":"°F"}'
    >>> encode_value(Number(72, "°F"), version=3)
    '"n:72 °F"'
    """
    return encode_value_bytes(value, version=version).decode()


def encode_value_bytes(value: Any, *, version: Version = 4) -> bytes:
    """One value as UTF-8 JSON bytes."""
    return _encoder.encode(_enc3(value) if version == 3 else _enc4(value))


def encode_grid_bytes(grid: Grid, *, version: Version = 4) -> bytes:
    """A grid as UTF-8 JSON bytes, ready for the wire."""
    if not isinstance(grid, Grid):
        raise EncodeError(f"expected a Grid, not {type(grid).__name__}")
    return _encoder.encode(_e3_grid(grid)) if version == 3 else _e4_grid_bytes(grid)


def encode_grid(grid: Grid, *, version: Version = 4) -> str:
    """A grid as JSON text, Haystack 4 encoding by default.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> encode_grid(Grid.from_rows([{"site": Marker}]))
    '{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"site"}],"rows":[{"site":{"_kind":"marker"}}]}'
    """
    return encode_grid_bytes(grid, version=version).decode()
