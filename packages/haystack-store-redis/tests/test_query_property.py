"""Filter pushdown equals a full scan: random filters over the example buildings (alpha
and bravo, from ``../shared/data/buildings`` beside the checkout or ``HAYSTACK_BUILDINGS``)
give exactly what :func:`projecthaystack.filter.select` gives over the same records."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projecthaystack.codecs import zinc
from projecthaystack.filter import And, Cmp, Filter, Has, Missing, Or, Path, select
from projecthaystack.kinds import Number, Ref
from projecthaystack.stores.redis import RedisStore

from .conftest import SHARED, building_dir, shared_up, unavailable

Loaded = tuple[str, list[dict[str, Any]]]


def _records(name: str) -> list[dict[str, Any]]:
    path = building_dir() / f"{name}.zinc"
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing: CI must have the example buildings")
        pytest.skip(f"example buildings not found at {building_dir()} (set HAYSTACK_BUILDINGS)")
    return [dict(r) for r in zinc.decode_grid(path.read_bytes())]


async def _with_store(prefix: str, job: Any) -> Any:
    store = RedisStore(SHARED, prefix=prefix)
    await store.open()
    try:
        return await job(store)
    finally:
        await store.close()


@pytest.fixture(scope="module", params=["alpha", "bravo"])
def loaded(request: pytest.FixtureRequest) -> Iterator[Loaded]:
    """The building in the shared Redis under a fresh prefix, for the whole module."""
    if not shared_up():
        unavailable("no Redis on 127.0.0.1:6379 (start one: redis-server --port 6379)")
    records = _records(request.param)
    prefix = f"test-{request.param}-{uuid.uuid4().hex[:8]}"

    async def put(store: RedisStore) -> None:
        await store.put_entities(records)

    anyio.run(_with_store, prefix, put)
    yield prefix, records

    async def drop(store: RedisStore) -> None:
        await store.drop()

    anyio.run(_with_store, prefix, drop)


def _filters(records: list[dict[str, Any]]) -> st.SearchStrategy[Filter]:
    names = sorted({n for r in records for n in r})
    refs = sorted({n for r in records for n, v in r.items() if type(v) is Ref and n != "id"})
    values: dict[str, list[Any]] = {}
    for r in records:
        for n, v in r.items():
            if isinstance(v, str | Number | Ref | bool) and len(values.setdefault(n, [])) < 20:
                values[n].append(v)
    valued = sorted(values)
    name = st.sampled_from([*names, "noSuchTag"])
    path = st.one_of(
        name.map(lambda n: Path((n,))),
        st.tuples(st.sampled_from(refs), name).map(Path),
        st.tuples(st.sampled_from(refs), st.sampled_from(refs), name).map(Path),
    )

    def cmp_for(tag: str) -> st.SearchStrategy[Filter]:
        op = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
        head = st.one_of(st.just(()), st.tuples(st.sampled_from(refs)))
        return st.builds(
            lambda h, o, v: Cmp(Path((*h, tag)), o, v), head, op, st.sampled_from(values[tag])
        )

    leaf = st.one_of(
        path.map(Has),
        path.map(Missing),
        st.sampled_from(valued).flatmap(cmp_for),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda ops: And(tuple(ops))),
            st.lists(inner, min_size=2, max_size=3).map(lambda ops: Or(tuple(ops))),
        ),
        max_leaves=6,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_filters_equal_a_full_scan(loaded: Loaded, data: st.DataObject) -> None:
    prefix, records = loaded
    flt = data.draw(_filters(records))
    limit = data.draw(st.one_of(st.none(), st.integers(1, 5)))

    async def query(store: RedisStore) -> list[Any]:
        return await store.query(flt, limit=limit)

    got = anyio.run(_with_store, prefix, query)
    expected = select(flt, records)
    assert got == (expected if limit is None else expected[:limit]), str(flt)
