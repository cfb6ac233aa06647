"""Haystack timezone names and IANA zones, both ways.

Haystack names a zone by the last part of its IANA id (``New_York`` for
``America/New_York``).  The ``GMT+5`` style names are IANA's ``Etc/GMT+5`` zones and
share their inverted sign: ``GMT+5`` is five hours *behind* UTC.  The few zones that
sit outside any region (``PST8PDT``, ``CET``, ``EST``, ...) keep their whole id.
"""

from __future__ import annotations

import datetime as _dt
import functools
import zoneinfo
from typing import Final

from ._errors import InvalidValueError

__all__ = ["UTC", "haystack_tz_names", "tz_from_name", "tz_name"]

# Regions whose cities make up the Haystack timezone database; others (US/, posix/, ...)
# are aliases that would shadow a city with a stale rule set.
_REGIONS: Final = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
)
# Zones of the Haystack timezone database (the tzdata source files it is built from)
# that belong to no region.  The other top-level ids (Japan, GB, US/...) are aliases.
_TOP_LEVEL: Final = (
    "CET",
    "CST6CDT",
    "EET",
    "EST",
    "EST5EDT",
    "HST",
    "MET",
    "MST",
    "MST7MDT",
    "PST8PDT",
    "WET",
)
_UTC_KEYS: Final = frozenset({"Etc/UTC", "UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


@functools.cache
def _city_map() -> dict[str, str]:
    cities: dict[str, str] = {}
    # Sorted so the choice between two ids for one city is the same on every machine;
    # deeper ids (America/Argentina/Buenos_Aires) are the canonical ones, links are shallow.
    for key in sorted(zoneinfo.available_timezones(), key=lambda k: (-k.count("/"), k)):
        region, _, rest = key.partition("/")
        if region not in _REGIONS or not rest:
            continue
        cities.setdefault(rest.rsplit("/", 1)[-1], key)
    available = zoneinfo.available_timezones()
    for key in _TOP_LEVEL:
        if key in available:  # every tzdata since 1993 has them; a trimmed one may not
            cities.setdefault(key, key)
    cities["UTC"] = "Etc/UTC"
    cities["GMT"] = "Etc/GMT"
    return cities


UTC: Final = zoneinfo.ZoneInfo("Etc/UTC")
"""The ``UTC`` zone as Haystack names it."""


@functools.cache
def tz_from_name(name: str) -> zoneinfo.ZoneInfo:
    """The zone for a Haystack timezone name.

    Accepts every name of the Haystack timezone database: a city (``New_York``), a
    ``GMT±N`` zone, a zone outside any region (``PST8PDT``); and, for tolerance, a full
    IANA id of a region (``America/New_York``, ``Etc/GMT+5``).

    >>> tz_from_name("New_York").key
    'America/New_York'
    >>> tz_from_name("PST8PDT").key
    'PST8PDT'
    >>> tz_from_name("GMT+5").utcoffset(None)
    datetime.timedelta(days=-1, seconds=68400)
    """
    key = _city_map().get(name)
    if key is None:
        if "/" in name and name.partition("/")[0] in _REGIONS:
            key = name
        else:
            raise InvalidValueError(f"unknown timezone {name!r}")
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidValueError(f"unknown timezone {name!r}") from exc


def tz_name(tz: _dt.tzinfo | None) -> str:
    """The Haystack name of a ``tzinfo``.

    ``ZoneInfo`` zones give their city; ``datetime.timezone.utc`` gives ``UTC``; a fixed
    whole-hour offset gives the matching ``GMT±N`` zone (sign inverted, as in IANA).
    A zone whose name Haystack would not read back (an alias such as ``US/Eastern``)
    raises ``InvalidValueError``: use its canonical id (``America/New_York``).

    >>> tz_name(tz_from_name("Denver"))
    'Denver'
    >>> import datetime
    >>> tz_name(datetime.timezone(datetime.timedelta(hours=3)))
    'GMT-3'
    """
    if isinstance(tz, zoneinfo.ZoneInfo):
        key = tz.key
        if key in _UTC_KEYS:
            return "UTC"
        city = key.rsplit("/", 1)[-1] if key else ""
        if city in _city_map():
            return city
        raise InvalidValueError(
            f"zone {key!r} has no Haystack timezone name; use its canonical IANA id"
        )
    if isinstance(tz, _dt.timezone):
        offset = tz.utcoffset(None)
        if not offset:
            return "UTC"
        hours, rem = divmod(offset.total_seconds(), 3600)
        if rem == 0 and -14 <= hours <= 12:
            return f"GMT{-int(hours):+d}"
        raise InvalidValueError(f"offset {offset} has no Haystack timezone")
    raise InvalidValueError(f"a Haystack DateTime needs a timezone, got {tz!r}")


@functools.cache
def haystack_tz_names() -> frozenset[str]:
    """Every Haystack timezone name this platform's zone database knows."""
    return frozenset(_city_map())
