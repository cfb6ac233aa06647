import datetime as dt
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import projecthaystack.filter as flt
from projecthaystack.filter import (
    And,
    Cmp,
    FilterError,
    FilterSyntaxError,
    FilterVisitor,
    Has,
    IsSpec,
    Missing,
    Or,
    Path,
    compile_filter,
    matches,
    parse,
    select,
    tag,
)
from projecthaystack.kinds import (
    DecodeError,
    FrozenDict,
    Grid,
    HaystackError,
    InvalidValueError,
    Marker,
    Number,
    Ref,
    Symbol,
    Uri,
    tz_from_name,
)


def test_public_names_are_pinned():
    assert sorted(flt.__all__) == sorted(
        [
            "DEFAULT_MAX_DEPTH",
            "DEFAULT_MAX_LENGTH",
            "DEFAULT_MAX_PATH",
            "And",
            "Cmp",
            "CmpOp",
            "Filter",
            "FilterError",
            "FilterSyntaxError",
            "FilterVisitor",
            "Has",
            "IsSpec",
            "LiteralValue",
            "Missing",
            "Namespace",
            "Or",
            "Path",
            "Resolver",
            "compile_filter",
            "format_literal",
            "index_by_id",
            "matches",
            "parse",
            "select",
            "tag",
        ]
    )
    assert issubclass(FilterSyntaxError, DecodeError) and issubclass(FilterSyntaxError, ValueError)
    assert issubclass(FilterSyntaxError, FilterError) and issubclass(FilterError, HaystackError)
    for name in flt.__all__:
        obj = getattr(flt, name)
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__code__")):
            assert obj.__module__ == "projecthaystack.filter", name


def test_one_error_catches_every_filter_failure():
    with pytest.raises(FilterError):
        parse("point and")
    with pytest.raises(FilterError):
        matches("Meter", {"meter": Marker})


@pytest.mark.parametrize(
    ("text", "ast"),
    [
        ("site", Has(Path(("site",)))),
        ("not point", Missing(Path(("point",)))),
        ("a and b", And((Has(Path(("a",))), Has(Path(("b",)))))),
        ("a or b and c", Or((Has(Path(("a",))), And((Has(Path(("b",))), Has(Path(("c",)))))))),
        ("(a or b) and c", And((Or((Has(Path(("a",))), Has(Path(("b",))))), Has(Path(("c",)))))),
        ("a and b and c", And(tuple(Has(Path((n,))) for n in "abc"))),
        ("a and (b and c)", And(tuple(Has(Path((n,))) for n in "abc"))),
        ("siteRef->geoCity", Has(Path(("siteRef", "geoCity")))),
        ('geoPostalCode == "23220"', Cmp(Path(("geoPostalCode",)), "==", "23220")),
        ("curVal < 75", Cmp(Path(("curVal",)), "<", Number(75))),
        ("curVal >= 75°F", Cmp(Path(("curVal",)), ">=", Number(75, "°F"))),
        ("x != -1.5e3kW", Cmp(Path(("x",)), "!=", Number(-1500, "kW"))),
        ("b == true", Cmp(Path(("b",)), "==", True)),
        ("b == false", Cmp(Path(("b",)), "==", False)),
        ("r == @a-b:c", Cmp(Path(("r",)), "==", Ref("a-b:c"))),
        ("u == `http://x/`", Cmp(Path(("u",)), "==", Uri("http://x/"))),
        ("s == ^hot-water", Cmp(Path(("s",)), "==", Symbol("hot-water"))),
        ("d > 2020-01-02", Cmp(Path(("d",)), ">", dt.date(2020, 1, 2))),
        ("t <= 08:30:00", Cmp(Path(("t",)), "<=", dt.time(8, 30))),
        ("Meter", IsSpec("Meter")),
        ("ph::Meter", IsSpec("Meter", "ph")),
        ("ph.points::OutsideAirTempSensor", IsSpec("OutsideAirTempSensor", "ph.points")),
        (
            "notes and orange and android",
            And(tuple(Has(Path((n,))) for n in ("notes", "orange", "android"))),
        ),
        ("  a\n and\tb  ", And((Has(Path(("a",))), Has(Path(("b",)))))),
        ("a -> b", Has(Path(("a", "b")))),
        ('dis == "a\\"b\\n"', Cmp(Path(("dis",)), "==", 'a"b\n')),
    ],
)
def test_parse(text, ast):
    assert parse(text) == ast


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a or b and c", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("((a))", "a"),
        ("a and (b or (c and d))", "a and (b or c and d)"),
        ("x==1", "x == 1"),
        ("r == @x", "r == @x"),
        ("b==true", "b == true"),
        ("not   siteRef->dis", "not siteRef->dis"),
    ],
)
def test_canonical_text(text, canonical):
    assert str(parse(text)) == canonical
    assert parse(canonical) == parse(text)
    assert repr(parse(text)) == f"parse({canonical!r})"


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        ("", "expected a tag name", 1),
        ("point and", "expected a tag name", 10),
        ("point or or", "expected a tag name", 10),
        ("(point", "expected ')'", 7),
        ("point)", "expected 'and', 'or' or the end", 6),
        ("curVal >", "expected a value", 9),
        ("curVal > x", "expected a value", 10),
        ("curVal == 1 2", "expected 'and', 'or'", 13),
        ("not", "expected a tag name", 4),
        ("and", "expected a tag name", 1),
        ("a->", "expected a tag name", 4),
        ('a == "open', "invalid value", 6),
        ("a == INF", "expected a value", 6),
        ("a == -INF", "cannot be compared", 6),
        ("a == NaN", "expected a value", 6),
        ("a $ b", "unexpected '$'", 3),
        ("ph::meter", "expected a spec name", 5),
        ("Bad->x", "expected 'and', 'or' or the end", 4),
        ("a.b", "expected a tag name", 1),
        ("a == M", "expected a value", 6),
        ("a == [1]", "unexpected '['", 6),
    ],
)
def test_syntax_errors_point_at_the_column(text, message, col):
    with pytest.raises(FilterSyntaxError, match=re.escape(message)) as info:
        parse(text)
    assert info.value.col == col


def test_limits():
    with pytest.raises(FilterSyntaxError, match="over the limit"):
        parse("a and " * 2000 + "a")
    parse("a and " * 10 + "a", max_length=100)
    with pytest.raises(FilterSyntaxError, match="over the limit of 10"):
        parse("point and temp", max_length=10)
    with pytest.raises(FilterSyntaxError, match="nested deeper than 32"):
        parse("(" * 40 + "a" + ")" * 40)
    assert parse("((a))", max_depth=2) == Has(Path(("a",)))
    with pytest.raises(FilterSyntaxError, match="nested deeper than 1"):
        parse("((a))", max_depth=1)
    with pytest.raises(FilterSyntaxError, match="longer than 16"):
        parse("->".join(["a"] * 17))
    with pytest.raises(FilterSyntaxError, match="longer than 2"):
        parse("a->b->c", max_path=2)
    with pytest.raises(TypeError):
        parse(3)  # type: ignore[arg-type]


def test_ast_validation():
    with pytest.raises(InvalidValueError):
        Path(("Bad",))
    with pytest.raises(InvalidValueError):
        Path(())
    with pytest.raises(InvalidValueError):
        Cmp(Path(("a",)), "~", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        Cmp(Path(("a",)), "==", [1])  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        Cmp(Path(("a",)), "==", Number(math.nan))
    with pytest.raises(InvalidValueError):
        And((Has(Path(("a",))),))
    with pytest.raises(InvalidValueError):
        Or(())


def test_builder():
    f = tag("point") & tag("temp") & (tag("curVal") > Number(75, "°F"))
    assert f == parse("point and temp and curVal > 75°F")
    assert (tag("a") | tag("b")) == parse("a or b")
    assert (~tag("a")) == parse("not a") and ~~tag("a").has() == parse("a")
    assert (tag("siteRef", "dis") == "HQ") == parse('siteRef->dis == "HQ"')
    assert (tag("n") != 3) == parse("n != 3")
    assert (tag("n") <= 3.5) == parse("n <= 3.5")
    assert (tag("n") >= dt.date(2020, 1, 1)) == parse("n >= 2020-01-01")
    assert (tag("n") < "z") == parse('n < "z"')
    assert (parse("a") & tag("b")) == parse("a and b")
    assert (tag("a") & parse("b")) == parse("a and b")
    assert (tag("a").missing() | tag("b")) == parse("not a or b")
    with pytest.raises(TypeError):
        parse("a") & 3  # type: ignore[operator]
    with pytest.raises(InvalidValueError):
        _ = tag("x") == [1]
    assert hash(parse("a and b")) == hash(parse("a and b"))


def test_visitor():
    class Sql(FilterVisitor[str]):
        def visit_has(self, node):
            return f"has({node.path})"

        def visit_missing(self, node):
            return f"missing({node.path})"

        def visit_cmp(self, node):
            return f"{node.path}{node.op}{node.value!r}"

        def visit_spec(self, node):
            return f"spec({node.name})"

        def visit_and(self, node):
            return "(" + " AND ".join(o.accept(self) for o in node.operands) + ")"

        def visit_or(self, node):
            return "(" + " OR ".join(o.accept(self) for o in node.operands) + ")"

    text = parse("a and (not b or c == 1 or Meter)").accept(Sql())
    assert text == "(has(a) AND (missing(b) OR c==Number(val=1.0) OR spec(Meter)))"
    with pytest.raises(NotImplementedError):
        parse("a").accept(FilterVisitor())


# --------------------------------------------------------------------------- semantics


@pytest.mark.parametrize(
    ("value", "filter_text", "expected"),
    [
        # The spec's Number Comparisons, verbatim.
        (Number(75), "v == 75", True),
        (Number(75, "°F"), "v == 75°F", True),
        (Number(75, "°F"), "v == 75", False),
        (Number(75, "°F"), "v == 75°C", False),
        (Number(1, "min"), "v == 60sec", False),
        (Number(123), "v != 123", False),
        (Number(123), "v != 123°F", True),
        (Number(123, "°C"), "v != 123°F", True),
        (Number(1, "min"), "v != 60sec", True),
        (Number(5), "v > 4", True),
        (Number(5), "v > 4°F", False),
        (Number(5, "°C"), "v > 4°F", False),
        (Number(5, "°F"), "v > 4°F", True),
        (Number(5, "°F"), "v <= 5°F", True),
        (Number(5, "°F"), "v < 5°F", False),
        # Plain Python numbers count as unitless Numbers.
        (75, "v == 75", True),
        (75.5, "v > 75", True),
        (75, "v == 75°F", False),
        (True, "v == 1", False),
        # Other kinds: equality exact, ordering only within a kind.
        ("abc", 'v == "abc"', True),
        ("abc", 'v < "abd"', True),
        ("abc", "v < 5", False),
        (Number(5), 'v < "z"', False),
        ("abc", "v != 5", True),
        (True, "v == true", True),
        (1, "v == true", False),
        (False, "v < true", True),
        (dt.date(2020, 1, 1), "v < 2020-01-02", True),
        (dt.datetime(2020, 1, 1, tzinfo=tz_from_name("UTC")), "v < 2020-01-02", False),
        (dt.time(8, 0), "v >= 08:00:00", True),
        (Uri("http://a"), "v == `http://a`", True),
        (Uri("http://a"), 'v == "http://a"', False),
        ("http://a", "v == `http://a`", False),
        (Symbol("a"), "v < ^b", True),
        (Ref("x", "X"), "v == @x", True),
        (Ref("x"), "v != @y", True),
        (Ref("b"), "v > @a", True),
        (Marker, "v == true", False),
        (Marker, "v", True),
        (None, "v", False),
        (None, "not v", True),
        (None, "v != 1", False),
        (None, "v == 1", False),
    ],
)
def test_comparison_semantics(value, filter_text, expected):
    record = {"v": value, "id": Ref("r")}
    assert matches(filter_text, record) is expected
    # The selector agrees with the predicate.
    assert (select(filter_text, [record]) == [record]) is expected


def test_not_equal_only_where_present():
    assert not matches("curVal != 5", {"point": Marker})
    assert matches("curVal != 5", {"curVal": Number(6)})


def test_arrow_through_refs_dicts_and_ref_lists():
    # The spec's Ref Lists example.
    records = [
        {"id": Ref("ahu1"), "dis": "AHU-1", "ahu": Marker, "equip": Marker},
        {"id": Ref("ahu2"), "dis": "AHU-2", "ahu": Marker, "equip": Marker},
        {"id": Ref("vav"), "airRef": [Ref("ahu1"), Ref("ahu2")], "vav": Marker, "equip": Marker},
        {"id": Ref("site"), "site": Marker, "geoCity": "Chicago", "meta": {"floors": Number(3)}},
        {"id": Ref("e1"), "equip": Marker, "siteRef": Ref("site"), "custom": {"rating": Number(5)}},
        {"id": Ref("p1"), "point": Marker, "equipRef": Ref("e1")},
        {"id": Ref("p2"), "point": Marker, "equipRef": Ref("gone")},
    ]

    def ids(text: str) -> list[str]:
        return [r["id"].id for r in select(text, records)]

    for text in (
        "airRef == @ahu1",
        "airRef == @ahu2",
        'airRef->dis == "AHU-1"',
        'airRef->dis == "AHU-2"',
    ):
        assert ids(text) == ["vav"], text
    assert ids('equip and siteRef->geoCity == "Chicago"') == ["e1"]
    assert ids('equipRef->siteRef->geoCity == "Chicago"') == ["p1"]
    assert ids("equipRef->siteRef->meta->floors > 2") == ["p1"]
    assert ids("custom->rating == 5") == ["e1"]
    assert ids("equipRef->siteRef") == ["p1"]
    assert ids("point and not equipRef->siteRef") == ["p2"]
    assert ids("airRef->ahu") == ["vav"]
    assert ids("dis->x") == []
    # Without a resolver, paths through Refs find nothing; nested dicts still work.
    assert not matches('siteRef->geoCity == "Chicago"', records[4])
    assert matches("custom->rating == 5", records[4])
    by_id = {r["id"]: r for r in records}
    assert matches('equipRef->siteRef->geoCity == "Chicago"', records[5], resolver=by_id.get)
    pred = compile_filter("equipRef->siteRef->geoCity", resolver=by_id.get)
    assert [pred(r) for r in records] == [False] * 5 + [True, False]


def test_select_on_grids_and_limits():
    g = Grid.from_rows([{"id": Ref(str(i)), "n": Number(i)} for i in range(10)], {"dis": "x"})
    out = select("n >= 5", g)
    assert isinstance(out, Grid) and out.meta == g.meta and out.col_names == g.col_names
    assert [r["n"].val for r in out] == [5, 6, 7, 8, 9]
    assert len(select("n >= 5", g, limit=2)) == 2
    assert select("n >= 5", list(g.rows), limit=0) == []


class _Ns:
    def fits_spec(self, record, name, lib):
        return name == "Meter" and "meter" in record and lib in (None, "ph")


def test_spec_names_need_a_namespace():
    with pytest.raises(FilterError, match="needs a namespace"):
        matches("Meter", {"meter": Marker})
    with pytest.raises(FilterError):
        select("point or Meter", [{}])
    assert matches("Meter and elec", {"meter": Marker, "elec": Marker}, namespace=_Ns())
    assert not matches("ph::Meter", {"equip": Marker}, namespace=_Ns())
    assert parse("Meter").matches({"meter": Marker}, namespace=_Ns())


def test_compiled_filters_are_cached_and_independent():
    recs = [{"id": Ref("a"), "x": Ref("b")}, {"id": Ref("b"), "dis": "B"}]
    one = compile_filter('x->dis == "B"', resolver={r["id"]: r for r in recs}.get)
    two = compile_filter('x->dis == "B"')
    assert one(recs[0]) and not two(recs[0])


def test_frozen_and_plain_dicts_alike():
    assert matches("a and b == 2", FrozenDict(a=Marker, b=Number(2)))
    assert matches("a and b == 2", {"a": Marker, "b": Number(2)})


def test_hostile_text_is_refused_not_executed():
    # Names and literals never reach the generated source as text.
    evil = 'dis == "\\"); import os; os._exit(1) #"'
    assert not matches(evil, {"dis": "x"})
    assert matches(evil, {"dis": '"); import os; os._exit(1) #'})


# --------------------------------------------------------------------------- properties

names = st.from_regex(r"[a-z][A-Za-z0-9_]{0,5}", fullmatch=True).filter(
    lambda n: n not in ("and", "or", "not", "true", "false")
)
paths = st.lists(names, min_size=1, max_size=3).map(lambda ns: Path(tuple(ns)))
literals = st.one_of(
    st.booleans(),
    st.text(max_size=8),
    st.builds(
        Number,
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([None, "°F", "kW", "%"]),
    ),
    st.builds(Ref, st.from_regex(r"[A-Za-z0-9_:\-.~]{1,8}", fullmatch=True)),
    st.builds(Uri, st.text(max_size=8)),
    st.builds(Symbol, st.from_regex(r"[a-z][a-z\-]{0,6}", fullmatch=True)),
    st.dates(),
    st.times(),
)
leaves = st.one_of(
    st.builds(Has, paths),
    st.builds(Missing, paths),
    st.builds(Cmp, paths, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), literals),
    st.builds(IsSpec, st.from_regex(r"[A-Z][A-Za-z]{0,5}", fullmatch=True), st.none() | names),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(
            lambda xs: xs[0] & xs[1] if len(xs) == 2 else xs[0] & xs[1] & xs[2]
        ),
        st.lists(inner, min_size=2, max_size=3).map(
            lambda xs: xs[0] | xs[1] if len(xs) == 2 else xs[0] | xs[1] | xs[2]
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(filters)
def test_print_parse_is_identity(f: Any) -> None:
    text = str(f)
    assert parse(text) == f
    assert str(parse(text)) == text


records = st.dictionaries(
    st.sampled_from(["a", "b", "c", "n", "s"]),
    st.one_of(
        st.just(Marker),
        st.builds(Number, st.integers(-3, 3).map(float), st.sampled_from([None, "kW"])),
        st.sampled_from(["x", "y"]),
    ),
    max_size=5,
)


def _reference(f: Any, rec: dict[str, Any]) -> bool:
    """A direct tree walk, to check the compiled code against."""
    if isinstance(f, Has):
        return rec.get(f.path.names[0]) is not None
    if isinstance(f, Missing):
        return rec.get(f.path.names[0]) is None
    if isinstance(f, And):
        return all(_reference(o, rec) for o in f.operands)
    if isinstance(f, Or):
        return any(_reference(o, rec) for o in f.operands)
    v, lit = rec.get(f.path.names[0]), f.value
    if v is None:
        return False
    same_kind = type(v) is type(lit) and (not isinstance(v, Number) or v.unit == lit.unit)
    if f.op == "==":
        return same_kind and v == lit
    if f.op == "!=":
        return not (same_kind and v == lit)
    if not same_kind:
        return False
    a, b = (v.val, lit.val) if isinstance(v, Number) else (v, lit)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[f.op]


simple_filters = st.recursive(
    st.one_of(
        st.builds(Has, st.sampled_from(["a", "b", "c", "n"]).map(lambda n: Path((n,)))),
        st.builds(Missing, st.sampled_from(["a", "b", "c"]).map(lambda n: Path((n,)))),
        st.builds(
            Cmp,
            st.sampled_from(["n", "s"]).map(lambda n: Path((n,))),
            st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
            st.one_of(
                st.builds(Number, st.integers(-3, 3).map(float), st.sampled_from([None, "kW"])),
                st.sampled_from(["x", "y"]),
            ),
        ),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: t[0] & t[1]),
        st.tuples(inner, inner).map(lambda t: t[0] | t[1]),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(simple_filters, st.lists(records, max_size=6))
def test_compiled_matches_a_direct_walk(f: Any, recs: list[dict[str, Any]]) -> None:
    expected = [r for r in recs if _reference(f, r)]
    assert [r for r in recs if f.matches(r)] == expected
    assert select(f, recs) == expected


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parse(text)
    except FilterSyntaxError:
        pass


def test_symbol_literals_match_inside_symbol_lists():
    # Defs keep 'is' and 'tagOn' as lists of symbols; querying defs needs this.
    ahu = {
        "def": Symbol("ahu"),
        "is": [Symbol("airHandlingEquip")],
        "tagOn": [Symbol("a"), Symbol("b")],
    }
    assert matches("is == ^airHandlingEquip", ahu)
    assert matches("tagOn == ^b", ahu)
    assert not matches("tagOn == ^c", ahu)
    assert matches("def == ^ahu", ahu)
    assert matches("tagOn != ^a", ahu)  # some symbol of the list differs
