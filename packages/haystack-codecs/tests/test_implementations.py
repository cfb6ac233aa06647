"""The two implementations agree: the pure-Python modules and the same modules compiled
with mypyc give byte-identical encodes in every format, equal decodes, and the same errors
on bad input.  The modules are compared directly, so this says the same whichever one
``HAYSTACK_IMPL`` makes the public modules run (CI runs it once per Python); the switch
itself is tested in ``test_impl_switch.py``."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projecthaystack.codecs._impl import compiled_modules, pure_modules
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

PURE = pure_modules()


def _compiled() -> dict[str, ModuleType]:
    try:
        return compiled_modules()
    except ImportError:
        if os.environ.get("CI") == "true":  # CI builds them first: their absence is a bug
            raise
        pytest.skip(
            "the compiled codecs are not built for this Python: run `python3 tools/dev.py compile`",
            allow_module_level=True,
        )


COMPILED = _compiled()

settings.register_profile(
    "implementations",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- values of every kind, with the awkward corners of each format

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "$x", 'a"b', "a\\b", "\n\t\r", "\x00\x7f", "ü°€𝄞", "`", "N", "M", "1,2", "a b"]
)
names = st.from_regex(r"[a-z][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("ver", "meta", "cols", "rows")
)
ref_ids = st.from_regex(r"[A-Za-z0-9_:\-.~]{1,10}", fullmatch=True)
units = st.sampled_from(["°F", "kW", "m²", "%", "$", "EER", "E", "e", "gal/min", "_x", "ft²"])
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.builds(Number, finite | st.integers(-(2**60), 2**60).map(float), st.none() | units),
    st.builds(Number, st.sampled_from([math.inf, -math.inf]), st.none() | units),
    st.just(Number(math.nan)),  # NaN has no unit
)
zones = st.sampled_from(["UTC", "New_York", "GMT+5", "GMT-3", "Taipei", "London", "Kolkata"])
datetimes = st.builds(
    lambda instant, zone: instant.astimezone(tz_from_name(zone)),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)),
    zones,
)
scalars = st.one_of(
    st.sampled_from([Marker, NA, Remove, True, False, None]),
    numbers,
    text,
    st.integers(-(2**40), 2**40),  # plain ints and floats are Numbers to every writer
    finite,
    st.builds(Uri, text),
    st.builds(Ref, ref_ids, st.none() | text),
    st.builds(Symbol, ref_ids),
    st.dates(),
    st.times(),
    datetimes,
    st.builds(Coord, st.floats(-90, 90), st.floats(-180, 180)),
    st.builds(XStr, st.from_regex(r"[A-Z][A-Za-z0-9_]{0,5}", fullmatch=True), text),
)


def grids(values: st.SearchStrategy[Any], max_rows: int = 4) -> st.SearchStrategy[Grid]:
    def build(
        cols: list[str], meta: dict[str, Any], rows: list[dict[str, Any]], col_meta: dict[str, Any]
    ) -> Grid:
        return Grid(
            [Col(cols[0], col_meta), *cols[1:]],
            [{k: v for k, v in r.items() if k in cols} for r in rows],
            meta,
        )

    return st.builds(
        build,
        st.lists(names, min_size=1, max_size=5, unique=True),
        st.dictionaries(names, values, max_size=3),
        st.lists(st.dictionaries(names, values, max_size=5), max_size=max_rows),
        st.dictionaries(names, values, max_size=2),
    )


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(names, inner, max_size=4).map(FrozenDict),
        st.dictionaries(names, inner, max_size=3),
        grids(inner),
    ),
    max_leaves=12,
)


def _long(grid: Grid) -> Grid:
    """Enough rows of ``grid``'s for the writers' paths for long grids (columnar JSON)."""
    rows = list(grid.rows) or [FrozenDict()]
    return Grid.unchecked(grid.meta, grid.cols, tuple(rows * (300 // len(rows) + 1)))


def _fresh(grid: Grid) -> Grid:
    """The same grid with rows no writer has seen (the JSON v4 writer memoises on rows)."""
    return Grid.unchecked(grid.meta, grid.cols, tuple(FrozenDict(r) for r in grid.rows))


# -- what each implementation gives: a value, or the error it raised


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # the same class and message is what is compared
        return "error", (type(exc), str(exc))


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (and Ref names, which == ignores)."""
    if isinstance(a, Grid):
        return (
            isinstance(b, Grid)
            and [c.name for c in a.cols] == [c.name for c in b.cols]
            and all(same(c.meta, d.meta) for c, d in zip(a.cols, b.cols, strict=True))
            and same(a.meta, b.meta)
            and len(a.rows) == len(b.rows)
            and all(same(x, y) for x, y in zip(a.rows, b.rows, strict=True))
        )
    if isinstance(a, dict):
        return (
            type(a) is type(b)
            and list(a.keys()) == list(b.keys())
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, Ref):
        return isinstance(b, Ref) and a.id == b.id and a.dis == b.dis
    if isinstance(a, Number):
        return (
            isinstance(b, Number)
            and a.unit == b.unit
            and (a.val == b.val or (math.isnan(a.val) and math.isnan(b.val)))
        )
    if isinstance(a, dt.datetime):
        return isinstance(b, dt.datetime) and a == b and a.tzinfo == b.tzinfo
    return type(a) is type(b) and a == b


def agree(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    return a[0] == b[0] and (a[1] == b[1] if a[0] == "error" else same(a[1], b[1]))


def encoders(m: dict[str, ModuleType]) -> dict[str, Callable[[Grid], bytes | str]]:
    """Every grid writer of one implementation."""
    return {
        "json4": m["_json"].encode_grid_bytes,
        "json3": lambda g: m["_json"].encode_grid_bytes(g, version=3),
        "zinc": m["_zinc_write"].encode_grid,
        "trio": m["_trio"].encode_grid,
        "csv": m["_csv"].encode_grid,
    }


def decoders(m: dict[str, ModuleType]) -> dict[str, Callable[[bytes | str], Any]]:
    """Every grid reader of one implementation (CSV's reads strings)."""
    return {
        "json4": m["_json"].decode_grid,
        "json3": lambda d: m["_json"].decode_grid(d, version=3),
        "zinc": m["_zinc_read"].decode_grid,
        "trio": m["_trio"].decode_grid,
        "csv": m["_csv"].decode_grid,
    }


FORMATS = list(encoders(PURE))


def check_grid(grid: Grid) -> dict[str, tuple[str, Any]]:
    """Both implementations write ``grid`` alike in every format (fresh rows, then rows
    written once and twice before) and read what they wrote alike; the pure outcomes."""
    written: dict[str, tuple[str, Any]] = {}
    pure_copy, compiled_copy = _fresh(grid), _fresh(grid)
    pure_enc, compiled_enc = encoders(PURE), encoders(COMPILED)
    pure_dec, compiled_dec = decoders(PURE), decoders(COMPILED)
    for fmt in FORMATS:
        for attempt in range(3):  # the JSON v4 writer's memo: never, once, twice written
            ours = outcome(pure_enc[fmt], pure_copy)
            theirs = outcome(compiled_enc[fmt], compiled_copy)
            assert ours == theirs, (fmt, attempt)
        written[fmt] = ours
        if ours[0] == "ok":
            assert agree(outcome(pure_dec[fmt], ours[1]), outcome(compiled_dec[fmt], ours[1]))
    return written


@settings(settings.get_profile("implementations"))
@given(grids(values))
def test_grids_are_written_and_read_alike(grid: Grid) -> None:
    check_grid(grid)


@settings(settings.get_profile("implementations"), max_examples=25)
@given(grids(scalars, max_rows=3))
def test_long_grids_are_written_and_read_alike(grid: Grid) -> None:
    check_grid(_long(grid))


@settings(settings.get_profile("implementations"))
@given(values)
def test_values_are_written_and_read_alike(value: Any) -> None:
    for fn in ("encode_value", "encode_value_bytes"):
        for version in (4, 3):
            ours = outcome(getattr(PURE["_json"], fn), value, version=version)
            assert ours == outcome(getattr(COMPILED["_json"], fn), value, version=version)
            if ours[0] == "ok":
                read = [m["_json"].decode_value for m in (PURE, COMPILED)]
                assert agree(*(outcome(r, ours[1], version=version) for r in read))
    ours = outcome(PURE["_zinc_write"].encode_value, value)
    assert ours == outcome(COMPILED["_zinc_write"].encode_value, value)
    if ours[0] == "ok":
        read = [m["_zinc_read"].decode_value for m in (PURE, COMPILED)]
        assert agree(*(outcome(r, ours[1]) for r in read))
    cell = [m["_csv"].encode_cell for m in (PURE, COMPILED)]
    assert outcome(cell[0], value) == outcome(cell[1], value)


@settings(settings.get_profile("implementations"), max_examples=50)
@given(st.lists(st.dictionaries(names, values, max_size=4), max_size=3))
def test_trio_records_are_written_and_read_alike(records: list[dict[str, Any]]) -> None:
    ours = outcome(PURE["_trio"].encode_dicts, records)
    assert ours == outcome(COMPILED["_trio"].encode_dicts, records)
    if ours[0] == "ok":
        read = [m["_trio"].decode_dicts for m in (PURE, COMPILED)]
        assert agree(*(outcome(r, ours[1]) for r in read))


# -- malformed input: text written by the writers, then broken


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, str]:
    """A format and a text in it with a few characters replaced, inserted or deleted."""
    fmt = draw(st.sampled_from(FORMATS))
    grid = draw(grids(scalars, max_rows=3))
    written = encoders(PURE)[fmt](grid)
    body = written.decode() if isinstance(written, bytes) else written
    junk = st.sampled_from([*'",:{}[]()<>`@^$\\\n\r\t -_0123456789.eEZTMNRaz€"', '"_kind"'])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        how = draw(st.sampled_from(["replace", "insert", "delete"]))
        piece = "" if how == "delete" else draw(junk)
        body = body[:at] + piece + body[at + (0 if how == "insert" else 1) :]
    return fmt, body


@settings(settings.get_profile("implementations"), max_examples=300)
@given(damaged())
def test_malformed_input_gets_the_same_answer(case: tuple[str, str]) -> None:
    fmt, body = case
    for data in (body, body.encode()):
        ours = outcome(decoders(PURE)[fmt], data)
        assert agree(ours, outcome(decoders(COMPILED)[fmt], data)), (fmt, body)


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("zinc", b'ver:"3.0"\na,b\n1,2,3\n'),
        ("zinc", b'ver:"3.0"\na\n"\\q"\n'),
        ("zinc", b'ver:"3.0"\na\n' + b"[" * 70 + b"1" + b"]" * 70 + b"\n"),  # too deep
        ("zinc", b"\xff\xfe"),
        ("json4", b'{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":{"_kind":"nope"}}]}'),
        ("json4", b"[1,"),
        ("json3", b'{"meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":"n:x"}]}'),
        ("trio", b"a:[1,"),
        ("trio", b"a:1\n---\n a"),
        ("trio", b'a: <<\nver:"3.0"\nx\n'),
        ("trio", b"a:1\xff"),
        ("csv", b'a,b\n"1'),
    ],
)
def test_known_bad_input_gets_the_same_error(fmt: str, data: bytes) -> None:
    ours = outcome(decoders(PURE)[fmt], data)
    assert ours[0] == "error"
    assert outcome(decoders(COMPILED)[fmt], data) == ours


def test_errors_of_the_encoders_are_the_same() -> None:
    bad: list[Any] = [object(), {"Bad Name": 1}, dt.datetime(2020, 1, 1), {1: 2}]
    for value in bad:
        for name in ("_zinc_write", "_json"):
            ours = outcome(PURE[name].encode_value, value)
            assert ours[0] == "error"
            assert outcome(COMPILED[name].encode_value, value) == ours


@pytest.mark.parametrize("data", [1, None, [b"x"], {"a": 1}, 2.5])
@pytest.mark.parametrize("fmt", FORMATS)
def test_input_of_another_type_is_a_type_error_in_both(fmt: str, data: Any) -> None:
    # mypyc checks the annotated argument types itself, in words of its own: the class of
    # the error is what both promise, not its message.
    for implementation in (PURE, COMPILED):
        with pytest.raises(TypeError):
            decoders(implementation)[fmt](data)
