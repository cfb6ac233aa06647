"""hisRead ranges (the Ops chapter), and dateTimes from ISO text and a zone name.

Both are for clients as much as for servers: a client that wants to know which span a
range names, or to build the dateTimes of one, needs no server.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Final

from projecthaystack.kinds import UTC, DecodeError, tz_from_name

from ._limits import Limits
from ._text import make_datetime
from ._zinc_read import decode_value

__all__ = ["parse_datetime", "parse_range"]

# Two dateTimes with their zones fit; a range comes from clients, so it has a bound.
_MAX_LENGTH: Final = 128
_LIMITS: Final = Limits(max_size=_MAX_LENGTH, max_depth=1)


def parse_datetime(text: str, tz: str | None = None) -> _dt.datetime:
    """A dateTime from ISO 8601 text with an offset, in the Haystack zone ``tz``.

    The offset fixes the instant; ``tz`` (a Haystack name such as ``New_York``, UTC when
    omitted) gives the zone it is shown in.  This is how every Haystack format builds a
    dateTime (Zinc's ``2020-07-17T16:55:42-04:00 New_York``, JSON's ``val`` and ``tz``).

    >>> parse_datetime("2020-07-17T16:55:42.977-04:00", "New_York").isoformat()
    '2020-07-17T16:55:42.977000-04:00'
    >>> parse_datetime("2020-07-17T20:55:42Z", "Chicago").isoformat()
    '2020-07-17T15:55:42-05:00'
    >>> parse_datetime("2020-07-17T20:55:42")  # no offset: which instant?
    Traceback (most recent call last):
    ...
    projecthaystack.kinds.DecodeError: invalid dateTime '2020-07-17T20:55:42': expected ...

    Raises :class:`~projecthaystack.kinds.DecodeError` for text without an offset or in
    another ISO form (compact, week dates, a space for ``T``), an unknown zone, or an
    instant whose date in that zone is before year 1 or after 9999.
    """
    if not isinstance(text, str):
        raise TypeError(f"a dateTime's text is a str, not {type(text).__name__}")
    try:
        return make_datetime(text, tz)
    except ValueError as exc:  # InvalidValueError (the zone) is one too
        raise DecodeError(str(exc)) from None


def _midnight(day: _dt.date, tz: _dt.tzinfo) -> _dt.datetime:
    return _dt.datetime.combine(day, _dt.time(0), tzinfo=tz)


def parse_range(
    text: str, tz: str | _dt.tzinfo, now: _dt.datetime | None = None
) -> tuple[_dt.datetime, _dt.datetime | None]:
    """The ``[start, end)`` span of a hisRead range, in the Haystack zone ``tz``.

    The forms are the Ops chapter's: ``today``, ``yesterday``, a date, two dates
    (both days included), two dateTimes, or one dateTime (the end is ``None``: open).
    Dates are whole days in ``tz``; dateTimes keep their instant and are shown in ``tz``.
    A range quoted as a Zinc Str (as pyhaystack sends it) reads the same.

    ``tz`` is a Haystack zone name such as ``"New_York"`` (a ``tzinfo`` such as
    :func:`~projecthaystack.kinds.tz_from_name` gives is accepted too); ``now``, an aware
    dateTime, decides ``today`` and ``yesterday`` (default: the clock).

    >>> import datetime as dt
    >>> start, end = parse_range("2012-10-01", "New_York")
    >>> start.isoformat(), end.isoformat()
    ('2012-10-01T00:00:00-04:00', '2012-10-02T00:00:00-04:00')
    >>> noon = dt.datetime(2026, 3, 2, 17, tzinfo=dt.UTC)
    >>> [t.isoformat() for t in parse_range("yesterday", "Chicago", noon)]
    ['2026-03-01T00:00:00-06:00', '2026-03-02T00:00:00-06:00']
    >>> start, end = parse_range("2026-03-02T11:00:00Z UTC", "New_York")
    >>> start.isoformat(), end
    ('2026-03-02T06:00:00-05:00', None)
    >>> parse_range("9999-12-31", "New_York")
    Traceback (most recent call last):
    ...
    projecthaystack.kinds.DecodeError: invalid range '9999-12-31': it reaches outside the ...

    Raises :class:`~projecthaystack.kinds.DecodeError` (a ``ValueError``) for text that is
    none of the forms, longer than 128 characters, mixes dates and dateTimes,
    ends before it starts, or reaches outside the years 1 to 9999 in UTC or in ``tz``;
    :class:`~projecthaystack.kinds.InvalidValueError` for an unknown zone name.
    """
    if not isinstance(text, str):
        raise TypeError(f"a range is a str, not {type(text).__name__}")
    zone = tz_from_name(tz) if isinstance(tz, str) else tz
    if len(text) > _MAX_LENGTH:
        raise DecodeError(f"range is longer than {_MAX_LENGTH} characters")
    if now is None:
        now = _dt.datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("'now' must be timezone-aware")
    word = text.strip()
    if len(word) >= 2 and word[0] == word[-1] == '"':
        # pyhaystack's his_read_frame sends the range as a quoted Zinc Str: unwrap it.
        inner = _literal(word, text)
        word = inner.strip() if isinstance(inner, str) else word
    try:
        start, end = _span(word, text, zone, now)
        # A span is only usable if its ends are instants: in UTC as in the zone.
        start.astimezone(UTC)
        if end is not None:
            end.astimezone(UTC)
    except OverflowError:
        raise DecodeError(
            f"invalid range {text!r}: it reaches outside the years 1 to 9999"
        ) from None
    if end is not None and end <= start:
        raise DecodeError(f"invalid range {text!r}: the end is not after the start")
    return start, end


def _span(
    word: str, text: str, zone: _dt.tzinfo, now: _dt.datetime
) -> tuple[_dt.datetime, _dt.datetime | None]:
    one_day = _dt.timedelta(days=1)
    if word in ("today", "yesterday"):
        today = now.astimezone(zone).date()
        if word == "today":
            return _midnight(today, zone), _midnight(today + one_day, zone)
        return _midnight(today - one_day, zone), _midnight(today, zone)
    parts = [_literal(p, text) for p in word.split(",")] if word else []
    if len(parts) not in (1, 2):
        raise DecodeError(f"invalid range {text!r}")
    kinds = {type(p) for p in parts}
    if kinds == {_dt.date}:
        return _midnight(parts[0], zone), _midnight(parts[-1] + one_day, zone)
    if kinds == {_dt.datetime}:
        end = parts[1].astimezone(zone) if len(parts) == 2 else None
        return parts[0].astimezone(zone), end
    raise DecodeError(f"invalid range {text!r}: expected dates or dateTimes, not a mix")


def _literal(part: str, text: str) -> Any:
    try:
        return decode_value(part.strip(), limits=_LIMITS)
    except DecodeError as exc:
        raise DecodeError(
            f"invalid range {text!r}: not a Zinc date or dateTime ({exc.reason})"
        ) from None
