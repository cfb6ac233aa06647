"""The ``haystack`` command line: query a server, or convert files between formats.

haystack --url http://host/api --user me about
haystack read "point and temp" --limit 10 -o csv
haystack nav @site-1
haystack his @temp-1 yesterday -o json
haystack his @temp-1 2024-01-01,2024-12-31 --out temp.csv      # in chunks, resumable
haystack his --filter "point and temp" 2024-01-01,2024-03-31 --out temps.parquet --plot t.png
haystack convert building.zinc building.json

The options that say where and how (``--url``, ``--user``, ``--password``, ``--wire``,
``--timeout``, ``-o``) go before or after the command.

Outputs: ``table`` for people (ids are never cut); ``csv`` for pandas and spreadsheets
(numbers without units, the unit in the column header as ``name [unit]`` when the
column has one; ISO 8601 dates and times); ``json`` rows of plain values that keep
units (``{"val": 72.5, "unit": "°F"}``) and ISO 8601 timestamps; ``zinc`` exact.
"""

from __future__ import annotations

import argparse
import csv as stdcsv
import datetime as dt
import getpass
import io
import json as stdjson
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from projecthaystack.codecs import codec_for_name, csv
from projecthaystack.kinds import Grid, HaystackError, Number, Ref, format_float, to_python

from ._client import Client
from ._errors import ClientError
from ._export import FORMATS, ExportError, Point, Progress, export, format_for, plot

__all__ = ["main"]

_EXTENSIONS = {".zinc": "zinc", ".json": "json", ".trio": "trio", ".csv": "csv"}
_CELL_WIDTH = 40


def _add_connection_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every query takes.  On a subcommand they default to "not given"
    (``SUPPRESS``), so that one given before the subcommand is not overwritten."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    p.add_argument(
        "--url", default=default(os.environ.get("HAYSTACK_URL")), help="API root (or HAYSTACK_URL)"
    )
    p.add_argument(
        "--user", default=default(os.environ.get("HAYSTACK_USER")), help="user (or HAYSTACK_USER)"
    )
    p.add_argument(
        "--password",
        default=default(os.environ.get("HAYSTACK_PASSWORD")),
        help="password (or HAYSTACK_PASSWORD; asked for when missing)",
    )
    p.add_argument("--wire", default=default("zinc"), choices=["zinc", "json"], help="wire format")
    p.add_argument("--timeout", type=float, default=default(30.0), help="seconds per request (30)")
    p.add_argument(
        "--output",
        "-o",
        default=default("table"),
        choices=["table", "csv", "json", "zinc"],
        help="how to print results (table)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haystack", description="A Project Haystack client.")
    _add_connection_options(p, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_connection_options(common, suppress=True)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("about", parents=[common], help="the server's about grid")
    read = sub.add_parser("read", parents=[common], help="read entities by filter")
    read.add_argument("filter")
    read.add_argument("--limit", type=int)
    nav = sub.add_parser("nav", parents=[common], help="navigate sites, equips and points")
    nav.add_argument("nav_id", nargs="?")
    his = sub.add_parser(
        "his",
        parents=[common],
        help="read the history of a point, or of every point a filter matches",
        description="Read history.  With --out, --filter or --plot the range is read in "
        "chunks and written as it goes (CSV, JSON Lines, or Parquet with pyarrow), with "
        "progress on a terminal; --resume goes on with an interrupted export.",
    )
    his.add_argument("point", help="a point id (@p1), or with --filter a filter")
    his.add_argument("range", help="today, yesterday, a date, or 'date,date'")
    his.add_argument(
        "--filter",
        action="store_true",
        help="POINT is a filter: every historized point it matches (batch hisRead)",
    )
    his.add_argument("--out", metavar="FILE", help="write the samples to FILE, chunk by chunk")
    his.add_argument(
        "--format", choices=FORMATS, help="csv, json (JSON Lines) or parquet (from --out)"
    )
    his.add_argument(
        "--chunk-days", type=float, default=7.0, metavar="DAYS", help="days per request (7)"
    )
    his.add_argument("--resume", action="store_true", help="go on with an interrupted --out")
    his.add_argument("--plot", metavar="PNG", help="draw the series into a PNG (matplotlib)")
    conv = sub.add_parser("convert", help="convert a grid file between formats (no server)")
    conv.add_argument("source", help="input file, or - for standard input")
    conv.add_argument("target", help="output file, or - for standard output")
    formats = sorted(set(_EXTENSIONS.values()) | {"json3"})
    conv.add_argument("--from", dest="src_fmt", choices=formats)
    conv.add_argument("--to", dest="dst_fmt", choices=formats)
    return p


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise SystemExit(f"haystack: cannot tell the format of {path!r}; use --from/--to")
    return fmt


# -- table --------------------------------------------------------------------------------


def _table_cell(value: object) -> str:
    if isinstance(value, Ref):
        # The id is what a user copies into the next command: cut only the dis.
        head = f"@{value.id}"
        if not value.dis:
            return head
        room = max(_CELL_WIDTH - len(head) - 1, 0)
        dis = value.dis if len(value.dis) <= room else value.dis[: max(room - 3, 0)] + "..."
        return f"{head} {dis}" if room > 3 else head
    text = csv.encode_cell(value)
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 3] + "..."


def _write_table(grid: Grid, out: TextIO) -> None:
    names = list(grid.col_names)
    rows = [[_table_cell(row.get(n)) for n in names] for row in grid]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    out.write("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip() + "\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


# -- csv ----------------------------------------------------------------------------------


def _column_unit(grid: Grid, name: str) -> str | None:
    """The one unit every Number of a column has, if they share one."""
    units = {v.unit for v in grid.column(name) if isinstance(v, Number)}
    if len(units) == 1:
        (unit,) = units
        return unit
    return None


def _csv_cell(value: object, strip_unit: bool) -> str:
    if isinstance(value, Number) and (strip_unit or value.unit is None):
        return format_float(value.val)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return csv.encode_cell(value)


def _write_csv(grid: Grid, out: TextIO) -> None:
    names = list(grid.col_names)
    units = {n: _column_unit(grid, n) for n in names}
    buffer = io.StringIO()
    writer = stdcsv.writer(buffer, lineterminator="\n")
    writer.writerow([f"{n} [{units[n]}]" if units[n] else n for n in names])
    for row in grid:
        writer.writerow([_csv_cell(row.get(n), units[n] is not None) for n in names])
    out.write(buffer.getvalue())


# -- json ---------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """Plain JSON that keeps what ``to_python`` drops: units and ISO 8601 timestamps."""
    if isinstance(value, Number):
        val: float | str = value.val
        if value.val != value.val or value.val in (float("inf"), float("-inf")):
            val = format_float(value.val)  # JSON has no NaN or infinity
        return {"val": val, "unit": value.unit} if value.unit else val
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Grid):
        return [_json_value(dict(row)) for row in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return to_python(value)


def _write_json(grid: Grid, out: TextIO) -> None:
    rows = [_json_value(dict(row)) for row in grid]
    out.write(stdjson.dumps(rows, ensure_ascii=False, indent=2, allow_nan=False) + "\n")


def _print(grid: Grid, output: str, out: TextIO) -> None:
    if output == "json":
        _write_json(grid, out)
    elif output == "csv":
        _write_csv(grid, out)
    elif output == "zinc":
        out.write(codec_for_name("zinc").encode(grid).decode())
    else:
        _write_table(grid, out)


def _read_with_progress(path: str, progress: Progress) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    size = Path(path).stat().st_size
    chunks: list[bytes] = []
    read = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            chunks.append(block)
            read += len(block)
            progress.show(f"reading {read / 2**20:,.1f} of {size / 2**20:,.1f} MiB")
    return b"".join(chunks)


def _convert(args: argparse.Namespace) -> int:
    src_fmt = _format_of(args.source, args.src_fmt)
    dst_fmt = _format_of(args.target, args.dst_fmt)
    progress = Progress("haystack convert")
    data = _read_with_progress(args.source, progress)
    progress.show(f"decoding {src_fmt}")
    grid = codec_for_name(src_fmt).decode(data)
    progress.show(f"encoding {len(grid):,} rows as {dst_fmt}")
    encoded = codec_for_name(dst_fmt).encode(grid)
    if args.target == "-":
        sys.stdout.write(encoded.decode())
    else:
        progress.show(f"writing {len(encoded) / 2**20:,.1f} MiB")
        Path(args.target).write_bytes(encoded)
    progress.done(f"{len(grid):,} rows converted")
    return 0


def _his_export(c: Client, args: argparse.Namespace) -> None:
    if args.filter:
        records = list(c.read(f"his and ({args.point})"))
        if not records:
            raise ExportError(f"no historized point matches {args.point!r}")
    else:
        records = list(c.read_ids([args.point], checked=True))
    points = [Point.of(r) for r in records]

    def read(group: Sequence[Point], span: tuple[dt.datetime, dt.datetime]) -> Grid:
        if len(group) == 1:
            return c.his_read(group[0].id, span)
        return c.his_read_batch([p.id for p in group], span)

    fmt = format_for(args.out, args.format or ("json" if args.output == "json" else None))
    result = export(
        read,
        points,
        args.range,
        out=args.out,
        fmt=fmt,
        chunk_days=args.chunk_days,
        resume=args.resume,
        keep=bool(args.plot),
        write=args.out is not None or not args.plot,
        progress=Progress("haystack his"),
    )
    if args.plot:
        plot(result.series, points, args.plot, title=f"{args.point} {args.range}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            return _convert(args)
        if not args.url:
            raise SystemExit("haystack: --url (or HAYSTACK_URL) is required")
        password = args.password
        if args.user and password is None:
            password = getpass.getpass(f"password for {args.user}: ")
        with Client(args.url, args.user, password, fmt=args.wire, timeout=args.timeout) as c:
            if args.command == "about":
                grid = c.about()
            elif args.command == "read":
                grid = c.read(args.filter, limit=args.limit)
            elif args.command == "nav":
                grid = c.nav(args.nav_id)
            elif args.filter or args.out or args.plot:
                _his_export(c, args)
                return 0
            else:
                grid = c.his_read(args.point, args.range)
        _print(grid, args.output, sys.stdout)
    except (ClientError, HaystackError, OSError, ExportError, ValueError) as exc:
        print(f"haystack: {exc}", file=sys.stderr)
        return 1
    return 0
