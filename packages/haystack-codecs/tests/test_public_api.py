"""The public API: its names, the module they say they are from, and the verbs the four
format modules share."""

import subprocess
import sys

import pytest

from projecthaystack import codecs
from projecthaystack.codecs import csv, json, trio, zinc
from projecthaystack.kinds import DecodeError, EncodeError, Grid, Marker, Number, Ref


def test_format_modules_are_pinned():
    assert zinc.__all__ == [
        "decode_grid",
        "decode_value",
        "encode_grid",
        "encode_grid_bytes",
        "encode_value",
        "read_value",
    ]
    assert json.__all__ == [
        "decode_grid",
        "decode_value",
        "encode_grid",
        "encode_grid_bytes",
        "encode_value",
        "encode_value_bytes",
    ]
    assert trio.__all__ == [
        "decode_dicts",
        "decode_grid",
        "encode_dicts",
        "encode_grid",
        "encode_grid_bytes",
    ]
    assert csv.__all__ == ["decode_grid", "encode_cell", "encode_grid", "encode_grid_bytes"]


def test_public_names_say_the_public_module():
    # In a fresh interpreter: a package that re-exports one of these names must not be able
    # to hide a mistake here (nor to have its own hidden by import order).
    code = (
        "import inspect\n"
        "from projecthaystack import codecs\n"
        "from projecthaystack.codecs import csv, json, trio, zinc\n"
        "bad = [(m.__name__, n, o.__module__) for m in (codecs, csv, json, trio, zinc)\n"
        "       for n in m.__all__ if inspect.isclass(o := getattr(m, n))\n"
        "       or inspect.isfunction(o) if o.__module__ != m.__name__]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


GRID = Grid.from_rows([{"id": Ref("s1"), "dis": "HQ", "site": Marker, "area": Number(10, "m²")}])
FORMATS = [zinc, json, trio, csv]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_format_shares_the_grid_verbs_and_the_bytes_and_str_rules(fmt):
    text = fmt.encode_grid(GRID)
    data = fmt.encode_grid_bytes(GRID)
    assert isinstance(text, str) and data == text.encode()
    # Decoders take bytes or str alike, a UTF-8 byte order mark included.
    for given in (text, data, "\ufeff" + text, b"\xef\xbb\xbf" + data):
        assert fmt.decode_grid(given, limits=codecs.Limits()).col_names
    with pytest.raises(DecodeError, match="input of"):
        fmt.decode_grid(data, limits=codecs.Limits(max_size=3))
    with pytest.raises(TypeError):
        fmt.decode_grid(42)
    with pytest.raises(EncodeError, match="expected a Grid"):
        fmt.encode_grid([{"a": 1}])


@pytest.mark.parametrize("fmt", [zinc, json], ids=["zinc", "json"])
def test_formats_with_a_value_form_share_its_verbs(fmt):
    value = {"dis": "HQ", "area": Number(10, "m²"), "tags": [Marker, Ref("x")]}
    text = fmt.encode_value(value)
    assert isinstance(text, str)
    assert fmt.decode_value(text) == value == fmt.decode_value(text.encode())
    with pytest.raises(EncodeError, match="is not a Haystack kind"):
        fmt.encode_value({1, 2})


def test_the_registry_gives_the_format_modules_bytes():
    for codec in codecs.CODECS:
        assert codec.encode(GRID) == {
            "zinc": zinc.encode_grid_bytes,
            "json": json.encode_grid_bytes,
            "json3": lambda g: json.encode_grid_bytes(g, version=3),
            "trio": trio.encode_grid_bytes,
            "csv": csv.encode_grid_bytes,
        }[codec.name](GRID)
