"""The Zinc writer: values, and grids a row at a time."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import is_, itemgetter
from typing import Any, Final

from projecthaystack.kinds import (
    Col,
    Coord,
    EncodeError,
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
from ._memo import SEEN, Kept, Seen, cols_key
from ._text import format_datetime, format_time

__all__ = ["encode_grid", "encode_grid_bytes", "encode_str", "encode_value"]


_STR_SPECIAL = re.compile(r'[\\"$\x00-\x1f\x7f]')
_STR_ESC: Final = {
    "\\": "\\\\",
    '"': '\\"',
    "$": "\\$",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_URI_SPECIAL = re.compile(r"[`\\\x00-\x1f\x7f]")


def _esc_char(m: re.Match[str]) -> str:
    ch = m.group()
    return _STR_ESC.get(ch) or f"\\u{ord(ch):04x}"


def encode_str(s: str) -> str:
    """A Zinc string literal: ``"..."`` with the escapes Zinc needs."""
    # Three scans and one test in C are cheaper than the regex on the usual string.
    if s.isprintable() and '"' not in s and "\\" not in s and "$" not in s:
        return '"' + s + '"'
    if _STR_SPECIAL.search(s) is None:
        return '"' + s + '"'
    return '"' + _STR_SPECIAL.sub(_esc_char, s) + '"'


def _esc_uri_char(m: re.Match[str]) -> str:
    ch = m.group()
    if ch == "`":
        return "\\`"
    if ch == "\\":
        return "\\\\"
    return f"\\u{ord(ch):04x}"


def _enc_uri(u: Uri) -> str:
    return "`" + _URI_SPECIAL.sub(_esc_uri_char, u.val) + "`"


def _enc_number(n: Number) -> str:
    text = format_float(n.val)
    unit = n.unit
    return text + unit if unit else text


def _enc_float(f: float) -> str:
    return format_float(float(f))


def _enc_ref(r: Ref) -> str:
    return "@" + r.id if r.dis is None else "@" + r.id + " " + encode_str(r.dis)


def _enc_datetime(dt: _dt.datetime) -> str:
    iso, name = format_datetime(dt)
    return iso + " " + name


def _enc_list(items: Sequence[Any]) -> str:
    return "[" + ",".join([encode_value(v) for v in items]) + "]"


def _enc_dict(d: Mapping[str, Any]) -> str:
    return "{" + _tags(d) + "}"


def _tags(d: Mapping[str, Any]) -> str:
    check_names(d)
    return " ".join(
        [
            name
            if val is Marker
            else name + ":" + (encode_str(val) if type(val) is str else encode_value(val))
            for name, val in d.items()
            if val is not None
        ]
    )


def _enc_grid_nested(g: Grid) -> str:
    return "<<\n" + encode_grid(g) + ">>"


_ENCODERS: Final[dict[type, Callable[[Any], str]]] = {
    str: encode_str,
    Number: _enc_number,
    Ref: _enc_ref,
    MarkerType: lambda _: "M",
    NAType: lambda _: "NA",
    RemoveType: lambda _: "R",
    bool: lambda b: "T" if b else "F",
    type(None): lambda _: "N",
    int: _enc_float,
    float: _enc_float,
    Uri: _enc_uri,
    Symbol: lambda s: "^" + s.val,
    # datetime before date: a datetime is a date, and isinstance() walks this in order
    _dt.datetime: _enc_datetime,
    _dt.date: lambda d: d.isoformat(),
    _dt.time: format_time,
    Coord: lambda c: f"C({format_float(c.lat)},{format_float(c.lng)})",
    XStr: lambda x: x.type + "(" + encode_str(x.val) + ")",
    list: _enc_list,
    tuple: _enc_list,
    dict: _enc_dict,
    FrozenDict: _enc_dict,
    Grid: _enc_grid_nested,
}


class _StrTexts(dict[str, str]):
    """Str → its Zinc literal, once per encode (tz names, units, kinds repeat a lot)."""

    __slots__ = ()

    def __missing__(self, val: str) -> str:
        text = self[val] = encode_str(val)
        return text


def encode_value(val: Any) -> str:
    """One value in Zinc.

    >>> from projecthaystack.kinds import Marker, Number, Ref
    >>> encode_value(Number(72.5, "°F")), encode_value(Ref("a", "A")), encode_value(Marker)
    ('72.5°F', '@a "A"', 'M')
    """
    text: str = encoder_for(_ENCODERS, val)(val)
    return text


def encode_grid(grid: Grid) -> str:
    """A grid as Zinc text, ending with a newline.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> print(encode_grid(Grid.from_rows([{"dis": "HQ", "site": Marker}])), end="")
    ver:"3.0"
    dis,site
    "HQ",M
    """
    out = _encode(grid)
    return out if isinstance(out, str) else out.decode()


def _encode(grid: Grid) -> str | bytes:
    """The grid as Zinc: ``str`` when its rows were written now, UTF-8 ``bytes`` when
    they are lines kept (as bytes, so that the wire gets them without an encode)."""
    if not isinstance(grid, Grid):
        raise EncodeError(f"expected a Grid, not {type(grid).__name__}")
    gmeta = grid.meta
    meta = _tags({k: v for k, v in gmeta.items() if k != "ver"} if "ver" in gmeta else gmeta)
    out = ['ver:"3.0" ' + meta if meta else 'ver:"3.0"']
    cols = grid.cols
    if not cols:
        # Zinc cannot write a grid without columns; Haystack's empty grid has "empty".
        cols = (Col("empty"),)
    heads = []
    for col in cols:
        cmeta = _tags(col.meta) if col.meta else ""
        heads.append(col.name + " " + cmeta if cmeta else col.name)
    out.append(",".join(heads))
    names = tuple([c.name for c in cols])
    lines = _lines(grid.rows, names)
    if lines is None:
        rows = grid.rows
        out.extend(_RowWriter(names).lines(rows))
        out.append("")
        if rows and cols_key(names) is not None:
            # Marked once written (an error leaves them unmarked), in C; another tool's
            # entry gives way.
            list(map(setattr, rows, repeat("memo"), repeat(SEEN)))
        return "\n".join(out)
    return b"\n".join([b"\n".join([x.encode() for x in out]), *lines, b""])


_COLS_OF: Final = itemgetter(0)
_LINE_OF: Final = itemgetter(1)


def _lines(rows: Sequence[FrozenDict], names: tuple[str, ...]) -> list[bytes] | None:
    """The grid's row lines as UTF-8, kept ones copied (see ``_memo``), the others
    written and kept; ``None`` for rows never written (and for columns past the bound
    of ``cols_key``): the caller writes those as ``str`` and marks them as seen."""
    key = cols_key(names)
    if key is None or not rows:
        return None
    first = type(getattr(rows[0], "memo", None))
    if first is Kept:
        # Stored rows, likely all kept for these columns: a copy of each line, the
        # checks in C.  AttributeError (another tool's entry) or TypeError (no line
        # kept) is a miss, as is a line kept for other columns.
        try:
            found = [row.memo.haystack_zinc for row in rows]
            if all(map(is_, map(_COLS_OF, found), repeat(key))):
                return list(map(_LINE_OF, found))
        except (AttributeError, TypeError):
            pass
    last = type(getattr(rows[-1], "memo", None))
    if first is not Kept and first is not Seen and last is not Kept and last is not Seen:
        # Rows never written (as the first and last show): no memo to read row by row,
        # which costs an exception apiece where there is none; the caller marks them as
        # seen.  (A grid that mixes kept rows in between is written right, only slower.)
        return None
    line = _RowWriter(names).line
    out: list[bytes] = []
    append = out.append
    seen, kept = Seen, Kept
    for row in rows:
        memo: Any = getattr(row, "memo", None)
        t = type(memo)
        if t is kept:
            zinc = memo.haystack_zinc
            if zinc is not None and zinc[0] is key:
                append(zinc[1])
                continue
            text = line(row).encode()
            memo.haystack_zinc = (key, text)
        elif t is seen:
            # Written before and asked for again: a row that lives on.  Keep its line.
            text = line(row).encode()
            row.memo = kept(None, memo.plain, (key, text))
        else:
            text = line(row).encode()
            row.memo = SEEN  # another tool's entry gives way
        append(text)
    return out


class _RowWriter:
    """Writes rows of one grid as lines: one template per row shape (its tag names in
    order), with a ``%s`` in each of its columns and the empty cells already in place,
    so a row costs one conversion per tag and one ``%``.  A row whose tags are not in
    column order has its cells put in that order first."""

    __slots__ = ("index", "ncols", "strs", "templates")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.index = {name: i for i, name in enumerate(names)}
        self.ncols = len(names)
        self.templates: dict[tuple[str, ...], tuple[str, list[int] | None]] = {}
        self.strs = _StrTexts()

    def template(self, shape: tuple[str, ...]) -> tuple[str, list[int] | None]:
        cells = [""] * self.ncols
        if not shape and self.ncols == 1:
            cells[0] = "N"  # a lone empty cell would read as a blank line
        try:
            at = [self.index[name] for name in shape]
        except KeyError as exc:
            raise EncodeError(f"row tag {exc.args[0]!r} is not a column") from None
        for i in at:
            cells[i] = "%s"
        # The %s take the cells in column order: the order of the row's tags by column.
        order = sorted(range(len(at)), key=at.__getitem__)
        found = (",".join(cells), None if order == list(range(len(at))) else order)
        if len(self.templates) < 4096:
            self.templates[shape] = found
        return found

    def lines(self, rows: Sequence[FrozenDict]) -> list[str]:
        line = self.line
        return [line(row) for row in rows]

    def line(self, row: FrozenDict) -> str:
        shape = tuple(row)
        found = self.templates.get(shape)
        if found is None:
            found = self.template(shape)
        template, order = found
        strs, marker, ref_t, fd = self.strs, Marker, Ref, FrozenDict
        # Markers first: they are most of the cells of entity grids.
        cells = [
            "M"
            if v is marker
            else strs[v]
            if (t := type(v)) is str
            else ("@" + v.id if v.dis is None else _enc_ref(v))
            if t is ref_t
            else _dict_text(v, strs)
            if t is fd
            else _cell(v)
            for v in row.values()
        ]
        if order is None:
            return template % tuple(cells)
        return template % tuple([cells[i] for i in order])


def _cell(val: Any) -> str:
    enc = _ENCODERS.get(type(val))
    return enc(val) if enc is not None else encode_value(val)


def _dict_text(d: FrozenDict, strs: _StrTexts) -> str:
    """A nested dict's text, its strings through the encode's cache."""
    check_names(d)
    return (
        "{"
        + " ".join(
            [
                name
                if val is Marker
                else name + ":" + (strs[val] if type(val) is str else encode_value(val))
                for name, val in d.items()
                if val is not None
            ]
        )
        + "}"
    )


def encode_grid_bytes(grid: Grid) -> bytes:
    """A grid as UTF-8 Zinc, ready for the wire.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> encode_grid_bytes(Grid.from_rows([{"site": Marker}]))
    b'ver:"3.0"\\nsite\\nM\\n'
    """
    out = _encode(grid)
    return out if isinstance(out, bytes) else out.encode()
