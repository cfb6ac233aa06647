"""The Zinc reader: a recursive-descent parser with a fast path for plain rows.

The reader is one parser over a ``str`` and a position.  Rows of the top-level grid take
a fast path first: one regular expression splits a line into its cells and each distinct
cell text is parsed once per decode; any line the fast path cannot prove it understands
(a nested grid, a cell count that is off, a syntax error) goes to the full parser, which
is the one that reports errors.  Trio reads its values with the same parser.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Sequence
from itertools import compress
from typing import Any, Final

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
)

from ._limits import DEFAULT_LIMITS, Limits
from ._text import datetime_unchecked, read_text

__all__ = ["ZincParser", "decode_grid", "decode_value", "read_value"]

# ----------------------------------------------------------------------------- tokens

_SPACE = re.compile(r"[ \t]*")
_WS_NL = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[a-z][A-Za-z0-9_]*")
_STR = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_URI = re.compile(r"`((?:[^`\\\n]|\\.)*)`")
_REF = re.compile(r'@([A-Za-z0-9_:\-.~]+)(?: "((?:[^"\\\n]|\\.)*)")?')
_SYMBOL = re.compile(r"\^([A-Za-z0-9_:\-.~]+)")
_KEYWORD = re.compile(r"[A-Z][A-Za-z0-9_]*")
# [A-Za-z%_/$\u0080-\U0010ffff] written as its complement in ASCII: the same set, but
# compiled in microseconds instead of ~2 ms per use (re builds a table over the range).
_UNIT_CHARS = r"[^\x00-\x23\x26-\x2e\x30-\x40\x5b-\x5e\x60\x7b-\x7f]"
_NUMERIC = re.compile(
    # dateTime: offset required (seconds only in historic local mean times), timezone
    # name optional after 'Z'.  A zone name starts upper-case, as every name of the
    # timezone database does, so that in {ts:...Z foo} 'foo' is the next tag.
    r"(?P<dt>(?P<dtv>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d(?::\d\d)?))"
    r"(?: (?P<tz>[A-Z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*))?)"
    r"|(?P<date>\d{4}-\d\d-\d\d)"
    r"|(?P<time>\d\d:\d\d(?::\d\d(?:\.\d+)?)?)"
    # underbars only between digits, so that a unit may start with one ("0_x")
    r"|(?P<num>-?\d(?:_*\d)*(?:\.\d(?:_*\d)*)?(?:[eE][+-]?\d(?:_*\d)*)?)"
    r"(?P<unit>" + _UNIT_CHARS + r"*)"
    r"|(?P<inf>-INF)(?P<iunit>" + _UNIT_CHARS + r"*)"
)
_DEG = r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
_COORD = re.compile(r"C\([ \t]*" + _DEG + r"[ \t]*,[ \t]*" + _DEG + r"[ \t]*\)")
_INF_UNIT = re.compile(_UNIT_CHARS + r"*")
_ESCAPES: Final = {
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    '"': '"',
    "\\": "\\",
    "$": "$",
    "'": "'",
    "`": "`",
}
_ESC_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)

# A fast-path cell: quoted strings, uris and plain characters, or one flat dict or list.
# Possessive quantifiers keep a line that does not fit from backtracking at length.
_Q = r'"(?:[^"\\\n]++|\\.)*+"'
_U = r"`(?:[^`\\\n]++|\\.)*+`"
_FAST_CELL = re.compile(
    r"((?:[^,\"`{}\[\]<>\n]++|" + _Q + "|" + _U + r")*+"
    r"|[ ]*+\{(?:[^\"`{}\[\]<>\n]++|" + _Q + "|" + _U + r")*+\}[ ]*+"
    r"|[ ]*+\[(?:[^\"`{}\[\]<>\n]++|" + _Q + "|" + _U + r")*+\][ ]*+),"
)

_KEYWORDS: Final[dict[str, Any]] = {
    "N": None,
    "M": Marker,
    "R": Remove,
    "NA": NA,
    "T": True,
    "F": False,
    "NaN": Number(math.nan),
}


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] == "u" and len(esc) == 5:
            return chr(int(esc[1:], 16))
        try:
            return _ESCAPES[esc]
        except KeyError:
            raise ValueError(f"invalid escape \\{esc}") from None

    return _ESC_RE.sub(repl, body)


def _unescape_uri(body: str) -> str:
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] == "u" and len(esc) == 5:
            return chr(int(esc[1:], 16))
        if esc == "`" or esc == "\\":
            return esc
        # Reserved-character escapes such as \# keep their backslash (spec, URIs note).
        return "\\" + esc

    return _ESC_RE.sub(repl, body)


def _number(text: str, unit: str | None) -> Number:
    if "_" in text:
        text = text.replace("_", "")
    return Number(float(text), unit or None)


class ZincParser:
    """A recursive-descent Zinc parser over one text; also parses Trio and JSON v3 values."""

    __slots__ = ("depth", "limits", "pos", "text")

    def __init__(self, text: str, limits: Limits = DEFAULT_LIMITS, pos: int = 0) -> None:
        self.text = text
        self.pos = pos
        self.limits = limits
        self.depth = 0

    # ------------------------------------------------------------------ helpers

    def error(self, message: str, pos: int | None = None) -> DecodeError:
        """A ``DecodeError`` naming the line and column of ``pos`` (default: here)."""
        p = self.pos if pos is None else pos
        line = self.text.count("\n", 0, p) + 1
        col = p - (self.text.rfind("\n", 0, p) + 1) + 1
        return DecodeError(message, line=line, col=col)

    def skip_space(self) -> None:
        """Skip spaces and tabs."""
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def peek(self) -> str:
        """The next character, or ``""`` at the end."""
        return self.text[self.pos : self.pos + 1]

    def expect(self, s: str) -> None:
        """Consume ``s`` or raise."""
        if not self.text.startswith(s, self.pos):
            found = self.text[self.pos : self.pos + 10] or "end of input"
            raise self.error(f"expected {s!r}, found {found!r}")
        self.pos += len(s)

    def at_end(self) -> bool:
        """Whether only spaces and newlines remain."""
        return _WS_NL.match(self.text, self.pos).end() == len(self.text)  # type: ignore[union-attr]

    def name(self) -> str:
        """A tag name."""
        m = _NAME.match(self.text, self.pos)
        if m is None:
            raise self.error("expected a tag name")
        self.pos = m.end()
        return m.group()

    def _push(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise self.error(f"nesting deeper than {self.limits.max_depth}")

    # ------------------------------------------------------------------ values

    def value(self) -> Any:
        """One value: a scalar, list, dict or nested grid."""
        text, pos = self.text, self.pos
        c = text[pos : pos + 1]
        if c == '"':
            m = _STR.match(text, pos)
            if m is None:
                raise self.error("unterminated or invalid string")
            self.pos = m.end()
            try:
                return _unescape(m.group(1))
            except ValueError as exc:
                raise self.error(str(exc), pos) from None
        if c == "@":
            m = _REF.match(text, pos)
            if m is None:
                raise self.error("invalid Ref")
            self.pos = m.end()
            dis = m.group(2)
            try:
                return Ref(m.group(1), None if dis is None else _unescape(dis))
            except ValueError as exc:
                raise self.error(str(exc), pos) from None
        if c.isdigit() or c == "-":
            return self._numeric()
        if c == "`":
            m = _URI.match(text, pos)
            if m is None:
                raise self.error("unterminated or invalid Uri")
            self.pos = m.end()
            return Uri(_unescape_uri(m.group(1)))
        if c == "^":
            m = _SYMBOL.match(text, pos)
            if m is None:
                raise self.error("invalid Symbol")
            self.pos = m.end()
            return Symbol(m.group(1))
        if c == "[":
            return self.list_()
        if c == "{":
            return self.dict_("{", "}")
        if c == "<":
            if not text.startswith("<<", pos):
                raise self.error("expected '<<'")
            self._push()
            self.pos += 2
            grid = self.grid(nested=True)
            self.depth -= 1
            return grid
        if "A" <= c <= "Z":
            return self._keyword()
        if not c:
            raise self.error("expected a value, found end of input")
        raise self.error(f"unexpected {c!r}")

    def _keyword(self) -> Any:
        text, pos = self.text, self.pos
        if text.startswith("C(", pos):
            m = _COORD.match(text, pos)
            if m is not None:
                self.pos = m.end()
                try:
                    return Coord(float(m.group(1)), float(m.group(2)))
                except ValueError as exc:
                    raise self.error(str(exc), pos) from None
            # C("...") is an XStr of type C, read below; anything else is a broken Coord.
            if not text[pos + 2 :].lstrip(" \t").startswith('"'):
                raise self.error("invalid Coord")
        m = _KEYWORD.match(text, pos)
        assert m is not None
        word = m.group()
        end = m.end()
        if text.startswith("(", end):
            self.pos = end + 1
            self.skip_space()
            sm = _STR.match(text, self.pos)
            if sm is None:
                raise self.error(f"expected a string in {word}(...)")
            self.pos = sm.end()
            self.skip_space()
            self.expect(")")
            try:
                return XStr(word, _unescape(sm.group(1)))
            except ValueError as exc:
                raise self.error(str(exc), pos) from None
        if word.startswith("INF"):
            unit = _INF_UNIT.match(text, pos + 3)
            assert unit is not None
            self.pos = unit.end()
            return Number(math.inf, unit.group() or None)
        try:
            val = _KEYWORDS[word]
        except KeyError:
            raise self.error(f"unknown keyword {word!r}") from None
        self.pos = end
        return val

    def _numeric(self) -> Any:
        text, pos = self.text, self.pos
        m = _NUMERIC.match(text, pos)
        if m is None:
            raise self.error("invalid number, date or time")
        self.pos = m.end()
        kind = m.lastgroup
        try:
            if kind == "unit":
                return _number(m.group("num"), m.group("unit"))
            if kind == "dt" or kind == "tz" or kind == "dtv":
                return datetime_unchecked(m.group("dtv"), m.group("tz"))
            if kind == "date":
                return _dt.date.fromisoformat(m.group("date"))
            if kind == "time":
                return _dt.time.fromisoformat(m.group("time"))
            return Number(-math.inf, m.group("iunit") or None)
        except ValueError as exc:
            raise self.error(str(exc), pos) from None

    def list_(self) -> list[Any]:
        """``[v, v, ...]``; a trailing comma is allowed."""
        self._push()  # before the bracket, so an error points at it
        self.expect("[")
        items: list[Any] = []
        text = self.text
        while True:
            self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
            if text.startswith("]", self.pos):
                self.pos += 1
                break
            items.append(self.value())
            self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c != "]":
                raise self.error("expected ',' or ']' in list")
        self.depth -= 1
        return items

    def dict_(self, open_: str, close: str) -> FrozenDict:
        """``{name:val name ...}``; commas between tags are optional."""
        self._push()
        self.expect(open_)
        tags: dict[str, Any] = {}
        text = self.text
        while True:
            self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
            if text.startswith(close, self.pos):
                self.pos += len(close)
                break
            start = self.pos
            name = self.name()
            self.skip_space()
            if self.peek() == ":":
                self.pos += 1
                self.skip_space()
                val = self.value()
            else:
                val = Marker
            if name in tags:
                raise self.error(f"duplicate tag {name!r}", start)
            if val is not None:
                tags[name] = val
            self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
            if self.peek() == ",":
                self.pos += 1
        self.depth -= 1
        return FrozenDict(tags)

    def meta_tags(self) -> FrozenDict:
        """Space-separated tags up to the end of the line or a comma (grid/column meta)."""
        tags: dict[str, Any] = {}
        text = self.text
        while True:
            self.skip_space()
            c = self.peek()
            if not c or c in ",\n\r":
                break
            start = self.pos
            name = self.name()
            after_name = self.pos
            self.skip_space()
            if self.peek() == ":":
                self.pos += 1
                self.skip_space()
                val = self.value()
            else:
                self.pos = after_name
                val = Marker
            if name in tags:
                raise self.error(f"duplicate tag {name!r}", start)
            if val is not None:
                tags[name] = val
            if self.pos < len(text) and text[self.pos] not in " \t\n\r,":
                raise self.error("expected a space between tags")
        return FrozenDict(tags)

    def end_line(self) -> None:
        """Consume the end of a line (spaces, then ``\\n`` or ``\\r\\n``, or end of input)."""
        self.skip_space()
        text, pos = self.text, self.pos
        if text.startswith("\r\n", pos):
            self.pos += 2
        elif text.startswith("\n", pos):
            self.pos += 1
        elif pos < len(text) and not text.startswith(">>", pos):
            raise self.error(f"expected the end of the line, found {text[pos]!r}")

    # ------------------------------------------------------------------ grids

    def grid(self, nested: bool = False) -> Grid:
        """A whole grid; nested ones end at ``>>``."""
        text = self.text
        self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
        self.expect("ver:")
        self.skip_space()
        ver_pos = self.pos
        ver = self.value()
        if ver not in ("3.0", "2.0"):
            raise self.error(f"unsupported Zinc version {ver!r}", ver_pos)
        meta = self.meta_tags()
        self.end_line()
        self.skip_space()
        cols: list[Col] = []
        seen: set[str] = set()
        while True:
            self.skip_space()
            start = self.pos
            name = self.name()
            if name in seen:
                raise self.error(f"duplicate column {name!r}", start)
            seen.add(name)
            cols.append(Col.unchecked(name, self.meta_tags()))
            if self.peek() == ",":
                self.pos += 1
                continue
            break
        self.end_line()
        names = [c.name for c in cols]
        rows: list[FrozenDict] = []
        if nested:
            while True:
                self.pos = _WS_NL.match(text, self.pos).end()  # type: ignore[union-attr]
                if text.startswith(">>", self.pos):
                    self.pos += 2
                    break
                if self.pos >= len(text):
                    raise self.error("nested grid has no closing '>>'")
                rows.append(self.row(names, nested=True))
        else:
            self._rows_fast(names, rows)
        return Grid.unchecked(meta, tuple(cols), tuple(rows))

    def row(self, names: Sequence[str], nested: bool = False) -> FrozenDict:
        """One row of cells separated by commas, with its line end."""
        text = self.text
        cells: dict[str, Any] = {}
        n = len(names)
        i = 0
        while True:
            self.skip_space()
            c = self.peek()
            at_end = not c or (nested and text.startswith(">>", self.pos))
            if c == "," or c == "\n" or c == "\r" or at_end:
                val = None
            else:
                if i >= n:
                    raise self.error(f"row has more cells than the {n} columns")
                val = self.value()
                self.skip_space()
            if val is not None:
                cells[names[i]] = val
            i += 1
            if self.peek() == ",":
                self.pos += 1
                continue
            break
        if i > n:
            raise self.error(f"row has more cells than the {n} columns")
        self.end_line()
        return FrozenDict(cells)

    def _rows_fast(self, names: list[str], rows: list[FrozenDict]) -> None:
        text = self.text
        end = len(text)
        ncols = len(names)
        cache = _CellCache(self)
        getitem = cache.__getitem__
        nulls = cache.nulls
        cell_re = _FAST_CELL.findall
        nested_rows = "<<" in text
        while self.pos < end:
            pos = self.pos
            nl = text.find("\n", pos)
            if nl < 0:
                nl = end
            line = text[pos:nl]
            if line.endswith("\r"):
                line = line[:-1]
            if not line.strip(" \t"):
                self.pos = nl + 1
                continue
            if not (nested_rows and "<<" in line):
                # A plain split is right unless a string, dict, list or Coord holds a comma;
                # then the count is off or a piece fails to parse alone, and the regex,
                # which knows quotes and flat collections, has its turn.
                cells = line.split(",")
                if len(cells) != ncols:
                    cells = cell_re(line + ",")
                    if len(",".join(cells)) != len(line):
                        cells = []
                if len(cells) == ncols:
                    # compress() skips the empty cells in C; most cells of a wide grid are.
                    try:
                        vals = map(getitem, compress(cells, cells))
                        row = FrozenDict(zip(compress(names, cells), vals, strict=True))
                    except DecodeError:
                        pass  # the full parser below reports it with its position
                    else:
                        if nulls and None in row.values():
                            row = FrozenDict((k, v) for k, v in row.items() if v is not None)
                        rows.append(row)
                        self.pos = nl + 1
                        continue
            rows.append(self.row(names))


class _CellCache(dict[str, Any]):
    """Cell text → value, parsed once per decode; values are immutable so rows share them."""

    __slots__ = ("nulls", "parent")

    def __init__(self, parent: ZincParser) -> None:
        super().__init__()
        self.parent = parent
        self.nulls: set[str] = set()

    def __missing__(self, cell: str) -> Any:
        c = cell[:1]
        # The two commonest one-off cells, ids and display names, skip the general parser.
        # Tests in C rather than a regex: a Ref checks its own id (the same characters
        # as Zinc's), a string body without quote, backslash or newline is itself.
        if c == "@":
            if " " not in cell:
                try:
                    val: Any = Ref(cell[1:])
                except ValueError:
                    pass  # the parser below reports it
                else:
                    self[cell] = val
                    return val
        elif c == '"':
            body = cell[1:-1]
            if (
                cell[-1] == '"'
                and len(cell) > 1
                and '"' not in body
                and "\\" not in body
                and "\n" not in body
            ):
                self[cell] = body
                return body
        sub = ZincParser(cell.strip(" \t"), self.parent.limits)
        sub.depth = self.parent.depth
        val = sub.value()
        if sub.pos != len(sub.text):
            raise sub.error("unexpected text after the value")
        if val is None:
            self.nulls.add(cell)
        if type(val) is not list and len(self) < 65536:
            self[cell] = val
        return val


# ----------------------------------------------------------------------------- entry points


def decode_grid(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Grid:
    """Decode a Zinc grid (``ver:"3.0"``, or the ``ver:"2.0"`` grids the spec still shows).

    >>> grid = decode_grid('ver:"3.0"\\nid,temp\\n@t1,72.5°F\\n')
    >>> grid[0]["temp"]
    Number(val=72.5, unit='°F')
    """
    text = read_text(data, limits)
    parser = ZincParser(text, limits)
    grid = parser.grid()
    if not parser.at_end():
        raise parser.error("unexpected text after the grid")
    return grid


def read_value(text: str, pos: int = 0, *, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, int]:
    """Read the one Zinc value that starts at ``pos`` in ``text``: the value, and the
    position just after it.

    For parsers of languages that embed Zinc literals (Haystack filters, for one): what
    follows the value is left to the caller.  Errors are ``DecodeError`` with the line
    and column in ``text``.

    >>> read_value("curVal > 72.5°F and point", 9)
    (Number(val=72.5, unit='°F'), 15)
    >>> read_value("siteRef == @s1 and point", 11)
    (Ref(id='s1'), 14)
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, not {type(text).__name__}")
    limits.check_size(len(text))
    parser = ZincParser(text, limits, pos)
    return parser.value(), parser.pos


def decode_value(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one Zinc value, such as ``72°F``, ``@site "HQ"`` or ``{dis:"x" site}``.

    >>> decode_value("[1, 2kW, ^hot-water]")
    [Number(val=1.0), Number(val=2.0, unit='kW'), Symbol(val='hot-water')]
    """
    text = read_text(data, limits)
    parser = ZincParser(text, limits)
    parser.pos = _WS_NL.match(text).end()  # type: ignore[union-attr]
    val = parser.value()
    if not parser.at_end():
        raise parser.error("unexpected text after the value")
    return val
