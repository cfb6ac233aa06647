"""The memory store's columnar history against a plain dict model: random writes,
overwrites, kinds that widen a column, and ranges, read back in several zones."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from projecthaystack.kinds import Marker, Number, Ref, tz_from_name
from projecthaystack.server import HisChunk, MemoryStore
from projecthaystack.server._his import KeyedChunk, chunk_of
from projecthaystack.server.storeforms import ts_key

UTC = dt.UTC
NY = tz_from_name("New_York")
ZONES = [UTC, NY, tz_from_name("Tokyo")]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Instants around a DST change in New York (the repeated hour), around the epoch, and far
# beyond the range where a float holds microseconds.
_instants = st.one_of(
    st.integers(1_793_505_600_000_000 - 7_200_000_000, 1_793_505_600_000_000 + 7_200_000_000),
    st.integers(-5_000_000, 5_000_000),
    st.integers(-60_000_000_000_000_000, 250_000_000_000_000_000),
    st.sampled_from([0, 1, 999_999, 1_000_000, 1_793_505_600_000_000]),
)
_units = st.sampled_from([None, "kW", "°F"])
_values = st.one_of(
    st.builds(Number, st.floats(allow_nan=False, width=64), _units),
    st.builds(Number, st.floats(allow_nan=True, width=64)),
    st.booleans(),
    st.text(max_size=3),
    st.just(Marker),
)
# Most chunks keep one kind and unit (the compact columns); some mix them (the list).
_uniform = st.one_of(
    st.lists(st.builds(Number, st.floats(width=64, allow_nan=False), st.just("kW")), max_size=8),
    st.lists(st.booleans(), max_size=8),
)


def _at(key: int, tz: dt.tzinfo) -> dt.datetime:
    return (EPOCH + dt.timedelta(microseconds=key)).astimezone(tz)


@st.composite
def _chunk(draw: st.DrawFn) -> list[tuple[int, Any]]:
    keys = draw(st.lists(_instants, unique=True, max_size=8))
    vals = draw(st.one_of(_uniform, st.lists(_values, max_size=8)))
    return list(zip(keys, vals, strict=False))


def _same(a: Any, b: Any) -> bool:
    if type(a) is Number and type(b) is Number:
        # NaN equals NaN for Numbers; -0.0 must stay -0.0 (a float column keeps it).
        return a == b and str(a.val) == str(b.val)
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(st.tuples(_chunk(), st.sampled_from(ZONES), st.booleans()), max_size=6),
    bounds=st.lists(st.tuples(st.none() | _instants, st.none() | _instants), max_size=4),
    read_tz=st.sampled_from(ZONES),
)
def test_history_equals_a_dict_model(
    writes: list[tuple[list[tuple[int, Any]], dt.tzinfo, bool]],
    bounds: list[tuple[int | None, int | None]],
    read_tz: dt.tzinfo,
) -> None:
    model: dict[int, Any] = {}

    async def run() -> None:
        store = MemoryStore()
        await store.put_entities([{"id": Ref("p")}])
        for pairs, tz, keyed in writes:
            ts = [_at(k, tz) for k, _ in pairs]
            vals = [v for _, v in pairs]
            # As the server hands them over (sorted, keys made), or as any caller does.
            chunk = chunk_of(ts, vals) if keyed else HisChunk(tuple(ts), tuple(vals))
            assert await store.his_write({"p": chunk}) == len(pairs)
            model.update(pairs)
        for lo, hi in [(None, None), *bounds]:
            start = None if lo is None else _at(lo, read_tz)
            end = None if hi is None else _at(hi, read_tz)
            (chunks,) = await store.his_read(["p"], start, end, tz=read_tz)
            got = [(t, v) for c in chunks for t, v in zip(c.ts, c.val, strict=True)]
            want = sorted(
                (k, v)
                for k, v in model.items()
                if (lo is None or k >= lo) and (hi is None or k < hi)
            )
            assert [ts_key(t) for t, _ in got] == [k for k, _ in want]
            assert all(t.tzinfo is read_tz for t, _ in got)
            assert all(
                t == _at(k, read_tz) and t.fold == _at(k, read_tz).fold
                for (t, _), (k, _) in zip(got, want, strict=True)
            )
            assert all(_same(g, w) for (_, g), (_, w) in zip(got, want, strict=True))

    anyio.run(run)


def test_chunk_of_keeps_the_last_sample_at_an_instant() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=UTC)
    later = t + dt.timedelta(seconds=1)
    chunk = chunk_of([later, t, t.astimezone(NY)], [Number(1), Number(2), Number(3)])
    assert isinstance(chunk, KeyedChunk)
    assert list(chunk.keys) == [ts_key(t), ts_key(later)]
    assert list(chunk.val) == [Number(3), Number(1)]
    assert chunk.ts[0].tzinfo is NY


def test_a_million_numbers_take_columns_not_objects() -> None:
    """16 bytes a sample (int64 instant, float64 value) and little else: the point of
    the columns, measured with tracemalloc on 100,000 samples over 10 points."""
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    n = 10_000
    ts = tuple(start + dt.timedelta(seconds=i) for i in range(n))

    async def run() -> tuple[int, int]:
        store = MemoryStore()
        await store.put_entities([{"id": Ref(f"p{i}")} for i in range(10)])
        chunks = [HisChunk(ts, tuple(Number(float(j), "kW") for j in range(n))) for _ in range(10)]
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i, chunk in enumerate(chunks):
            await store.his_write({f"p{i}": chunk})
        del chunk
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        (read,) = await store.his_read(["p3"], None, None, tz=UTC)
        return kept, len(read[0])

    kept, read = anyio.run(run)
    assert read == n
    assert kept < 10 * n * 24  # under 24 bytes a sample, allocation slack included
