"""The Haystack kind name of a Python value."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Final

from ._errors import InvalidValueError
from ._grid import Grid
from ._scalars import Coord, MarkerType, NAType, Number, Ref, RemoveType, Symbol, Uri, XStr

__all__ = ["kind_of"]

_KINDS: Final[dict[type, str]] = {
    type(None): "null",
    MarkerType: "marker",
    NAType: "na",
    RemoveType: "remove",
    bool: "bool",
    Number: "number",
    int: "number",
    float: "number",
    str: "str",
    Uri: "uri",
    Ref: "ref",
    Symbol: "symbol",
    _dt.date: "date",
    _dt.time: "time",
    _dt.datetime: "dateTime",
    Coord: "coord",
    XStr: "xstr",
    list: "list",
    tuple: "list",
    dict: "dict",
    Grid: "grid",
}


def kind_of(value: Any) -> str:
    """The Haystack kind name of a Python value, as its def names it.

    ``int`` and ``float`` count as ``number``; any ``Mapping`` as ``dict``.

    >>> kind_of(Number(3, "kW")), kind_of("x"), kind_of(None)
    ('number', 'str', 'null')
    """
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    for cls, name in _KINDS.items():
        if isinstance(value, cls):
            return name
    if isinstance(value, Mapping):
        return "dict"
    raise InvalidValueError(f"{type(value).__name__} is not a Haystack kind")
