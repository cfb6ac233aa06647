"""Trio: records of ``name:value`` lines separated by dashes; values in Zinc syntax.

Nested values: a tag line ``name:Zinc:`` starts an indented Zinc grid, and
``name:Trio:`` an indented Trio *record*, read as one dict (as Haxall reads it; a
block of several records is an error).  The writer uses ``Zinc:`` for a grid and
``Trio:`` for a dict that holds a grid (its Zinc form would span lines); other
dicts are written inline as ``{...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from projecthaystack.kinds import DecodeError, EncodeError, FrozenDict, Grid, Marker, Ref

from ._encoding import check_names
from ._limits import DEFAULT_LIMITS, Limits
from ._text import read_text
from ._zinc_read import ZincParser
from ._zinc_write import _dict_text, _StrTexts, encode_value
from ._zinc_write import encode_grid as zinc_grid

__all__ = ["decode_dicts", "decode_grid", "encode_dicts", "encode_grid", "encode_grid_bytes"]

_NAME = re.compile(r"[a-z][A-Za-z0-9_]*")
_SEPARATOR = re.compile(r"-+[ \t]*")
# Strings that Trio lets stand without quotes and that Zinc would not read as a value.
_SAFE_STR = re.compile(r"[A-Za-z_][A-Za-z_ ]*")
# Multi-line strings that read back exactly: no blank lines, no leading or trailing space.
_LINE = r"[^\s\x00-\x1f](?:[^\n\x00-\x1f]*[^\s])?"
_MULTILINE_OK = re.compile(_LINE + r"(?:\n" + _LINE + r")*")
_KEYWORDS: Final = {"N", "M", "R", "NA", "T", "F", "INF", "NaN"}


def _is_bare_str(text: str) -> bool:
    """Whether Trio reads ``text`` unquoted as that same string (``INFkW`` is a Number)."""
    return (
        _SAFE_STR.fullmatch(text) is not None
        and text not in _KEYWORDS
        and not text.startswith("INF")
    )


_WORD = re.compile(r"[A-Z][A-Za-z0-9_]*")


def _starts_as_text(raw: str) -> bool:
    """Whether a capitalised value cannot be Zinc (``Alpha AHU-1``, not ``NA`` or ``C(``)."""
    m = _WORD.match(raw)
    if m is None:
        return False
    word = m.group()
    if word in _KEYWORDS or word.startswith("INF"):
        return False
    return raw[m.end() : m.end() + 1] != "("


class _Reader:
    __slots__ = ("cache", "i", "limits", "lines", "text")

    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits
        self.lines = text.split("\n")
        self.i = 0
        self.cache: dict[str, Any] = {}

    def error(self, message: str, line_index: int, col: int = 1) -> DecodeError:
        return DecodeError(message, line=line_index + 1, col=col)

    def indented_block(self) -> list[str]:
        """The lines after the current one that are indented (or blank inside the block)."""
        lines = self.lines
        j = self.i + 1
        block: list[str] = []
        while j < len(lines):
            line = lines[j].rstrip("\r")
            if line[:1] in (" ", "\t"):
                block.append(line)
            elif not line.strip() and j + 1 < len(lines) and lines[j + 1][:1] in (" ", "\t"):
                block.append("")
            else:
                break
            j += 1
        self.i = j - 1
        return block

    def parse_zinc(self, text: str, line_index: int, col: int) -> Any:
        parser = ZincParser(text, self.limits)
        try:
            val = parser.value()
            if not parser.at_end():
                raise parser.error("unexpected text after the value")
        except DecodeError as exc:
            line = line_index + (exc.line or 1)
            # Columns on the tag's own line count from the start of the line.
            shift = col - 1 if exc.line == 1 else 0
            raise DecodeError(exc.reason, line=line, col=(exc.col or 1) + shift) from None
        return val

    def scalar(self, raw: str, line_index: int, col: int) -> Any:
        cached = self.cache.get(raw, self)
        if cached is not self:
            return cached
        if raw[0] == "@" and " " not in raw:
            # A Ref without a dis, the commonest one-off value: it checks its own id.
            try:
                val: Any = Ref(raw[1:])
            except ValueError:
                val = self.scalar_general(raw, line_index, col)
        else:
            val = self.scalar_general(raw, line_index, col)
        if type(val) is not list and len(self.cache) < 65536:
            self.cache[raw] = val
        return val

    def scalar_general(self, raw: str, line_index: int, col: int) -> Any:
        if raw == "true":
            val: Any = True
        elif raw == "false":
            val = False
        elif _is_bare_str(raw):
            val = raw
        elif not raw[0].isascii() or _starts_as_text(raw):
            val = raw  # unquoted strings may begin with any non-ASCII character
        else:
            parser = ZincParser(raw, self.limits)
            try:
                val = parser.value()
                ok = parser.pos == len(raw)
            except DecodeError:
                ok = False
            if not ok:
                # Real files (the spec's own example buildings among them) leave strings
                # like `AHU-1 Discharge Temp` unquoted; what Zinc cannot read is a string,
                # unless it starts like a string or collection whose syntax is broken.
                if raw[0] in '"`[{<':
                    self.parse_zinc(raw, line_index, col)  # raises with the position
                val = raw
        return val

    def value(self, raw: str, line_index: int, col: int) -> Any:
        if not raw:
            return _dedent(self.indented_block())
        if raw in ("Zinc:", "Trio:"):
            start = self.i + 1
            nested = _dedent(self.indented_block())
            if raw == "Zinc:":
                parser = ZincParser(nested, self.limits)
                try:
                    grid = parser.grid()
                    if not parser.at_end():
                        raise parser.error("unexpected text after the grid")
                except DecodeError as exc:
                    line = start + (exc.line or 1)
                    raise DecodeError(exc.reason, line=line, col=exc.col) from None
                return grid
            inner = _Reader(nested, self.limits)
            try:
                records = inner.records()
            except DecodeError as exc:
                raise DecodeError(exc.reason, line=start + (exc.line or 1), col=exc.col) from None
            if len(records) > 1:
                raise self.error(
                    f"a nested Trio: value holds one record, found {len(records)}", line_index
                )
            return records[0] if records else FrozenDict()
        if raw[0] in "[{" and self.i + 1 < len(self.lines) and self.lines[self.i + 1][:1] in " \t":
            first = self.i
            block = [ln for ln in self.indented_block() if not ln.strip().startswith("//")]
            return self.parse_zinc(" ".join([raw, *block]), first, col)
        return self.scalar(raw, line_index, col)

    def records(self) -> list[FrozenDict]:
        out: list[FrozenDict] = []
        tags: dict[str, Any] = {}
        lines = self.lines
        names: set[str] = set()  # tag names already checked
        cache_get = self.cache.get
        miss = self.cache
        # The line number lives in a local (an attribute write per line costs); self.i
        # is set around the calls that read or move it (indented blocks).
        i = self.i
        end = len(lines)
        while i < end:
            line = lines[i]
            name, sep, raw = line.partition(":")
            if name not in names:
                stripped = line.strip()
                if not stripped or stripped.startswith("//"):
                    i += 1
                    continue
                if stripped[0] == "-":
                    if _SEPARATOR.fullmatch(stripped) is None:
                        raise self.error("a record separator holds only dashes", i)
                    if tags:
                        out.append(FrozenDict(tags))
                        tags = {}
                    i += 1
                    continue
                name = name.rstrip(" \t\r")
                if _NAME.fullmatch(name) is None or line[:1] in " \t":
                    raise self.error(f"expected 'name:value', found {line[:40]!r}", i)
                names.add(name)
            if name in tags:
                raise self.error(f"duplicate tag {name!r}", i)
            if not sep:
                tags[name] = Marker
                i += 1
                continue
            raw = raw.strip(" \t\r")
            val = cache_get(raw, miss)
            if val is miss:
                self.i = i
                val = self.value(raw, i, len(name) + 2)
                i = self.i
            if val is not None:
                tags[name] = val
            i += 1
        self.i = i
        if tags:
            out.append(FrozenDict(tags))
        return out


def _dedent(block: list[str]) -> str:
    indent = min((len(ln) - len(ln.lstrip(" \t")) for ln in block if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in block)


def decode_dicts(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> list[FrozenDict]:
    """Decode Trio into its records, in order.

    >>> first, second = decode_dicts("dis: Site 1\\nsite\\n---\\ndis: \\"Site 2\\"\\narea: 3702ft²")
    >>> first
    FrozenDict({'dis': 'Site 1', 'site': Marker})
    >>> second["area"]
    Number(val=3702.0, unit='ft²')
    """
    return _Reader(read_text(data, limits), limits).records()


def decode_grid(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Grid:
    """Decode Trio into a grid whose columns are the union of the records' tags."""
    return Grid.from_rows(decode_dicts(data, limits=limits))


def _indent(text: str) -> str:
    return "\n".join("  " + ln if ln else ln for ln in text.split("\n"))


def _value_text(val: Any) -> str:
    """What follows ``name:`` on a tag line (an indented block starts with a newline)."""
    if type(val) is str:
        if "\n" in val and _MULTILINE_OK.fullmatch(val):
            return "\n" + _indent(val)
        if _is_bare_str(val) and val[-1] != " " and val not in ("true", "false"):
            return val
    elif isinstance(val, Grid):
        return "Zinc:\n" + _indent(zinc_grid(val).rstrip("\n"))
    text = encode_value(val)
    if "\n" in text:
        if isinstance(val, Mapping):
            return "Trio:\n" + _indent(encode_dicts([val]).rstrip("\n"))
        # A tag's own grid takes the indented Zinc: form, a dict the Trio: form; Trio
        # has no way to write a grid that sits inside a list.
        raise EncodeError("Trio cannot carry a grid inside a list")
    return text


class _Texts(dict[str, str]):
    """String value → its Trio text, worked out once per encode (values repeat a lot)."""

    __slots__ = ()

    def __missing__(self, val: str) -> str:
        text = self[val] = _value_text(val)
        return text


def encode_dicts(dicts: Iterable[Mapping[str, Any]]) -> str:
    """Records as Trio text: one ``name:value`` line per tag, ``---`` between records.

    >>> from projecthaystack.kinds import Marker
    >>> print(encode_dicts([{"dis": "HQ", "site": Marker}]), end="")
    dis:HQ
    site
    """
    return _encode(dicts, check=True)


def _encode(dicts: Iterable[Mapping[str, Any]], check: bool) -> str:
    """``check``: whether the tag names need checking (a grid's rows were checked)."""
    out: list[str] = []
    texts = _Texts()
    zinc_strs = _StrTexts()
    fd, ref_t, marker = FrozenDict, Ref, Marker
    first = True
    for d in dicts:
        if first:
            first = False
        else:
            out.append("---")
        if check:
            check_names(d)
        try:
            out.extend(
                [
                    name
                    if val is marker
                    else name + ":" + texts[val]
                    if (t := type(val)) is str
                    else name + ":@" + val.id
                    if t is ref_t and val.dis is None
                    else name + ":" + _dict_value(val, zinc_strs)
                    if t is fd
                    else name + ":" + _value_text(val)
                    for name, val in d.items()
                    if val is not None
                ]
            )
        except EncodeError as exc:
            bad = next(n for n, v in d.items() if v is not None and _fails(v))
            raise EncodeError(f"tag {bad!r}: {exc}") from None
    out.append("")
    return "\n".join(out)


def _dict_value(d: FrozenDict, zinc_strs: _StrTexts) -> str:
    """A dict tag's value: inline Zinc, its strings through the encode's cache; the
    ``Trio:`` block when it holds a grid (whose Zinc spans lines)."""
    text = _dict_text(d, zinc_strs)
    return text if "\n" not in text else _value_text(d)


def _fails(val: Any) -> bool:
    try:
        _value_text(val)
    except EncodeError:
        return True
    return False


def encode_grid(grid: Grid) -> str:
    """A grid's rows as Trio records (Trio has no grid or column meta: they are left out).

    >>> from projecthaystack.kinds import Grid, Marker
    >>> print(encode_grid(Grid.from_rows([{"dis": "HQ", "site": Marker}])), end="")
    dis:HQ
    site
    """
    if not isinstance(grid, Grid):
        raise EncodeError(f"expected a Grid, not {type(grid).__name__}")
    return _encode(grid.rows, check=False)


def encode_grid_bytes(grid: Grid) -> bytes:
    """A grid's rows as UTF-8 Trio, ready for the wire."""
    return encode_grid(grid).encode()
