"""Haystack values as plain Python, for tools that know nothing of Haystack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._scalars import Coord, MarkerType, NAType, Number, Ref, RemoveType, Symbol, Uri, XStr

__all__ = ["to_python"]


def to_python(value: Any) -> Any:
    """A Haystack value as plain Python, for tools that know nothing of Haystack.

    Marker → ``True``; NA and Remove → ``None``; Number → ``float`` (the unit is
    dropped); Ref → its id; Symbol, Uri, XStr → their text; Coord → ``(lat, lng)``;
    Grid → a list of dicts; lists and dicts are converted item by item.

    >>> from projecthaystack.kinds import Number, Ref
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
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_python(v) for v in value]
    # A value that knows its own plain form (a Grid: this module sits below grids).
    own = getattr(type(value), "to_python", None)
    return own(value) if callable(own) else value
