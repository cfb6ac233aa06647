"""Text, date and time helpers that every format borrows.

Reading input (``bytes`` or ``str``), building a dateTime from ISO text and a zone name,
and writing dateTimes and times the way every Haystack format writes them.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Final

from projecthaystack.kinds import (
    UTC,
    DecodeError,
    EncodeError,
    InvalidValueError,
    tz_from_name,
    tz_name,
)

from ._limits import Limits

__all__ = [
    "ISO_DATETIME",
    "datetime_unchecked",
    "format_datetime",
    "format_time",
    "make_datetime",
    "read_text",
]

# The kinds constant, not tz_from_name("UTC"): that would scan the whole zone database
# (some 600 files) at import.
_UTC_ZONE: Final = UTC


def read_text(data: bytes | str | bytearray | memoryview, limits: Limits) -> str:
    """The input as ``str``: bytes are decoded as UTF-8; a byte order mark is dropped."""
    if isinstance(data, str):
        limits.check_size(len(data))
        return data[1:] if data.startswith("\ufeff") else data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes or str, not {type(data).__name__}")
    limits.check_size(len(data))
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"input is not UTF-8: {exc.reason} at byte {exc.start}") from None
    return text[1:] if text.startswith("\ufeff") else text


# The one ISO 8601 form Haystack writes: an offset always, seconds of the offset only in
# the local mean times of old dates.
ISO_DATETIME: Final = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d(?::\d\d)?)"
)


def make_datetime(text: str, tz: str | None) -> _dt.datetime:
    """A ``datetime`` from ISO 8601 text with offset and a Haystack timezone name.

    The instant is the one the offset gives; the zone is the named one (``UTC`` when
    the name is missing, as Zinc allows after ``Z``).  Text without an offset, or in
    another ISO form (compact, week dates, a space for ``T``), is a ``ValueError``:
    reading it in the host's zone would give each machine its own instant.

    >>> make_datetime("2020-07-17T16:55:42.977-04:00", "New_York").isoformat()
    '2020-07-17T16:55:42.977000-04:00'
    """
    if ISO_DATETIME.fullmatch(text) is None:
        raise ValueError(f"invalid dateTime {text!r}: expected ISO 8601 with an offset")
    return datetime_unchecked(text, tz)


def datetime_unchecked(text: str, tz: str | None) -> _dt.datetime:
    """:func:`make_datetime` on text a reader has already matched with its own pattern."""
    dt = _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] == "Z" else text)
    zone = tz_from_name(tz) if tz else _UTC_ZONE
    try:
        return dt.astimezone(zone)
    except OverflowError:  # the same instant's date in that zone is before 1 or after 9999
        raise ValueError(
            f"dateTime {text} in {tz or 'UTC'} is outside the years 1 to 9999"
        ) from None


def format_time(t: _dt.time) -> str:
    """``hh:mm:ss`` with milliseconds when they fit, else microseconds."""
    if t.microsecond % 1000 == 0:
        return t.isoformat("milliseconds" if t.microsecond else "seconds")
    return t.isoformat("microseconds")


def format_datetime(dt: _dt.datetime) -> tuple[str, str]:
    """The ISO 8601 text and the Haystack timezone name of an aware ``datetime``."""
    if dt.tzinfo is None:
        raise EncodeError(f"a DateTime needs a timezone: {dt!r}")
    try:
        name = tz_name(dt.tzinfo)
    except InvalidValueError as exc:
        raise EncodeError(str(exc)) from None
    spec = (
        "seconds"
        if not dt.microsecond
        else ("milliseconds" if dt.microsecond % 1000 == 0 else "microseconds")
    )
    iso = dt.isoformat(timespec=spec)
    if iso.endswith("+00:00") and name == "UTC":
        iso = iso[:-6] + "Z"
    return iso, name
