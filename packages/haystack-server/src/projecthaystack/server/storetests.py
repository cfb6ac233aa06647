"""The storage protocol's test suite, for every store to reuse.

Subclass :class:`StoreContract` in a test module and give it a ``store`` fixture that
yields a fresh, opened, empty store; every test then runs against it (needs pytest and
anyio, which are test dependencies, not the server's)::

    import pytest
    from projecthaystack.server.storetests import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self):
            store = MyStore("...")
            await store.open()
            yield store
            await store.close()

The queries are checked against :func:`projecthaystack.filter.select` over the same
records, so a store's filter pushdown must give exactly what a full scan gives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest

from projecthaystack.auth import ScramCredentials
from projecthaystack.filter import parse, select
from projecthaystack.kinds import FrozenDict, Marker, Number, Ref, Remove, tz_from_name

from ._demo import demo_building
from ._store import PriorityLevel, Role, Session, Store, User

__all__ = ["QUERIES", "StoreContract"]

NY = tz_from_name("New_York")
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

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
)
"""Filters every store must answer like a full scan does."""


def _user(name: str, role: Role = Role.VIEWER) -> User:
    return User(
        name, role, ScramCredentials.derive("password-" + name, iterations=4096), created=T0
    )


class StoreContract:
    """The tests every :class:`~projecthaystack.server.Store` must pass."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def building(self) -> list[dict[str, Any]]:
        return demo_building(3, sites=2, ahus=2, vavs=3, days=0).records

    # -- entities ------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_put_get_replace(self, store: Store) -> None:
        assert isinstance(store, Store)
        await store.put_entities([{"id": Ref("a"), "dis": "A", "site": Marker}])
        await store.put_entities([{"id": Ref("b"), "n": Number(2, "kW")}])
        assert await store.get_entities(["a", "zz", "b"]) == [
            {"id": Ref("a"), "dis": "A", "site": Marker},
            None,
            {"id": Ref("b"), "n": Number(2, "kW")},
        ]
        await store.put_entities([{"id": Ref("a"), "dis": "A2"}])
        assert await store.get_entities(["a"]) == [{"id": Ref("a"), "dis": "A2"}]
        assert await store.count_entities() == 2

    @pytest.mark.anyio
    async def test_put_refuses_records_without_ref_id(self, store: Store) -> None:
        with pytest.raises(ValueError, match="id"):
            await store.put_entities([{"id": "a-string"}])
        assert await store.count_entities() == 0

    @pytest.mark.anyio
    async def test_update_and_versions(self, store: Store) -> None:
        await store.put_entities([{"id": Ref("a"), "x": Number(1), "y": "keep"}])
        before = await store.entity_versions(["a", "nope"])
        assert set(before) == {"a"}
        updated = await store.update_entity("a", {"x": Number(2), "y": Remove, "z": Marker})
        assert updated == {"id": Ref("a"), "x": Number(2), "z": Marker}
        assert (await store.entity_versions(["a"]))["a"] != before["a"]
        assert await store.update_entity("nope", {"x": Number(1)}) is None

    @pytest.mark.anyio
    async def test_delete_takes_history_and_priority(self, store: Store) -> None:
        await store.put_entities([{"id": Ref("p"), "point": Marker}, {"id": Ref("q")}])
        await store.his_write("p", [(T0, Number(1))])
        await store.set_priority("p", 8, PriorityLevel(Number(1), "me"))
        assert await store.delete_entities(["p", "missing"]) == 1
        assert await store.get_entities(["p", "q"]) == [None, {"id": Ref("q")}]
        assert list(await store.his_read("p", None, None)) == []
        assert await store.get_priority("p") == {}

    @pytest.mark.anyio
    @pytest.mark.parametrize("text", QUERIES)
    async def test_query_equals_full_scan(
        self, store: Store, building: list[dict[str, Any]], text: str
    ) -> None:
        await store.put_entities(building)
        expected = select(parse(text), building)
        assert await store.query(parse(text)) == expected
        assert await store.query(parse(text), limit=2) == expected[:2]
        assert await store.query(parse(text), limit=0) == []

    # -- history -------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_history_order_duplicates_ranges(self, store: Store) -> None:
        ts = [T0.astimezone(NY) + dt.timedelta(minutes=15 * i) for i in range(6)]
        await store.his_write("p", [(ts[3], Number(3)), (ts[0], Number(0)), (ts[5], Number(5))])
        await store.his_write("p", [(ts[1], Number(1)), (ts[3], Number(33)), (ts[2], True)])
        got = await store.his_read("p", None, None)
        assert [r["val"] for r in got] == [Number(0), Number(1), True, Number(33), Number(5)]
        assert all(type(r) is FrozenDict and set(r) == {"ts", "val"} for r in got)
        assert got[0]["ts"] == ts[0] and got[0]["ts"].utcoffset() == ts[0].utcoffset()
        between = await store.his_read("p", ts[1], ts[3])
        assert [r["val"] for r in between] == [Number(1), True]
        since = await store.his_read("p", ts[3], None)
        assert [r["val"] for r in since] == [Number(33), Number(5)]
        assert len(await store.his_read("p", None, None, limit=2)) == 2
        assert list(await store.his_read("other", None, None)) == []

    @pytest.mark.anyio
    async def test_history_in_a_timezone(self, store: Store) -> None:
        chicago = tz_from_name("Chicago")
        ts = [T0.astimezone(NY) + dt.timedelta(minutes=15 * i) for i in range(3)]
        await store.his_write("p", [(ts[0], Number(0)), (ts[1].astimezone(chicago), Number(1))])
        await store.his_write("p", [(ts[2], Number(2))])
        for zone in (NY, chicago, dt.UTC):
            got = await store.his_read("p", None, None, tz=zone)
            assert [r["ts"] for r in got] == ts  # the same instants ...
            assert all(r["ts"].tzinfo is zone for r in got)  # ... in the zone asked for
        as_written = await store.his_read("p", None, None)
        assert [r["ts"].tzinfo for r in as_written] == [NY, chicago, NY]

    # -- priority arrays -----------------------------------------------------------------
    @pytest.mark.anyio
    async def test_priority_levels(self, store: Store) -> None:
        until = T0 + dt.timedelta(hours=1)
        await store.set_priority("p", 8, PriorityLevel(Number(70, "°F"), "op", until))
        levels = await store.set_priority("p", 16, PriorityLevel(Number(72, "°F"), "sched"))
        assert levels == {
            8: PriorityLevel(Number(70, "°F"), "op", until),
            16: PriorityLevel(Number(72, "°F"), "sched"),
        }
        assert await store.set_priority("p", 8, None) == {
            16: PriorityLevel(Number(72, "°F"), "sched")
        }
        assert await store.get_priority("p") == {16: PriorityLevel(Number(72, "°F"), "sched")}

    # -- watches -------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_watch_change_detection(self, store: Store) -> None:
        await store.put_entities([{"id": Ref("a"), "v": Number(1)}, {"id": Ref("b")}])
        lease = dt.timedelta(minutes=1)
        w = await store.watch_open("app", "alice", lease, T0)
        assert w.owner == "alice" and w.expires == T0 + lease
        other = await store.watch_open("app", "alice", lease, T0)
        assert other.id != w.id
        added = await store.watch_add(w.id, ["a", "b"], None, T0)
        assert added is not None and set(added.ids) == {"a", "b"}
        assert await store.watch_poll(w.id, False, T0) == []
        await store.update_entity("a", {"v": Number(2)})
        assert await store.watch_poll(w.id, False, T0) == ["a"]
        assert await store.watch_poll(w.id, False, T0) == []
        assert sorted(await store.watch_poll(w.id, True, T0) or []) == ["a", "b"]
        await store.watch_remove(w.id, ["a"])
        await store.update_entity("a", {"v": Number(3)})
        assert await store.watch_poll(w.id, False, T0) == []
        assert await store.watch_count("alice", T0) == 2
        await store.watch_close(other.id)
        assert await store.watch_get(other.id, T0) is None
        assert await store.watch_count("alice", T0) == 1

    @pytest.mark.anyio
    async def test_watch_lease_expires_and_polls_renew(self, store: Store) -> None:
        lease = dt.timedelta(seconds=30)
        w = await store.watch_open("app", "bob", lease, T0)
        assert await store.watch_poll(w.id, False, T0 + dt.timedelta(seconds=20)) == []
        assert await store.watch_get(w.id, T0 + dt.timedelta(seconds=45)) is not None
        assert await store.watch_poll(w.id, False, T0 + dt.timedelta(seconds=200)) is None
        assert await store.watch_get(w.id, T0 + dt.timedelta(seconds=200)) is None
        assert await store.watch_add(w.id, ["a"], None, T0 + dt.timedelta(seconds=200)) is None
        assert await store.watch_count("bob", T0 + dt.timedelta(seconds=200)) == 0

    @pytest.mark.anyio
    async def test_wait_for_change_times_out(self, store: Store) -> None:
        with anyio.fail_after(5):
            await store.wait_for_change(0.05)

    # -- users, sessions, handshakes, failures ---------------------------------------------
    @pytest.mark.anyio
    async def test_users(self, store: Store) -> None:
        await store.put_user(_user("zed"))
        original = _user("amy", Role.ADMIN)
        await store.put_user(original)
        assert [u.username for u in await store.list_users()] == ["amy", "zed"]
        amy = await store.get_user("amy")
        assert amy == original
        assert amy is not None and amy.credentials.verify_password("password-amy")
        assert not amy.credentials.verify_password("password-zed")
        await store.put_user(
            User("amy", Role.VIEWER, original.credentials, enabled=False, created=T0)
        )
        assert await store.get_user("amy") == User(
            "amy", Role.VIEWER, original.credentials, enabled=False, created=T0
        )
        assert await store.delete_user("zed") is True
        assert await store.delete_user("zed") is False
        assert await store.get_user("zed") is None

    @pytest.mark.anyio
    async def test_sessions(self, store: Store) -> None:
        await store.put_session(Session("t1", "amy", T0 + dt.timedelta(hours=1)))
        await store.put_session(Session("t2", "amy", T0 + dt.timedelta(hours=1)))
        await store.put_session(Session("t3", "bob", T0 + dt.timedelta(seconds=1)))
        assert await store.get_session("t1", T0) == Session("t1", "amy", T0 + dt.timedelta(hours=1))
        assert await store.get_session("t3", T0 + dt.timedelta(seconds=2)) is None
        await store.delete_session("t1")
        assert await store.get_session("t1", T0) is None
        assert await store.delete_sessions_of("amy") == 1
        assert await store.get_session("t2", T0) is None

    @pytest.mark.anyio
    async def test_handshakes_once_expiry_and_caps(self, store: Store) -> None:
        ttl = dt.timedelta(seconds=60)

        async def put(
            token: str, client: str, per_client: int = 2, total: int = 100, now: dt.datetime = T0
        ) -> bool:
            return await store.put_handshake(
                token,
                {"user": token},
                client=client,
                ttl=ttl,
                per_client=per_client,
                total=total,
                now=now,
            )

        assert await put("h1", "10.0.0.1")
        assert await store.pop_handshake("h1", T0) == {"user": "h1"}
        assert await store.pop_handshake("h1", T0) is None
        assert await put("h2", "10.0.0.1") and await put("h3", "10.0.0.1")
        assert not await put("h4", "10.0.0.1")  # this client's cap
        assert await put("h5", "10.0.0.2")  # another client is not locked out
        assert not await put("h6", "10.0.0.3", total=3)  # the total cap
        later = T0 + dt.timedelta(seconds=61)
        assert await store.pop_handshake("h2", later) is None
        # Expired handshakes free their client's slots (h3 is still held, but dead).
        assert await put("h7", "10.0.0.1", now=later) and await put("h8", "10.0.0.1", now=later)
        assert not await put("h9", "10.0.0.1", now=later)
        assert await store.pop_handshake("h7", later) == {"user": "h7"}
        assert await put("h9", "10.0.0.1", now=later)  # a taken one frees its slot too

    @pytest.mark.anyio
    async def test_failures_window(self, store: Store) -> None:
        window = dt.timedelta(minutes=5)
        assert await store.add_failure("k", window, T0) == 1
        assert await store.add_failure("k", window, T0 + dt.timedelta(minutes=1)) == 2
        assert await store.count_failures("k", window, T0 + dt.timedelta(minutes=2)) == 2
        assert (
            await store.count_failures("k", window, T0 + dt.timedelta(minutes=5, seconds=30)) == 1
        )
        await store.clear_failures("k")
        assert await store.count_failures("k", window, T0) == 0
        assert await store.count_failures("other", window, T0) == 0
