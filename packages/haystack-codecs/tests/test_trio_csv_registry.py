import datetime as dt

import pytest

import projecthaystack.codecs as codecs
from projecthaystack.codecs import (
    CODECS,
    Limits,
    UnknownFormatError,
    codec_for_mime,
    codec_for_name,
    csv,
    trio,
    zinc,
)
from projecthaystack.kinds import (
    Coord,
    DecodeError,
    EncodeError,
    FrozenDict,
    Grid,
    Marker,
    Number,
    Ref,
    Symbol,
    Uri,
)

SPEC_TRIO = """dis: "Site 1"
site
area: 3702ft²
geoAddr: "100 Main St, Richmond, VA"
geoCoord: C(37.5458,-77.4491)
strTag: OK if unquoted if only safe chars
summary:
  This is a string value that spans multiple
  lines with two or more space characters
---
name: "Site 2"
site
summary:
  Entities are separated by one more dashes
"""


def test_public_names_are_pinned():
    assert sorted(codecs.__all__) == sorted(
        [
            "CODECS",
            "DEFAULT_LIMITS",
            "IMPLEMENTATION",
            "Codec",
            "Limits",
            "UnknownFormatError",
            "codec_for_mime",
            "codec_for_name",
            "csv",
            "json",
            "negotiate",
            "parse_datetime",
            "parse_range",
            "trio",
            "zinc",
        ]
    )


def test_spec_trio_example():
    a, b = trio.decode_dicts(SPEC_TRIO)
    assert a == {
        "dis": "Site 1",
        "site": Marker,
        "area": Number(3702, "ft²"),
        "geoAddr": "100 Main St, Richmond, VA",
        "geoCoord": Coord(37.5458, -77.4491),
        "strTag": "OK if unquoted if only safe chars",
        "summary": "This is a string value that spans multiple\nlines with two or more space characters",
    }
    assert b == {
        "name": "Site 2",
        "site": Marker,
        "summary": "Entities are separated by one more dashes",
    }


def test_trio_nested_values_and_comments():
    text = """// a comment
type:list
val:[1,2,3]
---
type:dict
val:{ dis:"Dict!" foo}
---
type:grid
val:Zinc:
  ver:"3.0"
  b,a
  20,10
---
def: ^myEquip
children: [
  // the parts
  {fan, motor, equip},
  {damper, actuator, equip},
  ]
flag: true
off: false
ref: @a-1 "A One"
tz: New_York
dis: AHU-1 Discharge Temp
nested:Trio:
  a:1
  b:2
-----
"""
    recs = trio.decode_dicts(text)
    assert recs[0]["val"] == [Number(1), Number(2), Number(3)]
    assert recs[1]["val"] == {"dis": "Dict!", "foo": Marker}
    assert recs[2]["val"] == Grid.from_rows([{"b": Number(20), "a": Number(10)}])
    last = recs[3]
    assert last["def"] == Symbol("myEquip")
    assert last["children"] == [
        {"fan": Marker, "motor": Marker, "equip": Marker},
        {"damper": Marker, "actuator": Marker, "equip": Marker},
    ]
    assert last["flag"] is True and last["off"] is False
    assert last["ref"].dis == "A One"
    assert last["tz"] == "New_York"
    assert last["dis"] == "AHU-1 Discharge Temp"
    assert last["nested"] == {"a": Number(1), "b": Number(2)}
    assert type(last["nested"]) is FrozenDict


def test_a_nested_trio_value_is_one_dict_and_the_writer_uses_it_for_dicts_that_span_lines():
    grid = Grid.from_rows([{"a": Number(1)}])
    rec = {
        "id": Ref("x"),
        "spec": {"dis": "two\nlines", "site": Marker, "inner": {"g": grid}, "g": grid},
        "flat": {"a": Number(1)},
    }
    text = trio.encode_dicts([rec])
    assert "spec:Trio:\n" in text and "flat:{a:1}\n" in text
    assert trio.decode_dicts(text) == [rec]
    assert trio.decode_dicts("a:Trio:\nb:1\n") == [{"a": {}, "b": Number(1)}]


def test_a_nested_trio_value_with_several_records_is_refused():
    with pytest.raises(DecodeError, match="one record") as info:
        trio.decode_dicts("x:1\nnested:Trio:\n  a:1\n  ---\n  b:2\n")
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a:1\nBad:2\n", "expected 'name:value'", 2),
        ("a:1\na:2\n", "duplicate tag", 2),
        ("a:1\n--x\n", "only dashes", 2),
        ('a:1\nb:"open\n', "unterminated", 2),
        ("a:1\nb:[1 2]\n", "expected ','", 2),
        ('a:Zinc:\n  ver:"3.0"\n  x\n  1,2\n', "more cells", 4),
        ("a:1\n  stray\n", "expected 'name:value'", 2),
    ],
)
def test_trio_errors(text, message, line):
    with pytest.raises(DecodeError, match=message) as info:
        trio.decode_dicts(text)
    assert info.value.line == line


def test_trio_encode_forms():
    recs = [
        {
            "dis": "HQ",
            "site": Marker,
            "n": Number(1, "kW"),
            "s": "two\nlines",
            "t": "T",
            "q": " pad",
        },
        {
            "g": Grid.from_rows([{"a": Number(1)}]),
            "u": Uri("x"),
            "d": dt.date(2020, 1, 2),
            "x": None,
        },
    ]
    text = trio.encode_dicts(recs)
    assert text == (
        'dis:HQ\nsite\nn:1kW\ns:\n  two\n  lines\nt:"T"\nq:" pad"\n---\n'
        'g:Zinc:\n  ver:"3.0"\n  a\n  1\nu:`x`\nd:2020-01-02\n'
    )
    assert trio.decode_dicts(text) == [recs[0], {k: v for k, v in recs[1].items() if v is not None}]
    with pytest.raises(EncodeError, match="grid inside a list"):
        trio.encode_dicts([{"l": [Grid.from_rows([{"a": 1}])]}])
    with pytest.raises(EncodeError, match="invalid tag name"):
        trio.encode_dicts([{"Bad": 1}])


def test_trio_limits():
    with pytest.raises(DecodeError, match="nesting"):
        trio.decode_dicts("a:" + "[" * 10 + "]" * 10, limits=Limits(max_depth=5))
    with pytest.raises(DecodeError, match="over the limit"):
        trio.decode_dicts("a:1", limits=Limits(max_size=2))


def test_csv_spec_example():
    g = zinc.decode_grid(
        'ver:"3.0" projName:"test"\n'
        'dis dis:"Equip Name",equip,siteRef,installed\n'
        '"RTU-1",M,@153c600e-699a1886 "HQ",2005-06-01\n'
        '"RTU-2",M,@153c600e-699a1886 "HQ",1999-07-12\n'
    )
    assert csv.encode_grid(g) == (
        "Equip Name,equip,siteRef,installed\r\n"
        "RTU-1,✓,@153c600e-699a1886 HQ,2005-06-01\r\n"
        "RTU-2,✓,@153c600e-699a1886 HQ,1999-07-12\r\n"
    )


def test_csv_cells():
    assert csv.encode_cell(None) == "" and csv.encode_cell(True) == "true"
    assert csv.encode_cell(Uri("http://x")) == "http://x"
    assert csv.encode_cell(Ref("a")) == "@a"
    assert csv.encode_cell(Number(5, "kW")) == "5kW"
    g = Grid.from_rows([{"a": 'say "hi", ok', "b": "line\nbreak"}])
    assert csv.decode_grid(csv.encode_grid(g)).rows == g.rows


def test_csv_read():
    g = csv.decode_grid("Equip Name,equip,,2nd,equip\nRTU-1,✓,x,,y\n\nRTU-2\n")
    assert g.col_names == ("equipName", "equip", "v2", "v2nd", "equip2")
    assert g.rows == (
        {"equipName": "RTU-1", "equip": "✓", "v2": "x", "equip2": "y"},
        {"equipName": "RTU-2"},
    )
    with pytest.raises(DecodeError, match="no header"):
        csv.decode_grid("")
    with pytest.raises(DecodeError, match="3 cells for 2") as info:
        csv.decode_grid("a,b\n1,2\n1,2,3\n")
    assert info.value.line == 3
    with pytest.raises(DecodeError, match="invalid CSV"):
        csv.decode_grid('a\n"x"y\n')


@pytest.mark.parametrize(
    ("mime", "name"),
    [
        ("text/zinc", "zinc"),
        ("text/zinc; charset=utf-8", "zinc"),
        ("*/*", "zinc"),
        ("", "zinc"),
        ("application/json", "json"),
        ("Application/JSON; charset=utf-8", "json"),
        ("application/vnd.haystack+json;version=4", "json"),
        ("application/vnd.haystack+json; version=3", "json3"),
        ('application/vnd.haystack+json;version="3"', "json3"),
        ("text/trio", "trio"),
        ("text/csv", "csv"),
    ],
)
def test_codec_for_mime(mime, name):
    assert codec_for_mime(mime).name == name


@pytest.mark.parametrize(
    "mime", ["text/html", "application/vnd.haystack+json;version=5", "image/png"]
)
def test_codec_for_unknown_mime(mime):
    with pytest.raises(UnknownFormatError):
        codec_for_mime(mime)


def test_codecs_round_trip_through_bytes():
    g = Grid.from_rows([{"id": Ref("a"), "v": Number(1, "kW"), "m": Marker}], {"dis": "x"})
    for codec in CODECS:
        data = codec.encode(g)
        assert isinstance(data, bytes)
        back = codec.decode(data)
        if codec.lossless:
            assert back == g, codec.name
    assert codec_for_name("JSON3").content_type == "application/vnd.haystack+json;version=3"
    assert codec_for_name("zinc").content_type == "text/zinc; charset=utf-8"
    with pytest.raises(UnknownFormatError):
        codec_for_name("xml")


@pytest.mark.parametrize(
    ("accept", "name"),
    [
        (None, "zinc"),
        ("", "zinc"),
        ("*/*", "zinc"),
        ("application/json, text/zinc;q=0.5", "json"),
        ("text/zinc;q=0.5, application/json", "json"),
        ("text/html, */*;q=0.1", "zinc"),
        ("text/csv;q=0.2, application/vnd.haystack+json;version=3;q=0.9", "json3"),
        ("text/trio;q=oops, text/csv", "csv"),
    ],
)
def test_negotiate_follows_q_then_order(accept: str | None, name: str) -> None:
    assert codecs.negotiate(accept).name == name


@pytest.mark.parametrize("accept", ["text/html, image/*", "text/zinc;q=0", "x" * 10_000])
def test_negotiate_refuses_what_no_codec_writes(accept: str) -> None:
    with pytest.raises(codecs.UnknownFormatError, match="none of the accepted types"):
        codecs.negotiate(accept)
