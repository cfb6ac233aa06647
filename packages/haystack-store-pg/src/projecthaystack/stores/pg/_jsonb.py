"""Entities as JSONB: the Haystack JSON v4 form, with the one character JSONB refuses.

PostgreSQL's ``jsonb`` cannot hold ``\\u0000`` in a string.  Every string is therefore
stored through an order-preserving escape, ``U+0000 -> U+0001 U+0001`` and
``U+0001 -> U+0001 U+0002``: it is the identity on every string without those two
characters (so nearly always), it is a prefix-free code whose words keep the order of
the characters they stand for, and so SQL comparisons (``=``, and ``<`` under the "C"
collation) of escaped strings agree with Python's comparisons of the originals.  Filter
literals go through the same escape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from projecthaystack.codecs import Limits
from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import Coord, EncodeError, FrozenDict, Marker, Number, Ref, Symbol, Uri

__all__ = [
    "MAX_DEPTH",
    "decode_many",
    "decode_tags",
    "decode_value",
    "encode_many",
    "encode_tags",
    "encode_value",
    "escape",
]

MAX_DEPTH: Final = 64
"""The deepest nesting of lists, dicts and grids an entity may have (as the codecs'
default limit): deeper values are refused when written, never stored unreadable."""

_LIMITS: Final = Limits(max_depth=MAX_DEPTH + 1)  # +1: the entity itself is a dict

# JSON escapes are read left to right, so an escaped backslash is consumed whole and
# never mistaken for the start of ``\u0000``.
_ESCAPE_RE: Final = re.compile(r"\\(\\|u0000|u0001)")
_UNESCAPE_RE: Final = re.compile(r"\\(\\|u0001\\u0001|u0001\\u0002)")
_ESCAPES: Final = {"\\": "\\\\", "u0000": "\\u0001\\u0001", "u0001": "\\u0001\\u0002"}
_UNESCAPES: Final = {"\\": "\\\\", "u0001\\u0001": "\\u0000", "u0001\\u0002": "\\u0001"}


def _escape_json(text: str) -> str:
    if "\\u000" not in text:
        return text
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], text)


def _unescape_json(text: str) -> str:
    if "\\u0001" not in text:
        return text
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1)], text)


def escape(text: str) -> str:
    """A Str as it is kept in JSONB (see the module docstring)."""
    if "\x00" not in text and "\x01" not in text:
        return text
    return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")


# Most tags are of these kinds, which nest nothing: a look-up skips them (the load of a
# building spends more time here than in its SQL otherwise).
_FLAT: Final = frozenset({str, bool, int, float, type(Marker), Ref, Number, Coord, Symbol, Uri})
_NESTED: Final = frozenset({list, tuple, dict, FrozenDict})


def _depth(value: Any, limit: int) -> int:
    """The nesting depth of ``value``, stopping early once it is over ``limit``."""
    if isinstance(value, Mapping):
        items: Any = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        rows = getattr(value, "rows", None)
        if rows is None:
            return 0
        items = rows
    deepest = 0
    for item in items:
        if type(item) in _FLAT:
            continue
        if limit <= 0:
            return 1
        deepest = max(deepest, _depth(item, limit - 1))
    return deepest + 1


def _check_depth(record: Mapping[str, Any]) -> None:
    flat = _FLAT.issuperset  # one C loop over a dict's value types
    if flat(map(type, record.values())):
        return
    for value in record.values():
        t = type(value)
        if t in _FLAT or ((t is FrozenDict or t is dict) and flat(map(type, value.values()))):
            continue
        if (t in _NESTED or hasattr(value, "rows")) and _depth(value, MAX_DEPTH) > MAX_DEPTH:
            raise EncodeError(f"an entity may nest lists, dicts and grids {MAX_DEPTH} deep")


def _as_dict(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record if type(record) in (dict, FrozenDict) else dict(record)


def encode_tags(record: Mapping[str, Any]) -> str:
    """One entity as JSONB text; ``EncodeError`` for a value Haystack has no form for or
    nesting deeper than :data:`MAX_DEPTH`."""
    _check_depth(record)
    return _escape_json(hjson.encode_value(_as_dict(record)))


def encode_many(records: Iterable[Mapping[str, Any]]) -> str:
    """Entities as one JSON array (one encoder call for a whole batch); the same
    checks as :func:`encode_tags`."""
    items = []
    for record in records:
        _check_depth(record)
        items.append(_as_dict(record))
    return _escape_json(hjson.encode_value(items))


def encode_value(value: Any) -> str:
    """One value as JSONB text (for filter literals)."""
    return _escape_json(hjson.encode_value(value))


def decode_tags(text: str) -> FrozenDict:
    """The entity kept as ``text`` (JSONB's output)."""
    out = hjson.decode_value(_unescape_json(text), limits=_LIMITS)
    if type(out) is not FrozenDict:  # pragma: no cover - the table holds objects only
        raise EncodeError("stored entity is not a dict")
    return out


def decode_value(text: str) -> Any:
    """One value kept as JSONB text (a history sample of no column of its own)."""
    return hjson.decode_value(_unescape_json(text), limits=_LIMITS)


def decode_many(text: str) -> list[Any]:
    """Entities kept as one JSON array (one decode call for a whole result)."""
    out = hjson.decode_value(
        _unescape_json(text), limits=Limits(max_depth=MAX_DEPTH + 2, max_size=2**62)
    )
    if type(out) is not list:  # pragma: no cover - callers aggregate into an array
        raise EncodeError("stored entities are not a list")
    return out
