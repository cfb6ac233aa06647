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
3      anything else (a Str, a Number in another unit, ...): its value is kept as
       JSON v4 in the day's odd-sample hash, under its time
=====  =========================================================================

The point's zone and unit are kept once (``{prefix}:hm``, from its first write).  Writes
only append to a day's string (``APPEND`` is atomic and cheap); a read sorts a chunk that
is out of order and keeps the last sample written at each time, and then writes the tidy
chunk back if nothing was appended meanwhile.  Reads fetch only the days the range touches.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from typing import Any

from projecthaystack.kinds import Number, tz_name
from projecthaystack.server import HisChunk
from projecthaystack.server.storeforms import decode_value, encode_value, ts_key

__all__ = ["DAY_US", "Meta", "odd_times", "pack", "tidy", "unpack"]

DAY_US = 86_400_000_000
OFFSET = 1 << 54
_TIME_MASK = (1 << 56) - 1
_REC = struct.Struct("<Qd")
_NUMBER, _TRUE, _FALSE, _ODD = 0, 1, 2, 3
_SEP = "\x1f"


class Meta:
    """A point's zone and unit, fixed by its first write (``zone<US>unit``)."""

    __slots__ = ("text", "unit", "zone")

    def __init__(self, zone: str, unit: str | None) -> None:
        self.zone = zone
        self.unit = unit
        self.text = zone + _SEP + (unit if unit is not None else "")

    @classmethod
    def parse(cls, text: str) -> Meta:
        zone, _, unit = text.partition(_SEP)
        return cls(zone, unit or None)

    @classmethod
    def first(cls, chunk: HisChunk) -> Meta:
        """The meta a point gets from its first samples."""
        tz = chunk.ts[0].tzinfo
        zone = "UTC" if tz is dt.UTC or tz is None else tz_name(tz)
        unit = next((v.unit for v in chunk.val if type(v) is Number), None)
        return cls(zone, unit)


def pack(meta: Meta, chunk: HisChunk) -> tuple[dict[int, bytearray], list[tuple[int, int, str]]]:
    """Samples as packed bytes per day, and the odd ones as (day, time, JSON)."""
    chunks: dict[int, bytearray] = {}
    odd: list[tuple[int, int, str]] = []
    unit = meta.unit
    rec = _REC.pack
    for ts, val in zip(chunk.ts, chunk.val, strict=True):
        if type(ts) is not dt.datetime or ts.tzinfo is None:
            raise ValueError(f"history timestamps must be timezone-aware datetimes: {ts!r}")
        us = ts_key(ts)
        key = us + OFFSET
        if not 0 <= key <= _TIME_MASK >> 1:
            raise ValueError(f"history timestamp out of range: {ts.isoformat()}")
        vt = type(val)
        day = us // DAY_US
        if vt is Number and val.unit == unit:
            kind, num = _NUMBER, val.val
        elif vt is bool:
            kind, num = (_TRUE if val else _FALSE), 0.0
        else:
            kind, num = _ODD, 0.0
            odd.append((day, us, encode_value(val)))
        buf = chunks.get(day)
        if buf is None:
            buf = chunks[day] = bytearray()
        buf += rec((kind << 56) | key, num)
    return chunks, odd


def tidy(data: bytes) -> tuple[bytes, bool]:
    """A chunk sorted by time with one sample per time (the last written), and whether
    that changed anything."""
    last = -1
    for key, _ in _REC.iter_unpack(data):
        t = key & _TIME_MASK
        if t <= last:
            break
        last = t
    else:
        return data, False
    latest: dict[int, tuple[int, float]] = {}
    for rec in _REC.iter_unpack(data):
        latest[rec[0] & _TIME_MASK] = rec
    return b"".join(_REC.pack(*latest[t]) for t in sorted(latest)), True


def unpack(
    meta: Meta,
    data: bytes,
    lo: int | None,
    hi: int | None,
    tz: dt.tzinfo,
    odd: Mapping[int, bytes],
    limit: int | None,
) -> HisChunk:
    """The samples of a tidy chunk with ``lo <= time < hi`` (microseconds), at most
    ``limit``, with timestamps in ``tz``."""
    ts: list[dt.datetime] = []
    vals: list[Any] = []
    unit = meta.unit
    fromts = dt.datetime.fromtimestamp
    lo_key = -1 if lo is None else lo + OFFSET
    hi_key = _TIME_MASK + 1 if hi is None else hi + OFFSET
    add_ts, add_val = ts.append, vals.append
    for key, num in _REC.iter_unpack(data):
        t = key & _TIME_MASK
        if t < lo_key or t >= hi_key:
            continue
        if limit is not None and len(ts) >= limit:
            break
        us = t - OFFSET
        kind = key >> 56
        add_ts(fromts(us // 1_000_000, tz).replace(microsecond=us % 1_000_000))
        if kind == _NUMBER:
            add_val(Number(num, unit))
        elif kind == _ODD:
            add_val(decode_value(odd[us]))
        else:
            add_val(kind == _TRUE)
    return HisChunk(ts, vals)


def odd_times(data: bytes) -> list[int]:
    """The times (microseconds) of a chunk's odd samples."""
    return [(key & _TIME_MASK) - OFFSET for key, _ in _REC.iter_unpack(data) if key >> 56 == _ODD]
