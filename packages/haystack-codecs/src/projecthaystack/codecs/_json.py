"""JSON: the entry points for Haystack 4 ("Hayson", objects tagged with ``_kind``) and
the Haystack 3 encoding (type-prefixed strings such as ``"n:72 °F"``), chosen with
``version=``.  The readers and writers of each version live in their own modules."""

from __future__ import annotations

from typing import Any, Literal

from projecthaystack.kinds import DecodeError, EncodeError, Grid, InvalidValueError

from ._json3_read import V3Reader
from ._json3_write import encode_grid3, encode_value3
from ._json4_read import PathError, V4Reader, load
from ._json4_write import encode_grid4, encode_value4
from ._limits import DEFAULT_LIMITS, Limits

__all__ = [
    "Version",
    "decode_grid",
    "decode_value",
    "encode_grid",
    "encode_grid_bytes",
    "encode_value",
    "encode_value_bytes",
]

Version = Literal[3, 4]


def decode_grid(
    data: bytes | str, *, version: Version = 4, limits: Limits = DEFAULT_LIMITS
) -> Grid:
    """Decode a JSON grid, Haystack 4 encoding by default, ``version=3`` for the old one.

    >>> g = decode_grid(b'{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"a"}],'
    ...                 b'"rows":[{"a":{"_kind":"number","val":5,"unit":"kW"}}]}')
    >>> g[0]["a"]
    Number(val=5.0, unit='kW')
    """
    obj, swapped = load(data, limits)
    reader = V3Reader(limits, swapped) if version == 3 else V4Reader(limits, swapped)
    if type(obj) is not dict:
        raise DecodeError("a JSON grid must be an object", path="")
    kind = obj.get("_kind", "grid")
    if kind != "grid":
        raise DecodeError(f"expected a grid, found _kind {kind!r}", path="_kind")
    try:
        return reader.grid(obj)
    except PathError as exc:
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
    obj, swapped = load(data, limits)
    reader = V3Reader(limits, swapped) if version == 3 else V4Reader(limits, swapped)
    try:
        return reader.value(obj)
    except PathError as exc:
        raise exc.to_decode_error() from None
    except (InvalidValueError, ValueError) as exc:
        raise DecodeError(str(exc), path="") from None


def encode_value(value: Any, *, version: Version = 4) -> str:
    """One value as JSON text.

    >>> from projecthaystack.kinds import Number
    >>> encode_value(Number(72, "°F"))
    '{"_kind":"number","val":72,"unit":"°F"}'
    >>> encode_value(Number(72, "°F"), version=3)
    '"n:72 °F"'
    """
    return encode_value_bytes(value, version=version).decode()


def encode_value_bytes(value: Any, *, version: Version = 4) -> bytes:
    """One value as UTF-8 JSON bytes, without the copy to ``str`` (what a store that
    keeps records as JSON writes).

    >>> from projecthaystack.kinds import Marker
    >>> encode_value_bytes({"site": Marker})
    b'{"site":{"_kind":"marker"}}'
    """
    return encode_value3(value) if version == 3 else encode_value4(value)


def encode_grid_bytes(grid: Grid, *, version: Version = 4) -> bytes:
    """A grid as UTF-8 JSON bytes, ready for the wire."""
    if not isinstance(grid, Grid):
        raise EncodeError(f"expected a Grid, not {type(grid).__name__}")
    return encode_grid3(grid) if version == 3 else encode_grid4(grid)


def encode_grid(grid: Grid, *, version: Version = 4) -> str:
    """A grid as JSON text, Haystack 4 encoding by default.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> encode_grid(Grid.from_rows([{"site": Marker}]))
    '{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"site"}],"rows":[{"site":{"_kind":"marker"}}]}'
    """
    return encode_grid_bytes(grid, version=version).decode()
