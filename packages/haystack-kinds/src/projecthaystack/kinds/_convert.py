"""Kind names of Python values, and conversion to plain Python."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Final

from ._errors import InvalidValueError
from ._grid import Grid
from ._scalars import Coord, MarkerType, NAType, Number, Ref, RemoveType, Symbol, Uri, XStr

__all__ = ["kind_of", "to_python"]

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


def to_python(value: Any) -> Any:
    """A Haystack value as plain Python, for tools that know nothing of Haystack.

    Marker → ``True``; NA and Remove → ``None``; Number → ``float`` (the unit is
    dropped); Ref → its id; Symbol, Uri, XStr → their text; Coord → ``(lat, lng)``;
    Grid → a list of dicts; lists and dicts are converted item by item.

    >>> to_python({"siteRef": Ref("s1", "HQ"), "temp": Number(72.5, "°F")})
    {'siteRef': 's1', 'temp': 72.5}
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is MarkerType:
        return True
    if t is Number:
        return value.val
    if t is Ref:
        return value.id
    if t is Symbol or t is Uri or t is XStr:
        return value.val
    if t is Coord:
        return (value.lat, value.lng)
    if t is NAType or t is RemoveType:
        return None
    if isinstance(value, Grid):
        return value.to_python()
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_python(v) for v in value]
    return value
