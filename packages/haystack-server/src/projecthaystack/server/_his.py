"""History helpers: the hisWrite rules (the hisRead range forms are
:func:`projecthaystack.codecs.parse_range`)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from projecthaystack.kinds import Number, kind_of

from ._errors import OpError

__all__ = ["check_sample", "check_value"]

_KINDS = {"Number", "Bool", "Str"}


def check_sample(point: dict[str, Any], tz: ZoneInfo, ts: Any, val: Any) -> None:
    """Refuse a sample the spec forbids: a timestamp outside the point's timezone, a value
    of the wrong kind, a Number in another unit.  Nothing is ever converted."""
    pid = point["id"].id
    if type(ts) is not dt.datetime or ts.tzinfo is None:
        raise OpError(f"@{pid}: 'ts' must be a DateTime, got {kind_of(ts)}")
    if getattr(ts.tzinfo, "key", None) != tz.key:
        raise OpError(
            f"@{pid}: timestamp {ts.isoformat()} is not in the point's timezone "
            f"{point.get('tz')} (no timezone conversion)"
        )
    if val is None:
        raise OpError(f"@{pid}: a sample needs a value")
    check_value(point, val)


def check_value(point: dict[str, Any], val: Any) -> None:
    """Refuse a value whose kind differs from the point's ``kind`` tag, or a Number in
    a unit other than the point's ``unit`` (unitless is accepted)."""
    pid = point["id"].id
    expected = point.get("kind")
    actual = kind_of(val)
    if isinstance(expected, str) and expected in _KINDS and actual != expected.lower():
        raise OpError(f"@{pid}: value {val!r} is a {actual}, the point's kind is {expected}")
    if isinstance(val, Number) and val.unit is not None and val.unit != point.get("unit"):
        raise OpError(
            f"@{pid}: unit {val.unit!r} differs from the point's unit "
            f"{point.get('unit')!r} (no unit conversion)"
        )
