import datetime as dt
import math

import pytest

from projecthaystack.codecs import Limits, zinc
from projecthaystack.kinds import (
    NA,
    Coord,
    DecodeError,
    EncodeError,
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

NY = tz_from_name("New_York")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("N", None),
        ("M", Marker),
        ("R", Remove),
        ("NA", NA),
        ("T", True),
        ("F", False),
        ("1", Number(1)),
        ("-34", Number(-34)),
        ("10_000", Number(10000)),
        ("5.4e-45", Number(5.4e-45)),
        ("5.4E+8kW", Number(5.4e8, "kW")),
        ("9.23kg", Number(9.23, "kg")),
        ("74.2°F", Number(74.2, "°F")),
        ("4min", Number(4, "min")),
        ("-23.45m²", Number(-23.45, "m²")),
        ("10.6EER", Number(10.6, "EER")),
        ("3E", Number(3, "E")),
        ("2e", Number(2, "e")),
        ("1e3EER", Number(1000, "EER")),
        ("275gal/min", Number(275, "gal/min")),
        ("12$", Number(12, "$")),
        ("50%", Number(50, "%")),
        ("INF", Number(math.inf)),
        ("-INF", Number(-math.inf)),
        ("NaN", Number(math.nan)),
        ('"hello"', "hello"),
        ('"foo\\nbar\\""', 'foo\nbar"'),
        ('"\\b\\f\\n\\r\\t\\"\\\\\\$"', '\b\f\n\r\t"\\$'),
        ('"\\u00e9\\u2713"', "é✓"),
        ('"caf\u00e9 ✓"', "café ✓"),
        ("`http://project-haystack.com/`", Uri("http://project-haystack.com/")),
        ("`file \\#2`", Uri("file \\#2")),
        ("`a\\`b`", Uri("a`b")),
        ("@17eb0f3a-ad607713", Ref("17eb0f3a-ad607713")),
        ('@xyz "Display Name"', Ref("xyz", "Display Name")),
        ("^hot-water", Symbol("hot-water")),
        ("2010-03-13", dt.date(2010, 3, 13)),
        ("08:12:05", dt.time(8, 12, 5)),
        ("08:12:05.5", dt.time(8, 12, 5, 500000)),
        ("08:12", dt.time(8, 12)),
        ("C(37.55,-77.45)", Coord(37.55, -77.45)),
        ('Color("red")', XStr("Color", "red")),
        ('Bin("text/plain")', XStr("Bin", "text/plain")),
        ('C("not a coord")', XStr("C", "not a coord")),
        ("[1, 2, 3]", [Number(1), Number(2), Number(3)]),
        ("[1,2,]", [Number(1), Number(2)]),
        ("[]", []),
        (
            '{dis:"Building" site area:35000ft²}',
            {"dis": "Building", "site": Marker, "area": Number(35000, "ft²")},
        ),
        ("{a:1, b:2,}", {"a": Number(1), "b": Number(2)}),
        ("{a:N}", {}),
    ],
)
def test_scalar_literals(text, value):
    decoded = zinc.decode_value(text)
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, dict)


@pytest.mark.parametrize(
    ("text", "iso", "tz"),
    [
        ("2010-03-11T23:55:00-05:00 New_York", "2010-03-11T23:55:00-05:00", "America/New_York"),
        ("2009-11-09T15:39:00Z", "2009-11-09T15:39:00+00:00", "Etc/UTC"),
        ("2010-01-08T05:00:00Z UTC", "2010-01-08T05:00:00+00:00", "Etc/UTC"),
        (
            "2010-11-28T07:23:02.773-08:00 Los_Angeles",
            "2010-11-28T07:23:02.773000-08:00",
            "America/Los_Angeles",
        ),
        ("2010-11-28T23:19:29.741+08:00 Taipei", "2010-11-28T23:19:29.741000+08:00", "Asia/Taipei"),
        ("2010-11-28T18:21:58+03:00 GMT-3", "2010-11-28T18:21:58+03:00", "Etc/GMT-3"),
        ("2010-11-28T12:22:27-03:00 GMT+3", "2010-11-28T12:22:27-03:00", "Etc/GMT+3"),
        (
            "2020-07-17T16:55:42.123456789-04:00 New_York",
            "2020-07-17T16:55:42.123456-04:00",
            "America/New_York",
        ),
    ],
)
def test_datetimes(text, iso, tz):
    val = zinc.decode_value(text)
    assert val.isoformat() == iso
    assert val.tzinfo.key == tz


def test_datetime_keeps_the_instant_when_offset_and_zone_disagree():
    # The offset is authoritative for the instant; the zone then gives the wall time.
    val = zinc.decode_value("2020-07-17T12:00:00Z New_York")
    assert val == dt.datetime(2020, 7, 17, 12, tzinfo=dt.UTC)
    assert val.hour == 8


def test_a_timezone_name_starts_upper_case_so_a_marker_may_follow_a_datetime():
    # Zinc: a timezone name starts with an upper-case letter; 'foo' is the next tag.
    val = zinc.decode_value("{a:2009-02-03T04:05:06Z foo}")
    assert val == {"a": dt.datetime(2009, 2, 3, 4, 5, 6, tzinfo=dt.UTC), "foo": Marker}
    assert val["a"].tzinfo.key == "Etc/UTC"
    meta = zinc.decode_grid('ver:"3.0" ts:2009-02-03T04:05:06-05:00 New_York hisOk\na\nN\n').meta
    assert meta["ts"].tzinfo.key == "America/New_York" and meta["hisOk"] is Marker


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+09:00 Tokyo",
        "9999-12-31T23:59:59-05:00 New_York",
        "9999-12-31T23:00:00Z Tokyo",
    ],
)
def test_a_datetime_past_the_calendar_edge_in_its_zone_is_a_decode_error(text):
    with pytest.raises(DecodeError, match="outside the years 1 to 9999"):
        zinc.decode_value(text)
    with pytest.raises(DecodeError, match="outside the years 1 to 9999"):
        zinc.decode_grid(f'ver:"3.0"\nts\n{text}\n')


def test_spec_grid_example():
    text = (
        'ver:"3.0" database:"test" dis:"Site Energy Summary"\n'
        'siteName dis:"Sites", val dis:"Value" unit:"kW"\n'
        '"Site 1", 356.214kW\n'
        '"Site 2", 463.028kW\n'
    )
    g = zinc.decode_grid(text)
    assert g.meta == {"database": "test", "dis": "Site Energy Summary"}
    assert g.col("val").meta == {"dis": "Value", "unit": "kW"}
    assert g.rows == (
        {"siteName": "Site 1", "val": Number(356.214, "kW")},
        {"siteName": "Site 2", "val": Number(463.028, "kW")},
    )


def test_sparse_rows_and_single_column_nulls():
    g = zinc.decode_grid('ver:"3.0"\na,b,c,d,e,f\n"a",N,2,N,N,"z"\n"a",,2,,,"z"\n')
    assert g[0] == g[1] == {"a": "a", "c": Number(2), "f": "z"}
    g = zinc.decode_grid('ver:"3.0"\nval\nN\n1\n')
    assert g.rows == ({}, {"val": Number(1)})
    assert zinc.encode_grid(g) == 'ver:"3.0"\nval\nN\n1\n'


def test_nested_collections_and_ver2_grids():
    text = (
        'ver:"3.0"\n'
        "type,val\n"
        '"list",[1,2,3]\n'
        '"dict",{dis:"Dict!" foo}\n'
        '"grid",<<\n'
        '  ver:"2.0"\n'
        "  a,b\n"
        "  1,2\n"
        "  3,4\n"
        "  >>\n"
        '"scalar","simple string"\n'
    )
    g = zinc.decode_grid(text)
    assert len(g) == 4
    assert g[0]["val"] == [Number(1), Number(2), Number(3)]
    assert g[1]["val"] == {"dis": "Dict!", "foo": Marker}
    inner = g[2]["val"]
    assert isinstance(inner, Grid) and inner.rows == (
        {"a": Number(1), "b": Number(2)},
        {"a": Number(3), "b": Number(4)},
    )
    assert g[3]["val"] == "simple string"
    assert zinc.decode_grid(zinc.encode_grid(g)) == g


def test_cells_with_commas_and_spaces_take_the_full_parser():
    g = zinc.decode_grid('ver:"3.0"\na,b,c\n"x, y" , {p:1, q:2},C(1,2)\n  @r "A, B",[1,2],`u,v`\n')
    assert g[0] == {"a": "x, y", "b": {"p": Number(1), "q": Number(2)}, "c": Coord(1, 2)}
    assert g[1] == {"a": Ref("r"), "b": [Number(1), Number(2)], "c": Uri("u,v")}
    assert g[1]["a"].dis == "A, B"


def test_crlf_lines_and_blank_lines():
    g = zinc.decode_grid('ver:"3.0"\r\na,b\r\n1,2\r\n\r\n3,4\r\n')
    assert g.column("a") == [Number(1), Number(3)]


def test_encode_grid_escapes_and_meta():
    g = Grid(
        ["id", "s"],
        [{"id": Ref("a", 'Q"uote'), "s": "$5\n\\"}, {"s": "\x01"}],
        {"dis": "x", "flag": Marker, "ver": "9"},
    )
    text = zinc.encode_grid(g)
    assert text == 'ver:"3.0" dis:"x" flag\nid,s\n@a "Q\\"uote","\\$5\\n\\\\"\n,"\\u0001"\n'
    assert zinc.decode_grid(text).rows == g.rows


def test_encode_value_forms():
    when = dt.datetime(2020, 7, 17, 16, 55, 42, 977000, tzinfo=NY)
    assert zinc.encode_value(when) == "2020-07-17T16:55:42.977-04:00 New_York"
    utc = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert zinc.encode_value(utc) == "2020-01-01T00:00:00Z UTC"
    assert zinc.encode_value(dt.time(1, 2, 3, 4)) == "01:02:03.000004"
    assert zinc.encode_value(Number(math.inf, "°F")) == "INF°F"
    assert zinc.decode_value("INF°F") == Number(math.inf, "°F")
    assert zinc.decode_value("-INF°F") == Number(-math.inf, "°F")
    assert zinc.encode_value(Uri("a`b\\c")) == "`a\\`b\\\\c`"
    assert zinc.encode_value(3) == "3" and zinc.encode_value(2.5) == "2.5"
    assert zinc.encode_value((1, "a")) == '[1,"a"]'
    assert zinc.encode_value(Coord(1.5, -2)) == "C(1.5,-2)"


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2020, 1, 1),
        {1, 2},
        object(),
        {"Bad": 1},
        dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(minutes=30))),
    ],
)
def test_encode_rejects_what_zinc_cannot_carry(value):
    with pytest.raises(EncodeError):
        zinc.encode_value(value)


def test_a_grid_without_columns_is_written_as_the_empty_grid():
    assert zinc.encode_grid(Grid([], [])) == 'ver:"3.0"\nempty\n'
    assert zinc.decode_grid(zinc.encode_grid(Grid([], []))) == Grid.empty()


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        ('ver:"3.0"\na,b\n1,"open\n', "unterminated", 3, 3),
        ('ver:"3.0"\na,b\n1,2,3\n', "more cells", 3, 5),
        ('ver:"3.0"\na,a\n', "duplicate column", 2, 3),
        ('ver:"4.0"\na\n', "unsupported Zinc version", 1, 5),
        ("a,b\n1,2\n", "expected 'ver:'", 1, 1),
        ('ver:"3.0"\nA\n', "expected a tag name", 2, 1),
        ('ver:"3.0"\na\n@bad id\n', "end of the line", 3, 6),
        ('ver:"3.0"\na\n"\\q"\n', "invalid escape", 3, 1),
        ('ver:"3.0"\na\nFoo\n', "unknown keyword", 3, 1),
        ('ver:"3.0"\na\nC(91,0)\n', "lat", 3, 1),
        ('ver:"3.0"\na\nC(1;2)\n', "invalid Coord", 3, 1),
        ('ver:"3.0"\na\n1kW2\n', "end of the line", 3, 4),
        ('ver:"3.0"\na\n[1 2]\n', "expected ','", 3, 4),
        ('ver:"3.0"\na\n<<\nver:"3.0"\nb\n1\n', "no closing", 7, 1),
        ('ver:"3.0"\na\n2020-13-01\n', "month", 3, 1),
        ('ver:"3.0"\na\n{x:1 x:2}\n', "duplicate tag", 3, 6),
        ('ver:"3.0"\na\n2020-01-01T00:00:00Z Nowhere\n', "unknown timezone", 3, 1),
        ('ver:"3.0" dis:"x"foo\na\n', "space between tags", 1, 18),
    ],
)
def test_decode_errors_say_where(text, message, line, col):
    with pytest.raises(DecodeError, match=message) as info:
        zinc.decode_grid(text)
    assert (info.value.line, info.value.col) == (line, col)
    assert isinstance(info.value, ValueError)


def test_decode_value_errors():
    with pytest.raises(DecodeError, match="after the value"):
        zinc.decode_value("1 2")
    with pytest.raises(DecodeError, match="end of input"):
        zinc.decode_value("")
    with pytest.raises(DecodeError, match="not UTF-8"):
        zinc.decode_grid(b'ver:"3.0"\na\n"\xff"\n')
    with pytest.raises(TypeError):
        zinc.decode_grid(3)  # type: ignore[arg-type]


def test_limits_on_depth_and_size():
    deep = "[" * 70 + "]" * 70
    with pytest.raises(DecodeError, match="nesting deeper than 64"):
        zinc.decode_value(deep)
    assert zinc.decode_value("[[1]]", limits=Limits(max_depth=2)) == [[Number(1)]]
    with pytest.raises(DecodeError, match="nesting deeper than 1"):
        zinc.decode_grid('ver:"3.0"\na\n[[1]]\n', limits=Limits(max_depth=1))
    with pytest.raises(DecodeError, match="over the limit"):
        zinc.decode_grid(b'ver:"3.0"\na\n1\n', limits=Limits(max_size=5))
    # Deep nesting far past Python's recursion limit is refused, not a crash.
    with pytest.raises(DecodeError):
        zinc.decode_value("[" * 100_000)


def test_bom_is_dropped():
    assert len(zinc.decode_grid('\ufeffver:"3.0"\na\n1\n'.encode())) == 1


def test_historic_offsets_with_seconds_round_trip():
    # Zone rules before standard time have offsets with seconds (local mean time).
    old = dt.datetime(1905, 1, 1, 5, 21, 10, tzinfo=tz_from_name("Kolkata"))
    text = zinc.encode_value(old)
    assert text == "1905-01-01T05:21:10+05:21:10 Kolkata"
    assert zinc.decode_value(text) == old


def test_unit_characters_are_the_grammar_set_for_every_code_point() -> None:
    # The unit class is written as its ASCII complement so that it compiles quickly at
    # import; it must still be exactly the grammar's set, letters % _ / $ and non-ASCII.
    import re

    from projecthaystack.codecs import _zinc_read

    every = "".join(map(chr, range(0x110000)))
    grammar = re.compile(r"[A-Za-z%_/$\u0080-\U0010ffff]")
    assert re.sub(_zinc_read._UNIT_CHARS, "", every) == grammar.sub("", every)
    assert zinc.decode_value("1\U0001f321") == Number(1.0, "\U0001f321")
    assert zinc.decode_value("2%RH") == Number(2.0, "%RH")
