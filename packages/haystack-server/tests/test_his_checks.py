"""hisWrite's checks, per batch: a column passes whole when its kinds, zones and units
are uniform, and otherwise sample by sample, so the error names the first bad one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from projecthaystack.kinds import Number, Ref, tz_from_name
from projecthaystack.server._errors import OpError
from projecthaystack.server._his import check_samples

NY = tz_from_name("New_York")
CHI = tz_from_name("Chicago")
START = dt.datetime(2026, 3, 2, tzinfo=NY)
POINT: dict[str, Any] = {"id": Ref("p"), "kind": "Number", "unit": "kW", "tz": "New_York"}


def _ts(n: int, tz: dt.tzinfo = NY) -> list[dt.datetime]:
    return [(START + dt.timedelta(minutes=i)).astimezone(tz) for i in range(n)]


def test_a_uniform_column_passes() -> None:
    check_samples(POINT, NY, _ts(1000), [Number(i, "kW") for i in range(1000)])


def test_unitless_numbers_pass_beside_the_points_unit() -> None:
    vals = [Number(i, "kW") if i % 2 else Number(i) for i in range(10)]
    check_samples(POINT, NY, _ts(10), vals)


def test_a_point_without_kind_takes_any_kind_but_no_other_unit() -> None:
    point = {"id": Ref("p"), "unit": "kW", "tz": "New_York"}
    check_samples(point, NY, _ts(3), [Number(1, "kW"), True, "text"])
    with pytest.raises(OpError, match="unit 'W' differs"):
        check_samples(point, NY, _ts(3), [True, Number(1, "W"), "text"])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Number(1, "W"), "@p: unit 'W' differs from the point's unit 'kW'"),
        (True, "is a bool, the point's kind is Number"),
        (None, "a sample needs a value"),
    ],
)
def test_the_first_bad_value_is_named(bad: Any, message: str) -> None:
    vals: list[Any] = [Number(i, "kW") for i in range(1000)]
    vals[637] = bad
    with pytest.raises(OpError, match=message):
        check_samples(POINT, NY, _ts(1000), vals)


def test_the_first_bad_timestamp_is_named() -> None:
    ts: list[Any] = _ts(100)
    ts[42] = ts[42].astimezone(CHI)
    with pytest.raises(OpError, match=rf"{ts[42].isoformat()} is not in the point's timezone"):
        check_samples(POINT, NY, ts, [Number(i, "kW") for i in range(100)])
    ts[42] = "yesterday"
    with pytest.raises(OpError, match="'ts' must be a DateTime, got str"):
        check_samples(POINT, NY, ts, [Number(i, "kW") for i in range(100)])
    ts[42] = dt.datetime(2026, 3, 2)
    with pytest.raises(OpError, match="'ts' must be a DateTime"):
        check_samples(POINT, NY, ts, [Number(i, "kW") for i in range(100)])
