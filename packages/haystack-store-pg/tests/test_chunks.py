"""History packed in chunks: the write's plan on its own, then random writes and reads
against a model (a dict by instant) on a store whose chunks hold four samples, with the
layout's rules checked after every write: chunks of a point never overlap, never cross
a month, hold their instants in order, and are never larger than a chunk may be."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from projecthaystack.kinds import Marker, Number, Ref, tz_from_name
from projecthaystack.server import HisChunk
from projecthaystack.stores.pg import PgStore
from projecthaystack.stores.pg._history import (
    Header,
    Samples,
    merge,
    months,
    pieces,
    plan,
    prepare,
    samples_of,
)

from .conftest import PG_URL, drop_schema, new_schema, require_pg

NY = tz_from_name("New_York")
UTC = dt.UTC
# A fall-back night in New York, at the end of a month (UTC): folds and month ends.
T0 = dt.datetime(2026, 10, 31, 22, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)


def utc(*minutes: int) -> list[dt.datetime]:
    return [T0 + m * MIN for m in minutes]


# -- the plan, without a database -------------------------------------------------------
def test_prepare_orders_by_instant_across_a_fold() -> None:
    # 01:30 EDT comes before 01:10 EST, though its wall time is later.
    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = dt.datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NY)
    run = prepare([second, first], ["b", "a"])
    assert run.ts == [first.astimezone(UTC), second.astimezone(UTC)]
    assert run.val == ["a", "b"]
    assert all(t.tzinfo is UTC for t in run.ts)


def test_prepare_keeps_the_later_of_two_samples_at_one_instant() -> None:
    t = dt.datetime(2026, 1, 1, 12, tzinfo=NY)
    run = prepare([t, t.astimezone(UTC), t - MIN], [1, 2, 0])
    assert run.val == [0, 2]


def test_months_split_at_utc_month_starts() -> None:
    ts = utc(0, 60, 119, 120, 121, 60 * 24 * 31)  # Oct 31 22:00 UTC .. Dec 1
    assert [(m.month, a, b) for m, a, b in months(ts)] == [(10, 0, 3), (11, 3, 5), (12, 5, 6)]


def test_pieces_are_full_then_balanced() -> None:
    s = samples_of(utc(*range(10)), [Number(i, "kW") for i in range(10)], "kW")
    assert [len(r[2]) for r in pieces(1, s, 4)] == [4, 4, 2]
    assert [len(r[2]) for r in pieces(1, s, 4, balanced=True)] == [3, 3, 4]
    assert all(r[1] == r[2][0] for r in pieces(1, s, 4))


def test_pieces_keep_kinds_in_their_columns() -> None:
    vals = [Number(1, "kW"), True, "x", "nul\x00", Number(2, "W"), Marker]
    (row,) = pieces(7, samples_of(utc(*range(6)), vals, "kW"), 10)
    pid, _, ts, num, bools, strs, other = row
    assert pid == 7 and len(ts) == 6
    assert num == [1.0, None, None, None, None, None]
    assert bools == [None, True, None, None, None, None]
    assert strs == [None, None, "x", None, None, None]
    assert other is not None and [o is None for o in other] == [True] * 3 + [False] * 3


def test_pieces_of_long_strings_close_early() -> None:
    vals = ["x" * 10_000] * 6
    assert [len(r[2]) for r in pieces(1, samples_of(utc(*range(6)), vals, None), 120)] == [
        2,
        2,
        2,
    ]


def test_merge_prefers_the_new_sample() -> None:
    old = samples_of(utc(0, 2, 4), [Number(0), Number(2), Number(4)], None)
    new = samples_of(utc(2, 3), ["two", Number(3)], None)
    both = merge(old, new)
    assert both.ts == utc(0, 2, 3, 4)
    assert both.slots == [0, 2, 0, 0] and both.raws == [0.0, "two", 3.0, 4.0]


def _new(*minutes: int) -> Samples:
    return samples_of(utc(*minutes), [Number(m) for m in minutes], None)


def test_plan_appends_after_a_full_chunk_without_touching_it() -> None:
    full = Header(T0, T0 + 3 * MIN, 4)
    group = plan(_new(5, 6), [full], 4)
    assert group.rewrite == [] and [p.ts for p in group.alone] == [utc(5, 6)]


def test_plan_fills_a_partial_chunk() -> None:
    partial = Header(T0, T0 + 1 * MIN, 2)
    group = plan(_new(5), [partial], 4)
    assert [(h, p.ts) for h, p in group.rewrite] == [(partial, utc(5))]


def test_plan_gives_each_sample_its_floor_chunk() -> None:
    a, b = Header(T0, T0 + 3 * MIN, 4), Header(T0 + 10 * MIN, T0 + 13 * MIN, 4)
    # -5 is before the first chunk (so it is a's), 2 and 11 are among a's and b's own.
    group = plan(_new(-5, 2, 11, 20), [a, b], 4)
    assert [(h, p.ts) for h, p in group.rewrite] == [(a, utc(-5, 2)), (b, utc(11, 20))]
    assert group.alone == []
    # Past a full chunk's end but before the next chunk: on its own.
    group = plan(_new(5, 11), [a, b], 4)
    assert [p.ts for p in group.alone] == [utc(5)]
    assert [(h, p.ts) for h, p in group.rewrite] == [(b, utc(11))]


def test_plan_puts_samples_before_a_full_first_chunk_on_their_own() -> None:
    first = Header(T0, T0 + 3 * MIN, 4)
    assert [p.ts for p in plan(_new(-3, -2), [first], 4).alone] == [utc(-3, -2)]
    # Around it on both sides: merged, so that no chunk overlaps another.
    assert len(plan(_new(-3, 9), [first], 4).rewrite) == 1


# -- random writes and reads against a model ---------------------------------------------
class Loop:
    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.runner.close()


@pytest.fixture(scope="module")
def small(loop: Loop) -> Iterator[tuple[PgStore, str]]:
    require_pg()
    schema = new_schema()
    store = PgStore(PG_URL, schema=schema, max_size=2)
    store._chunk = 4
    loop.run(store.open())
    try:
        yield store, schema
    finally:
        loop.run(store.close())
        drop_schema(schema)


values = st.one_of(
    st.builds(lambda x: Number(float(x), "kW"), st.integers(-50, 50)),
    st.builds(lambda x: Number(float(x), "W"), st.integers(0, 5)),
    st.booleans(),
    st.text(max_size=3),
    st.just(Marker),
)
# Minutes around the end of October (UTC) and the New York fall-back hour after it
# (Nov 1, 05:00 to 06:00 UTC, at 420 to 480, has the wall times of the hour before).
minutes = st.one_of(st.integers(-30, 150), st.integers(400, 500))
writes = st.lists(
    st.dictionaries(st.sampled_from(["p", "q"]), st.dictionaries(minutes, values, max_size=12)),
    min_size=1,
    max_size=6,
)
bounds = st.one_of(st.none(), minutes)


async def _check_layout(schema: str, size: int) -> None:
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT pid, t_lo, ts, cardinality(ts), num, bool, str, other FROM {}"
                " ORDER BY pid, t_lo"
            ).format(sql.Identifier(schema, "his"))
        )
        last: dict[int, dt.datetime] = {}
        for pid, t_lo, ts, n, *columns in await cur.fetchall():
            assert 1 <= n <= size and t_lo == ts[0]
            assert all(a < b for a, b in itertools.pairwise(ts))
            start = t_lo.astimezone(UTC)
            assert (start.year, start.month) == (
                ts[-1].astimezone(UTC).year,
                ts[-1].astimezone(UTC).month,
            )
            assert pid not in last or last[pid] < t_lo
            last[pid] = ts[-1]
            for column in columns:
                assert column is None or len(column) == n
            # Each sample is in exactly one column.
            for k in range(n):
                assert sum(c is not None and c[k] is not None for c in columns) == 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=writes, lo=bounds, hi=bounds, limit=st.one_of(st.none(), st.integers(1, 30)))
def test_random_writes_and_reads_agree_with_a_model(
    small: tuple[PgStore, str],
    loop: Loop,
    batches: list[dict[str, dict[int, Any]]],
    lo: int | None,
    hi: int | None,
    limit: int | None,
) -> None:
    store, schema = small
    loop.run(store.delete_entities(["p", "q"]))
    loop.run(store.put_entities([{"id": Ref("p")}, {"id": Ref("q")}]))
    model: dict[str, dict[dt.datetime, Any]] = {"p": {}, "q": {}}  # by instant in UTC
    for batch in batches:
        chunks = {}
        for id, samples in batch.items():
            # In a zone with a fold, in no order: the store orders by instant.
            times = [(T0 + m * MIN).astimezone(NY) for m in reversed(samples)]
            chunks[id] = HisChunk(tuple(times), tuple(reversed(samples.values())))
            model[id].update((T0 + m * MIN, v) for m, v in samples.items())
        assert loop.run(store.his_write(chunks)) == sum(len(c) for c in chunks.values())
        loop.run(_check_layout(schema, 4))
    start = None if lo is None else T0 + lo * MIN
    end = None if hi is None else T0 + hi * MIN
    got = loop.run(store.his_read(["q", "x", "p"], start, end, tz=NY, limit=limit))
    left = limit
    for id, chunks_of in zip(["q", "x", "p"], got, strict=True):
        want = sorted(
            (
                (t, v)
                for t, v in model.get(id, {}).items()
                if (start is None or t >= start) and (end is None or t < end)
            ),
            key=lambda pair: pair[0],
        )
        if left is not None:
            want, left = want[:left], left - min(left, len(want))
        have = [pair for c in chunks_of for pair in zip(c.ts, c.val, strict=True)]
        assert all(t.tzinfo is NY for t, _ in have)
        assert [(t.astimezone(UTC), v) for t, v in have] == want
        assert all(type(a) is type(b) for (_, a), (_, b) in zip(have, want, strict=True))
