"""History exports for the command line: a long range read in chunks the server
accepts, written as it goes, resumable after an interruption, with progress on a
terminal; and a plot of what was read.

The output has one row per sample: ``ts`` (ISO 8601 with its offset), ``id``, ``val``
and ``unit``, ordered by time and then id.  CSV and JSON Lines files are appended chunk
by chunk; Parquet (the ``[parquet]`` extra) is written as one part file per chunk and
joined at the end.  Beside the output, ``FILE.progress`` records the query and the
chunks done (and the size of the file after them), so that ``--resume`` cuts off
anything written after the last whole chunk and goes on from there; it is removed once
the export is complete.
"""

from __future__ import annotations

import csv as stdcsv
import datetime as dt
import importlib
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from projecthaystack.codecs import parse_range
from projecthaystack.kinds import Grid, Number, Ref, format_float, tz_from_name

from ._errors import ClientError

__all__ = ["ExportError", "Point", "Progress", "chunks", "export", "plot"]

FORMATS: Final = ("csv", "json", "parquet")
_SUFFIXES: Final = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class ExportError(ClientError, ValueError):
    """An export that cannot go on (a mismatched resume, a missing extra, ...)."""


@dataclass(frozen=True)
class Point:
    """A historized point: its id, display name, unit and Haystack timezone."""

    id: str
    dis: str
    unit: str | None
    tz: str

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Point:
        ref = record.get("id")
        if not isinstance(ref, Ref):
            raise ExportError(f"not an entity: {dict(record)!r}")
        tz = record.get("tz")
        if not isinstance(tz, str):
            raise ExportError(f"point @{ref.id} has no tz tag: its history cannot be read")
        unit = record.get("unit")
        dis = record.get("dis") or ref.dis or ref.id
        return cls(ref.id, str(dis), unit if isinstance(unit, str) else None, tz)


def format_for(path: str | None, given: str | None) -> str:
    """The output format: given, else from the file's extension, else CSV."""
    if given:
        return given
    if path:
        found = _SUFFIXES.get(Path(path).suffix.lower())
        if found:
            return found
    return "csv"


def chunks(
    start: dt.datetime, end: dt.datetime, days: float
) -> list[tuple[dt.datetime, dt.datetime]]:
    """``[start, end)`` cut into spans of ``days`` (the last may be shorter), stepped
    in absolute time so that a DST change neither skips nor repeats an hour."""
    if days <= 0:
        raise ValueError("the chunk must be longer than zero days")
    step = dt.timedelta(days=days)
    out = []
    begin = start.astimezone(dt.UTC)
    stop = end.astimezone(dt.UTC)
    while begin < stop:
        nxt = min(begin + step, stop)
        out.append((begin.astimezone(start.tzinfo), nxt.astimezone(start.tzinfo)))
        begin = nxt
    return out


class Progress:
    """One line on a terminal, rewritten as the work goes; nothing when ``stream`` is
    not a terminal (piped output stays clean)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self._shown = False

    def show(self, text: str) -> None:
        if self.on:
            self.stream.write(f"\r{self.label}: {text}\x1b[K")
            self.stream.flush()
            self._shown = True

    def done(self, text: str | None = None) -> None:
        if text is not None:
            self.show(text)
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


# -- rows ---------------------------------------------------------------------------------


def _val(value: Any) -> Any:
    if isinstance(value, Number):
        return value.val
    if isinstance(value, bool | str) or value is None:
        return value
    return str(value)


def _rows(
    grid: Grid, points: Sequence[Point]
) -> Iterator[tuple[dt.datetime, str, Any, str | None]]:
    """(ts, id, value, unit) from a hisRead result, single or batch."""
    cols = (
        [("val", points[0])]
        if grid.has_col("val") and len(points) == 1
        else [(f"v{i}", p) for i, p in enumerate(points)]
    )
    for row in grid:
        ts = row.get("ts")
        if not isinstance(ts, dt.datetime):
            continue
        for name, point in cols:
            value = row.get(name)
            if value is not None:
                unit = value.unit if isinstance(value, Number) and value.unit else point.unit
                yield ts, point.id, _val(value), unit


# -- writers ------------------------------------------------------------------------------


class _TextWriter:
    def __init__(self, path: Path | None, fmt: str, resume_at: int | None) -> None:
        self.fmt = fmt
        self.path = path
        self.out: TextIO
        if path is None:
            self.out = sys.stdout
        else:
            exists = path.exists() and resume_at is not None
            if exists:
                with path.open("r+b") as f:  # drop what came after the last whole chunk
                    f.truncate(resume_at)
            self.out = path.open("a" if exists else "w", encoding="utf-8", newline="")
        if fmt == "csv" and (resume_at in (None, 0)):
            self.out.write("ts,id,val,unit\n")

    def write(self, rows: Iterable[tuple[dt.datetime, str, Any, str | None]]) -> None:
        if self.fmt == "csv":
            buffer = io.StringIO()
            writer = stdcsv.writer(buffer, lineterminator="\n")
            for ts, pid, val, unit in rows:
                text = format_float(val) if isinstance(val, float) else val
                writer.writerow([ts.isoformat(), pid, "" if text is None else text, unit or ""])
            self.out.write(buffer.getvalue())
        else:
            for ts, pid, val, unit in rows:
                finite = not isinstance(val, float) or val - val == 0  # NaN, inf: no JSON
                shown = val if finite else format_float(val)
                record = {"ts": ts.isoformat(), "id": pid, "val": shown, "unit": unit}
                self.out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def commit(self, done: int) -> int:
        self.out.flush()
        if self.path is None:
            return 0
        os.fsync(self.out.fileno())
        return self.out.tell()

    def finish(self) -> None:
        self.close()

    def close(self) -> None:
        if self.path is not None:
            self.out.close()


class _ParquetWriter:
    """One part file per chunk in ``FILE.parts/``, joined into ``FILE`` at the end."""

    def __init__(self, path: Path, resume_at: int | None) -> None:
        try:
            self.pa = importlib.import_module("pyarrow")
            self.pq = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise ExportError(
                "Parquet needs pyarrow: the [parquet] extra of haystack-client "
                "(or: python -m pip install pyarrow)"
            ) from None
        self.path = path
        self.parts = path.with_name(path.name + ".parts")
        if resume_at is None and self.parts.exists():
            shutil.rmtree(self.parts)
        self.parts.mkdir(exist_ok=True)
        self.rows: list[tuple[dt.datetime, str, Any, str | None]] = []

    def write(self, rows: Iterable[tuple[dt.datetime, str, Any, str | None]]) -> None:
        self.rows.extend(rows)

    def _table(self, rows: Sequence[tuple[dt.datetime, str, Any, str | None]]) -> Any:
        pa = self.pa
        vals = [float(v) if isinstance(v, bool | int | float) else None for _, _, v, _ in rows]
        return pa.table(
            {
                "ts": pa.array([r[0] for r in rows], pa.timestamp("us", tz="UTC")),
                "id": pa.array([r[1] for r in rows], pa.string()),
                "val": pa.array(vals, pa.float64()),
                "unit": pa.array([r[3] for r in rows], pa.string()),
            }
        )

    def commit(self, done: int) -> int:
        part = self.parts / f"{done:06d}.parquet"
        tmp = part.with_suffix(".tmp")
        self.pq.write_table(self._table(self.rows), tmp)
        tmp.replace(part)  # a part is there whole or not at all
        self.rows = []
        return done

    def finish(self) -> None:
        files = sorted(self.parts.glob("*.parquet"))
        tables = [self.pq.read_table(f) for f in files]
        table = self.pa.concat_tables(tables) if tables else self._table([])
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.pq.write_table(table, tmp)
        tmp.replace(self.path)
        shutil.rmtree(self.parts)

    def close(self) -> None:
        """Nothing to let go of: every chunk done is a whole part file already."""


# -- the export ---------------------------------------------------------------------------


@dataclass
class Result:
    """What an export did: samples written, chunks read (and skipped on resume), and
    the samples by point when they were kept for a plot."""

    rows: int = 0
    chunks: int = 0
    skipped: int = 0
    series: dict[str, list[tuple[dt.datetime, Any]]] = field(default_factory=dict)


def export(
    read: Callable[[Sequence[Point], tuple[dt.datetime, dt.datetime]], Grid],
    points: Sequence[Point],
    range_text: str,
    *,
    out: str | None,
    fmt: str,
    chunk_days: float,
    resume: bool,
    keep: bool = False,
    progress: Progress | None = None,
    write: bool = True,
) -> Result:
    """Read the history of ``points`` over ``range_text`` chunk by chunk with ``read``
    (one call per chunk and timezone), writing each chunk to ``out`` (standard output
    when ``None``) before reading the next.  ``keep`` also keeps the samples (for a
    plot); ``write=False`` writes nothing."""
    if not points:
        raise ExportError("no points to read")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise ExportError("Parquet goes to a file: give --out FILE")
    by_tz: dict[str, list[Point]] = {}
    for p in points:
        by_tz.setdefault(p.tz, []).append(p)
    first_tz = tz_from_name(points[0].tz)
    start, end = parse_range(range_text, points[0].tz)
    if end is None:
        end = dt.datetime.now(first_tz)
    spans = chunks(start, end, chunk_days)
    path = Path(out) if out is not None and write else None
    state_path = path.with_name(path.name + ".progress") if path is not None else None
    query = {
        "points": [p.id for p in points],
        "range": range_text,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "chunk_days": chunk_days,
        "format": fmt,
    }
    done, resume_at = 0, None
    if state_path is not None and path is not None:
        if resume and state_path.exists():
            state = json.loads(state_path.read_text())
            if state.get("query") != query:
                raise ExportError(
                    f"{path} was begun for another query; remove it and {state_path.name} "
                    "to start again"
                )
            done, resume_at = int(state["done"]), int(state["at"])
        elif path.exists() or state_path.exists():
            hint = "--resume to go on" if state_path.exists() else "remove it first"
            raise ExportError(f"{path} exists ({hint})")
    writer: _TextWriter | _ParquetWriter | None = None
    if write:
        writer = (
            _ParquetWriter(path, resume_at)
            if fmt == "parquet" and path is not None
            else _TextWriter(path, fmt, resume_at)
        )
    result = Result(skipped=done)
    if state_path is not None:
        state_path.write_text(json.dumps({"query": query, "done": done, "at": resume_at or 0}))
    try:
        for index, (begin, stop) in enumerate(spans):
            if index < done:
                continue
            rows: list[tuple[dt.datetime, str, Any, str | None]] = []
            for tz, group in by_tz.items():
                zone = tz_from_name(tz)
                rows.extend(
                    _rows(read(group, (begin.astimezone(zone), stop.astimezone(zone))), group)
                )
            rows.sort(key=lambda r: (r[0], r[1]))
            if writer is not None:
                writer.write(rows)
                at = writer.commit(index + 1)
                if state_path is not None:
                    state_path.write_text(json.dumps({"query": query, "done": index + 1, "at": at}))
            if keep:
                for ts, pid, val, _ in rows:
                    result.series.setdefault(pid, []).append((ts, val))
            result.rows += len(rows)
            result.chunks += 1
            if progress is not None:
                progress.show(
                    f"{index + 1}/{len(spans)} chunks, {result.rows:,} samples, up to "
                    f"{stop.date().isoformat()}"
                )
    except BaseException:
        if writer is not None:
            writer.close()  # the file stays as the last whole chunk left it, for --resume
        raise
    if writer is not None:
        writer.finish()
    if state_path is not None:
        state_path.unlink(missing_ok=True)
    if progress is not None:
        progress.done()
    return result


# -- the plot -----------------------------------------------------------------------------


def plot(
    series: Mapping[str, Sequence[tuple[dt.datetime, Any]]],
    points: Sequence[Point],
    path: str,
    *,
    title: str | None = None,
) -> None:
    """Draw one line per point, time along the bottom and the unit on the value axis
    (each line's label names its unit when they differ), into a PNG (the ``[plot]``
    extra: matplotlib)."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise ExportError(
            "--plot needs matplotlib: the [plot] extra of haystack-client "
            "(or: python -m pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")  # files only: no display needed
    plt = importlib.import_module("matplotlib.pyplot")
    units = sorted({p.unit for p in points if p.unit})
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    try:
        for p in points:
            samples = [(ts, v) for ts, v in series.get(p.id, ()) if isinstance(v, int | float)]
            if not samples:
                continue
            label = p.dis if len(units) <= 1 or not p.unit else f"{p.dis} ({p.unit})"
            ax.plot([s[0] for s in samples], [float(s[1]) for s in samples], label=label)
        ax.set_ylabel(" / ".join(units) if units else "value")
        ax.set_xlabel(f"time ({points[0].tz})")
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if len(points) > 1:
            ax.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
