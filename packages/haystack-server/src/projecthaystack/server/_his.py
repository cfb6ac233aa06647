"""History helpers: the hisWrite rules (the hisRead range forms are
:func:`projecthaystack.codecs.parse_range`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from projecthaystack.kinds import Number, kind_of

from ._errors import OpError
from ._store import HisChunk
from .storeforms import ts_key

__all__ = ["KeyedChunk", "check_sample", "check_samples", "check_value", "chunk_of"]

_KINDS = {"Number", "Bool", "Str"}
_TYPES: dict[str, type] = {"Number": Number, "Bool": bool, "Str": str}


@dataclass(frozen=True, slots=True, eq=False)
class KeyedChunk(HisChunk):
    """A :class:`HisChunk` in ascending order of instants, with the instants' ``ts_key``
    already made (the server makes them to find duplicates): a store may use them
    rather than make them again.  Any store can take it as a plain chunk."""

    keys: Sequence[int] = ()


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


def _fits(point: dict[str, Any], tz: ZoneInfo, ts: Sequence[Any], vals: Sequence[Any]) -> bool:
    """Whether a whole column of samples surely passes :func:`check_sample`, judged on
    the sets of types, zones and units in it rather than sample by sample."""
    if set(map(type, ts)) != {dt.datetime}:
        return False
    key = tz.key
    if any(getattr(z, "key", None) != key for z in {t.tzinfo for t in ts}):
        return False
    kinds = set(map(type, vals))
    if type(None) in kinds:
        return False
    expected = point.get("kind")
    if isinstance(expected, str) and expected in _KINDS and kinds != {_TYPES[expected]}:
        return False
    if any(issubclass(k, Number) for k in kinds):
        units = {v.unit for v in vals if isinstance(v, Number)}
        units.discard(None)
        if units and units != {point.get("unit")}:
            return False
    return True


def check_samples(
    point: dict[str, Any], tz: ZoneInfo, ts: Sequence[Any], vals: Sequence[Any]
) -> None:
    """:func:`check_sample` for a column of samples: checked per batch where the kinds,
    zones and units are uniform, and sample by sample (to name the first bad one) where
    they are not."""
    if not _fits(point, tz, ts, vals):
        for t, v in zip(ts, vals, strict=True):
            check_sample(point, tz, t, v)


def chunk_of(ts: Sequence[dt.datetime], vals: Sequence[Any]) -> KeyedChunk:
    """Checked samples as a chunk in order of instants; of samples at one instant the
    last wins."""
    keys = list(map(ts_key, ts))
    if all(a < b for a, b in pairwise(keys)):
        return KeyedChunk(tuple(ts), tuple(vals), keys)
    latest = dict(zip(keys, zip(ts, vals, strict=True), strict=True))
    order = sorted(latest)
    return KeyedChunk(tuple(latest[k][0] for k in order), tuple(latest[k][1] for k in order), order)
