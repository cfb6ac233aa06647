"""Filters pushed down to SQL give exactly what the filter package's own evaluation gives
(which is what ``MemoryStore`` gives): on random filters over the example buildings, and
on random records of every kind, edge values included (NaN, ±INF, NUL in strings, lists
of Refs, nested Dicts, Refs to nothing)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from projecthaystack.codecs import json as hjson
from projecthaystack.filter import (
    And,
    Cmp,
    Filter,
    Has,
    Missing,
    Or,
    Path,
    parse,
    select,
)
from projecthaystack.kinds import (
    NA,
    Coord,
    Marker,
    Number,
    Ref,
    Symbol,
    Uri,
    XStr,
    tz_from_name,
)
from projecthaystack.stores.pg import PgStore

from .conftest import PG_URL, building_path, drop_schema, new_schema, require_pg

OPS = ("==", "!=", "<", "<=", ">", ">=")


class Loop:
    """One event loop for a module, so that a store opened once serves many examples."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.runner.close()


@pytest.fixture(scope="module")
def module_store(loop: Loop) -> Iterator[PgStore]:
    require_pg()
    schema = new_schema()
    store = PgStore(PG_URL, schema=schema, max_size=2)
    loop.run(store.open())
    try:
        yield store
    finally:
        loop.run(store.close())
        drop_schema(schema)


# -- the example buildings -------------------------------------------------------------
@pytest.fixture(scope="module", params=["alpha", "bravo"])
def loaded(request: pytest.FixtureRequest, loop: Loop) -> Iterator[tuple[PgStore, list[Any]]]:
    path = building_path(request.param)
    records = list(hjson.decode_grid(path.read_bytes()).rows)
    require_pg()
    schema = new_schema()
    store = PgStore(PG_URL, schema=schema, max_size=2)
    loop.run(store.open())
    loop.run(store.put_entities(records))
    try:
        yield store, records
    finally:
        loop.run(store.close())
        drop_schema(schema)


def _literals(value: Any) -> list[Any]:
    """The filter literals a stored value suggests (itself, and neighbours of it)."""
    if isinstance(value, bool | str | Uri | Symbol | dt.date | dt.time):
        return [value]
    if type(value) is Number:
        if math.isnan(value.val):
            return [Number(0.0, value.unit)]
        return [value, Number(value.val + 1, value.unit), Number(value.val)]
    if type(value) is Ref:
        return [Ref(value.id)]
    if type(value) is list:
        return [v for item in value[:2] for v in _literals(item)]
    return []


def _catalogue(
    records: Sequence[Mapping[str, Any]],
) -> tuple[list[str], list[str], dict[str, list[Any]]]:
    names: set[str] = set()
    refs: set[str] = set()
    values: dict[str, list[Any]] = {}
    for rec in records:
        for name, val in rec.items():
            names.add(name)
            if type(val) is Ref and name != "id":
                refs.add(name)
            bucket = values.setdefault(name, [])
            if len(bucket) < 40:
                bucket.extend(_literals(val))
    return sorted(names), sorted(refs), values


def filters(records: Sequence[Mapping[str, Any]], extra_names: Sequence[str] = ()) -> Any:
    names, refs, values = _catalogue(records)
    names = names + list(extra_names)
    any_literal = st.sampled_from(
        [
            *[v for bucket in values.values() for v in bucket][:400],
            True,
            False,
            "",
            "Hugo",
            Number(70, "°F"),
            Number(-math.inf),
            Number(math.inf, "kW"),
        ]
    )

    @st.composite
    def path(draw: Any) -> Path:
        hops = draw(st.integers(0, 2)) if refs else 0
        chain = [draw(st.sampled_from(refs)) for _ in range(hops)]
        return Path((*chain, draw(st.sampled_from(names))))

    @st.composite
    def atom(draw: Any) -> Filter:
        p = draw(path())
        shape = draw(st.sampled_from(["has", "missing", "cmp", "cmp"]))
        if shape == "has":
            return Has(p)
        if shape == "missing":
            return Missing(p)
        own = values.get(p.names[-1]) or []
        lit = draw(st.sampled_from(own) if own and draw(st.booleans()) else any_literal)
        return Cmp(p, draw(st.sampled_from(OPS)), lit)

    return st.recursive(
        atom(),
        lambda inner: st.builds(
            lambda ops: And(tuple(ops)), st.lists(inner, min_size=2, max_size=3)
        )
        | st.builds(lambda ops: Or(tuple(ops)), st.lists(inner, min_size=2, max_size=3)),
        max_leaves=6,
    )


@st.composite
def _building_case(draw: Any, records: Sequence[Mapping[str, Any]]) -> Filter:
    return draw(filters(records))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_buildings_random_filters(
    loaded: tuple[PgStore, list[Any]], loop: Loop, data: st.DataObject
) -> None:
    store, records = loaded
    flt = data.draw(filters(records))
    expected = select(flt, records)
    event(f"records matched: {min(len(expected), 2)}+")
    got = loop.run(store.query(flt))
    assert [r["id"] for r in got] == [r["id"] for r in expected], str(flt)
    assert got == expected


BUILDING_FILTERS = (
    "point",
    "point and temp and sensor",
    "equipRef->ahu",
    'siteRef->geoCity == "Hugo"',
    "not his",
    "(ahu or vav) and not point",
    'unit == "°F" and kind == "Number" and his',
    "custom->lengthX",
    "equipRef->siteRef->area > 10000ft²",
    'equipRef->siteRef->tz != "New_York"',
    "siteRef->geoCoord",
    "equipRef->equipRef->ahu",
    'dis < "B" and point',
    "not equipRef->siteRef->site",
)


@pytest.mark.parametrize("text", BUILDING_FILTERS)
def test_buildings_named_filters(loaded: tuple[PgStore, list[Any]], loop: Loop, text: str) -> None:
    store, records = loaded
    flt = parse(text)
    expected = select(flt, records)
    assert loop.run(store.query(flt)) == expected
    assert loop.run(store.query(flt, limit=3)) == expected[:3]


# -- records of every kind -----------------------------------------------------------------
NAMES = ("a", "b", "c", "r", "rs", "d")
IDS = tuple(f"x{i}" for i in range(8))
ZONES = tuple(tz_from_name(z) for z in ("UTC", "New_York", "Tokyo", "Kolkata"))


def _unambiguous(value: dt.datetime) -> bool:
    # Python compares two datetimes of one zone by wall time, fold ignored; SQL compares
    # instants.  They differ only at a DST fold, which the store documents.
    return value.replace(fold=0).utcoffset() == value.replace(fold=1).utcoffset()


texts = st.text(
    alphabet=st.sampled_from(
        ["a", "b", "\x00", "\x01", "\x02", "é", "Z", "\\", '"', "\U0001f600", " "]
    ),
    max_size=5,
)
numbers = st.builds(
    lambda v, u: Number(v, None if math.isnan(v) else u),
    st.one_of(
        st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 1e-7, 1e20, 5e-324, 1.7976931348623157e308]),
        st.sampled_from([math.inf, -math.inf, math.nan]),
        st.floats(allow_nan=False, width=64),
    ),
    st.sampled_from([None, None, "°F", "kW", "%"]),
)
datetimes = st.builds(
    lambda d, z: d.replace(tzinfo=dt.UTC).astimezone(z),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(ZONES),
).filter(_unambiguous)
scalars = st.one_of(
    texts,
    numbers,
    st.booleans(),
    st.just(Marker),
    st.just(NA),
    st.builds(Ref, st.sampled_from((*IDS, "nowhere"))),
    st.builds(Ref, st.sampled_from(IDS), st.sampled_from(["Dis", None])),
    st.builds(Uri, texts),
    st.builds(Symbol, st.sampled_from(["elec", "water", "z"])),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.times(),
    datetimes,
    st.builds(Coord, st.sampled_from([0.0, 45.5]), st.sampled_from([0.0, -120.25])),
    st.builds(XStr, st.just("Bin"), st.just("text/plain")),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3),
    max_leaves=5,
)


@st.composite
def records_of_every_kind(draw: Any) -> list[dict[str, Any]]:
    out = []
    for rid in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=8, unique=True)):
        rec: dict[str, Any] = {"id": Ref(rid)}
        rec.update(draw(st.dictionaries(st.sampled_from(NAMES), values, max_size=4)))
        out.append(rec)
    return out


literals = st.one_of(
    texts,
    numbers.filter(lambda n: not math.isnan(n.val)),
    st.booleans(),
    st.builds(Ref, st.sampled_from(IDS)),
    st.builds(Uri, texts),
    st.builds(Symbol, st.sampled_from(["elec", "water", "z"])),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.times(),
    datetimes,
)


@st.composite
def any_filter(draw: Any, depth: int = 0) -> Filter:
    choice = draw(st.integers(0, 8 if depth < 2 else 5))
    p = Path(tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))))
    if choice == 0:
        return Has(p)
    if choice == 1:
        return Missing(p)
    if choice <= 5:
        return Cmp(p, draw(st.sampled_from(OPS)), draw(literals))
    parts = tuple(draw(any_filter(depth + 1)) for _ in range(draw(st.integers(2, 3))))
    return And(parts) if choice <= 6 else Or(parts)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=records_of_every_kind(), flt=any_filter())
def test_records_of_every_kind(
    module_store: PgStore, loop: Loop, records: list[dict[str, Any]], flt: Filter
) -> None:
    async def run() -> tuple[list[Any], list[Any]]:
        await module_store.delete_entities(list(IDS))
        await module_store.put_entities(records)
        stored = await module_store.get_entities([r["id"].id for r in records])
        return stored, await module_store.query(flt)

    stored, got = loop.run(run())
    assert stored == records  # every kind round-trips exactly (NaN compared below)
    expected = select(flt, records)
    event(f"records matched: {min(len(expected), 2)}+")
    assert [r["id"] for r in got] == [r["id"] for r in expected], str(flt)


def test_spec_names_never_reach_the_store(module_store: PgStore, loop: Loop) -> None:
    from projecthaystack.filter import FilterError, IsSpec

    with pytest.raises(FilterError, match="spec name"):
        loop.run(module_store.query(Has(Path(("site",))) & IsSpec("Meter")))
