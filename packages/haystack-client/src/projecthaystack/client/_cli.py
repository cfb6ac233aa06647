"""The ``haystack`` command line: query a server, or convert files between formats.

haystack --url http://host/api --user me about
haystack read "point and temp" --limit 10 -o csv
haystack nav @site-1
haystack his @temp-1 yesterday -o json
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
    his = sub.add_parser("his", parents=[common], help="read history of one point")
    his.add_argument("point")
    his.add_argument("range", help="today, yesterday, a date, or 'date,date'")
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


def _convert(args: argparse.Namespace) -> int:
    src_fmt = _format_of(args.source, args.src_fmt)
    dst_fmt = _format_of(args.target, args.dst_fmt)
    data = sys.stdin.buffer.read() if args.source == "-" else Path(args.source).read_bytes()
    grid = codec_for_name(src_fmt).decode(data)
    encoded = codec_for_name(dst_fmt).encode(grid)
    if args.target == "-":
        sys.stdout.write(encoded.decode())
    else:
        Path(args.target).write_bytes(encoded)
    return 0


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
            else:
                grid = c.his_read(args.point, args.range)
        _print(grid, args.output, sys.stdout)
    except (ClientError, HaystackError, OSError) as exc:
        print(f"haystack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
