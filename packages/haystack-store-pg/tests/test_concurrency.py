"""Two workers writing one point's priority array at once lose no level.

Found by the scale-out rig (tools/scaleout): a pointWrite that waited for the point's row
lock used to read the array as it was before the lock holder committed (PostgreSQL
re-reads only the locked row after the wait, not the rows joined to it), and wrote that
back, undoing the other worker's level.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import PriorityLevel
from projecthaystack.stores.pg import PgStore

from .conftest import PG_URL

pytestmark = pytest.mark.anyio
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
async def two(schema: str) -> AsyncIterator[tuple[PgStore, PgStore]]:
    a = PgStore(PG_URL, schema=schema, max_size=2)
    b = PgStore(PG_URL, schema=schema, max_size=2)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_concurrent_point_writes_at_two_levels_keep_both(
    two: tuple[PgStore, PgStore],
) -> None:
    a, b = two
    await a.put_entities([{"id": Ref("p"), "point": Marker, "writable": Marker, "cur": Marker}])
    for i in range(60):
        await asyncio.gather(
            a.point_write("p", 10, PriorityLevel(Number(i), "a"), now=NOW),
            b.point_write("p", 11, PriorityLevel(Number(i), "b"), now=NOW),
        )
        levels = await a.point_write("p", None, None, now=NOW)
        assert levels is not None
        assert (levels[10].val, levels[10].who) == (Number(i), "a"), f"round {i}"
        assert (levels[11].val, levels[11].who) == (Number(i), "b"), f"round {i}"
    (point,) = await b.get_entities(["p"])
    assert point is not None
    assert point["writeVal"] == Number(59)
    assert point["writeLevel"] == Number(10)
