"""Property-based round trips of every kind through every lossless format."""

import datetime as dt
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projecthaystack.codecs import json, trio, zinc
from projecthaystack.kinds import (
    NA,
    Col,
    Coord,
    FrozenDict,
    Grid,
    Marker,
    Number,
    Ref,
    Remove,
    Symbol,
    Uri,
    XStr,
    tz_from_name,
)

settings.register_profile(
    "codecs", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("codecs")

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
names = st.from_regex(r"[a-z][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("ver", "meta", "cols", "rows")
)
ref_ids = st.from_regex(r"[A-Za-z0-9_:\-.~]{1,10}", fullmatch=True)
units = st.sampled_from(
    ["°F", "kW", "m²", "%", "$", "EER", "E", "e", "gal/min", "m³/h", "_x", "ft²"]
)
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.builds(Number, finite, st.none() | units),
    st.builds(Number, st.sampled_from([math.inf, -math.inf]), st.none() | units),
    st.just(Number(math.nan)),
)
zones = st.sampled_from(
    ["UTC", "New_York", "Denver", "GMT+5", "GMT-3", "Taipei", "London", "Kolkata"]
)
datetimes = st.builds(
    lambda instant, zone: instant.astimezone(tz_from_name(zone)),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)),
    zones,
)
scalars = st.one_of(
    st.sampled_from([Marker, NA, Remove, True, False]),
    numbers,
    text,
    st.builds(Uri, text),
    st.builds(Ref, ref_ids, st.none() | text.filter(bool)),
    st.builds(Symbol, ref_ids),
    st.dates(),
    st.times(),
    datetimes,
    st.builds(Coord, st.floats(-90, 90), st.floats(-180, 180)),
    st.builds(XStr, st.from_regex(r"[A-Z][A-Za-z0-9_]{0,5}", fullmatch=True), text),
)


def grids(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Grid]:
    def build(
        cols: list[str], meta: dict[str, Any], rows: list[dict[str, Any]], col_meta: dict[str, Any]
    ) -> Grid:
        return Grid(
            [Col(cols[0], col_meta), *cols[1:]],
            [{k: v for k, v in r.items() if k in cols} for r in rows],
            meta,
        )

    cols = st.lists(names, min_size=1, max_size=4, unique=True)
    return st.builds(
        build,
        cols,
        st.dictionaries(names, values, max_size=3),
        st.lists(st.dictionaries(names, values, max_size=4), max_size=3),
        st.dictionaries(names, values, max_size=2),
    )


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner | st.none(), max_size=4),
        st.dictionaries(names, inner, max_size=4).map(FrozenDict),
        grids(inner),
    ),
    max_leaves=12,
)
# Trio cannot carry a grid inside a list or dict: only a tag's own grid.
trio_values = st.one_of(
    st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner | st.none(), max_size=4), st.dictionaries(names, inner, max_size=4)
        ),
        max_leaves=10,
    ),
    grids(scalars),
)


def same(a: Any, b: Any) -> bool:
    """Equal, and also the same types and Ref display names (which == ignores)."""
    if isinstance(a, Grid):
        return (
            isinstance(b, Grid)
            and a == b
            and same(dict(a.meta), dict(b.meta))
            and all(same(dict(x), dict(y)) for x, y in zip(a.rows, b.rows, strict=True))
            and all(same(dict(c.meta), dict(b.col(c.name).meta)) for c in a.cols)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, Ref):
        return isinstance(b, Ref) and a.id == b.id and a.dis == b.dis
    if isinstance(a, dt.datetime):
        return (
            isinstance(b, dt.datetime)
            and a == b
            and a.tzinfo == b.tzinfo
            and a.utcoffset() == b.utcoffset()
        )
    return type(a) is type(b) and a == b


@given(values)
def test_zinc_value_round_trip(v: Any) -> None:
    assert same(zinc.decode_value(zinc.encode_value(v)), v)


@given(grids(values))
def test_zinc_grid_round_trip(g: Grid) -> None:
    assert same(zinc.decode_grid(zinc.encode_grid(g)), g)


@given(values)
def test_json_v4_value_round_trip(v: Any) -> None:
    assert same(json.decode_value(json.encode_value(v)), v)


@given(grids(values))
def test_json_v4_grid_round_trip(g: Grid) -> None:
    assert same(json.decode_grid(json.encode_grid(g)), g)


@given(grids(values))
def test_json_v4_memos_never_change_the_bytes(g: Grid) -> None:
    # The first write marks rows, the second keeps their JSON, the third copies it; a
    # grid that reuses some of those rows mixes memoised and fresh ones.
    writes = [json.encode_grid_bytes(g) for _ in range(3)]
    assert writes[0] == writes[1] == writes[2]
    mixed = Grid.from_rows([*g.rows[::2], FrozenDict(fresh=Number(1)), *g.rows[1::2]])
    fresh = Grid.from_rows([dict(r) for r in mixed.rows])
    assert json.encode_grid_bytes(mixed) == json.encode_grid_bytes(fresh)


@given(grids(values), st.randoms(use_true_random=False))
def test_zinc_and_json_memos_never_change_the_text(g: Grid, rnd: Any) -> None:
    # Rows written as Zinc and JSON in turn keep both texts in one memo; a Zinc line is
    # tied to its grid's columns, so the same rows in shuffled columns (rows whose tags
    # are then out of column order) are written in their own order.
    names = [c.name for c in g.cols]
    rnd.shuffle(names)
    shuffled = Grid.unchecked(g.meta, tuple(Col(n) for n in names), g.rows)

    def fresh(grid: Grid) -> Grid:
        return Grid.unchecked(grid.meta, grid.cols, tuple(FrozenDict(r) for r in grid.rows))

    z, j = zinc.encode_grid(fresh(g)), json.encode_grid_bytes(fresh(g))
    zs = zinc.encode_grid(fresh(shuffled))
    for _ in range(3):
        assert zinc.encode_grid(g) == z
        assert json.encode_grid_bytes(g) == j
        assert zinc.encode_grid(shuffled) == zs
    assert same(zinc.decode_grid(zs), shuffled)


@given(values)
def test_json_v3_value_round_trip(v: Any) -> None:
    assert same(json.decode_value(json.encode_value(v, version=3), version=3), v)


@given(grids(values))
def test_json_v3_grid_round_trip(g: Grid) -> None:
    assert same(json.decode_grid(json.encode_grid(g, version=3), version=3), g)


@given(st.lists(st.dictionaries(names, trio_values, max_size=5), max_size=4))
def test_trio_round_trip(records: list[dict[str, Any]]) -> None:
    back = trio.decode_dicts(trio.encode_dicts(records))
    assert same(back, [r for r in records if r])


@given(st.binary(max_size=200))
def test_decoders_never_fail_another_way(data: bytes) -> None:
    for decode in (zinc.decode_grid, json.decode_grid, trio.decode_dicts, zinc.decode_value):
        try:
            decode(data)
        except ValueError:
            pass  # DecodeError is a ValueError; nothing else may escape


@given(st.text(st.sampled_from('ver:"3.0"\n,abc@M[]{}<>`^-12.eE:NTF C()'), max_size=80))
def test_zinc_never_fails_another_way(text_: str) -> None:
    from projecthaystack.kinds import DecodeError

    for fn in (zinc.decode_grid, zinc.decode_value, trio.decode_dicts):
        try:
            fn('ver:"3.0"\na,b\n' + text_ if fn is zinc.decode_grid else text_)
        except DecodeError:
            pass
