"""Watch objects against the test server: how polls are applied to the records (whole
records, partial rows, removals, refreshes) and how a lost watch is reopened.  The same
against haystack-server, and over a WebSocket, is in tests-integration."""

from __future__ import annotations

from typing import Any

import pytest

from projecthaystack.client import (
    AsyncClient,
    AsyncWatch,
    Client,
    CredentialsRejectedError,
    ResponseError,
    Watch,
    WatchChanges,
)
from projecthaystack.kinds import Marker, Number, Ref, Remove

from .conftest import LiveServer


def client(server: LiveServer, **kwargs: Any) -> Client:
    return Client(server.url, "user", "pencil", **kwargs)


def test_subscribing_fetches_every_record(server: LiveServer) -> None:
    with client(server) as c:
        watch = c.watch(["@t1", Ref("sp1"), "nope"], dis="test")
        assert watch.watch_id is None and len(watch) == 0  # nothing sent yet
        assert "watchSub" not in [op for _, op in server.state.requests]
        with watch:
            assert watch.watch_id is not None
            assert set(watch.records) == {"t1", "sp1"}
            assert watch.ids == ("t1", "sp1")
            assert watch.missing == ("nope",)
            assert watch["@t1"]["curVal"] == Number(55, "°F")
            assert watch.get("nope") is None and "t1" in watch and Ref("sp1") in watch
            assert watch.lease == Number(1, "min")
            wid = watch.watch_id
        # Leaving the block closed the watch on the server; the records stay readable.
        assert wid not in server.state.watches
        assert watch["t1"]["dis"] == "DAT"
        with pytest.raises(RuntimeError, match="closed"):
            watch.poll()


def test_a_polled_row_replaces_the_record(server: LiveServer) -> None:
    # The spec's watchPoll answers whole records: a tag the server dropped goes.
    with client(server) as c, c.watch(["t1", "sp1"]) as watch:
        server.state.poll_answers.append(
            [{"id": Ref("t1", "DAT"), "dis": "DAT", "curVal": Number(60, "°F")}]
        )
        changes = watch.poll()
        assert changes == WatchChanges(updated=("t1",))
        assert dict(watch["t1"]) == {
            "id": Ref("t1", "DAT"),
            "dis": "DAT",
            "curVal": Number(60, "°F"),
        }
        assert watch["sp1"]["dis"] == "SP"  # untouched
        assert not watch.poll()  # nothing changed


def test_partial_rows_are_merged(server: LiveServer) -> None:
    with client(server) as c, c.watch(["t1", "sp1"], partial=True) as watch:
        server.state.poll_answers.append(
            [{"id": Ref("t1"), "curVal": Number(61, "°F"), "unit": Remove}]
        )
        assert watch.poll().updated == ("t1",)
        record = watch["t1"]
        assert record["curVal"] == Number(61, "°F")
        assert "unit" not in record  # Remove deletes a tag
        assert record["dis"] == "DAT" and record["sensor"] is Marker  # the rest is kept


def test_removed_rows_and_refreshes_remove_entities(server: LiveServer) -> None:
    with client(server) as c, c.watch(["t1", "sp1", "s1"]) as watch:
        server.state.poll_answers.append([{"id": Ref("sp1"), "removed": Marker}])
        assert watch.poll() == WatchChanges(removed=("sp1",))
        assert set(watch.records) == {"t1", "s1"}
        # A refresh answers every entity: the one it leaves out is gone.
        server.state.records = [r for r in server.state.records if r["id"].id != "s1"]
        server.state.watches[watch.watch_id or ""] -= {"s1", "sp1"}
        changes = watch.refresh()
        assert changes.removed == ("s1",) and changes.updated == ()
        assert set(watch.records) == {"t1"}
        # Rows for ids the watch does not hold are not taken in.
        server.state.poll_answers.append([{"id": Ref("ahu1"), "dis": "x"}])
        assert not watch.poll()


def test_a_watch_the_server_lost_is_reopened(server: LiveServer) -> None:
    with client(server) as c, c.watch(["t1", "sp1"]) as watch:
        old = watch.watch_id
        # The server forgets the watch (a lapsed lease, a restart) and a record changes.
        del server.state.watches[old or ""]
        server.state.records[2] = {**server.state.records[2], "curVal": Number(70, "°F")}
        changes = watch.poll()
        assert watch.watch_id not in (None, old)
        assert changes.updated == ("t1",)
        assert watch["t1"]["curVal"] == Number(70, "°F")
        assert watch.watch_id in server.state.watches


def test_add_and_remove(server: LiveServer) -> None:
    with client(server) as c, c.watch(["t1"]) as watch:
        assert watch.add(["@sp1", "t1"]) == WatchChanges(updated=("sp1",))
        assert watch.ids == ("t1", "sp1")
        assert server.state.watches[watch.watch_id or ""] == {"t1", "sp1"}
        assert watch.remove(["t1"]) == WatchChanges(removed=("t1",))
        assert watch.ids == ("sp1",) and set(watch.records) == {"sp1"}
        assert server.state.watches[watch.watch_id or ""] == {"sp1"}
        assert watch.remove(["t1"]) == WatchChanges()  # not watched: nothing sent


def test_the_first_poll_opens_the_watch(server: LiveServer) -> None:
    with client(server) as c:
        watch = c.watch(["t1"])
        assert watch.poll() == WatchChanges(updated=("t1",))
        assert watch.open() == WatchChanges()  # open already: nothing sent
        watch.close()
        with pytest.raises(ValueError, match="at least one id"):
            c.watch([]).open()


def test_errors_reach_the_caller(server: LiveServer) -> None:
    with Client(server.url, "user", "wrong") as c, pytest.raises(CredentialsRejectedError):
        c.watch(["t1"]).open()
    with client(server) as c:
        server.state.refuse_post.add("watchSub")
        with pytest.raises(ResponseError, match="405"):
            c.watch(["t1"]).open()


def test_frames_of_the_current_state(server: LiveServer) -> None:
    pytest.importorskip("pandas", reason="install the [pandas] extra")
    with client(server) as c, c.watch(["t1", "sp1"]) as watch:
        frame = watch.to_pandas()
        assert list(frame.index) == ["t1", "sp1"]
        assert frame.loc["t1", "curVal"] == 55.0
        assert frame.loc["sp1", "dis"] == "SP"
        grid = watch.grid()
        assert grid.meta["watchId"] == watch.watch_id and len(grid) == 2


def test_polars_frame(server: LiveServer) -> None:
    pytest.importorskip("polars", reason="install the [polars] extra")
    with client(server) as c, c.watch(["t1", "sp1"]) as watch:
        frame = watch.to_polars()
        assert frame["id"].to_list() == ["t1", "sp1"]


def test_changes_merge() -> None:
    first = WatchChanges(updated=("a", "b"))
    second = WatchChanges(updated=("c",), removed=("a",))
    assert first | second == WatchChanges(updated=("b", "c"), removed=("a",))
    assert (second | WatchChanges(updated=("a",))).removed == ()


@pytest.mark.anyio
async def test_async_watch(server: LiveServer) -> None:
    async with AsyncClient(server.url, "user", "pencil") as c:
        watch = c.watch(["t1", "sp1"])
        assert isinstance(watch, AsyncWatch)
        async with watch:
            assert set(watch.records) == {"t1", "sp1"}
            server.state.poll_answers.append([{"id": Ref("t1"), "curVal": Number(58, "°F")}])
            assert await watch.next_changes(timeout=20, interval=0.05) == WatchChanges(
                updated=("t1",)
            )
            assert watch["t1"]["curVal"] == Number(58, "°F")
            del server.state.watches[watch.watch_id or ""]
            assert (await watch.refresh()).updated  # reopened, every record read again
            assert watch.watch_id in server.state.watches
        assert not server.state.watches  # closed on leaving the block


def test_watch_type(server: LiveServer) -> None:
    with client(server) as c:
        assert isinstance(c.watch(["t1"]), Watch)
        assert "not open" in repr(c.watch(["t1"]))
