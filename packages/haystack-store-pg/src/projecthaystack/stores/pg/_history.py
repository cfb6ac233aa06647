"""History packed in chunks: the plan of a write and the statements of a read.

A point's samples are kept in rows of up to :data:`~._schema.CHUNK_SAMPLES`, each row
holding a run of consecutive samples (``ts`` ascending, one array per kind of value),
keyed by its first instant ``t_lo``.  Chunks of a point never overlap and never cross
a month (UTC), so a month's partition holds whole chunks and the chunk holding an
instant is the one with the greatest ``t_lo`` not after it (its *floor*).

A write converts its instants to UTC (exact order and identity, whatever the zone and
its DST folds), sorts them, and splits them by month.  In each month it asks for the
headers of the point's chunks between the floor of its first sample and its last sample
(:func:`plan`): each sample belongs to its floor chunk (samples before the month's first
chunk belong to that one).  A chunk that gets samples is read, merged with them (a new
sample at a stored instant replaces it) and written again, split into balanced pieces;
samples that only extend a full chunk, past its end, become new chunks without touching
it, and samples that extend a partial chunk fill it up first (appends keep chunks full).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg import sql

from projecthaystack.kinds import Number

from ._jsonb import decode_value, encode_value
from ._schema import HIS, Names, month_start, next_month

__all__ = [
    "COPY_TYPES",
    "TEXT_BUDGET",
    "Group",
    "Header",
    "Run",
    "Samples",
    "decode_chunk",
    "merge",
    "months",
    "pieces",
    "plan",
    "prepare",
    "read_sql",
    "samples_of",
]

NUM, BOOL, STR, OTHER = 0, 1, 2, 3
TEXT_BUDGET: Final = 16_384
"""Characters of Strs and other values after which an appended chunk is closed early,
so that a point of long strings is not rewritten whole at every append."""

COPY_TYPES: Final = [
    "int4",
    "timestamptz",
    "timestamptz[]",
    "float8[]",
    "bool[]",
    "text[]",
    "text[]",
]
"""The binary COPY types of a chunk row: pid, t_lo, ts, num, bool, str, other."""

ChunkRow = tuple[int, dt.datetime, list[dt.datetime], Any, Any, Any, Any]


@dataclass(slots=True)
class Run:
    """One point's new samples: instants in UTC, ascending and distinct, and values."""

    ts: list[dt.datetime]
    val: list[Any]


def prepare(ts: Sequence[dt.datetime], val: Sequence[Any]) -> Run:
    """The samples in UTC, in order of instant; of two at one instant, the later given.

    Converting to UTC first is also the cheaper way to the database: psycopg dumps a
    UTC datetime several times faster than one in a zone with DST.
    """
    utc = [t.astimezone(dt.UTC) for t in ts]
    vals = list(val)
    if any(a >= b for a, b in itertools.pairwise(utc)):
        order = sorted(range(len(utc)), key=utc.__getitem__)  # stable: later given, later
        keep = [i for i, j in itertools.pairwise([*order, -1]) if j < 0 or utc[i] != utc[j]]
        utc, vals = [utc[i] for i in keep], [vals[i] for i in keep]
    return Run(utc, vals)


def months(ts: Sequence[dt.datetime]) -> Iterator[tuple[dt.datetime, int, int]]:
    """``(month start, first, end)`` of each month (UTC) that ascending ``ts`` touch."""
    start, end = 0, len(ts)
    while start < end:
        first = month_start(ts[start])
        stop = bisect.bisect_left(ts, next_month(first), start, end)
        yield first, start, stop
        start = stop


@dataclass(slots=True)
class Samples:
    """Samples as a chunk stores them: UTC instants, and per sample its kind's slot
    (``None``: every one a Number in the point's unit) and its value as stored."""

    ts: list[dt.datetime]
    slots: list[int] | None
    raws: list[Any]

    def __len__(self) -> int:
        return len(self.ts)


def samples_of(run_ts: list[dt.datetime], vals: Sequence[Any], unit: str | None) -> Samples:
    """New samples as stored for a point whose Numbers are in ``unit``."""
    if all(type(v) is Number and v.unit == unit for v in vals):
        return Samples(run_ts, None, [v.val for v in vals])
    slots: list[int] = []
    raws: list[Any] = []
    for v in vals:
        t = type(v)
        if t is Number and v.unit == unit:
            slots.append(NUM)
            raws.append(v.val)
        elif t is bool:
            slots.append(BOOL)
            raws.append(v)
        elif t is str and "\x00" not in v:
            slots.append(STR)
            raws.append(v)
        else:
            slots.append(OTHER)
            raws.append(encode_value(v))
    return Samples(run_ts, slots, raws)


def stored(row: Sequence[Any]) -> Samples:
    """The samples of a chunk row ``(ts, num, bool, str, other)`` read back."""
    ts, num, bools, strs, other = row
    utc = [t.astimezone(dt.UTC) for t in ts]
    if num is not None and bools is None and strs is None and other is None:
        return Samples(utc, None, list(num))
    slots: list[int] = []
    raws: list[Any] = []
    columns = [c if c is not None else itertools.repeat(None) for c in (num, bools, strs, other)]
    for values in zip(*columns, strict=False):
        for slot, value in enumerate(values):
            if value is not None:
                slots.append(slot)
                raws.append(value)
                break
        else:  # pragma: no cover - every sample has a value in one column
            raise ValueError("a stored sample without a value")
    return Samples(utc, slots, raws)


def merge(old: Samples, new: Samples) -> Samples:
    """``old`` and ``new`` in order of instant; at one instant, the new sample."""
    both: dict[dt.datetime, tuple[int, Any]] = {}
    for source in (old, new):
        slots = source.slots if source.slots is not None else itertools.repeat(NUM)
        both.update(zip(source.ts, zip(slots, source.raws, strict=False), strict=False))
    ts = sorted(both)
    pairs = [both[t] for t in ts]
    if all(slot == NUM for slot, _ in pairs):
        return Samples(ts, None, [raw for _, raw in pairs])
    return Samples(ts, [slot for slot, _ in pairs], [raw for _, raw in pairs])


def _row(pid: int, s: Samples, lo: int, hi: int) -> ChunkRow:
    ts = s.ts[lo:hi]
    if s.slots is None:
        return (pid, ts[0], ts, s.raws[lo:hi], None, None, None)
    columns: list[list[Any] | None] = [None, None, None, None]
    for k, (slot, raw) in enumerate(zip(s.slots[lo:hi], s.raws[lo:hi], strict=True)):
        column = columns[slot]
        if column is None:
            column = columns[slot] = [None] * (hi - lo)
        column[k] = raw
    num, bools, strs, other = columns
    return (pid, ts[0], ts, num, bools, strs, other)


def pieces(pid: int, s: Samples, size: int, *, balanced: bool = False) -> list[ChunkRow]:
    """Chunk rows of ``s`` (one month of one point): full chunks of ``size`` and a
    last partial one, or with ``balanced`` as many chunks as needed, of equal sizes
    (what an insertion in the middle of a point's history leaves room in)."""
    n = len(s)
    if balanced and n > size:
        count = math.ceil(n / size)
        bounds = [n * k // count for k in range(count + 1)]
        return [_row(pid, s, a, b) for a, b in itertools.pairwise(bounds)]
    if s.slots is None or (STR not in s.slots and OTHER not in s.slots):
        return [_row(pid, s, lo, min(lo + size, n)) for lo in range(0, n, size)]
    out: list[ChunkRow] = []
    lo, text = 0, 0
    for k in range(n):
        if s.slots[k] >= STR:
            text += len(s.raws[k])
        if k + 1 - lo == size or text >= TEXT_BUDGET or k + 1 == n:
            out.append(_row(pid, s, lo, k + 1))
            lo, text = k + 1, 0
    return out


@dataclass(frozen=True, slots=True)
class Header:
    """A stored chunk as a write's plan sees it: its first and last instants and its
    number of samples."""

    t_lo: dt.datetime
    last: dt.datetime
    n: int


@dataclass(slots=True)
class Group:
    """What a write does to one point's month: the chunks it rewrites (read, deleted,
    merged with their new samples), and the new samples that go in on their own."""

    rewrite: list[tuple[Header, Samples]]
    alone: list[Samples]


def plan(new: Samples, headers: Sequence[Header], size: int) -> Group:
    """Which stored chunks a month of new samples (ascending, UTC) goes into.

    ``headers`` are the point's chunks of that month from the floor of ``new``'s first
    instant up to its last instant, ascending: every chunk a new sample can belong to.
    """
    group = Group([], [])
    if not headers:
        group.alone.append(new)
        return group
    cuts = [0, *(bisect.bisect_left(new.ts, h.t_lo) for h in headers[1:]), len(new)]
    for j, (head, (lo, hi)) in enumerate(zip(headers, itertools.pairwise(cuts), strict=True)):
        if lo == hi:
            continue
        part = Samples(
            new.ts[lo:hi], None if new.slots is None else new.slots[lo:hi], new.raws[lo:hi]
        )
        full = head.n >= size
        if full and (part.ts[0] > head.last or (j == 0 and part.ts[-1] < head.t_lo)):
            group.alone.append(part)
        else:
            group.rewrite.append((head, part))
    return group


def decode_chunk(
    unit: str | None, num: Any, bools: Any, strs: Any, other: Any, length: int
) -> list[Any]:
    """The values of a chunk read back (columns as loaded, ``None`` where absent)."""
    if num is not None and bools is None and strs is None and other is None:
        return [Number(v, unit) for v in num]
    parts = (num, bools, strs, other)
    columns = [itertools.repeat(None, length) if c is None else c for c in parts]
    return [
        Number(n, unit)
        if n is not None
        else b
        if b is not None
        else s
        if s is not None
        else decode_value(o)
        for n, b, s, o in zip(*columns, strict=True)
    ]


_LO: Final = "coalesce(%(lo)s::timestamptz, '-infinity')"
_HI: Final = "coalesce(%(hi)s::timestamptz, 'infinity')"


def _select(n: Names) -> sql.Composed:
    """A point ``p``'s chunks that hold samples of ``[lo, hi)`` (and at most one
    before it), ascending, with how many of each chunk's samples to skip (before
    ``lo``) and up to which one they are in range (before ``hi``)."""
    return sql.SQL(
        "SELECT c.t_lo, c.ts, c.num, c.bool, c.str, c.other,"
        # Only the chunks at either end of the range are searched.
        " CASE WHEN c.t_lo >= {lo} THEN 0"
        "  ELSE (SELECT count(*) FROM unnest(c.ts) t WHERE t < {lo}) END AS skip,"
        " CASE WHEN c.ts[cardinality(c.ts)] < {hi} THEN cardinality(c.ts)"
        "  ELSE (SELECT count(*) FROM unnest(c.ts) t WHERE t < {hi}) END AS upto"
        " FROM {his} c WHERE c.pid = p.pid"
        # From the floor chunk of lo: the last one starting at or before it, within
        # lo's month (which no chunk crosses; a bound the planner prunes partitions by).
        " AND c.t_lo >= coalesce(%(ms)s::timestamptz, '-infinity')"
        " AND c.t_lo >= coalesce((SELECT max(f.t_lo) FROM {his} f WHERE f.pid = p.pid"
        "  AND f.t_lo <= %(lo)s::timestamptz AND f.t_lo >= %(ms)s::timestamptz),"
        "  %(lo)s::timestamptz, '-infinity')"
        " AND c.t_lo < {hi}"
        " ORDER BY c.t_lo"
    ).format(lo=sql.SQL(_LO), hi=sql.SQL(_HI), his=n(HIS))


def read_sql(n: Names, *, quotas: bool, limited: bool) -> sql.Composed:
    """The statement of a hisRead: one row per chunk ``(ord, unit, ts, num, bool, str,
    other)``, each array cut to the samples in range, in order of point and time.

    With ``limited``, at most ``%(limit)s`` samples: with ``quotas`` (several points),
    each point gets what the points before it in ``ids`` left (counted, at most the
    limit each, in the same statement).  A point reads at most limit + 1 chunks, since
    every chunk but the first holds a sample in range.
    """
    select = _select(n)
    points = sql.SQL(
        "SELECT u.ord, h.pid, h.unit FROM unnest(%(ids)s::text[]) WITH ORDINALITY u(id, ord)"
        " JOIN {} h ON h.id = u.id"
    ).format(n("his_points"))
    cols = sql.SQL(
        "w.ts[w.skip + 1 : w.skip + w.take], w.num[w.skip + 1 : w.skip + w.take],"
        " w.bool[w.skip + 1 : w.skip + w.take], w.str[w.skip + 1 : w.skip + w.take],"
        " w.other[w.skip + 1 : w.skip + w.take]"
    )
    if not limited:
        return sql.SQL(
            "SELECT p.ord, p.unit, {cols} FROM ({points}) p CROSS JOIN LATERAL ("
            " SELECT s.*, s.upto - s.skip AS take FROM ({select}) s) w"
            " WHERE w.take > 0 ORDER BY p.ord, w.t_lo"
        ).format(cols=cols, points=points, select=select)
    if quotas:
        points = sql.SQL(
            "SELECT c.*, greatest(0, least(c.n, %(limit)s - coalesce(sum(c.n) OVER"
            " (ORDER BY c.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS q"
            " FROM (SELECT p.*, (SELECT least(coalesce(sum(s.upto - s.skip), 0), %(limit)s)"
            "  FROM ({select} LIMIT %(limit)s + 1) s) AS n FROM ({points}) p) c"
        ).format(select=select, points=points)
        quota = sql.SQL("p.q")
    else:
        quota = sql.SQL("%(limit)s")
    return sql.SQL(
        "SELECT p.ord, p.unit, {cols} FROM ({points}) p CROSS JOIN LATERAL ("
        " SELECT s.*, least(s.upto - s.skip, {q} - (sum(s.upto - s.skip)"
        "  OVER (ORDER BY s.t_lo ROWS UNBOUNDED PRECEDING) - (s.upto - s.skip))) AS take"
        " FROM ({select} LIMIT {q} + 1) s) w"
        " WHERE w.take > 0 ORDER BY p.ord, w.t_lo"
    ).format(cols=cols, points=points, select=select, q=quota)
