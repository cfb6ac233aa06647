import copy
import datetime as dt
import math
import pickle
import zoneinfo

import pytest

import projecthaystack.kinds as kinds
from projecthaystack.kinds import (
    NA,
    UTC,
    Col,
    Coord,
    FrozenDict,
    Grid,
    GridBuilder,
    HaystackError,
    InvalidValueError,
    Marker,
    MarkerType,
    NAType,
    Number,
    Ref,
    Remove,
    Symbol,
    Uri,
    XStr,
    haystack_tz_names,
    is_tag_name,
    kind_of,
    to_python,
    tz_from_name,
    tz_name,
)


def test_public_names_are_pinned():
    assert sorted(kinds.__all__) == sorted(
        [
            "NA",
            "UTC",
            "Col",
            "Coord",
            "DecodeError",
            "EncodeError",
            "FrozenDict",
            "Grid",
            "GridBuilder",
            "HaystackError",
            "InvalidValueError",
            "Marker",
            "MarkerType",
            "NAType",
            "Number",
            "Ref",
            "Remove",
            "RemoveType",
            "Symbol",
            "Uri",
            "XStr",
            "format_float",
            "format_number",
            "haystack_tz_names",
            "is_tag_name",
            "kind_of",
            "to_python",
            "tz_from_name",
            "tz_name",
        ]
    )
    for name in kinds.__all__:
        obj = getattr(kinds, name)
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__code__")):
            assert obj.__module__ == "projecthaystack.kinds", name


def test_every_error_is_a_haystack_error_and_its_builtin():
    for cls in (kinds.InvalidValueError, kinds.DecodeError, kinds.EncodeError):
        assert issubclass(cls, kinds.HaystackError) and issubclass(cls, ValueError)


def test_singletons_are_unique_and_survive_copies():
    for cls in (MarkerType, NAType):
        with pytest.raises(TypeError, match="has one instance"):
            cls()
    for s in (Marker, NA, Remove):
        assert pickle.loads(pickle.dumps(s)) is s
        assert copy.deepcopy(s) is s
    assert repr(Marker) == "Marker" and Marker != NA


def test_number_equality_units_and_nan():
    assert Number(1, "kW") == Number(1.0, "kW")
    assert Number(75, "°F") != Number(75)
    assert Number(math.nan) == Number(math.nan)
    assert hash(Number(2, "m")) == hash(Number(2.0, "m"))
    assert Number(3).val.__class__ is float
    assert str(Number(72.5, "°F")) == "72.5°F"
    assert str(Number(-math.inf)) == "-INF"
    assert Number(3.0).is_int() and not Number(3.5).is_int() and not Number(math.inf).is_int()
    assert Number(1) != 1  # a Number is not a bare float


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((math.nan, "kW"), "NaN cannot have a unit"),
        ((1.0, "k W"), "invalid unit"),
        ((1.0, "1m"), "invalid unit"),
        ((True,), "must be a float"),
        (("1",), "must be a float"),
    ],
)
def test_number_rejects_bad_values(args, message):
    with pytest.raises(InvalidValueError, match=message):
        Number(*args)


def test_number_is_immutable():
    n = Number(1.0)
    with pytest.raises(AttributeError):
        n.val = 2.0  # type: ignore[misc]


def test_ref_validation_equality_and_dis():
    assert Ref("a-b_c:d.e~f") == Ref("a-b_c:d.e~f", "Named")
    assert hash(Ref("x", "X")) == hash(Ref("x"))
    assert Ref("x", "X").dis == "X"
    assert str(Ref("x")) == "@x"
    for bad in ("", "a b", "a@b", "caf\u00e9", "a/b"):
        with pytest.raises(InvalidValueError, match="invalid Ref id"):
            Ref(bad)
    with pytest.raises(InvalidValueError):
        Ref("x", 3)  # type: ignore[arg-type]
    assert isinstance(pytest.raises(ValueError, Ref, "a b").value, HaystackError)


def test_symbol_uri_xstr_coord():
    assert str(Symbol("hot-water")) == "^hot-water"
    with pytest.raises(InvalidValueError):
        Symbol("hot water")
    assert Uri("http://x/") == Uri("http://x/")
    with pytest.raises(InvalidValueError):
        Uri(3)  # type: ignore[arg-type]
    assert XStr("Color", "red").val == "red"
    with pytest.raises(InvalidValueError, match="type name"):
        XStr("color", "red")
    assert Coord(90, -180) == Coord(90.0, -180.0)
    for lat, lng in ((90.1, 0), (0, 180.5), (-91, 0), (math.nan, 0)):
        with pytest.raises(InvalidValueError):
            Coord(lat, lng)
    with pytest.raises(InvalidValueError):
        Coord(True, 0)


def test_tag_names():
    assert is_tag_name("siteRef") and is_tag_name("a_1")
    assert not is_tag_name("SiteRef") and not is_tag_name("_x") and not is_tag_name("")


def test_timezones_both_ways():
    assert tz_from_name("New_York").key == "America/New_York"
    assert tz_from_name("Buenos_Aires").key.endswith("Buenos_Aires")
    assert tz_from_name("UTC") is UTC
    assert tz_from_name("America/Denver").key == "America/Denver"
    assert tz_name(tz_from_name("Denver")) == "Denver"
    assert tz_name(zoneinfo.ZoneInfo("UTC")) == "UTC"
    assert tz_name(dt.UTC) == "UTC"
    # GMT+5 is five hours behind UTC, as in IANA.
    assert tz_from_name("GMT+5").utcoffset(None) == dt.timedelta(hours=-5)
    assert tz_name(tz_from_name("GMT-3")) == "GMT-3"
    assert tz_name(dt.timezone(dt.timedelta(hours=3))) == "GMT-3"
    assert tz_name(dt.timezone(dt.timedelta(hours=-5))) == "GMT+5"
    assert {"New_York", "UTC", "GMT+5", "Denver", "Taipei"} <= haystack_tz_names()


# The zones of the Haystack timezone database that sit outside any region.
TOP_LEVEL = [
    "PST8PDT",
    "EST5EDT",
    "CST6CDT",
    "MST7MDT",
    "CET",
    "EET",
    "MET",
    "WET",
    "EST",
    "MST",
    "HST",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_zones_of_the_haystack_database(name):
    tz = tz_from_name(name)
    assert tz.key == name
    assert tz_name(tz) == name
    assert name in haystack_tz_names()


@pytest.mark.parametrize("hours", range(-14, 13))
def test_etc_zones_both_ways_with_the_sign_inverted(hours):
    name = "GMT" if hours == 0 else f"GMT{hours:+d}"
    tz = tz_from_name(name)
    assert tz.key == f"Etc/{name}"
    assert tz.utcoffset(None) == dt.timedelta(hours=-hours)
    assert tz_name(tz) == name
    assert tz_from_name(f"Etc/{name}") is tz


def test_every_haystack_name_reads_back_from_its_zone():
    utc_aliases = {"UTC", "UCT", "Universal", "Zulu"}
    for name in haystack_tz_names():
        back = tz_name(tz_from_name(name))
        assert back == name or (name in utc_aliases and back == "UTC"), name


def test_tz_name_refuses_a_zone_whose_name_haystack_would_not_read():
    # 'Eastern' is no Haystack name: writing it would make data nobody can read back.
    with pytest.raises(InvalidValueError, match="US/Eastern"):
        tz_name(zoneinfo.ZoneInfo("US/Eastern"))


@pytest.mark.parametrize("bad", ["Nowhere", "", "US/Eastern", "../etc/passwd"])
def test_unknown_timezone(bad):
    with pytest.raises(InvalidValueError, match="unknown timezone"):
        tz_from_name(bad)


def test_tz_name_rejects_what_haystack_cannot_name():
    with pytest.raises(InvalidValueError):
        tz_name(None)
    with pytest.raises(InvalidValueError):
        tz_name(dt.timezone(dt.timedelta(hours=5, minutes=30)))


def test_frozen_dict_refuses_changes_but_is_a_dict():
    d = FrozenDict(a=1)
    assert isinstance(d, dict) and d == {"a": 1}
    for op in (
        lambda: d.__setitem__("b", 2),
        lambda: d.__delitem__("a"),
        d.clear,
        lambda: d.update(b=2),
        lambda: d.pop("a"),
        d.popitem,
        lambda: d.setdefault("b", 2),
    ):
        with pytest.raises(TypeError, match="immutable"):
            op()
    with pytest.raises(TypeError):
        d |= {"b": 2}
    assert pickle.loads(pickle.dumps(d)) == d
    assert copy.copy(d) is d
    m = dict(d)
    m["b"] = 2
    assert "b" not in d


def test_grid_from_rows_and_access():
    g = Grid.from_rows([{"id": Ref("s"), "site": Marker}, {"id": Ref("e"), "dis": None}], {"x": 1})
    assert g.col_names == ("id", "site")
    assert len(g) == 2 and list(g)[1] == {"id": Ref("e")}
    assert g.column("site") == [Marker, None]
    assert g.col("id") == Col("id")
    assert g.has_col("id") and not g.has_col("dis")
    assert g.meta == {"x": 1}
    assert g[0:1] == (g[0],)
    with pytest.raises(KeyError):
        g.column("nope")
    with pytest.raises(KeyError):
        g.col("nope")
    assert not g.is_error
    assert Grid.from_rows([], {"err": Marker}).is_error
    assert repr(g) == "<Grid cols=['id', 'site'] rows=2>"


def test_grid_is_immutable():
    g = Grid.from_rows([{"a": 1}])
    with pytest.raises(AttributeError):
        g._rows = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        g[0]["a"] = 2
    with pytest.raises(TypeError):
        g.meta["x"] = 1
    with pytest.raises(AttributeError):
        g.cols[0].name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(g)


def test_grid_equality_ignores_column_and_cell_order():
    a = Grid(["a", Col("b", {"dis": "B"})], [{"a": 1, "b": 2}])
    b = Grid([Col("b", {"dis": "B"}), "a"], [{"b": 2, "a": 1}])
    assert a == b
    assert a != Grid(["a", "b"], [{"a": 1, "b": 2}])  # column meta differs
    assert a != Grid(["a", Col("b", {"dis": "B"})], [{"a": 1}])
    assert a != Grid(["a", Col("b", {"dis": "B"})], [{"a": 1, "b": 2}], {"m": 1})
    assert a != Grid(["a", Col("b", {"dis": "B"}), "c"], [{"a": 1, "b": 2}])
    assert (a == 3) is False


@pytest.mark.parametrize(
    ("cols", "rows", "meta", "message"),
    [
        (["a", "a"], [], None, "duplicate column"),
        (["Bad"], [], None, "invalid column name"),
        (["a"], [{"b": 1}], None, "not a column"),
        (["a"], [{"a-b": 1}], None, "invalid tag name"),
        (["a"], [], {"Bad": 1}, "invalid tag name"),
    ],
)
def test_grid_rejects_inconsistent_input(cols, rows, meta, message):
    with pytest.raises(InvalidValueError, match=message):
        Grid(cols, rows, meta)


def test_grid_from_frozen_rows_still_checks_names():
    with pytest.raises(InvalidValueError, match="invalid tag name 'Bad Name' in row 1"):
        Grid.from_rows([FrozenDict(a=1), FrozenDict({"Bad Name": 1})])
    with pytest.raises(InvalidValueError, match="in row 0"):
        Grid(["a"], [FrozenDict({"a": 1, "Bad": 2})])
    with pytest.raises(InvalidValueError, match="in meta of column 'a'"):
        Col("a", FrozenDict({"Bad": 1}))
    with pytest.raises(InvalidValueError, match="in grid meta"):
        Grid.from_rows([], FrozenDict({"Bad": 1}))


def test_a_frozen_dict_with_nulls_is_read_like_a_plain_dict():
    # Anyone can build a FrozenDict: one that holds a null gets no column and no cell.
    for rows in ([{"a": None, "b": 1}], [FrozenDict({"a": None, "b": 1})]):
        grid = Grid.from_rows(rows)
        assert grid.col_names == ("b",)
        assert grid[0] == {"b": 1} and None not in grid[0].values()
    mixed = Grid.from_rows([FrozenDict(b=2), FrozenDict({"a": None}), {"c": None}])
    assert mixed.col_names == ("b",) and mixed.rows == ({"b": 2}, {}, {})
    assert Grid(["a"], [FrozenDict({"a": None})])[0] == {}
    assert Grid(["a"], [], FrozenDict({"x": None, "y": 1})).meta == {"y": 1}
    assert Col("a", FrozenDict({"unit": None})).meta == {}
    twice = FrozenDict({"a": None, "b": 1})  # the verdict is memoised: ask again
    assert Grid.from_rows([twice]).col_names == Grid.from_rows([twice]).col_names == ("b",)


def test_the_unchecked_constructors_take_their_parts_as_they_are():
    meta, row = FrozenDict(dis="x"), FrozenDict(a=1)
    col = Col.unchecked("a", FrozenDict(unit="kW"))
    grid = Grid.unchecked(meta, (col,), (row,))
    assert grid.meta is meta and grid.cols[0] is col and grid.rows[0] is row
    assert grid == Grid([Col("a", {"unit": "kW"})], [{"a": 1}], {"dis": "x"})


def test_grid_builder():
    b = GridBuilder({"dis": "x"}).add_col("a").add_col("b", {"unit": "kW"})
    b.add_row([1, None]).add_row({"a": 2, "c": Marker}).set_meta("foo", Marker)
    g = b.build()
    assert g.col_names == ("a", "b", "c")
    assert g.rows == ({"a": 1}, {"a": 2, "c": Marker})
    assert g.meta == {"dis": "x", "foo": Marker}
    assert g.col("b").meta == {"unit": "kW"}
    with pytest.raises(InvalidValueError, match="duplicate"):
        b.add_col("a")
    with pytest.raises(InvalidValueError, match="cells"):
        b.add_row([1])
    assert Grid.empty().col_names == ("empty",)


def test_to_python_and_kind_of():
    when = dt.datetime(2026, 1, 1, tzinfo=UTC)
    nested = Grid.from_rows([{"a": Number(1)}])
    value = {
        "m": Marker,
        "na": NA,
        "r": Remove,
        "n": Number(2, "kW"),
        "ref": Ref("x", "X"),
        "sym": Symbol("s"),
        "uri": Uri("u"),
        "x": XStr("T", "v"),
        "c": Coord(1, 2),
        "l": [Number(1), "s"],
        "g": nested,
        "t": when,
        "b": False,
        "s": "str",
    }
    assert to_python(value) == {
        "m": True,
        "na": None,
        "r": None,
        "n": 2.0,
        "ref": "x",
        "sym": "s",
        "uri": "u",
        "x": "v",
        "c": (1.0, 2.0),
        "l": [1.0, "s"],
        "g": [{"a": 1.0}],
        "t": when,
        "b": False,
        "s": "str",
    }
    expected = {
        "m": "marker",
        "na": "na",
        "r": "remove",
        "n": "number",
        "ref": "ref",
        "sym": "symbol",
        "uri": "uri",
        "x": "xstr",
        "c": "coord",
        "l": "list",
        "g": "grid",
        "t": "dateTime",
        "b": "bool",
        "s": "str",
    }
    assert {k: kind_of(v) for k, v in value.items()} == expected
    assert kind_of(dt.date(2020, 1, 1)) == "date" and kind_of(dt.time()) == "time"
    assert kind_of(None) == "null" and kind_of(3) == "number" and kind_of(FrozenDict()) == "dict"
    with pytest.raises(InvalidValueError):
        kind_of(object())


def _shaped_rows(n: int) -> list[dict[str, object]]:
    # Rows of a few shapes, some sharing names, in an order where new names keep coming.
    shapes = [("id", "dis"), ("id", "site", "dis"), ("dis", "equip"), ("id", "point", "unit")]
    return [{k: f"{k}{i}" for k in shapes[(i * 7) % len(shapes)][: 1 + i % 3]} for i in range(n)]


@pytest.mark.parametrize("max_shapes", [0, 2, 1 << 16])
def test_from_rows_by_shape_matches_the_plain_union(monkeypatch, max_shapes):
    from projecthaystack.kinds import _grid

    monkeypatch.setattr(_grid, "_MAX_SHAPES", max_shapes)
    rows = _shaped_rows(40)
    expected = list(dict.fromkeys(n for r in rows for n in r))
    frozen = [FrozenDict(r) for r in rows]
    for _ in range(3):  # the first pass memoises the shapes, the others use them
        assert list(Grid.from_rows(frozen).col_names) == expected
        assert list(Grid.from_rows(rows).col_names) == expected
    # Rows seen before mixed with fresh ones.
    mixed = [*frozen[:5], FrozenDict(zzz="x"), *frozen[5:]]
    in_order = list(dict.fromkeys(n for r in mixed for n in r))
    assert "zzz" in in_order and list(Grid.from_rows(mixed).col_names) == in_order


def test_the_empty_grid_is_shared_but_not_with_meta():
    assert Grid.empty() is Grid.empty() and Grid.empty().col_names == ("empty",)
    with_meta = Grid.empty({"err": Marker})
    assert with_meta is not Grid.empty() and with_meta.is_error and not Grid.empty().is_error


def test_not_equal_follows_equal_for_numbers_and_refs():
    # Structs compared with != by identity once: Number(10) != Number(10) was True.
    import operator

    ne = operator.ne
    assert ne(Number(10), Number(10)) is False
    assert ne(Number(10, "°F"), Number(10, "°F")) is False
    assert ne(Number(10, "°F"), Number(10, "°C")) is True
    assert ne(Ref("a", "A"), Ref("a")) is False
    assert ne(Ref("a"), Ref("b")) is True
    assert ne(Number(float("nan")), Number(float("nan"))) is False
    assert ne(Number(1), 1) is True


def test_unit_pattern_is_the_grammar_set_for_every_code_point() -> None:
    # Written as an ASCII complement so that it compiles quickly at import; it must
    # still accept exactly letters, % _ / $ and everything beyond ASCII.
    import re

    from projecthaystack.kinds import _scalars

    every = "".join(map(chr, range(0x110000)))
    grammar = re.compile(r"[A-Za-z%_/$\u0080-\U0010ffff]+")
    assert _scalars._UNIT_RE.sub("", every) == grammar.sub("", every)
    assert Number(1.0, "m³/h").unit == "m³/h"
    with pytest.raises(InvalidValueError):
        Number(1.0, "m 2")
