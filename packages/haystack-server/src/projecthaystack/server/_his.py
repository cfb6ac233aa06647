"""History helpers: the hisRead range forms and the hisWrite rules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from projecthaystack.codecs import zinc
from projecthaystack.kinds import HaystackError, Number, kind_of

from ._errors import OpError

__all__ = ["check_sample", "check_value", "parse_range"]

_MAX_RANGE_TEXT = 128


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz)


def _value(text: str) -> Any:
    try:
        return zinc.decode_value(text.strip())
    except HaystackError:
        raise OpError(f"invalid range {text.strip()!r}: not a Zinc date or dateTime") from None


def parse_range(
    text: str, tz: ZoneInfo, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    """The ``[start, end)`` span of a hisRead range in the point's timezone ``tz``; the
    end is ``None`` for the open ``{dateTime}`` form.

    >>> import datetime as dt
    >>> from projecthaystack.kinds import tz_from_name
    >>> ny = tz_from_name("New_York")
    >>> start, end = parse_range("2012-10-01", ny, dt.datetime.now(dt.UTC))
    >>> start.isoformat(), end.isoformat()
    ('2012-10-01T00:00:00-04:00', '2012-10-02T00:00:00-04:00')
    """
    if len(text) > _MAX_RANGE_TEXT:
        raise OpError(f"range is longer than {_MAX_RANGE_TEXT} characters")
    word = text.strip()
    if len(word) >= 2 and word[0] == word[-1] == '"':
        # pyhaystack's his_read_frame sends the range as a quoted Zinc Str: unwrap it.
        inner = _value(word)
        word = inner.strip() if isinstance(inner, str) else word
    today = now.astimezone(tz).date()
    if word == "today":
        return _midnight(today, tz), _midnight(today + dt.timedelta(days=1), tz)
    if word == "yesterday":
        return _midnight(today - dt.timedelta(days=1), tz), _midnight(today, tz)
    parts = [_value(p) for p in word.split(",")] if word else []
    if len(parts) not in (1, 2):
        raise OpError(f"invalid range {text!r}")
    kinds = {type(p) for p in parts}
    if kinds == {dt.date}:
        start = _midnight(parts[0], tz)
        end: dt.datetime | None = _midnight(parts[-1] + dt.timedelta(days=1), tz)
    elif kinds == {dt.datetime}:
        start = parts[0].astimezone(tz)
        end = parts[1].astimezone(tz) if len(parts) == 2 else None
    else:
        raise OpError(f"invalid range {text!r}: expected dates or dateTimes, not a mix")
    if end is not None and end <= start:
        raise OpError(f"invalid range {text!r}: the end is not after the start")
    return start, end


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
