"""The change feed: one row per write, its ids at consecutive positions, cut to its last
``FEED_SIZE`` positions about every 1024; a cursor older than the cut gets a reset."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from psycopg import sql

from projecthaystack.kinds import Ref
from projecthaystack.stores.pg import PgStore

from .conftest import PG_URL


@pytest.mark.anyio
async def test_the_feed_is_cut_to_its_last_positions(store: PgStore) -> None:
    store._feed_size = 10
    epoch = (await store.changes_since(None)).cursor.partition(":")[0]
    await store.put_entities([{"id": Ref(f"a{k}")} for k in range(1000)])  # positions 1-1000
    assert (await store.changes_since(None)).cursor == f"{epoch}:1000"
    before = await store.changes_since(f"{epoch}:990")
    assert before.ids == {f"a{k}" for k in range(990, 1000)} and not before.reset
    # Positions 1001-1030 pass 1024: the feed keeps 1021-1030 (and the rows holding them).
    await store.put_entities([{"id": Ref(f"b{k}")} for k in range(30)])
    old = await store.changes_since(f"{epoch}:1000")
    assert (old.reset, old.ids, old.cursor) == (True, frozenset(), f"{epoch}:1030")
    kept = await store.changes_since(f"{epoch}:1020")
    assert (kept.reset, kept.ids) == (False, {f"b{k}" for k in range(20, 30)})
    await store.update_entity("a3", {"dis": "x"})
    assert (await store.changes_since(f"{epoch}:1030")).ids == {"a3"}
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT seq, n FROM {} ORDER BY seq").format(
                sql.Identifier(store.schema, "changes")
            )
        )
        assert await cur.fetchall() == [(1030, 30), (1031, 1)]


@pytest.mark.anyio
async def test_a_watch_sees_the_ids_of_a_batch_after_its_cursor(store: PgStore) -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    await store.put_entities([{"id": Ref(f"e{k}")} for k in range(100)])
    sub = await store.watch_sub(
        None,
        ["e1", "e50", "e99"],
        user="u",
        any_owner=False,
        dis="w",
        lease=dt.timedelta(minutes=5),
        now=now,
        max_watches=10,
        max_ids=10,
    )
    assert sub is not None
    wid = sub.watch.id
    assert await store.watch_poll([wid], user="u", any_owner=False, refresh=False, now=now) == [[]]
    await store.put_entities([{"id": Ref(f"e{k}"), "n": str(k)} for k in range(40, 100)])
    (changed,) = await store.watch_poll([wid], user="u", any_owner=False, refresh=False, now=now)
    assert sorted(changed or []) == ["e50", "e99"]
    assert await store.watch_poll([wid], user="u", any_owner=False, refresh=False, now=now) == [[]]
