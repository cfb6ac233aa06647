import datetime as dt
import math

import pytest

from projecthaystack.codecs import Limits, json, zinc
from projecthaystack.kinds import (
    NA,
    Coord,
    DecodeError,
    EncodeError,
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

SPEC_V4 = """{
  "_kind": "grid",
  "meta": { "ver": "3.0", "foo": "bar" },
  "cols": [
    { "name": "dis", "meta": { "dis": "Equip Name"} },
    { "name": "equip" },
    { "name": "siteRef" },
    { "name": "installed" }
  ],
  "rows": [
    { "dis": "RTU-1", "equip": { "_kind": "marker" },
      "siteRef": { "_kind": "ref", "val": "153c-699a", "dis": "HQ"},
      "installed": { "_kind": "date", "val": "2005-06-01" } },
    { "dis": "RTU-2", "equip": { "_kind": "marker" },
      "siteRef": { "_kind": "ref", "val": "153c-699b", "dis": "Library"},
      "installed": { "_kind": "date", "val": "1999-07-12" } }
  ]
}"""

SPEC_ZINC = (
    'ver:"3.0" foo:"bar"\n'
    'dis dis:"Equip Name",equip,siteRef,installed\n'
    '"RTU-1",M,@153c-699a "HQ",2005-06-01\n'
    '"RTU-2",M,@153c-699b "Library",1999-07-12\n'
)


def test_spec_v4_example_equals_its_zinc():
    assert json.decode_grid(SPEC_V4) == zinc.decode_grid(SPEC_ZINC)


def test_spec_v3_example():
    text = """{"meta": {"ver":"3.0", "projName":"test"},
      "cols":[{"name":"dis", "dis":"Equip Name"}, {"name":"equip"}, {"name":"siteRef"}, {"name":"installed"}],
      "rows":[
        {"dis":"RTU-1", "equip":"m:", "siteRef":"r:153c-699a HQ", "installed":"d:2005-06-01"},
        {"dis":"RTU-2", "equip":"m:", "siteRef":"r:153c-699a HQ", "installed":"d:1999-07-12"}]}"""
    g = json.decode_grid(text, version=3)
    assert g.meta == {"projName": "test"}
    assert g.col("dis").meta == {"dis": "Equip Name"}
    assert g[0]["siteRef"] == Ref("153c-699a") and g[0]["siteRef"].dis == "HQ"
    assert g[1]["installed"] == dt.date(1999, 7, 12)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("123.45", Number(123.45)),
        ('{"_kind":"number","val":123.45}', Number(123.45)),
        ('{"_kind":"number","val":123,"unit":"m"}', Number(123, "m")),
        ('{"_kind":"number","val":"INF"}', Number(math.inf)),
        ('{"_kind":"number","val":"-INF"}', Number(-math.inf)),
        ('{"_kind":"number","val":"NaN"}', Number(math.nan)),
        ('{"_kind":"marker"}', Marker),
        ('{"_kind" : "marker"}', Marker),
        ('{"_kind":"remove"}', Remove),
        ('{"_kind":"na"}', NA),
        ('{"_kind":"ref","val":"abc-def"}', Ref("abc-def")),
        ('{"_kind":"date","val":"2021-03-22"}', dt.date(2021, 3, 22)),
        ('{"_kind":"time","val":"17:19:23"}', dt.time(17, 19, 23)),
        (
            '{"_kind":"uri","val":"https://project-haystack.org"}',
            Uri("https://project-haystack.org"),
        ),
        ('{"_kind":"coord","lat":50.979603,"lng":10.318789}', Coord(50.979603, 10.318789)),
        ('{"_kind":"xstr","type":"Span","val":"today"}', XStr("Span", "today")),
        ('{"_kind":"symbol","val":"site"}', Symbol("site")),
        ("[]", []),
        (
            '[true, 123, "a string", {"site": {"_kind":"marker"}, "dis":"Carnegie Hall"}]',
            [True, Number(123), "a string", {"site": Marker, "dis": "Carnegie Hall"}],
        ),
        ('{"_kind":"dict"}', {}),
        (
            '{"site": {"_kind": "marker"}, "dis": "Kennedy Center", "Ignore": "This tag should be ignored"}',
            {"site": Marker, "dis": "Kennedy Center"},
        ),
        ('"\\u0000"', "\x00"),
        ('[{"_kind":"marker"}, "\\u0000"]', [Marker, "\x00"]),
        ('{"a": null}', {}),
    ],
)
def test_v4_values(text, value):
    assert json.decode_value(text) == value


def test_v4_datetimes():
    v = json.decode_value(
        '{"_kind":"dateTime","val":"2021-03-22T13:57:00.381-04:00","tz":"New_York"}'
    )
    assert v.tzinfo == tz_from_name("New_York") and v.microsecond == 381000
    v = json.decode_value('{"_kind":"dateTime","val":"2021-03-22T17:56:05.411Z"}')
    assert v.tzinfo.key == "Etc/GMT" and v.hour == 17


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"m:"', Marker),
        ('"-:"', Remove),
        ('"z:"', NA),
        ('"n:45.5"', Number(45.5)),
        ('"n:73.2 °F"', Number(73.2, "°F")),
        ('"n:-INF"', Number(-math.inf)),
        ('"n:NaN"', Number(math.nan)),
        ('"r:abc-123 RTU #3"', Ref("abc-123", "RTU #3")),
        ('"y:hot-water"', Symbol("hot-water")),
        ('"y:lib:ph"', Symbol("lib:ph")),
        ('"hello"', "hello"),
        ('"s:hello"', "hello"),
        ('"s:a:b"', "a:b"),
        ('"d:2014-01-03"', dt.date(2014, 1, 3)),
        ('"h:23:59"', dt.time(23, 59)),
        ('"u:http://project-haystack.org/"', Uri("http://project-haystack.org/")),
        ('"c:37.545,-77.449"', Coord(37.545, -77.449)),
        ('"x:Type:value"', XStr("Type", "value")),
        ('"b:text/plain"', XStr("Bin", "text/plain")),
        ('"q:unknown prefix"', "q:unknown prefix"),
        ("12", Number(12)),
    ],
)
def test_v3_values(text, value):
    assert json.decode_value(text, version=3) == value


def test_v3_datetime():
    v = json.decode_value('"t:2015-06-08T15:47:41-04:00 New_York"', version=3)
    assert v == dt.datetime(2015, 6, 8, 15, 47, 41, tzinfo=tz_from_name("New_York"))


@pytest.mark.parametrize(
    "val",
    [
        "2021-03-22T17:56:05",  # no offset: the host's zone would be a guess
        "2021-03-22T17:56:05.411",
        "2021-03-22 17:56:05Z",  # not the ISO form Haystack writes
        "20210322T175605Z",
        "2021-W12-1T17:56:05Z",
    ],
)
def test_a_datetime_without_an_offset_or_in_another_form_is_refused(val):
    v4 = '{"_kind":"grid","cols":[{"name":"t"}],"rows":[{"t":{"_kind":"dateTime","val":"%s","tz":"New_York"}}]}'
    with pytest.raises(DecodeError, match="dateTime") as info:
        json.decode_grid(v4 % val)
    assert info.value.path == "rows[0].t"
    v3 = '{"meta":{"ver":"3.0"},"cols":[{"name":"t"}],"rows":[{"t":"t:%s New_York"}]}'
    with pytest.raises(DecodeError, match="dateTime") as info:
        json.decode_grid(v3 % val, version=3)
    assert info.value.path == "rows[0].t"
    with pytest.raises(DecodeError, match="dateTime"):
        json.decode_value('{"_kind":"dateTime","val":"' + val + '"}')


def test_a_datetime_past_the_calendar_edge_in_its_zone_is_a_decode_error():
    v4 = '{"_kind":"dateTime","val":"9999-12-31T23:00:00Z","tz":"Tokyo"}'
    with pytest.raises(DecodeError, match="outside the years 1 to 9999"):
        json.decode_value(v4)
    with pytest.raises(DecodeError, match="outside the years 1 to 9999"):
        json.decode_value('"t:0001-01-01T00:00:00+09:00 Tokyo"', version=3)


@pytest.mark.parametrize("text", ["http://x", "a:b", "12:30", "ends:", ":", "x : y"])
def test_v3_writes_every_str_with_a_colon_with_the_s_prefix(text):
    assert json.encode_value(text, version=3) == '"s:' + text + '"'
    grid = Grid.from_rows([{"s": text}], {"dis": text})
    out = json.encode_grid(grid, version=3)
    assert out.count('"s:' + text + '"') == 2
    assert json.decode_grid(out, version=3) == grid
    assert json.encode_value("no colon", version=3) == '"no colon"'


def test_encode_v4_shapes():
    assert json.encode_value(Number(72.0)) == "72"
    assert json.encode_value(Number(72.5)) == "72.5"
    assert json.encode_value(Number(math.inf, "kW")) == '{"_kind":"number","val":"INF","unit":"kW"}'
    assert json.decode_value(json.encode_value(Number(1e300))) == Number(1e300)
    assert json.encode_value(Ref("a", "A")) == '{"_kind":"ref","val":"a","dis":"A"}'
    when = dt.datetime(2021, 3, 22, 13, 57, tzinfo=tz_from_name("New_York"))
    assert (
        json.encode_value(when)
        == '{"_kind":"dateTime","val":"2021-03-22T13:57:00-04:00","tz":"New_York"}'
    )
    assert json.encode_value({"a": None, "b": 1}) == '{"b":1}'
    g = Grid.from_rows([{"a": Marker}], {"ver": "2.0", "x": 1})
    assert json.encode_grid(g).startswith('{"_kind":"grid","meta":{"ver":"3.0","x":1}')


def test_encode_v3_shapes():
    assert json.encode_value("a:b", version=3) == '"s:a:b"'
    assert json.encode_value("plain", version=3) == '"plain"'
    assert json.encode_value(Number(5, "ft²"), version=3) == '"n:5 ft²"'
    assert json.encode_value(Ref("x", "Y Z"), version=3) == '"r:x Y Z"'
    g = Grid([("a"), "b"], [{"a": Marker}], {"dis": "d"})
    out = json.encode_grid(g, version=3)
    assert (
        out
        == '{"meta":{"ver":"3.0","dis":"d"},"cols":[{"name":"a"},{"name":"b"}],"rows":[{"a":"m:"}]}'
    )


@pytest.mark.parametrize("bad", [{1, 2}, object(), {"Bad": 1}, dt.datetime(2020, 1, 1)])
@pytest.mark.parametrize("version", [3, 4])
def test_encode_rejects(bad, version):
    with pytest.raises(EncodeError):
        json.encode_value(bad, version=version)


@pytest.mark.parametrize(
    ("text", "message", "path"),
    [
        ("[1,", "invalid JSON", None),
        ("[]", "must be an object", ""),
        ('{"_kind":"dict"}', "expected a grid", "_kind"),
        ('{"_kind":"grid","cols":{}}', "'cols' must be a list", ""),
        ('{"_kind":"grid","cols":[{"name":"A"}]}', "invalid column name", "cols[0]"),
        ('{"_kind":"grid","cols":[{"name":"a"},{"name":"a"}]}', "duplicate column", "cols[1]"),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":1},{"b":2}]}',
            "not columns",
            "rows[1]",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":{"_kind":"ref","val":"x y"}}]}',
            "invalid Ref id",
            "rows[0].a",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":[1,{"_kind":"bogus"}]}]}',
            "unknown _kind",
            "rows[0].a[1]",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":{"x":{"_kind":"date","val":"20200101"}}}]}',
            "invalid date",
            "rows[0].a.x",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a","meta":{"u":{"_kind":"number","val":"big"}}}]}',
            "invalid number",
            "cols[0].meta.u",
        ),
        (
            '{"_kind":"grid","meta":{"x":{"_kind":"coord","lat":100,"lng":0}},"cols":[]}',
            "lat",
            "meta.x",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":{"_kind":"ref"}}]}',
            "string 'val'",
            "rows[0].a",
        ),
        (
            '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":{"_kind":"dateTime","val":"2020-01-01T00:00:00Z","tz":"Nowhere"}}]}',
            "unknown timezone",
            "rows[0].a",
        ),
        ('{"_kind":"grid","cols":[{"name":"a"}],"rows":[5]}', "row must be an object", "rows[0]"),
    ],
)
def test_v4_errors_name_the_path(text, message, path):
    with pytest.raises(DecodeError, match=message) as info:
        json.decode_grid(text)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("text", "message", "path"),
    [
        (
            '{"meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":"n:abc"}]}',
            "invalid number",
            "rows[0].a",
        ),
        (
            '{"meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":"c:1"}]}',
            "invalid coord",
            "rows[0].a",
        ),
        (
            '{"meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":["d:2020-02-30"]}]}',
            "day",
            "rows[0].a[0]",
        ),
        (
            '{"meta":{"ver":"3.0"},"cols":[{"name":"a"}],"rows":[{"a":"x:nocolon"}]}',
            "invalid xstr",
            "rows[0].a",
        ),
    ],
)
def test_v3_errors_name_the_path(text, message, path):
    with pytest.raises(DecodeError, match=message) as info:
        json.decode_grid(text, version=3)
    assert info.value.path == path


def test_limits():
    deep = '{"_kind":"grid","cols":[{"name":"a"}],"rows":[{"a":' + "[" * 70 + "]" * 70 + "}]}"
    with pytest.raises(DecodeError, match="nesting deeper than 64"):
        json.decode_grid(deep)
    with pytest.raises(DecodeError, match="nesting deeper than 3"):
        json.decode_value("[[[[1]]]]", limits=Limits(max_depth=3))
    with pytest.raises(DecodeError, match="over the limit"):
        json.decode_grid(b"{}", limits=Limits(max_size=1))
    with pytest.raises(DecodeError):
        json.decode_value("[" * 200_000 + "]" * 200_000)
    with pytest.raises(TypeError):
        json.decode_value(12)  # type: ignore[arg-type]


def test_nested_grid_v3_and_v4():
    inner = Grid.from_rows([{"a": Number(1)}])
    outer = Grid.from_rows([{"g": inner, "l": [inner]}])
    for version in (3, 4):
        assert json.decode_grid(json.encode_grid(outer, version=version), version=version) == outer


def test_plain_rows_are_written_as_they_stand_and_still_checked():
    g = Grid.from_rows([{"a": FrozenDict({"b": Marker, "r": Ref("x")})}, {"n": Number(1)}])
    first = json.encode_grid(g)
    assert first == json.encode_grid(g)  # the second time the memo on each row is used
    assert json.decode_grid(first) == g
    bad = Grid.from_rows([{"a": FrozenDict({"Bad": Marker})}])
    with pytest.raises(EncodeError, match="invalid tag name"):
        json.encode_grid(bad)
    with pytest.raises(EncodeError, match="invalid tag name"):
        json.encode_grid(bad)  # no memo hides it the second time


def test_big_grids_encode_a_column_at_a_time_with_the_same_result() -> None:
    import datetime as dt

    from projecthaystack.codecs._json4_write import _COLUMNAR_MIN
    from projecthaystack.kinds import Grid, Marker, Number, Ref, tz_from_name

    ny, chi = tz_from_name("New_York"), tz_from_name("Chicago")
    t0 = dt.datetime(2026, 3, 8, 6, tzinfo=ny)  # across a DST change
    n = _COLUMNAR_MIN + 10
    cases = {
        "history": [
            {"ts": t0 + dt.timedelta(minutes=15 * i), "val": Number(i / 3, "kW")} for i in range(n)
        ],
        "unitless and special": [
            {"ts": t0 + dt.timedelta(hours=i), "val": Number(float("nan") if i == 7 else i)}
            for i in range(n)
        ],
        "mixed zones and units": [
            {
                "ts": (t0 + dt.timedelta(hours=i)).astimezone(chi if i % 2 else ny),
                "val": Number(i, "kW" if i % 3 else "W"),
            }
            for i in range(n)
        ],
        "sub-second and mixed kinds": [
            {
                "ts": t0 + dt.timedelta(milliseconds=1500 * i),
                "val": [Number(i), "x", True, Marker, Ref("r"), None][i % 5],
            }
            for i in range(n)
        ],
        "sparse": [{"a": Number(i)} if i % 2 else {"b": "x"} for i in range(n)],
    }
    for name, rows in cases.items():
        grid = Grid.from_rows(rows)
        assert json.decode_grid(json.encode_grid(grid)) == grid, name
        small = Grid.from_rows(rows[:3])
        assert json.decode_grid(json.encode_grid(small)) == small, name


def test_kinds_carry_no_encoder_state_on_rows():
    # The JSON writer keeps its entries in the row's generic memo, in types of its own.
    assert set(FrozenDict.__slots__) == {"_keys", "memo"}
    row = FrozenDict(a=Marker)
    json.encode_grid(Grid.from_rows([row]))
    assert type(row.memo).__module__.startswith("projecthaystack.codecs.")


def test_rows_written_twice_are_copied_and_another_tools_memo_is_no_hit():
    rows = [FrozenDict(id=Ref(f"r{i}"), dis=f"Row {i}") for i in range(5)]
    grid = Grid.from_rows(rows)
    first = json.encode_grid_bytes(grid)
    assert json.encode_grid_bytes(grid) == first  # the second write keeps each row's JSON
    assert json.encode_grid_bytes(grid) == first  # the third copies it
    assert [r.memo.haystack_json4 for r in rows] == [json.encode_value(r).encode() for r in rows]
    reordered = Grid.from_rows(rows[::-1])
    assert json.encode_grid_bytes(reordered) == json.encode_grid_bytes(
        Grid.from_rows([dict(r) for r in rows[::-1]])
    )

    class Other:  # another tool's entry, even one with the same attribute names
        json4 = b'"not this"'
        plain = True

    rows[2].memo = Other()
    assert json.encode_grid_bytes(grid) == first
    rows[3].memo = b"bytes"
    assert json.encode_grid_bytes(grid) == first
