"""CSV per the spec's Csv chapter: a lossy export, and a read that gives strings."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from projecthaystack.kinds import Col, DecodeError, EncodeError, FrozenDict, Grid, Marker, Ref, Uri

from ._limits import DEFAULT_LIMITS, Limits
from ._text import read_text
from ._zinc_write import encode_value

__all__ = ["decode_grid", "encode_cell", "encode_grid", "encode_grid_bytes"]

_NON_NAME = re.compile(r"[^A-Za-z0-9_]+")


def encode_cell(val: Any) -> str:
    """One cell as the Csv chapter writes it: ``✓`` for markers, ``@id dis`` for refs,
    strings and URIs unescaped, everything else in its Zinc form."""
    if val is None:
        return ""
    t = type(val)
    if t is str:
        return val  # type: ignore[no-any-return]
    if val is Marker:
        return "\u2713"
    if t is bool:
        return "true" if val else "false"
    if t is Ref:
        return str(val) + " " + val.dis if val.dis else str(val)
    if t is Uri:
        return str(val.val)
    return encode_value(val)


def encode_grid(grid: Grid) -> str:
    """A grid as CSV: a header of column display names, then one line per row.

    >>> from projecthaystack.kinds import Grid, Marker
    >>> encode_grid(Grid.from_rows([{"dis": "RTU-1", "equip": Marker}]))
    'dis,equip\\r\\nRTU-1,✓\\r\\n'
    """
    if not isinstance(grid, Grid):
        raise EncodeError(f"expected a Grid, not {type(grid).__name__}")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [c.meta["dis"] if isinstance(c.meta.get("dis"), str) else c.name for c in grid.cols]
    )
    names = [c.name for c in grid.cols]
    for row in grid.rows:
        writer.writerow([encode_cell(row.get(n)) for n in names])
    return out.getvalue()


def encode_grid_bytes(grid: Grid) -> bytes:
    """A grid as UTF-8 CSV, ready for the wire."""
    return encode_grid(grid).encode()


def _col_name(header: str, index: int, seen: set[str]) -> str:
    words = [w for w in _NON_NAME.split(header) if w]
    name = ""
    if words:
        name = words[0][:1].lower() + words[0][1:]
        name += "".join(w[:1].upper() + w[1:] for w in words[1:])
    if not name or not name[0].isalpha() or not name[0].islower():
        name = f"v{index}" if not name else "v" + name
    base, n = name, 1
    while name in seen:
        n += 1
        name = f"{base}{n}"
    seen.add(name)
    return name


def decode_grid(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Grid:
    """Read CSV into a grid of strings (CSV has no types to recover).

    Column names are made from the header (``Equip Name`` → ``equipName``); the header
    text is kept as the column's ``dis``.  Empty cells are nulls.

    >>> grid = decode_grid("Equip Name,equip\\nRTU-1,✓\\n")
    >>> grid.col_names, grid[0]["equipName"], grid.col("equipName").meta["dis"]
    (('equipName', 'equip'), 'RTU-1', 'Equip Name')
    """
    text = read_text(data, limits)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DecodeError(f"invalid CSV: {exc}", line=reader.line_num) from None
    if not rows:
        raise DecodeError("CSV has no header line", line=1, col=1)
    header = rows[0][1]
    seen: set[str] = set()
    cols = tuple(Col(_col_name(h, i, seen), {"dis": h}) for i, h in enumerate(header))
    names = [c.name for c in cols]
    out = []
    for lineno, row in rows[1:]:
        if not row:
            continue
        if len(row) > len(names):
            raise DecodeError(f"row has {len(row)} cells for {len(names)} columns", line=lineno)
        out.append(FrozenDict((n, v) for n, v in zip(names, row, strict=False) if v != ""))
    return Grid.unchecked(FrozenDict(), cols, tuple(out))
