"""The ``haystack`` command line: query a server, or convert files between formats.

haystack --url http://host/api --user me about
haystack read "point and temp" --limit 10 --output csv
haystack nav @site-1
haystack his @temp-1 yesterday --output json
haystack convert building.zinc building.json
"""

from __future__ import annotations

import argparse
import getpass
import json as stdjson
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from projecthaystack.codecs import codec_for_name, csv
from projecthaystack.kinds import Grid, HaystackError

from ._client import Client
from ._errors import ClientError

__all__ = ["main"]

_EXTENSIONS = {".zinc": "zinc", ".json": "json", ".trio": "trio", ".csv": "csv"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haystack", description="A Project Haystack client.")
    p.add_argument(
        "--url", default=os.environ.get("HAYSTACK_URL"), help="API root (or HAYSTACK_URL)"
    )
    p.add_argument(
        "--user", default=os.environ.get("HAYSTACK_USER"), help="user (or HAYSTACK_USER)"
    )
    p.add_argument(
        "--password",
        default=os.environ.get("HAYSTACK_PASSWORD"),
        help="password (or HAYSTACK_PASSWORD; asked for when missing)",
    )
    p.add_argument("--wire", default="zinc", choices=["zinc", "json"], help="wire format")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument(
        "--output",
        "-o",
        default="table",
        choices=["table", "csv", "json", "zinc"],
        help="how to print results",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("about", help="the server's about grid")
    read = sub.add_parser("read", help="read entities by filter")
    read.add_argument("filter")
    read.add_argument("--limit", type=int)
    nav = sub.add_parser("nav", help="navigate sites, equips and points")
    nav.add_argument("nav_id", nargs="?")
    his = sub.add_parser("his", help="read history of one point")
    his.add_argument("point")
    his.add_argument("range", help="today, yesterday, a date, or 'date,date'")
    conv = sub.add_parser("convert", help="convert a grid file between formats (no server)")
    conv.add_argument("source", help="input file, or - for standard input")
    conv.add_argument("target", help="output file, or - for standard output")
    conv.add_argument(
        "--from", dest="src_fmt", choices=sorted(set(_EXTENSIONS.values()) | {"json3"})
    )
    conv.add_argument("--to", dest="dst_fmt", choices=sorted(set(_EXTENSIONS.values()) | {"json3"}))
    return p


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise SystemExit(f"haystack: cannot tell the format of {path!r}; use --from/--to")
    return fmt


def _cell(value: object) -> str:
    text = csv.encode_cell(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _print(grid: Grid, output: str, out: TextIO) -> None:
    if output == "json":
        out.write(stdjson.dumps(grid.to_python(), default=str, ensure_ascii=False, indent=2) + "\n")
    elif output == "csv":
        out.write(csv.encode_grid(grid))
    elif output == "zinc":
        out.write(codec_for_name("zinc").encode(grid).decode())
    else:
        names = list(grid.col_names)
        rows = [[_cell(row.get(n)) for n in names] for row in grid]
        widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
        out.write("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip() + "\n")
        for r in rows:
            out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


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
