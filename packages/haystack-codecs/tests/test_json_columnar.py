"""The JSON v4 reader's columnar path for big uniform grids (history: a hisWrite body)
gives exactly what the general path gives, value for value, or the same error.

Each example is a history-like grid (a ``ts`` column of dateTimes and columns of
numbers) with nulls and left-out cells (which the columnar path takes), and now and then an odd
cell: a bad or missing zone, a dateTime without an offset or in another ISO form, NaN
and INF, a unit that changes or is invalid, an extra cell, keys in another order.  It is read once with the columnar path on from the first row
and once with it off; clean grids must also take the columnar path.
"""

from __future__ import annotations

import datetime as dt
import json as stdjson
import math
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projecthaystack.codecs import DEFAULT_LIMITS, _json4_read, json
from projecthaystack.codecs._impl import compiled_modules
from projecthaystack.codecs._json4_read import V4Reader, load
from projecthaystack.kinds import DecodeError, FrozenDict, Grid, Number, tz_from_name

ZONES = ["New_York", "London", "Taipei", "UTC", "GMT+5", "Kolkata"]
# Instants around New York's fall-back hour (fold) and spring gap, and plain ones.
BASES = [
    dt.datetime(2026, 11, 1, 5, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 8, 6, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 5, 0, tzinfo=dt.UTC),
    dt.datetime(1850, 6, 1, 12, 0, tzinfo=dt.UTC),  # local mean time: seconds in the offset
]

ODD_TS: list[Any] = [
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00", "tz": "New_York"},  # no offset
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00", "tz": "Nowhere"},
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00", "tz": 5},
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00", "tz": ""},
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00"},  # no tz: GMT
    {"_kind": "dateTime", "val": "2026-01-01T05:00:00Z", "tz": "UTC"},
    {"_kind": "dateTime", "val": "20260101T000000-0500", "tz": "New_York"},
    {"_kind": "dateTime", "val": "2026-01-01 00:00:00-05:00", "tz": "New_York"},
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00\n", "tz": "New_York"},
    {"_kind": "dateTime", "val": "٢٠٢٦-01-01T00:00:00-05:00", "tz": "New_York"},
    {"_kind": "dateTime", "val": "9999-12-31T23:00:00-05:00", "tz": "Taipei"},  # past 9999
    {"_kind": "dateTime", "val": 5, "tz": "New_York"},
    {"_kind": "dateTime", "tz": "New_York"},
    {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00", "tz": "New_York", "x": 1},
    {"_kind": "date", "val": "2026-01-01"},
    {"val": "2026-01-01T00:00:00-05:00"},  # no _kind: a nested dict
    "2026-01-01T00:00:00-05:00",
    None,
]
ODD_VAL: list[Any] = [
    {"_kind": "number", "val": "NaN"},
    {"_kind": "number", "val": "NaN", "unit": "°F"},
    {"_kind": "number", "val": "INF", "unit": "°F"},
    {"_kind": "number", "val": "-INF"},
    {"_kind": "number", "val": 1e308, "unit": "°F"},
    {"_kind": "number", "val": 10**400},
    {"_kind": "number", "val": True},
    {"_kind": "number", "val": 3, "unit": "kW"},
    {"_kind": "number", "val": 3.5, "unit": ""},
    {"_kind": "number", "val": 3.5, "unit": "bad unit"},
    {"_kind": "number", "val": 3.5, "unit": 7},
    {"_kind": "number", "val": 3.5, "unit": None},
    {"_kind": "number", "unit": "°F"},
    {"_kind": "marker"},
    {"_kind": "ref", "val": "p1"},
    {"_kind": "bogus"},
    "text",
    "\u0000",
    True,
    7,
    2.5,
    [1],
    None,
]


@st.composite
def history(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A hisWrite-like grid as JSON structure, and whether an odd cell was put in."""
    points = draw(st.integers(1, 3))
    names = ["val"] if points == 1 else [f"v{i}" for i in range(points)]
    zone = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(BASES))
    step = draw(st.sampled_from([1, 15, 60, 3600]))
    plain = draw(st.lists(st.booleans(), min_size=points, max_size=points))
    units = draw(
        st.lists(st.sampled_from(["°F", "kW", "m²", None]), min_size=points, max_size=points)
    )
    count = draw(st.integers(1, 40))
    rows = []
    for i in range(count):
        when = (base + dt.timedelta(minutes=step * i)).astimezone(tz_from_name(zone))
        row: dict[str, Any] = {"ts": {"_kind": "dateTime", "val": when.isoformat(), "tz": zone}}
        for j, name in enumerate(names):
            val: Any = draw(
                st.floats(allow_nan=False, allow_infinity=False, width=32)
                | st.integers(-(2**40), 2**40)
            )
            if plain[j]:
                row[name] = val
            else:
                cell: dict[str, Any] = {"_kind": "number", "val": val}
                if units[j] is not None:
                    cell["unit"] = units[j]
                row[name] = cell
        rows.append(row)
    # Nulls and left-out cells (a point without a sample at some time): still columnar.
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, count - 1))
        col = draw(st.sampled_from(["ts", *names]))
        if draw(st.booleans()):
            if col in rows[i]:  # (set again after a pop, it would come last: an odd order)
                rows[i][col] = None
        else:
            rows[i].pop(col, None)
    odd = draw(st.integers(0, 3))
    for _ in range(odd):
        i = draw(st.integers(0, count - 1))
        col = draw(st.sampled_from(["ts", *names, "extra"]))
        if col == "ts":
            rows[i]["ts"] = draw(st.sampled_from(ODD_TS))
        elif col == "extra":
            rows[i]["extra"] = 1  # not a column: an error
        else:
            rows[i][col] = draw(st.sampled_from(ODD_VAL))
    if draw(st.booleans()) and draw(st.booleans()):  # keys in another order in one row
        odd += 1
        i = draw(st.integers(0, count - 1))
        rows[i] = dict(reversed(list(rows[i].items())))
    grid = {
        "_kind": "grid",
        "meta": {"ver": "3.0", "id": {"_kind": "ref", "val": "p1"}},
        "cols": [{"name": "ts"}, *({"name": n} for n in names)],
        "rows": rows,
    }
    return grid, odd > 0


def _compiled_reader() -> ModuleType | None:
    try:
        return compiled_modules()["_json4_read"]
    except ImportError:  # not built here: test_implementations says so; pure only
        return None


COMPILED = _compiled_reader()


def read(data: bytes, columnar_min: int, module: ModuleType = _json4_read) -> tuple[str, Any]:
    """The grid read with the columnar path tried from ``columnar_min`` rows, or the
    error as decode_grid reports it."""
    obj, swapped = module.load(data, DEFAULT_LIMITS)
    reader = module.V4Reader(DEFAULT_LIMITS, swapped)
    reader.columnar_min = columnar_min
    try:
        return "ok", reader.grid(obj)
    except module.PathError as exc:
        err = exc.to_decode_error()
        return "error", (str(err), err.path)
    except (ValueError, OverflowError) as exc:
        return "error", (type(exc).__name__, str(exc))


def fingerprint(v: Any) -> Any:
    """Everything that tells two values apart: type, order of keys, zone, fold."""
    if isinstance(v, Grid):
        return (
            "grid",
            fingerprint(v.meta),
            [c.name for c in v.cols],
            [fingerprint(r) for r in v.rows],
        )
    if isinstance(v, dict):
        return (type(v).__name__, [(k, fingerprint(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [fingerprint(x) for x in v])
    if isinstance(v, Number):
        return ("number", repr(v.val), v.unit)
    if isinstance(v, dt.datetime):
        return ("datetime", v.isoformat(), v.tzinfo, v.fold)
    return (type(v).__name__, v)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history())
def test_the_columnar_path_reads_as_the_general_path(case: tuple[dict[str, Any], bool]) -> None:
    grid, odd = case
    data = stdjson.dumps(grid, ensure_ascii=False).encode()
    general = read(data, 10**9)
    fast = [read(data, 1)]
    if COMPILED is not None:  # the compiled columnar path against the pure general one
        fast.append(read(data, 1, COMPILED))
    for got in fast:
        assert got[0] == general[0]
        if got[0] == "ok":
            assert fingerprint(got[1]) == fingerprint(general[1])
        else:
            assert got[1] == general[1]
    if not odd and any(grid["rows"]):  # a clean history grid takes the columnar path
        obj, swapped = load(data, DEFAULT_LIMITS)
        order = tuple(c["name"] for c in obj["cols"])
        assert V4Reader(DEFAULT_LIMITS, swapped).columnar(obj["rows"], order) is not None


def test_a_big_history_grid_decodes_with_its_zone_units_and_folds() -> None:
    ny = tz_from_name("New_York")
    start = dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)
    rows = [
        {
            "ts": {
                "_kind": "dateTime",
                "val": (start + dt.timedelta(minutes=15 * i)).astimezone(ny).isoformat(),
                "tz": "New_York",
            },
            "val": {"_kind": "number", "val": 70 + i / 4, "unit": "°F"},
        }
        for i in range(100)
    ]
    body = {
        "_kind": "grid",
        "meta": {"ver": "3.0"},
        "cols": [{"name": "ts"}, {"name": "val"}],
        "rows": rows,
    }
    grid = json.decode_grid(stdjson.dumps(body, ensure_ascii=False))
    assert len(grid) == 100
    assert grid[0] == FrozenDict(ts=start.astimezone(ny), val=Number(70.0, "°F"))
    # (Instants compared as timestamps: PEP 495 makes an ambiguous time unequal to
    # every time in another zone.)
    assert [r["ts"].timestamp() for r in grid.rows] == [
        (start + dt.timedelta(minutes=15 * i)).timestamp() for i in range(100)
    ]
    assert all(r["ts"].tzinfo is ny for r in grid.rows)
    # 01:00-01:45 New York time comes twice that night; the second time has fold=1.
    assert sum(r["ts"].fold for r in grid.rows) == 4
    assert grid[99]["val"] == Number(70 + 99 / 4, "°F")


def test_an_odd_cell_in_a_big_grid_is_reported_where_it_is() -> None:
    rows: list[dict[str, Any]] = [
        {
            "ts": {"_kind": "dateTime", "val": "2026-01-01T00:00:00-05:00", "tz": "New_York"},
            "val": i,
        }
        for i in range(100)
    ]
    rows[60]["val"] = {"_kind": "number", "val": "NaN", "unit": "°F"}
    body = {
        "_kind": "grid",
        "meta": {"ver": "3.0"},
        "cols": [{"name": "ts"}, {"name": "val"}],
        "rows": rows,
    }
    with pytest.raises(DecodeError, match="NaN cannot have a unit") as info:
        json.decode_grid(stdjson.dumps(body, ensure_ascii=False))
    assert info.value.path == "rows[60].val"
    rows[60]["val"] = {"_kind": "number", "val": "NaN"}
    rows[70]["ts"] = {"_kind": "dateTime", "val": "2026-01-01T00:00:00", "tz": "New_York"}
    with pytest.raises(DecodeError, match="expected ISO 8601 with an offset") as info:
        json.decode_grid(stdjson.dumps(body, ensure_ascii=False))
    assert info.value.path == "rows[70].ts"
    rows[70]["ts"] = rows[0]["ts"]
    assert math.isnan(json.decode_grid(stdjson.dumps(body, ensure_ascii=False))[60]["val"].val)
