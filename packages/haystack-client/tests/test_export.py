"""The chunked history export behind ``haystack his --out``: chunks that step over DST,
files written chunk by chunk, an interrupted export resumed to the same file, progress
only on a terminal, and a plot.  ``read`` stands for the server here; the command line
against haystack-server is in tests-integration."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from projecthaystack.client._export import (
    ExportError,
    Point,
    Progress,
    chunks,
    export,
    format_for,
    plot,
)
from projecthaystack.kinds import Grid, GridBuilder, Number, Ref, tz_from_name

NY = tz_from_name("New_York")
POINTS = [Point("a", "Temp A", "°F", "New_York"), Point("b", "Temp B", "°F", "New_York")]
RANGE = "2024-03-01,2024-03-20"  # over the DST change of 2024-03-10


def _history(point: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, Any]]:
    """Hourly samples in [start, end), stepped in UTC."""
    out = []
    t = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    while t < end:
        if t >= start:
            out.append(
                (t.astimezone(NY), Number(float(t.hour) + (0.5 if point == "b" else 0), "°F"))
            )
        t += dt.timedelta(hours=1)
    return out


class Server:
    """A stand-in for the server's hisRead, which can fail after some calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def read(self, group: Any, span: tuple[dt.datetime, dt.datetime]) -> Grid:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the export
        b = GridBuilder()
        b.add_col("ts")
        for i, p in enumerate(group):
            b.add_col(f"v{i}", {"id": Ref(p.id)})
        series = [dict(_history(p.id, *span)) for p in group]
        for ts in sorted(set().union(*series)):
            b.add_row([ts, *(s.get(ts) for s in series)])
        return b.build()


def test_chunks_step_in_absolute_time() -> None:
    start = dt.datetime(2024, 3, 9, tzinfo=NY)
    spans = chunks(start, dt.datetime(2024, 3, 12, tzinfo=NY), 1)
    hours = [(b.astimezone(dt.UTC) - a.astimezone(dt.UTC)).total_seconds() / 3600 for a, b in spans]
    assert hours == [24, 24, 23]  # the night of 2024-03-10 has 23 hours
    assert spans[-1][1] == dt.datetime(2024, 3, 12, tzinfo=NY)
    with pytest.raises(ValueError, match="longer than zero"):
        chunks(start, start, 0)


def test_formats_from_the_file_name() -> None:
    assert format_for("x.parquet", None) == "parquet"
    assert format_for("x.jsonl", None) == "json"
    assert format_for("x.txt", None) == "csv"
    assert format_for(None, "json") == "json"


def test_an_export_in_chunks(tmp_path: Path) -> None:
    out = tmp_path / "his.csv"
    server = Server()
    result = export(server.read, POINTS, RANGE, out=str(out), fmt="csv", chunk_days=3, resume=False)
    assert server.calls == 7  # 20 days in chunks of 3
    lines = out.read_text().splitlines()
    assert lines[0] == "ts,id,val,unit"
    assert len(lines) - 1 == result.rows == 2 * 20 * 24 - 2  # the DST night has 23 hours
    first = lines[1].split(",")
    assert first == ["2024-03-01T00:00:00-05:00", "a", "5", "°F"]
    stamps = [line.split(",")[0] for line in lines[1:]]
    assert stamps == sorted(stamps, key=dt.datetime.fromisoformat)
    assert not (tmp_path / "his.csv.progress").exists()
    with pytest.raises(ExportError, match="exists"):
        export(server.read, POINTS, RANGE, out=str(out), fmt="csv", chunk_days=3, resume=False)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_an_interrupted_export_resumes_where_it_stopped(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="install the [parquet] extra")
    whole = tmp_path / f"whole.{fmt}"
    export(Server().read, POINTS, RANGE, out=str(whole), fmt=fmt, chunk_days=2, resume=False)
    part = tmp_path / f"part.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        export(
            Server(fail_after=4).read,
            POINTS,
            RANGE,
            out=str(part),
            fmt=fmt,
            chunk_days=2,
            resume=False,
        )
    state = json.loads((tmp_path / f"part.{fmt}.progress").read_text())
    assert state["done"] == 4
    if fmt != "parquet":
        with part.open("a") as f:  # half a line from a write cut short
            f.write("2024-03-09T01:00:00-05:00,a,")
    with pytest.raises(ExportError, match="exists"):
        export(Server().read, POINTS, RANGE, out=str(part), fmt=fmt, chunk_days=2, resume=False)
    with pytest.raises(ExportError, match="another query"):
        export(
            Server().read,
            POINTS,
            "2024-03-01,2024-03-21",
            out=str(part),
            fmt=fmt,
            chunk_days=2,
            resume=True,
        )
    server = Server()
    result = export(server.read, POINTS, RANGE, out=str(part), fmt=fmt, chunk_days=2, resume=True)
    assert server.calls == 10 - 4 and result.skipped == 4
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(part).equals(pq.read_table(whole))
        assert not (tmp_path / "part.parquet.parts").exists()
    else:
        assert part.read_bytes() == whole.read_bytes()
    assert not (tmp_path / f"part.{fmt}.progress").exists()


def test_json_lines_keep_units(tmp_path: Path) -> None:
    out = tmp_path / "his.jsonl"
    export(
        Server().read,
        POINTS[:1],
        "2024-03-01",
        out=str(out),
        fmt="json",
        chunk_days=1,
        resume=False,
    )
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {"ts": "2024-03-01T00:00:00-05:00", "id": "a", "val": 5.0, "unit": "°F"}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    piped, tty = io.StringIO(), Tty()
    for i, stream in enumerate((piped, tty)):
        export(
            Server().read,
            POINTS,
            RANGE,
            out=str(tmp_path / f"{i}.csv"),
            fmt="csv",
            chunk_days=5,
            resume=False,
            progress=Progress("haystack his", stream),
        )
    assert piped.getvalue() == ""
    shown = tty.getvalue()
    assert "4/4 chunks" in shown and "958 samples" in shown and shown.endswith("\n")


def test_a_plot_with_units(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="install the [plot] extra")
    from matplotlib import image

    result = export(
        Server().read,
        POINTS,
        RANGE,
        out=None,
        fmt="csv",
        chunk_days=5,
        resume=False,
        keep=True,
        write=False,
    )
    png = tmp_path / "his.png"
    plot(result.series, POINTS, str(png), title="two temps")
    pixels = image.imread(png)
    assert pixels.shape[:2] == (500, 1000)
    # Not blank: many distinct colours (two lines, axes, text), not one background.
    flat = pixels.reshape(-1, pixels.shape[2])
    assert len({tuple(p) for p in flat[::7]}) > 20
