"""The scalar kinds that have no exact Python counterpart."""

from __future__ import annotations

import math
import re
from typing import Final

import msgspec

from ._errors import InvalidValueError
from ._format import format_number

__all__ = [
    "NA",
    "Coord",
    "Marker",
    "MarkerType",
    "NAType",
    "Number",
    "Ref",
    "Remove",
    "RemoveType",
    "Symbol",
    "Uri",
    "XStr",
    "is_tag_name",
]

_REF_RE: Final = re.compile(r"[A-Za-z0-9_:\-.~]+")
_NAME_RE: Final = re.compile(r"[a-z][A-Za-z0-9_]*")
_XSTR_TYPE_RE: Final = re.compile(r"[A-Z][A-Za-z0-9_]*")
# The Zinc grammar's unit characters: letters, % _ / $ and anything beyond ASCII.
# [A-Za-z%_/$\u0080-\U0010ffff]+ written as its complement in ASCII: the same set, but
# compiled in microseconds instead of ~2 ms at import (re builds a table over the range).
_UNIT_RE: Final = re.compile(r"[^\x00-\x23\x26-\x2e\x30-\x40\x5b-\x5e\x60\x7b-\x7f]+")


def is_tag_name(name: str) -> bool:
    """Whether ``name`` is a valid tag or column name (``[a-z][A-Za-z0-9_]*``).

    >>> is_tag_name("siteRef"), is_tag_name("SiteRef"), is_tag_name("a-b")
    (True, False, False)
    """
    if name in _GOOD_NAMES:
        return True
    if _NAME_RE.fullmatch(name) is None:
        return False
    if len(_GOOD_NAMES) < 1 << 16:  # bounded: names come from clients too
        _GOOD_NAMES.add(name)
    return True


# Names already found good: the same few hundred tag names are checked over and over.
_GOOD_NAMES: set[str] = set()


# The kinds below are msgspec Structs tagged the way Haystack JSON v4 tags them, so that
# msgspec writes {"_kind": "ref", "val": ...} itself, in C, when a grid goes out as JSON.
_SINGLETONS: dict[type, object] = {}


class MarkerType(msgspec.Struct, frozen=True, tag="marker", tag_field="_kind"):
    """The type of :data:`Marker`, the value of a label tag such as ``site``.

    There is one instance; compare with ``value is Marker``.
    """

    def __post_init__(self) -> None:
        _only_one(self)

    def __reduce__(self) -> str:
        return "Marker"

    def __copy__(self) -> MarkerType:
        return self

    def __deepcopy__(self, memo: object) -> MarkerType:
        return self

    def __repr__(self) -> str:
        return "Marker"


class NAType(msgspec.Struct, frozen=True, tag="na", tag_field="_kind"):
    """The type of :data:`NA`, "not available": a sample known to be missing or invalid."""

    def __post_init__(self) -> None:
        _only_one(self)

    def __reduce__(self) -> str:
        return "NA"

    def __copy__(self) -> NAType:
        return self

    def __deepcopy__(self, memo: object) -> NAType:
        return self

    def __repr__(self) -> str:
        return "NA"


class RemoveType(msgspec.Struct, frozen=True, tag="remove", tag_field="_kind"):
    """The type of :data:`Remove`, which asks for a tag to be removed in an update."""

    def __post_init__(self) -> None:
        _only_one(self)

    def __reduce__(self) -> str:
        return "Remove"

    def __copy__(self) -> RemoveType:
        return self

    def __deepcopy__(self, memo: object) -> RemoveType:
        return self

    def __repr__(self) -> str:
        return "Remove"


def _only_one(instance: object) -> None:
    # Structs cannot define __new__, so the singletons refuse a second construction.
    cls = type(instance)
    if cls in _SINGLETONS:
        raise TypeError(f"{cls.__name__} has one instance: use {_SINGLETONS[cls]!r}")
    _SINGLETONS[cls] = instance


Marker: Final = MarkerType()
"""The marker value: ``{"site": Marker}`` labels a dict as a site."""
NA: Final = NAType()
"""The not-available value."""
Remove: Final = RemoveType()
"""The remove value."""


class Number(msgspec.Struct, frozen=True, eq=False, repr_omit_defaults=True):
    """A 64-bit float with an optional unit of measurement.

    Numbers are equal when value and unit are equal; ``NaN`` equals ``NaN`` (as in
    Haystack itself) so that data round-trips compare equal.  ``75°F`` and ``75`` differ.

    >>> Number(72.5, "°F")
    Number(val=72.5, unit='°F')
    >>> Number(1, "kW") == Number(1.0, "kW")
    True
    """

    val: float
    unit: str | None = None

    def __post_init__(self) -> None:
        val = self.val
        if type(val) is not float:
            if isinstance(val, bool) or not isinstance(val, int | float):
                raise InvalidValueError(f"Number value must be a float, not {val!r}")
            msgspec.structs.force_setattr(self, "val", float(val))
        unit = self.unit
        if unit is not None:
            if not _UNIT_RE.fullmatch(unit):
                raise InvalidValueError(f"invalid unit {unit!r}")
            if math.isnan(self.val):
                raise InvalidValueError("NaN cannot have a unit")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Number:
            return NotImplemented
        a, b = self.val, other.val
        return self.unit == other.unit and (a == b or (a != a and b != b))

    def __hash__(self) -> int:
        return hash((self.val, self.unit))

    def __ne__(self, other: object) -> bool:
        # msgspec Structs with eq=False compare by identity for !=; follow __eq__.
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __str__(self) -> str:
        return format_number(self.val, self.unit)

    def is_int(self) -> bool:
        """Whether the value is a whole number (``3.0`` is; ``INF`` and ``NaN`` are not)."""
        return math.isfinite(self.val) and self.val.is_integer()


class Ref(
    msgspec.Struct,
    frozen=True,
    eq=False,
    repr_omit_defaults=True,
    omit_defaults=True,
    tag="ref",
    tag_field="_kind",
):
    """A reference to an entity: an opaque ``id`` and an optional display name.

    Two Refs are equal when their ids are; the display name is only a label.

    >>> Ref("site-1", "HQ") == Ref("site-1")
    True
    >>> Ref("site-1").dis is None
    True
    """

    id: str = msgspec.field(name="val")
    dis: str | None = None

    def __post_init__(self) -> None:
        if type(self.id) is not str or not _REF_RE.fullmatch(self.id):
            raise InvalidValueError(f"invalid Ref id {self.id!r}")
        if self.dis is not None and type(self.dis) is not str:
            raise InvalidValueError(f"Ref dis must be a str, not {self.dis!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Ref:
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(("Ref", self.id))

    def __ne__(self, other: object) -> bool:
        # msgspec Structs with eq=False compare by identity for !=; follow __eq__.
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __str__(self) -> str:
        return "@" + self.id


class Symbol(msgspec.Struct, frozen=True, tag="symbol", tag_field="_kind"):
    """The name of a def, such as ``^hot-water`` or ``^lib:phIoT``.

    >>> Symbol("hot-water")
    Symbol(val='hot-water')
    """

    val: str

    def __post_init__(self) -> None:
        if type(self.val) is not str or not _REF_RE.fullmatch(self.val):
            raise InvalidValueError(f"invalid Symbol {self.val!r}")

    def __str__(self) -> str:
        return "^" + self.val


class Uri(msgspec.Struct, frozen=True, tag="uri", tag_field="_kind"):
    """A URI, kept as the text it was given.

    >>> Uri("http://project-haystack.org/").val
    'http://project-haystack.org/'
    """

    val: str

    def __post_init__(self) -> None:
        if type(self.val) is not str:
            raise InvalidValueError(f"Uri value must be a str, not {self.val!r}")

    def __str__(self) -> str:
        return self.val


class XStr(msgspec.Struct, frozen=True, tag="xstr", tag_field="_kind"):
    """A vendor value carried as a type name and a string, such as ``Color("red")``.

    >>> XStr("Color", "red").type
    'Color'
    """

    type: str
    val: str

    def __post_init__(self) -> None:
        if type(self.type) is not str or not _XSTR_TYPE_RE.fullmatch(self.type):
            raise InvalidValueError(f"invalid XStr type name {self.type!r}")
        if type(self.val) is not str:
            raise InvalidValueError(f"XStr value must be a str, not {self.val!r}")


class Coord(msgspec.Struct, frozen=True, tag="coord", tag_field="_kind"):
    """A latitude and longitude in decimal degrees, range-checked.

    >>> Coord(37.55, -77.45)
    Coord(lat=37.55, lng=-77.45)
    """

    lat: float
    lng: float

    def __post_init__(self) -> None:
        for name, val, bound in (("lat", self.lat, 90.0), ("lng", self.lng, 180.0)):
            if isinstance(val, bool) or not isinstance(val, int | float):
                raise InvalidValueError(f"Coord {name} must be a number, not {val!r}")
            if not -bound <= val <= bound:
                raise InvalidValueError(f"Coord {name} {val!r} is outside ±{bound:g}")
            if type(val) is not float:
                msgspec.structs.force_setattr(self, name, float(val))
