"""The Zinc writer: values, and grids a row at a time."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
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
        cmeta = _tags(col.meta)
        heads.append(col.name + " " + cmeta if cmeta else col.name)
    out.append(",".join(heads))
    index = {c.name: i for i, c in enumerate(cols)}
    blank = [""] * len(cols)
    if len(cols) == 1:
        blank[0] = "N"  # a lone empty cell would read as a blank line
    encoders = _ENCODERS
    ref_t = Ref
    strs = _StrTexts()
    for row in grid.rows:
        # Fill only the row's own tags into a blank line; wide grids are mostly empty.
        cells = blank.copy()
        for name, val in row.items():
            t = type(val)
            if t is str:
                cell = strs[val]
            elif val is Marker:
                cell = "M"
            elif t is ref_t and val.dis is None:
                cell = "@" + val.id
            else:
                enc = encoders.get(t)
                cell = enc(val) if enc is not None else encode_value(val)
            try:
                cells[index[name]] = cell
            except KeyError:
                raise EncodeError(f"row tag {name!r} is not a column") from None
        out.append(",".join(cells))
    out.append("")
    return "\n".join(out)


def encode_grid_bytes(grid: Grid) -> bytes:
    """A grid as UTF-8 Zinc, ready for the wire.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> encode_grid_bytes(Grid.from_rows([{"site": Marker}]))
    b'ver:"3.0"\\nsite\\nM\\n'
    """
    return encode_grid(grid).encode()
