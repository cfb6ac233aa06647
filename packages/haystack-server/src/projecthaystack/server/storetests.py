"""The storage protocol's contract suite, for every store to reuse.

Every check runs on *two instances of the store on one backend*, as two server
processes would share it: what one writes the other reads, a handshake begun through one
finishes through the other exactly once, caps hold when both are called at once, a
change made through one wakes the other's change-feed waiter.

Subclass :class:`StoreContract` in a test module and give it a ``stores`` fixture that
yields two opened store instances on one fresh, empty backend (needs pytest and anyio,
which are test dependencies, not the server's)::

    import pytest
    from projecthaystack.server.storetests import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def stores(self):
            url = fresh_database()             # one backend per test
            a, b = MyStore(url), MyStore(url)  # two workers' views of it
            await a.open()
            await b.open()
            yield a, b
            await a.close()
            await b.close()

        async def reopen_with_schema(self, store, schema):
            ...  # mark the backend with another schema version; an unopened store on it

The suite runs on asyncio; override the ``anyio_backend`` fixture to add trio where the
store allows.  A store for one process only sets ``SINGLE_PROCESS = True``: it may then
skip the checks listed in :data:`SINGLE_PROCESS_SKIPS` (its two instances are two views
of one in-process backend, or the same object).  Every other check applies to every
store.

The queries are checked against :func:`projecthaystack.filter.select` over the same
records, so a store's filter pushdown must give exactly what a full scan gives.
Time is passed in (``now``), never slept through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import anyio
import pytest

from projecthaystack.auth import ClientHandshake, ScramCredentials
from projecthaystack.filter import FilterError, IsSpec, parse, select
from projecthaystack.kinds import FrozenDict, Marker, Number, Ref, Remove, tz_from_name

from ._auth import Authenticator, LoginStep
from ._config import ServerConfig
from ._demo import demo_building
from ._errors import HttpError
from ._store import (
    PROTOCOL_VERSION,
    HisChunk,
    PriorityLevel,
    Role,
    SchemaError,
    Session,
    Store,
    UnknownEntityError,
    UnknownUserError,
    User,
    UserChanges,
    UserExistsError,
    WatchLimitError,
)
from .storeforms import token_hash, ts_key

__all__ = ["QUERIES", "SINGLE_PROCESS_SKIPS", "StoreContract"]

NY = tz_from_name("New_York")
CHICAGO = tz_from_name("Chicago")
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=1)
SECRET = b"storetests secret, 32 bytes long"

QUERIES = (
    "site",
    "equip and ahu",
    'point and his and kind == "Number"',
    "point and not writable",
    "point and (temp or flow) and sensor",
    "vav and equipRef->ahu",
    'point and equipRef->siteRef->geoCity == "Oakland"',
    "curVal > 60°F",
    "curVal <= 50%",
    "id == @demo.site1.ahu1",
    "siteRef == @demo.site2 and equip",
    'dis == "Riverside Office AHU-1 Supply Fan Run"',
    "area >= 50000ft²",
    "missingTag",
    "not point",
    'unit != "°F" and point',
    "primaryFunction and yearBuilt < 2000",
    "ahu or (meter and elec)",
)
"""Filters every store must answer like a full scan does (spec names arrive rewritten
into tags like the last one)."""

SINGLE_PROCESS_SKIPS = frozenset({"test_open_refuses_another_schema"})
"""The checks a store with ``SINGLE_PROCESS = True`` may skip: nothing of it outlives
the process, so there is no stored schema to check."""

T = TypeVar("T")


def _user(name: str, role: Role = Role.VIEWER, password: str | None = None) -> User:
    creds = ScramCredentials.derive(password or "password-" + name, iterations=4096)
    return User(name, role, creds, created=T0)


def _ts(i: int, tz: dt.tzinfo = NY) -> dt.datetime:
    return (T0 + dt.timedelta(minutes=15 * i)).astimezone(tz)


def _chunk(*pairs: tuple[int, Any], tz: dt.tzinfo = NY) -> HisChunk:
    return HisChunk(tuple(_ts(i, tz) for i, _ in pairs), tuple(v for _, v in pairs))


def _flat(chunks: Any) -> list[tuple[dt.datetime, Any]]:
    return [pair for c in chunks for pair in zip(c.ts, c.val, strict=True)]


async def _all(*calls: Callable[[], Awaitable[T]]) -> list[T | BaseException]:
    """Run calls at once; each one's result, or the exception it raised."""
    out: list[T | BaseException] = [RuntimeError("not run")] * len(calls)

    async def run(i: int, call: Callable[[], Awaitable[T]]) -> None:
        try:
            out[i] = await call()
        except Exception as exc:
            out[i] = exc

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run, i, call)
    return out


class StoreContract:
    """The checks every :class:`~projecthaystack.server.Store` must pass, each on two
    instances (``a`` and ``b``) on one backend."""

    SINGLE_PROCESS: ClassVar[bool] = False
    """Set by a store for one process only; see :data:`SINGLE_PROCESS_SKIPS`."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def stores(self) -> AsyncIterator[tuple[Store, Store]]:
        """Two opened instances on one fresh, empty backend: a subclass provides it."""
        raise NotImplementedError("a StoreContract subclass must provide the 'stores' fixture")
        return  # pragma: no cover

    async def reopen_with_schema(self, store: Store, schema: int) -> Store:
        """Mark ``store``'s backend as holding data of ``schema`` and return a new,
        unopened instance on it.  A store that keeps data across processes implements
        it; the suite then checks that :meth:`Store.open` refuses the backend."""
        raise NotImplementedError("a shared store must implement reopen_with_schema")

    @pytest.fixture
    def building(self) -> list[dict[str, Any]]:
        return demo_building(3, sites=2, ahus=2, vavs=3, days=0).records

    def _may_skip(self, name: str) -> None:
        if self.SINGLE_PROCESS and name in SINGLE_PROCESS_SKIPS:
            pytest.skip(
                f"{name}: a single-process store has no second process to disagree with; "
                "run the suite on a shared store (PostgreSQL or Redis) to check it"
            )

    # -- lifecycle -----------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_info_names_the_protocol(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        assert isinstance(a, Store) and isinstance(b, Store)
        info_a, info_b = await a.info(), await b.info()
        assert info_a.protocol == PROTOCOL_VERSION
        assert info_a == info_b
        assert info_a.shared is not self.SINGLE_PROCESS
        assert isinstance(info_a.schema, int) and info_a.backend

    @pytest.mark.anyio
    async def test_open_refuses_another_schema(self, stores: tuple[Store, Store]) -> None:
        self._may_skip("test_open_refuses_another_schema")
        a, _ = stores
        info = await a.info()
        other = await self.reopen_with_schema(a, info.schema + 1)
        with pytest.raises(SchemaError):
            await other.open()

    # -- entities ------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_put_get_replace(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("a"), "dis": "A", "site": Marker}])
        await b.put_entities([{"id": Ref("b"), "n": Number(2, "kW")}])
        for store in stores:
            assert await store.get_entities(["a", "zz", "b"]) == [
                {"id": Ref("a"), "dis": "A", "site": Marker},
                None,
                {"id": Ref("b"), "n": Number(2, "kW")},
            ]
        await b.put_entities([{"id": Ref("a"), "dis": "A2"}])
        assert await a.get_entities(["a"]) == [{"id": Ref("a"), "dis": "A2"}]
        assert await a.count_entities() == 2
        got = await a.get_entities(["a"])
        assert type(got[0]) is FrozenDict

    @pytest.mark.anyio
    async def test_put_is_all_or_nothing(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        with pytest.raises(ValueError, match="id"):
            await a.put_entities([{"id": Ref("ok")}, {"id": "a-string"}])
        assert await b.count_entities() == 0
        assert await b.get_entities(["ok"]) == [None]

    @pytest.mark.anyio
    async def test_get_many_ids(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(f"p{i}"), "n": Number(i)} for i in range(1000)])
        ids = [f"p{i}" for i in range(999, -1, -2)] + ["missing"]
        got = await b.get_entities(ids)
        assert [r["n"].val if r else None for r in got] == [*range(999, -1, -2), None]

    @pytest.mark.anyio
    async def test_update(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("a"), "x": Number(1), "y": "keep"}])
        updated = await b.update_entity(
            "a", {"x": Number(2), "y": Remove, "z": Marker, "id": Ref("b")}
        )
        assert updated == {"id": Ref("a"), "x": Number(2), "z": Marker}
        assert await a.get_entities(["a"]) == [updated]
        assert await a.update_entity("nope", {"x": Number(1)}) is None

    @pytest.mark.anyio
    async def test_delete_takes_history_and_priority(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p"), "point": Marker}, {"id": Ref("q")}])
        await a.his_write({"p": _chunk((0, Number(1)))})
        await a.point_write("p", 8, PriorityLevel(Number(1), "me"), now=T0)
        assert await b.delete_entities(["p", "missing", "p"]) == 1
        assert await a.get_entities(["p", "q"]) == [None, {"id": Ref("q")}]
        assert _flat((await a.his_read(["p"], None, None, tz=NY))[0]) == []
        # Put back, the point starts afresh: no old history, no old levels.
        await b.put_entities([{"id": Ref("p"), "point": Marker}])
        assert _flat((await a.his_read(["p"], None, None, tz=NY))[0]) == []
        assert await a.point_write("p", None, None, now=T0) == {}

    @pytest.mark.anyio
    @pytest.mark.parametrize("text", QUERIES)
    async def test_query_equals_full_scan(
        self, stores: tuple[Store, Store], building: list[dict[str, Any]], text: str
    ) -> None:
        a, b = stores
        await a.put_entities(building)
        expected = select(parse(text), building)
        assert await b.query(parse(text)) == expected
        assert await b.query(parse(text), limit=2) == expected[:2]
        assert await b.query(parse(text), limit=0) == []

    @pytest.mark.anyio
    async def test_query_order_is_first_put(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(f"e{i}"), "t": Marker} for i in range(5)])
        await b.put_entities([{"id": Ref("e2"), "t": Marker, "again": Marker}])
        assert [r["id"].id for r in await a.query(parse("t"))] == [f"e{i}" for i in range(5)]

    @pytest.mark.anyio
    async def test_query_never_gets_spec_names(self, stores: tuple[Store, Store]) -> None:
        a, _ = stores
        await a.put_entities([{"id": Ref("m"), "meter": Marker}])
        with pytest.raises(FilterError):
            await a.query(IsSpec("Meter"))

    # -- the change feed -------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_change_feed(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        start = await a.changes_since(None)
        assert start.ids == frozenset()
        await b.put_entities([{"id": Ref("x")}, {"id": Ref("y")}])
        first = await a.changes_since(start.cursor)
        assert first.ids == {"x", "y"} and not first.reset
        assert (await a.changes_since(first.cursor)).ids == frozenset()
        await b.update_entity("x", {"v": Number(1)})
        await a.delete_entities(["y"])
        second = await b.changes_since(first.cursor)
        assert second.ids == {"x", "y"}
        assert (await a.changes_since(start.cursor)).ids == {"x", "y"}  # cursors keep
        # History is not a change of the entity.
        await a.his_write({"x": _chunk((0, Number(1)))})
        assert (await a.changes_since(second.cursor)).ids == frozenset()

    @pytest.mark.anyio
    async def test_a_cursor_not_the_stores_is_a_reset(self, stores: tuple[Store, Store]) -> None:
        a, _ = stores
        assert (await a.changes_since("not-a-cursor")).reset

    @pytest.mark.anyio
    async def test_waiter_wakes_on_the_other_instances_write(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        cursor = (await b.changes_since(None)).cursor
        woke: list[frozenset[str]] = []

        async def waiter() -> None:
            woke.append((await b.wait_changes(cursor, 60)).ids)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                await a.put_entities([{"id": Ref("w"), "site": Marker}])
        assert woke == [frozenset({"w"})]

    @pytest.mark.anyio
    async def test_waiter_times_out_or_answers_at_once(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        cursor = (await a.changes_since(None)).cursor
        with anyio.fail_after(20):
            quiet = await a.wait_changes(cursor, 0.01)
        assert quiet.ids == frozenset()
        await b.put_entities([{"id": Ref("n")}])
        with anyio.fail_after(20):
            behind = await a.wait_changes(cursor, 60)  # already behind: no waiting
        assert behind.ids == {"n"}

    # -- history -------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_history_order_duplicates_ranges(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p")}, {"id": Ref("other")}])
        assert await a.his_write({"p": _chunk((3, Number(3)), (0, Number(0)), (5, Number(5)))}) == 3
        await b.his_write({"p": _chunk((1, Number(1)), (3, Number(33)), (2, True))})
        got = _flat((await a.his_read(["p"], None, None, tz=NY))[0])
        assert [v for _, v in got] == [Number(0), Number(1), True, Number(33), Number(5)]
        assert [t for t, _ in got] == [_ts(i) for i in (0, 1, 2, 3, 5)]
        assert all(t.tzinfo is NY for t, _ in got)
        between = _flat((await b.his_read(["p"], _ts(1), _ts(3), tz=NY))[0])
        assert [v for _, v in between] == [Number(1), True]
        since = _flat((await b.his_read(["p"], _ts(3), None, tz=NY))[0])
        assert [v for _, v in since] == [Number(33), Number(5)]
        assert len(_flat((await a.his_read(["p"], None, None, tz=NY, limit=2))[0])) == 2
        assert _flat((await a.his_read(["other"], None, None, tz=NY))[0]) == []

    @pytest.mark.anyio
    async def test_history_in_the_zone_asked_for(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p")}])
        await a.his_write({"p": _chunk((0, Number(0)), (1, Number(1)), (2, Number(2)))})
        for zone in (NY, CHICAGO, dt.UTC):
            got = _flat((await b.his_read(["p"], None, None, tz=zone))[0])
            assert [t for t, _ in got] == [_ts(i) for i in range(3)]  # the same instants
            assert all(t.tzinfo is zone for t, _ in got)  # ... in the zone asked for

    @pytest.mark.anyio
    async def test_history_instants_to_the_microsecond(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p")}])
        t = _ts(0).replace(microsecond=123456)
        await a.his_write({"p": HisChunk((t, t + dt.timedelta(microseconds=1)), ("a", "b"))})
        got = _flat((await b.his_read(["p"], t, None, tz=NY))[0])
        assert got == [(t, "a"), (t + dt.timedelta(microseconds=1), "b")]
        assert ts_key(got[1][0]) - ts_key(got[0][0]) == 1

    @pytest.mark.anyio
    async def test_his_read_batch_and_limit(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(i)} for i in ("p", "q", "r")])
        await a.his_write(
            {
                "p": _chunk(*((i, Number(i)) for i in range(4))),
                "q": _chunk(*((i, Number(10 + i)) for i in range(4))),
            }
        )
        got = await b.his_read(["q", "nope", "p", "r"], None, None, tz=NY)
        assert [[v.val for _, v in _flat(c)] for c in got] == [
            [10, 11, 12, 13],
            [],
            [0, 1, 2, 3],
            [],
        ]
        capped = await b.his_read(["p", "q"], None, None, tz=NY, limit=6)
        assert [len(_flat(c)) for c in capped] == [4, 2]
        nothing = await b.his_read(["p", "q"], None, None, tz=NY, limit=0)
        assert [len(_flat(c)) for c in nothing] == [0, 0]

    @pytest.mark.anyio
    async def test_his_write_batch_is_all_or_nothing(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p")}, {"id": Ref("q")}])
        with pytest.raises(UnknownEntityError) as caught:
            await b.his_write(
                {"p": _chunk((0, Number(0))), "gone": _chunk((0, Number(0))), "q": _chunk()}
            )
        assert caught.value.ids == ("gone",)
        assert [_flat(c) for c in await a.his_read(["p", "q"], None, None, tz=NY)] == [[], []]

    @pytest.mark.anyio
    async def test_concurrent_batches_lose_nothing_and_fail_whole(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("p")}, {"id": Ref("q")}])

        def good(i: int, store: Store) -> Callable[[], Awaitable[int]]:
            return lambda: store.his_write(
                {"p": _chunk((i, Number(i))), "q": _chunk((i, Number(-i)))}
            )

        def bad(i: int, store: Store) -> Callable[[], Awaitable[int]]:
            return lambda: store.his_write(
                {"p": _chunk((i, Number(i))), "missing": _chunk((i, Number(i)))}
            )

        calls = [
            (good if i % 3 else bad)(i, stores[i % 2])  # every third one fails
            for i in range(60)
        ]
        results = await _all(*calls)
        failed = {i for i, r in enumerate(results) if isinstance(r, UnknownEntityError)}
        assert failed == {i for i in range(60) if i % 3 == 0}
        p, q = await b.his_read(["p", "q"], None, None, tz=NY)
        kept = [i for i in range(60) if i % 3]
        assert [v.val for _, v in _flat(p)] == kept
        assert [-v.val for _, v in _flat(q)] == kept

    # -- priority arrays -----------------------------------------------------------------
    @pytest.mark.anyio
    async def test_point_write_levels_and_write_val(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("sp"), "writable": Marker}])
        until = T0 + dt.timedelta(hours=1)
        await a.point_write("sp", 8, PriorityLevel(Number(70, "°F"), "op", until), now=T0)
        levels = await b.point_write("sp", 16, PriorityLevel(Number(72, "°F"), "sched"), now=T0)
        assert levels == {
            8: PriorityLevel(Number(70, "°F"), "op", until),
            16: PriorityLevel(Number(72, "°F"), "sched"),
        }
        (point,) = await b.get_entities(["sp"])
        assert point is not None
        assert point["writeVal"] == Number(70, "°F") and point["writeLevel"] == Number(8)
        assert "curVal" not in point
        # Level 8 runs out: a look at the array expires it and the tags follow.
        later = until + dt.timedelta(seconds=1)
        assert await a.point_write("sp", None, None, now=later) == {
            16: PriorityLevel(Number(72, "°F"), "sched")
        }
        (point,) = await b.get_entities(["sp"])
        assert point is not None and point["writeLevel"] == Number(16)
        assert await b.point_write("sp", 16, None, now=later) == {}
        (point,) = await a.get_entities(["sp"])
        assert point == {"id": Ref("sp"), "writable": Marker}
        assert await a.point_write("nope", 8, PriorityLevel(Number(1), "x"), now=T0) is None

    @pytest.mark.anyio
    async def test_point_write_moves_cur_val_and_the_feed(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("sp"), "writable": Marker, "cur": Marker}])
        cursor = (await b.changes_since(None)).cursor
        await a.point_write("sp", 10, PriorityLevel("on", "me"), now=T0)
        (point,) = await b.get_entities(["sp"])
        assert point is not None and point["curVal"] == "on" and point["writeVal"] == "on"
        changes = await b.changes_since(cursor)
        assert changes.ids == {"sp"}
        # A write that changes no tag is no change of the entity.
        await a.point_write("sp", 12, PriorityLevel("off", "me"), now=T0)
        assert (await b.changes_since(changes.cursor)).ids == frozenset()

    @pytest.mark.anyio
    async def test_concurrent_point_writes_stay_consistent(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("sp"), "writable": Marker}])

        def write(i: int) -> Callable[[], Awaitable[Any]]:
            level = 1 + i % 16
            entry = None if i % 5 == 4 else PriorityLevel(Number(i), f"w{i}")
            return lambda: stores[i % 2].point_write("sp", level, entry, now=T0)

        await _all(*(write(i) for i in range(80)))
        levels = await b.point_write("sp", None, None, now=T0)
        assert levels is not None
        (point,) = await a.get_entities(["sp"])
        assert point is not None
        if levels:
            top = min(levels)
            assert point["writeVal"] == levels[top].val and point["writeLevel"] == Number(top)
        else:
            assert "writeVal" not in point and "writeLevel" not in point

    # -- watches -------------------------------------------------------------------------
    async def _sub(
        self,
        store: Store,
        watch_id: str | None,
        ids: list[str],
        user: str = "alice",
        *,
        now: dt.datetime = T0,
        max_watches: int = 10,
        max_ids: int = 100,
        any_owner: bool = False,
    ) -> Any:
        return await store.watch_sub(
            watch_id,
            ids,
            user=user,
            any_owner=any_owner,
            dis="app",
            lease=LEASE,
            now=now,
            max_watches=max_watches,
            max_ids=max_ids,
        )

    async def _poll(
        self,
        store: Store,
        watch_ids: list[str],
        user: str = "alice",
        *,
        refresh: bool = False,
        now: dt.datetime = T0,
    ) -> list[list[str] | None]:
        found = await store.watch_poll(
            watch_ids, user=user, any_owner=False, refresh=refresh, now=now
        )
        return [None if f is None else sorted(f) for f in found]

    @pytest.mark.anyio
    async def test_watch_sees_writes_through_the_other_instance(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("x"), "v": Number(1)}, {"id": Ref("y")}])
        sub = await self._sub(a, None, ["x", "nope", "y"])
        assert sub.watch.owner == "alice" and sub.watch.expires == T0 + LEASE
        assert sub.watch.size == 2 and sub.watch.lease == LEASE
        assert sub.entities == [{"id": Ref("x"), "v": Number(1)}, None, {"id": Ref("y")}]
        wid = sub.watch.id
        assert await self._poll(b, [wid]) == [[]]
        await b.update_entity("x", {"v": Number(2)})
        assert await self._poll(a, [wid]) == [["x"]]
        assert await self._poll(b, [wid]) == [[]]
        assert await self._poll(b, [wid], refresh=True) == [["x", "y"]]
        await b.put_entities([{"id": Ref("z")}])
        assert await self._poll(a, [wid]) == [[]]  # not watched
        assert await a.watch_unsub(wid, ["x"], close=False, user="alice", any_owner=False, now=T0)
        await b.update_entity("x", {"v": Number(3)})
        assert await self._poll(a, [wid]) == [[]]
        await a.delete_entities(["y"])
        assert await self._poll(b, [wid]) in ([["y"]], [[]])  # reported or not: no record
        assert await b.watch_unsub(wid, [], close=True, user="alice", any_owner=False, now=T0)
        assert await self._poll(a, [wid]) == [None]

    @pytest.mark.anyio
    async def test_watch_reports_only_changes_after_subscribing(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("x")}, {"id": Ref("y")}])
        wid = (await self._sub(a, None, ["x"])).watch.id
        await b.update_entity("y", {"v": Number(1)})
        await b.update_entity("x", {"v": Number(1)})
        await self._sub(b, wid, ["y"])  # y changed before it was added
        assert await self._poll(a, [wid]) == [["x"]]

    @pytest.mark.anyio
    async def test_watch_owner_is_checked_in_the_store(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref("x")}])
        wid = (await self._sub(a, None, ["x"])).watch.id
        assert await self._sub(b, wid, ["x"], "mallory") is None
        assert await self._poll(b, [wid], "mallory") == [None]
        assert not await b.watch_unsub(
            wid, ["x"], close=True, user="mallory", any_owner=False, now=T0
        )
        admin = await b.watch_poll(["nope", wid], user="root", any_owner=True, refresh=True, now=T0)
        assert admin == [None, ["x"]]
        assert (await self._sub(a, wid, [], "root", any_owner=True)) is not None
        assert await self._poll(a, [wid]) == [[]]  # still alice's, still open

    @pytest.mark.anyio
    async def test_watch_lease_expires_and_polls_renew(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        wid = (await self._sub(a, None, [], "bob")).watch.id
        assert await self._poll(b, [wid], "bob", now=T0 + dt.timedelta(seconds=50)) == [[]]
        # Renewed at 50 s and again at 100 s: gone once 160 s have passed.
        assert await self._poll(a, [wid], "bob", now=T0 + dt.timedelta(seconds=100)) == [[]]
        gone = T0 + dt.timedelta(seconds=161)
        assert await self._poll(b, [wid], "bob", now=gone) == [None]
        assert await self._sub(a, wid, [], "bob", now=gone) is None
        assert not await a.watch_unsub(wid, [], close=True, user="bob", any_owner=False, now=gone)
        # An expired watch no longer counts against its owner's cap.
        assert await self._sub(b, None, [], "bob", now=gone, max_watches=1) is not None

    @pytest.mark.anyio
    async def test_watch_caps_refuse_and_change_nothing(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(f"e{i}")} for i in range(6)])
        first = await self._sub(a, None, ["e0", "e1"], max_watches=2, max_ids=3)
        await self._sub(b, None, [], max_watches=2)
        with pytest.raises(WatchLimitError) as caught:
            await self._sub(a, None, [], max_watches=2)
        assert caught.value.limit == "watches"
        await self._sub(a, None, [], "bob", max_watches=2)  # another user is not counted
        wid = first.watch.id
        with pytest.raises(WatchLimitError) as caught:
            await self._sub(b, wid, ["e2", "e3"], max_ids=3)
        assert caught.value.limit == "ids"
        again = await self._sub(a, wid, ["e1", "e2", "nope"], max_ids=3)  # e1 held already
        assert again.watch.size == 3
        assert await self._poll(b, [wid], refresh=True) == [["e0", "e1", "e2"]]

    @pytest.mark.anyio
    async def test_watch_caps_hold_under_concurrency(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(f"e{i}")} for i in range(40)])
        opened = await _all(
            *(lambda s=stores[i % 2]: self._sub(s, None, [], max_watches=5) for i in range(20))
        )
        assert sum(not isinstance(r, BaseException) for r in opened) == 5
        assert all(isinstance(r, WatchLimitError) for r in opened if isinstance(r, BaseException))
        wid = (await self._sub(a, None, [], "carol")).watch.id
        added = await _all(
            *(
                lambda s=stores[i % 2], i=i: self._sub(
                    s, wid, [f"e{4 * i + k}" for k in range(4)], "carol", max_ids=10
                )
                for i in range(10)
            )
        )
        assert sum(not isinstance(r, BaseException) for r in added) == 2  # 8 of 10 ids
        (held,) = await b.watch_poll([wid], user="carol", any_owner=False, refresh=True, now=T0)
        assert held is not None and len(held) == 8

    @pytest.mark.anyio
    async def test_watch_poll_many_at_once(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.put_entities([{"id": Ref(f"e{i}")} for i in range(1000)])
        ids = [f"e{i}" for i in range(1000)]
        one = (await self._sub(a, None, ids[:500], max_ids=500)).watch.id
        two = (await self._sub(b, None, ids[500:], max_ids=500)).watch.id
        await b.put_entities([{"id": Ref("e7"), "v": Marker}, {"id": Ref("e700"), "v": Marker}])
        assert await self._poll(a, [one, "nope", two]) == [["e7"], None, ["e700"]]

    # -- users ---------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_users(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        await a.create_user(_user("zed"))
        original = _user("amy", Role.ADMIN)
        await b.create_user(original)
        with pytest.raises(UserExistsError):
            await a.create_user(_user("amy"))
        assert [u.username for u in await a.list_users()] == ["amy", "zed"]
        amy = await a.get_user("amy")
        assert amy == original
        assert amy is not None and amy.credentials.verify_password("password-amy")
        demoted = await a.update_user("amy", UserChanges(role=Role.VIEWER, enabled=False))
        assert demoted == User("amy", Role.VIEWER, original.credentials, False, T0)
        assert await b.get_user("amy") == demoted
        with pytest.raises(UnknownUserError):
            await b.update_user("nobody", UserChanges(role=Role.ADMIN))
        assert await b.delete_user("zed") is True
        assert await a.delete_user("zed") is False
        assert await a.get_user("zed") is None

    @pytest.mark.anyio
    async def test_one_of_two_concurrent_creates_wins(self, stores: tuple[Store, Store]) -> None:
        def create(i: int) -> Callable[[], Awaitable[None]]:
            return lambda: stores[i % 2].create_user(_user("dup", Role(1 + i % 3)))

        results = await _all(*(create(i) for i in range(6)))
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, UserExistsError) for r in results if r is not None)
        winner = results.index(None)
        user = await stores[1].get_user("dup")
        assert user is not None and user.role == Role(1 + winner % 3)

    # -- sessions ------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_sessions_by_token_hash(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        amy = _user("amy")
        await a.create_user(amy)
        await a.create_user(_user("bob"))
        hour = T0 + dt.timedelta(hours=1)
        t1, t2, t3 = (token_hash(t) for t in ("token-1", "token-2", "token-3"))
        await a.put_session(Session(t1, "amy", hour))
        await b.put_session(Session(t2, "amy", hour))
        await a.put_session(Session(t3, "bob", T0 + dt.timedelta(seconds=1)))
        assert await b.authenticate(t1, T0) == (Session(t1, "amy", hour), amy)
        assert await a.authenticate(token_hash("token-9"), T0) is None
        assert await b.authenticate(t3, T0 + dt.timedelta(seconds=1)) is None  # expired
        await b.delete_session(t1)
        assert await a.authenticate(t1, T0) is None
        assert await a.authenticate(t2, T0) is not None
        await b.delete_user("amy")  # a user's sessions go with them
        await b.create_user(amy)
        assert await a.authenticate(t2, T0) is None

    @pytest.mark.anyio
    async def test_password_change_and_disabling_revoke(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        for name in ("amy", "bob", "cy"):
            await a.create_user(_user(name))
            await a.put_session(Session(token_hash(name), name, T0 + LEASE))
        await b.update_user("amy", UserChanges(role=Role.ADMIN))  # keeps sessions
        new_password = _user("bob", password="new").credentials
        await b.update_user("bob", UserChanges(credentials=new_password))
        await b.update_user("cy", UserChanges(enabled=False))
        assert await a.authenticate(token_hash("amy"), T0) is not None
        assert await a.authenticate(token_hash("bob"), T0) is None
        assert await a.authenticate(token_hash("cy"), T0) is None

    # -- handshakes and throttling ---------------------------------------------------------
    @pytest.mark.anyio
    async def test_claim_handshake_once(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        until = T0 + dt.timedelta(minutes=2)
        assert await a.claim_handshake("h1", until, T0)
        assert not await b.claim_handshake("h1", until, T0)
        assert await b.claim_handshake("h2", until, T0)
        results = await _all(
            *(lambda s=stores[i % 2]: s.claim_handshake("h3", until, T0) for i in range(20))
        )
        assert results.count(True) == 1 and results.count(False) == 19

    @pytest.mark.anyio
    async def test_a_login_begun_on_one_finishes_on_the_other_once(
        self, stores: tuple[Store, Store]
    ) -> None:
        a, b = stores
        await a.create_user(_user("amy", password="correct-horse"))
        config = ServerConfig(secret=SECRET)
        on_a, on_b = Authenticator(a, config, SECRET), Authenticator(b, config, SECRET)
        client = ClientHandshake("amy", "correct-horse")
        step = await on_a.login(client.hello(), client="10.0.0.1", tls=False, now=T0)
        first = client.respond(step.status, step.headers)
        assert first is not None
        step = await on_b.login(first, client="10.0.0.1", tls=False, now=T0)
        final = client.respond(step.status, step.headers)
        assert final is not None

        def finish(auth: Authenticator) -> Callable[[], Awaitable[LoginStep]]:
            return lambda: auth.login(final, client="10.0.0.1", tls=False, now=T0)

        results = await _all(*(finish((on_a, on_b)[i % 2]) for i in range(8)))
        won = [r for r in results if isinstance(r, LoginStep)]
        assert len(won) == 1 and won[0].status == 200
        assert all(isinstance(r, HttpError) and r.status == 403 for r in results if r not in won)
        assert client.respond(won[0].status, won[0].headers) is None  # the server's proof
        assert client.token is not None
        who = await on_a.bearer(client.token, T0)
        assert not isinstance(who, LoginStep) and who.user.username == "amy"

    @pytest.mark.anyio
    async def test_throttle(self, stores: tuple[Store, Store]) -> None:
        a, b = stores
        window = dt.timedelta(minutes=5)
        limits = {"u:amy|1.2.3.4": 2, "c:1.2.3.4": 3}
        assert await a.throttle(limits, window, T0)
        assert await b.throttle(limits, window, T0, record=False)  # only looks
        assert await b.throttle(limits, window, T0 + dt.timedelta(minutes=1))
        assert not await a.throttle(limits, window, T0 + dt.timedelta(minutes=2))  # user key
        assert await a.throttle({"u:bob|1.2.3.4": 2, "c:1.2.3.4": 3}, window, T0)
        assert not await b.throttle({"u:cy|1.2.3.4": 2, "c:1.2.3.4": 3}, window, T0)  # address
        # The first attempt leaves the window; one more fits.
        later = T0 + dt.timedelta(minutes=5, seconds=30)
        assert await a.throttle(limits, window, later)
        await b.forgive(refund=["c:1.2.3.4"], clear=["u:amy|1.2.3.4"])
        assert await a.throttle(limits, window, later, record=False)
        assert await a.throttle({"c:1.2.3.4": 3}, window, later)
        assert not await a.throttle({"c:1.2.3.4": 3}, window, later)

    @pytest.mark.anyio
    async def test_throttle_holds_under_concurrency(self, stores: tuple[Store, Store]) -> None:
        window = dt.timedelta(minutes=5)
        results = await _all(
            *(lambda s=stores[i % 2]: s.throttle({"c:9.9.9.9": 10}, window, T0) for i in range(30))
        )
        assert results.count(True) == 10 and results.count(False) == 20
