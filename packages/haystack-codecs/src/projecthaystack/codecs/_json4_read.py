"""The JSON v4 reader (Hayson, objects tagged with ``_kind``), and what the v3 reader
takes from it: loading the JSON text, and errors that carry the path of the value.

Parsing the JSON text itself is msgspec's; this module turns the resulting plain
Python structure into Haystack values.  Errors name the JSON path of the offending
value, such as ``rows[3].siteRef``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Final

import msgspec

from projecthaystack.kinds import (
    NA,
    Col,
    Coord,
    DecodeError,
    FrozenDict,
    Grid,
    Marker,
    Number,
    Ref,
    Remove,
    Symbol,
    Uri,
    XStr,
    is_tag_name,
    tz_from_name,
)

from ._limits import Limits
from ._text import ISO_DATETIME, make_datetime

__all__ = ["DATE_RE", "TIME_RE", "PathError", "V4Reader", "checked_iso", "load"]

_decoder: Final = msgspec.json.Decoder()


class PathError(Exception):
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


def load(data: bytes | str, limits: Limits) -> tuple[Any, bool]:
    """The JSON structure of ``data``, and whether markers were swapped (see below)."""
    if isinstance(data, str | bytes | bytearray | memoryview):
        limits.check_size(len(data))
    else:
        raise TypeError(f"expected bytes or str, not {type(data).__name__}")
    # The same rule as the text formats: a UTF-8 byte order mark is dropped.
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            data = data[1:]
    elif data[:3] == b"\xef\xbb\xbf":
        data = bytes(data)[3:]
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
    raise PathError(f"invalid number value {v!r}")


def _str_field(obj: Mapping[str, Any], key: str, kind: str) -> str:
    v = obj.get(key)
    if type(v) is not str:
        raise PathError(f"{kind} needs a string {key!r}")
    return v


def _opt_str(obj: Mapping[str, Any], key: str, kind: str) -> str | None:
    v = obj.get(key)
    if v is not None and type(v) is not str:
        raise PathError(f"{kind} {key!r} must be a string")
    return v


def _k_number(o: dict[str, Any], d: V4Reader) -> Number:
    return Number(_num_val(o.get("val")), _opt_str(o, "unit", "number"))


def _k_ref(o: dict[str, Any], d: V4Reader) -> Ref:
    return Ref(_str_field(o, "val", "ref"), _opt_str(o, "dis", "ref"))


def _k_datetime(o: dict[str, Any], d: V4Reader) -> _dt.datetime:
    return make_datetime(_str_field(o, "val", "dateTime"), _opt_str(o, "tz", "dateTime") or "GMT")


def _k_coord(o: dict[str, Any], d: V4Reader) -> Coord:
    lat, lng = o.get("lat"), o.get("lng")
    if type(lat) not in (int, float) or type(lng) not in (int, float):
        raise PathError("coord needs numbers 'lat' and 'lng'")
    return Coord(float(lat), float(lng))  # type: ignore[arg-type]


def _k_grid(o: dict[str, Any], d: V4Reader) -> Grid:
    return d.grid(o)


def _k_dict(o: dict[str, Any], d: V4Reader) -> FrozenDict:
    return d.dict_(o)


DATE_RE: Final = re.compile(r"\d{4}-\d\d-\d\d")
TIME_RE: Final = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?")


_KINDS4: Final[dict[str, Callable[[dict[str, Any], V4Reader], Any]]] = {
    "marker": lambda o, d: Marker,
    "na": lambda o, d: NA,
    "remove": lambda o, d: Remove,
    "number": _k_number,
    "ref": _k_ref,
    "symbol": lambda o, d: Symbol(_str_field(o, "val", "symbol")),
    "uri": lambda o, d: Uri(_str_field(o, "val", "uri")),
    "date": lambda o, d: _dt.date.fromisoformat(checked_iso(_str_field(o, "val", "date"), DATE_RE)),
    "time": lambda o, d: _dt.time.fromisoformat(checked_iso(_str_field(o, "val", "time"), TIME_RE)),
    "dateTime": _k_datetime,
    "coord": _k_coord,
    "xstr": lambda o, d: XStr(_str_field(o, "type", "xstr"), _str_field(o, "val", "xstr")),
    "grid": _k_grid,
    "dict": _k_dict,
}


def checked_iso(text: str, pattern: re.Pattern[str]) -> str:
    # fromisoformat() also takes compact and week forms, which Haystack does not allow.
    if pattern.fullmatch(text) is None:
        raise PathError(f"invalid date or time {text!r}")
    return text


# The columnar path's lookups, each one C call per cell (see V4Reader.columnar).
# itemgetter is three times as fast as get; a KeyError sends the grid to the general path
# (a missing _kind or val) or to get (an optional unit or tz).
_item_kind: Final = itemgetter("_kind")
_item_val: Final = itemgetter("val")
_item_unit: Final = itemgetter("unit")
_get_unit: Final = methodcaller("get", "unit")
_item_tz: Final = itemgetter("tz")
_get_tz: Final = methodcaller("get", "tz")
_fromiso: Final = _dt.datetime.fromisoformat
_copy_number: Final = Number.__copy__  # type: ignore[attr-defined]  # msgspec's, unstubbed
_set_field: Final = msgspec.structs.force_setattr
# ASCII digits to "0": the dateTimes of a column reduce to a few shapes, each matched once.
_DIGITS_TO_0: Final = bytes(48 if 48 <= i < 58 else i for i in range(256))
COLUMNAR_MIN_ROWS: Final = 32
"""Grids with at least this many rows try the columnar path first."""


_NONE_TYPE: Final = type(None)


def _in_order(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    """Whether ``part`` is ``whole`` with some keys left out."""
    rest = iter(whole)
    return all(k in rest for k in part)


def _numbers(floats: list[float], unit: str | None) -> list[Number]:
    """``Number(f, unit)`` for each float, the unit known to be valid (and no float NaN
    if there is one): copies of one Number given each value skip the checks that
    construction repeats for every cell."""
    out = list(map(_copy_number, repeat(Number(0.0, unit), len(floats))))
    list(map(_set_field, out, repeat("val"), floats))
    return out


class _Misfit(Exception):
    """A cell the columnar path does not take: the general path decodes the grid."""


class V4Reader:
    __slots__ = ("columnar_min", "depth", "marker", "max_depth", "names", "refs", "strs")

    def __init__(self, limits: Limits, swapped: bool = False) -> None:
        # v3 reads a string through this table (see _V3Strings); v4 takes it as it is.
        self.strs: dict[str, Any] | None = None
        # The string that stands for a marker (see load), or one no string equals.
        self.marker: object = "\x00" if swapped else object()
        self.max_depth = limits.max_depth
        self.depth = 0
        self.names: set[str] = set()  # keys already known to be valid tag names
        self.refs: dict[str, Ref] = {}  # ids seen without a dis: one Ref per id
        # Rows from which a grid tries the columnar path (tests move it to compare paths).
        self.columnar_min = COLUMNAR_MIN_ROWS

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
        raise PathError(f"unexpected JSON value {v!r}")

    def kind(self, v: dict[str, Any], kind: Any) -> Any:
        fn = _KINDS4.get(kind) if type(kind) is str else None
        if fn is None:
            raise PathError(f"unknown _kind {kind!r}")
        if fn is _k_grid or fn is _k_dict:
            return self.nested(lambda o: fn(o, self), v)
        try:
            return fn(v, self)
        except PathError:
            raise
        except ValueError as exc:  # InvalidValueError and the date/time parsers
            raise PathError(str(exc)) from None

    def nested(self, fn: Callable[[Any], Any], v: Any) -> Any:
        self.depth += 1
        if self.depth > self.max_depth:
            raise PathError(f"nesting deeper than {self.max_depth}")
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
        except PathError as exc:
            exc.parts.append(f"[{i}]")
            raise
        return out

    def dict_(self, obj: dict[str, Any]) -> FrozenDict:
        out: dict[str, Any] = {}
        value = self.value
        names = self.names
        marker = self.marker
        strs = self.strs
        refs = self.refs
        # One test in C for the usual dict, whose keys were all seen before.
        known = names.issuperset(obj)
        k = ""
        try:
            for k, v in obj.items():
                if not known and k not in names:
                    if not is_tag_name(k):
                        continue  # the spec: keys that are not tag names are ignored
                    names.add(k)
                t = type(v)
                if t is str:
                    if v == marker:
                        out[k] = Marker
                    else:
                        out[k] = v if strs is None else strs[v]
                elif t is dict:
                    kind = v.get("_kind")
                    if kind == "marker":
                        out[k] = Marker
                    elif kind == "ref" and len(v) == 2:
                        # Refs without a dis, the commonest object of entity data: one
                        # Ref per id, without the general path's calls.
                        rid = v.get("val")
                        ref = refs.get(rid) if type(rid) is str else None
                        if ref is None:
                            ref = self.kind(v, kind)
                            refs[rid] = ref
                        out[k] = ref
                    else:
                        out[k] = value(v)
                elif v is not None:
                    out[k] = value(v)
        except PathError as exc:
            exc.parts.append(k)
            raise
        return FrozenDict(out)

    def meta(self, obj: Any, what: str) -> FrozenDict:
        if obj is None:
            return FrozenDict()
        if type(obj) is not dict:
            raise PathError(f"{what} must be an object")
        meta = self.dict_(obj)
        if "ver" in meta:
            meta = FrozenDict((k, v) for k, v in meta.items() if k != "ver")
        return meta

    def cols(self, cols: Any) -> tuple[Col, ...]:
        if type(cols) is not list:
            raise PathError("grid 'cols' must be a list")
        out = []
        seen = set()
        for i, c in enumerate(cols):
            try:
                if type(c) is not dict:
                    raise PathError("a column must be an object")
                name = c.get("name")
                if type(name) is not str or not is_tag_name(name):
                    raise PathError(f"invalid column name {name!r}")
                if name in seen:
                    raise PathError(f"duplicate column {name!r}")
                seen.add(name)
                try:
                    meta = self.meta(c.get("meta"), "column meta")
                except PathError as exc:
                    exc.parts.append("meta")
                    raise
                out.append(Col.unchecked(name, meta))
            except PathError as exc:
                exc.parts.append(f"[{i}]")
                exc.parts.append("cols")
                raise
        return tuple(out)

    def grid(self, obj: dict[str, Any]) -> Grid:
        try:
            meta = self.meta(obj.get("meta"), "grid meta")
        except PathError as exc:
            exc.parts.append("meta")
            raise
        cols = self.cols(obj.get("cols"))
        names = {c.name for c in cols}
        rows_in = obj.get("rows", [])
        if type(rows_in) is not list:
            raise PathError("grid 'rows' must be a list")
        if len(rows_in) >= self.columnar_min and self.strs is None:
            fast = self.columnar(rows_in, tuple(c.name for c in cols))
            if fast is not None:
                return Grid.unchecked(meta, cols, fast)
        rows = []
        dict_ = self.dict_
        for i, r in enumerate(rows_in):
            try:
                if type(r) is not dict:
                    raise PathError("a row must be an object")
                row = dict_(r)
                if not names.issuperset(row):
                    extra = sorted(set(row) - names)
                    raise PathError(f"row has tags that are not columns: {extra}")
            except PathError as exc:
                exc.parts.append(f"[{i}]")
                exc.parts.append("rows")
                raise
            rows.append(row)
        return Grid.unchecked(meta, cols, tuple(rows))

    # -------------------------------------------------------------------- columnar path
    # A history grid (hisWrite's body) is tens of thousands of rows of one shape whose
    # columns each hold one kind: timestamps in one zone, numbers in one unit.  Converting
    # it a column at a time costs one type test per column instead of one per cell, and
    # the zone and unit are checked once.  Anything else (rows of several shapes, a
    # column of mixed kinds, a null, a cell the general path would refuse or treat
    # specially) returns None and the general path decodes the grid, errors and all: this
    # path gives exactly its results, or nothing.

    def columnar(self, rows_in: list[Any], order: tuple[str, ...]) -> tuple[FrozenDict, ...] | None:
        """The rows of a grid whose columns (names in ``order``) each hold one simple
        kind, or None."""
        # The first and last rows tell most grids that are not history (entity data:
        # refs, markers, nested dicts) before any work is done on the others.
        if not (self.plain_row(rows_in[0]) and self.plain_row(rows_in[-1])):
            return None
        names = set(order)
        if set(map(type, rows_in)) != {dict}:
            return None
        shapes = set(map(tuple, rows_in))
        if len(shapes) == 1:
            keys = shapes.pop()
            if not keys or not names.issuperset(keys):
                return None
            cells: Any = zip(*map(dict.values, rows_in), strict=True)
        elif len(shapes) > 64:
            return None  # entity data rather than a batch of history: not worth trying
        else:
            # A batch in which a point has no sample at some time: its cell is left out.
            # When every row's keys are in the columns' order, rows built in that order
            # keep each row's own.
            present = set().union(*shapes)
            keys = tuple(c for c in order if c in present)
            if len(keys) != len(present) or not all(_in_order(s, keys) for s in shapes):
                return None
            cells = [list(map(methodcaller("get", k), rows_in)) for k in keys]
        sparse = len(shapes) != 1
        columns = []
        try:
            for col in cells:
                values, nulls = self.column(col)
                columns.append(values)
                sparse = sparse or nulls
        except (_Misfit, KeyError, ValueError, TypeError, OverflowError):
            # ValueError covers InvalidValueError and the date parsers: the general path
            # meets the same cell and says where it is.
            return None
        if sparse:  # nulls and missing cells are left out of the row, as the general path does
            return tuple(
                [
                    FrozenDict({k: v for k, v in zip(keys, r, strict=True) if v is not None})
                    for r in zip(*columns, strict=True)
                ]
            )
        if len(keys) == 2:  # (ts, val): a dict display is twice as fast as zip
            k0, k1 = keys
            return tuple([FrozenDict({k0: a, k1: b}) for a, b in zip(*columns, strict=True)])
        return tuple([FrozenDict(zip(keys, r, strict=True)) for r in zip(*columns, strict=True)])

    def plain_row(self, row: Any) -> bool:
        """Whether every cell of ``row`` is of a kind the columnar path takes."""
        if type(row) is not dict:
            return False
        marker = self.marker
        for v in row.values():
            t = type(v)
            if t is dict:
                if v.get("_kind") not in ("number", "dateTime"):
                    return False
            elif t is str:
                if v == marker:
                    return False
            elif not (t is float or t is int or t is bool or v is None):
                return False
        return True

    def column(self, col: Sequence[Any]) -> tuple[Sequence[Any], bool]:
        """The values of one column and whether it holds nulls (kept as None), or
        ``_Misfit`` when its other cells are not of one simple kind."""
        types = set(map(type, col))
        if _NONE_TYPE in types:
            present = [v for v in col if v is not None]
            if not present:
                return col, True
            done = iter(self.column(present)[0])
            return [None if v is None else next(done) for v in col], True
        return self.cells(col, types), False

    def cells(self, col: Sequence[Any], types: set[type]) -> Sequence[Any]:
        """The values of a column without nulls whose cells are of the ``types``."""
        if len(types) != 1:
            if types == {int, float}:
                return _numbers(list(map(float, col)), None)
            raise _Misfit
        t = types.pop()
        if t is float or t is int:
            return _numbers(list(map(float, col)), None)
        if t is str:
            if self.marker in col:
                raise _Misfit
            return col
        if t is bool:
            return col
        if t is dict:
            kinds = set(map(_item_kind, col))
            if kinds == {"number"}:
                return self.numbers(col)
            if kinds == {"dateTime"}:
                return self.datetimes(col)
        raise _Misfit

    def numbers(self, col: Sequence[dict[str, Any]]) -> list[Number]:
        """Number objects with a float value and a unit or none (strings such as "NaN",
        bools and a NaN with a unit are the general path's)."""
        vals = list(map(_item_val, col))
        if not {float, int}.issuperset(map(type, vals)):
            raise _Misfit
        try:
            units = list(map(_item_unit, col))
        except KeyError:
            units = list(map(_get_unit, col))
        distinct = set(units)
        for unit in distinct:
            if unit is not None:
                if type(unit) is not str:
                    raise _Misfit
                Number(0.0, unit)  # the unit's check, once: InvalidValueError misfits
        floats = list(map(float, vals))
        total = sum(floats)
        if total != total and distinct != {None}:
            raise _Misfit  # a NaN (or INF and -INF) beside a unit
        if len(distinct) != 1:
            return list(map(Number, floats, units))
        return _numbers(floats, distinct.pop())

    def datetimes(self, col: Sequence[dict[str, Any]]) -> list[_dt.datetime]:
        """datetimes as make_datetime builds them: the instant of the offset, in the zone
        named (GMT when none is)."""
        vals = list(map(_item_val, col))
        if set(map(type, vals)) != {str}:
            raise _Misfit
        try:
            joined = "\n".join(vals).encode("ascii")
        except UnicodeEncodeError:
            raise _Misfit from None
        if joined.count(b"\n") != len(vals) - 1:
            raise _Misfit  # a newline inside a text: the pieces below would not be texts
        # With every digit a 0, a column in one format is one shape: ISO_DATETIME
        # matches a shape exactly when it matches each text of that shape.
        for shape in set(joined.translate(_DIGITS_TO_0).split(b"\n")):
            if ISO_DATETIME.fullmatch(shape.decode("ascii")) is None:
                raise _Misfit
        try:
            tzs = list(map(_item_tz, col))
        except KeyError:
            tzs = list(map(_get_tz, col))
        zones: dict[Any, _dt.tzinfo] = {}
        for tz in set(tzs):
            if tz is not None and type(tz) is not str:
                raise _Misfit
            zones[tz] = tz_from_name(tz or "GMT")
        # fromisoformat reads a trailing Z as +00:00, as make_datetime has it do.
        if len(zones) == 1:
            return list(map(methodcaller("astimezone", zones.popitem()[1]), map(_fromiso, vals)))
        return [_fromiso(v).astimezone(zones[tz]) for v, tz in zip(vals, tzs, strict=True)]
