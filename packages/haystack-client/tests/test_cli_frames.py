import datetime as dt
import io
import json
import subprocess
import sys

import pytest

from projecthaystack.client import Client, his_frame, to_pandas, to_polars
from projecthaystack.client._cli import main
from projecthaystack.codecs import json as hjson
from projecthaystack.codecs import zinc
from projecthaystack.kinds import Col, Grid, Marker, Number, Ref, tz_from_name

NY = tz_from_name("New_York")


def test_convert_between_files(tmp_path, capsys):
    grid = Grid.from_rows(
        [{"id": Ref("a", "A"), "site": Marker, "area": Number(10, "ft²")}], {"dis": "x"}
    )
    src = tmp_path / "in.zinc"
    src.write_text(zinc.encode_grid(grid))
    out = tmp_path / "out.json"
    assert main(["convert", str(src), str(out)]) == 0
    assert hjson.decode_grid(out.read_bytes()) == grid
    assert main(["convert", str(out), "-", "--to", "trio"]) == 0
    assert "area:10ft²" in capsys.readouterr().out
    assert main(["convert", str(src), str(tmp_path / "g.csv")]) == 0
    assert (tmp_path / "g.csv").read_text().startswith("id,site,area")


def test_convert_errors(tmp_path, capsys):
    bad = tmp_path / "bad.zinc"
    bad.write_text('ver:"3.0"\na\n"open\n')
    assert main(["convert", str(bad), str(tmp_path / "x.json")]) == 1
    assert "unterminated" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", str(bad), str(tmp_path / "x.unknown")])
    assert main(["convert", str(tmp_path / "missing.zinc"), "-", "--to", "zinc"]) == 1


def test_queries_against_a_server(server, capsys):
    base = ["--url", server.url, "--user", "user", "--password", "pencil"]
    assert main([*base, "about"]) == 0
    assert "whoami" in capsys.readouterr().out
    assert main([*base, "--output", "csv", "nav"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("@s1 HQ")
    assert main([*base, "--output", "zinc", "his", "@t1", "today"]) == 0
    assert capsys.readouterr().out.startswith('ver:"3.0"')
    assert main(["--url", server.url, "--user", "user", "--password", "wrong", "about"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("haystack: login at ") and "refused user 'user'" in err
    with pytest.raises(SystemExit):
        main(["about"])


def test_options_go_before_or_after_the_command(server, capsys):
    # The README's own example: options after the subcommand.
    opts = ["--url", server.url, "--user", "user", "--password", "pencil"]
    assert main(["read", "point and temp", "--limit", "10", "-o", "csv", *opts]) == 0
    after = capsys.readouterr().out
    assert main([*opts, "-o", "csv", "read", "point and temp", "--limit", "10"]) == 0
    assert capsys.readouterr().out == after and after.startswith("id,")
    # Given on both sides, the one after the command wins.
    assert main(["--output", "zinc", *opts, "about", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["whoami"] == "user"


def _write_his(server) -> None:
    ts = [dt.datetime(2024, 1, 1, h, tzinfo=NY) for h in range(3)]
    with Client(server.url, "user", "pencil") as c:
        c.his_write("t1", [(t, Number(70 + i, "°F")) for i, t in enumerate(ts)])


def test_csv_that_pandas_reads_without_help(server, capsys):
    pd = pytest.importorskip("pandas", reason="install the [pandas] extra (pip install pandas)")
    _write_his(server)
    opts = ["--url", server.url, "--user", "user", "--password", "pencil", "-o", "csv"]
    assert main(["his", "@t1", "2024-01-01", *opts]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    # Numbers without units, the unit in the header; ISO 8601 timestamps.
    assert list(frame.columns) == ["ts", "val [°F]"]
    assert frame["val [°F]"].dtype.kind in "if" and list(frame["val [°F]"]) == [70, 71, 72]
    assert frame["ts"][0] == "2024-01-01T00:00:00-05:00"
    stamps = pd.to_datetime(frame["ts"])
    assert stamps[1] - stamps[0] == pd.Timedelta(hours=1)
    assert main(["read", "point", *opts]) == 0
    points = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert "curVal [°F]" in points.columns and points["curVal [°F]"].dropna().tolist() == [55]
    # A column whose Numbers have different units keeps each unit in its cell.
    server.state.records.append(
        {"id": Ref("x1"), "point": Marker, "curVal": Number(40, "%"), "kind": "Number"}
    )
    assert main(["read", "point", *opts]) == 0
    mixed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert "curVal" in mixed.columns and sorted(mixed["curVal"].dropna()) == ["40%", "55°F"]


def test_json_keeps_units_and_iso_timestamps(server, capsys):
    _write_his(server)
    opts = ["--url", server.url, "--user", "user", "--password", "pencil", "-o", "json"]
    assert main(["his", "@t1", "2024-01-01", *opts]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"ts": "2024-01-01T00:00:00-05:00", "val": {"val": 70, "unit": "°F"}}
    assert main(["read", "point and temp", "--limit", "5", *opts]) == 0
    point = json.loads(capsys.readouterr().out)[0]
    assert point["id"] == "t1" and point["temp"] is True
    assert point["curVal"] == {"val": 55.0, "unit": "°F"}
    server.state.records.append({"id": Ref("n1"), "n": Number(float("nan")), "k": Number(2)})
    assert main(["read", "n", *opts]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": "n1", "n": "NaN", "k": 2}]


def test_table_never_cuts_ids(server, capsys):
    long_id = "a-building-with-a-very-long-identifier-indeed.ahu-1.discharge-air-temp"
    server.state.records.append(
        {"id": Ref(long_id, "A display name long enough to be cut " * 2), "long": Marker}
    )
    opts = ["--url", server.url, "--user", "user", "--password", "pencil"]
    assert main(["read", "long", *opts]) == 0
    out = capsys.readouterr().out
    assert f"@{long_id}" in out
    assert main(["read", "site", *opts]) == 0
    assert "@s1 HQ" in capsys.readouterr().out


def _his_grid(server) -> Grid:
    ts = [dt.datetime(2024, 1, 1, h, tzinfo=NY) for h in range(3)]
    with Client(server.url, "user", "pencil") as c:
        c.his_write("t1", [(t, 70 + i) for i, t in enumerate(ts)])
        return c.his_read("t1", "today")


def test_pandas_frames(server):
    pytest.importorskip("pandas", reason="pandas is not installed: install the [pandas] extra")
    frame = his_frame(_his_grid(server))
    # The point's column is named by its id (or its dis, when the server sends one).
    assert list(frame.columns) == ["t1"] and list(frame["t1"]) == [70.0, 71.0, 72.0]
    assert frame.index.name == "ts"
    batch = Grid(
        ["ts", "v0", "v1"],
        [{"ts": dt.datetime(2024, 1, 1, tzinfo=NY), "v0": Number(1), "v1": Number(2)}],
    )
    assert list(his_frame(batch).columns) == ["v0", "v1"]
    named = Grid(
        ["ts", Col("v0", {"id": Ref("a", "Alpha")}), Col("v1", {"id": Ref("b")})],
        [{"ts": dt.datetime(2024, 1, 1, tzinfo=NY), "v0": Number(1)}],
    )
    wide = his_frame(named)
    assert list(wide.columns) == ["Alpha", "b"] and wide["Alpha"].iloc[0] == 1.0
    flat = to_pandas(Grid.from_rows([{"site": Marker, "area": Number(10, "ft²"), "id": Ref("a")}]))
    assert flat.to_dict("records") == [{"site": True, "area": 10.0, "id": "a"}]
    with pytest.raises(ValueError, match="no 'ts'"):
        his_frame(Grid.from_rows([{"a": 1}]))
    with pytest.raises(ValueError, match="library"):
        his_frame(_his_grid(server), library="excel")


def test_polars_frames(server):
    pytest.importorskip("polars", reason="polars is not installed: install the [polars] extra")
    frame = his_frame(_his_grid(server), library="polars")
    assert frame.columns == ["ts", "t1"] and frame["t1"].to_list() == [70.0, 71.0, 72.0]
    flat = to_polars(Grid.from_rows([{"dis": "x", "n": Number(2)}]))
    assert flat.to_dicts() == [{"dis": "x", "n": 2.0}]


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"\[polars\] extra of haystack-client"):
        to_polars(Grid.from_rows([{"a": 1}]))


def test_python_dash_m_runs_the_command(tmp_path):
    # For when pip's scripts directory is not on PATH.
    src = tmp_path / "in.zinc"
    src.write_text(zinc.encode_grid(Grid.from_rows([{"id": Ref("a"), "site": Marker}])))
    done = subprocess.run(
        [sys.executable, "-m", "projecthaystack.client", "convert", str(src), "-", "--to", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert hjson.decode_grid(done.stdout.encode())[0]["id"] == Ref("a")
    usage = subprocess.run(
        [sys.executable, "-m", "projecthaystack.client", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 0 and usage.stdout.startswith("usage: haystack ")
