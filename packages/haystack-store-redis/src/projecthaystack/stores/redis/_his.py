"""History packed in chunks: 16 bytes a sample, one string per point and day.

A sample is a little-endian ``uint64`` and a ``float64``.  The integer holds the time in
microseconds since 1970 (offset by 2**54, so times from about 1400 to 2540 fit) in its
low 56 bits and the sample's kind in its top byte:

=====  =========================================================================
kind   value
=====  =========================================================================
0      a Number in the point's unit (the float is its value)
1      ``True``
2      ``False``
3      anything else (a Str, a Number in another unit, a time in another zone):
       kept whole as JSON v4 in the point's odd-sample hash, under its time
=====  =========================================================================

The point's zone and unit are kept once (``{prefix}:hm``).  Writes only append to a
day's string (``APPEND`` is atomic and cheap); a read sorts a chunk that is out of order
and keeps the last sample written at each time, and then writes the tidy chunk back if
nothing was appended meanwhile.  Reads fetch only the days the range touches.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import FrozenDict, Number, tz_from_name, tz_name

__all__ = ["DAY_US", "Meta", "pack", "unpack", "us_of"]

DAY_US = 86_400_000_000
OFFSET = 1 << 54
_TIME_MASK = (1 << 56) - 1
_REC = struct.Struct("<Qd")
_NUMBER, _TRUE, _FALSE, _ODD = 0, 1, 2, 3
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SEP = "\x1f"


class Meta:
    """A point's zone and unit, fixed by its first write."""

    __slots__ = ("text", "tz", "unit", "zone")

    def __init__(self, zone: str, unit: str | None) -> None:
        self.zone = zone
        self.unit = unit
        self.tz: dt.tzinfo = dt.UTC if zone == "UTC" else tz_from_name(zone)
        self.text = zone + _SEP + (unit if unit is not None else "")

    @classmethod
    def parse(cls, text: str) -> Meta:
        zone, _, unit = text.partition(_SEP)
        return cls(zone, unit or None)

    @classmethod
    def first(cls, samples: Sequence[tuple[dt.datetime, Any]]) -> Meta:
        """The meta a point gets from its first samples."""
        ts, _ = samples[0]
        unit = next((v.unit for _, v in samples if type(v) is Number), None)
        return cls(_zone(ts.tzinfo), unit)


def _zone(tz: dt.tzinfo | None) -> str:
    if tz is None:
        raise ValueError("history timestamps must have a timezone")
    if tz is dt.UTC:
        return "UTC"
    return tz_name(tz)


def us_of(ts: dt.datetime) -> int:
    """Microseconds since 1970 of an aware datetime (exact, no float rounding)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def pack(
    meta: Meta, samples: Iterable[tuple[dt.datetime, Any]]
) -> tuple[dict[int, bytearray], list[tuple[int, bytes]]]:
    """Samples as packed bytes per day, and the odd ones as (time, JSON)."""
    chunks: dict[int, bytearray] = {}
    odd: list[tuple[int, bytes]] = []
    tz, unit = meta.tz, meta.unit
    rec = _REC.pack
    for ts, val in samples:
        if type(ts) is not dt.datetime or ts.tzinfo is None:
            raise ValueError(f"history timestamps must be timezone-aware datetimes: {ts!r}")
        us = us_of(ts)
        key = us + OFFSET
        if not 0 <= key <= _TIME_MASK >> 1:
            raise ValueError(f"history timestamp out of range: {ts.isoformat()}")
        vt = type(val)
        if ts.tzinfo is not tz and _zone(ts.tzinfo) != meta.zone:
            kind, num = _ODD, 0.0
        elif vt is Number and val.unit == unit:
            kind, num = _NUMBER, val.val
        elif vt is bool:
            kind, num = (_TRUE if val else _FALSE), 0.0
        else:
            kind, num = _ODD, 0.0
        if kind == _ODD:
            odd.append((us, hjson.encode_value_bytes(FrozenDict(ts=ts, val=val))))
        day = us // DAY_US
        buf = chunks.get(day)
        if buf is None:
            buf = chunks[day] = bytearray()
        buf += rec((kind << 56) | key, num)
    return chunks, odd


def tidy(data: bytes) -> tuple[bytes, bool]:
    """A chunk sorted by time with one sample per time (the last written), and whether
    that changed anything."""
    recs = list(_REC.iter_unpack(data))
    last = -1
    ordered = True
    for key, _ in recs:
        t = key & _TIME_MASK
        if t <= last:
            ordered = False
            break
        last = t
    if ordered:
        return data, False
    latest: dict[int, tuple[int, float]] = {}
    for rec in recs:
        latest[rec[0] & _TIME_MASK] = rec
    return b"".join(_REC.pack(*latest[t]) for t in sorted(latest)), True


def unpack(
    meta: Meta,
    data: bytes,
    lo: int | None,
    hi: int | None,
    tz: dt.tzinfo | None,
    odd: dict[int, FrozenDict],
) -> list[FrozenDict]:
    """Rows ``{ts, val}`` of a tidy chunk with ``lo <= time < hi`` (microseconds)."""
    out: list[FrozenDict] = []
    zone = meta.tz if tz is None else tz
    unit = meta.unit
    fromts = dt.datetime.fromtimestamp
    lo_key = -1 if lo is None else lo + OFFSET
    hi_key = _TIME_MASK + 1 if hi is None else hi + OFFSET
    append = out.append
    for key, num in _REC.iter_unpack(data):
        t = key & _TIME_MASK
        if t < lo_key or t >= hi_key:
            continue
        kind = key >> 56
        if kind == _ODD:
            row = odd[t - OFFSET]
            if tz is not None and row["ts"].tzinfo is not tz:
                row = FrozenDict(ts=row["ts"].astimezone(tz), val=row["val"])
            append(row)
            continue
        us = t - OFFSET
        ts = fromts(us // 1_000_000, zone).replace(microsecond=us % 1_000_000)
        if kind == _NUMBER:
            val: Any = Number(num, unit)
        else:
            val = kind == _TRUE
        append(FrozenDict(ts=ts, val=val))
    return out


def odd_times(data: bytes) -> list[int]:
    """The times (microseconds) of a chunk's odd samples."""
    return [(key & _TIME_MASK) - OFFSET for key, _ in _REC.iter_unpack(data) if key >> 56 == _ODD]
