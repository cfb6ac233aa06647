"""Every standard op's semantics, through our sync client against a live server."""

from __future__ import annotations

import datetime as dt

import pytest

from projecthaystack.client import CallError, Client
from projecthaystack.codecs import codec_for_mime, zinc
from projecthaystack.kinds import Col, Grid, Marker, Number, Ref, tz_from_name
from projecthaystack.server import ServerConfig, ServerLimits
from projecthaystack.server import __version__ as server_version

from .conftest import Clock, Live

NY = tz_from_name("New_York")
CHI = tz_from_name("Chicago")


def ts(hour: int, minute: int = 0, day: int = 2, tz: dt.tzinfo = NY) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=tz)


@pytest.fixture
def op(live: Live) -> Client:
    return live.client("op")


def test_about(live: Live) -> None:
    about = live.client("viewer").about()[0]
    assert about["haystackVersion"] == "4.0"
    assert about["whoami"] == "viewer" and about["userRole"] == "viewer"
    assert isinstance(about["serverTime"], dt.datetime)
    # The Ops chapter's columns, every one of them filled in.
    spec_cols = {
        "haystackVersion", "tz", "serverName", "serverTime", "serverBootTime",
        "productName", "productUri", "productVersion", "vendorName", "vendorUri",
        "moduleName", "moduleVersion",
    }  # fmt: skip
    assert spec_cols <= set(about.keys())
    assert about["productVersion"] == about["moduleVersion"] == server_version
    assert about["moduleName"] == "projecthaystack.server"


def test_read_by_filter_and_limit(live: Live) -> None:
    c = live.client("viewer")
    assert [r["id"].id for r in c.read("site")] == ["s1", "s2"]
    assert len(c.read("point", limit=2)) == 2
    assert [r["id"].id for r in c.read('equipRef->siteRef->geoCity == "Richmond" and temp')] == [
        "t1",
        "t2",
    ]
    assert len(c.read("nothingHasThis")) == 0


def test_read_by_ids_keeps_order_with_null_rows(live: Live) -> None:
    grid = live.client("viewer").read_ids([Ref("t2"), Ref("missing"), Ref("s1")])
    assert [r.get("id") for r in grid] == [Ref("t2", "RAT"), None, Ref("s1", "HQ")]
    assert dict(grid[1]) == {}


def test_read_limit_cut_marks_incomplete(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_read=3)))
    grid = live.client().read("id")
    assert len(grid) == 3
    assert grid.meta["incomplete"]["limit"] == Number(3)
    assert "incomplete" not in live.client().read("id", limit=2).meta


def test_read_errors(live: Live) -> None:
    c = live.client("viewer")
    with pytest.raises(CallError, match="invalid filter"):
        c.read("site and")
    with pytest.raises(CallError, match="namespace"):
        c.read("ph::Site")  # a spec name needs a def namespace (--defs)
    with pytest.raises(CallError, match="'filter' or an 'id'"):
        c.call("read", Grid.from_rows([{"x": Marker}]))


def test_filter_limits(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_filter_length=20, max_filter_depth=3)))
    c = live.client()
    with pytest.raises(CallError, match="invalid filter"):
        c.read("a and b and c and d and e and f")
    with pytest.raises(CallError, match="invalid filter"):
        c.read("((((a))))")


def test_nav_sites_equips_points(live: Live) -> None:
    c = live.client("viewer")
    sites = c.nav()
    assert [r["navId"] for r in sites] == [Ref("s1", "HQ"), Ref("s2")]
    equips = c.nav(Ref("s1"))
    assert [r["id"].id for r in equips] == ["ahu1"]  # the VAV hangs under the AHU
    under_ahu = c.nav(Ref("ahu1"))
    assert {r["id"].id for r in under_ahu} == {"vav1", "t1", "t2", "run", "sp1"}
    assert all("navId" in r for r in under_ahu if "equip" in r)
    assert all("navId" not in r for r in under_ahu if "point" in r)
    with pytest.raises(CallError, match="unknown id"):
        c.nav(Ref("nope"))
    # pyhaystack's spelling, with the id as a plain Str.
    with live.http("viewer") as http:
        got = http.get("nav", params={"nav_id": "s1"}, headers={"Accept": "application/json"})
    assert [r["id"]["val"] for r in got.json()["rows"]] == ["ahu1"]


# -- history --------------------------------------------------------------------------------


def test_his_write_then_read_every_range_form(op: Client) -> None:
    samples = [(ts(h, m), Number(60 + h + m / 60, "°F")) for h in (0, 6, 23) for m in (0, 30)]
    samples += [(ts(1, day=3), Number(70))]  # unitless is accepted
    op.his_write(Ref("t1"), list(reversed(samples)))  # out of order on purpose
    op.his_write(Ref("t1"), samples[:2])  # duplicates are harmless

    day = op.his_read(Ref("t1"), dt.date(2026, 3, 2))
    assert [r["val"] for r in day] == [v for _, v in samples[:6]]
    assert day.meta["id"] == Ref("t1", "DAT")
    assert day.meta["hisStart"] == ts(0) and day.meta["hisEnd"] == ts(0, day=3)
    assert all(r["ts"].tzinfo == NY for r in day)

    two_days = op.his_read(Ref("t1"), (dt.date(2026, 3, 2), dt.date(2026, 3, 3)))
    assert len(two_days) == 7
    span = op.his_read(Ref("t1"), (ts(6), ts(23)))
    assert [r["ts"] for r in span] == [ts(6), ts(6, 30)]
    since = op.call(
        "hisRead",
        Grid.from_rows([{"id": Ref("t1"), "range": "2026-03-02T23:00:00-05:00 New_York"}]),
    )
    assert [r["ts"] for r in since] == [ts(23), ts(23, 30), ts(1, day=3)]
    # A range in another timezone is converted to the point's.
    utc = op.call(
        "hisRead",
        Grid.from_rows(
            [{"id": Ref("t1"), "range": "2026-03-02T11:00:00Z UTC,2026-03-02T12:00:00Z UTC"}]
        ),
    )
    assert [r["ts"] for r in utc] == [ts(6), ts(6, 30)]
    assert utc.meta["hisStart"].tzinfo == NY
    # pyhaystack quotes the range inside the Str; the quoted form reads the same.
    quoted = op.call("hisRead", Grid.from_rows([{"id": Ref("t1"), "range": '"2026-03-02"'}]))
    assert [r["val"] for r in quoted] == [r["val"] for r in day]


def test_his_read_today_and_yesterday(op: Client) -> None:
    now = dt.datetime.now(NY).replace(microsecond=0)
    op.his_write(Ref("t1"), [(now - dt.timedelta(days=1), Number(1, "°F")), (now, Number(2, "°F"))])
    assert [r["val"] for r in op.his_read(Ref("t1"), "today")] == [Number(2, "°F")]
    assert [r["val"] for r in op.his_read(Ref("t1"), "yesterday")] == [Number(1, "°F")]


@pytest.mark.parametrize(
    ("range_text", "message"),
    [
        ("lastMonth", "invalid range"),
        ("2026-03-05,2026-03-01", "not after"),
        ("2026-03-01,2026-03-02T00:00:00Z UTC", "mix"),
        ("1,2,3", "invalid range"),
        ('"lastMonth"', "invalid range"),
        ('"2026-03-01', "invalid range"),
        ('"\\"2026-03-01\\""', "invalid range"),
    ],
)
def test_his_read_bad_ranges(op: Client, range_text: str, message: str) -> None:
    with pytest.raises(CallError, match=message):
        op.call("hisRead", Grid.from_rows([{"id": Ref("t1"), "range": range_text}]))


@pytest.mark.parametrize(
    "range_text",
    [
        "9999-12-31",
        "9999-12-30,9999-12-31",
        "0001-01-01T00:00:00Z UTC",
        "0001-01-01T00:00:00+09:00 Tokyo",
        "9999-12-31T23:00:00-10:00 Honolulu",
        "0001-01-01T00:00:00Z UTC,9999-12-31T23:59:59Z UTC",
    ],
)
@pytest.mark.parametrize("accept", ["text/zinc", "application/json"])
def test_his_read_at_the_calendar_edges_is_a_clear_error(
    live: Live, range_text: str, accept: str
) -> None:
    single = Grid.from_rows([{"id": Ref("t1"), "range": range_text}])
    batch = Grid(["id"], [{"id": Ref("t1")}, {"id": Ref("t2")}], {"range": range_text})
    with live.http("op") as http:
        for req in (single, batch):
            resp = http.post(
                "hisRead",
                content=zinc.encode_grid(req).encode(),
                headers={"Content-Type": "text/zinc", "Accept": accept},
            )
            assert resp.status_code == 200
            err = codec_for_mime(accept).decode(resp.content)
            assert err.is_error
            assert "outside the years 1 to 9999" in err.meta["dis"]


@pytest.mark.parametrize("range_text", ["0001-01-01", "0001-01-01,0001-01-02"])
def test_his_read_of_the_first_days_is_empty(op: Client, range_text: str) -> None:
    grid = op.call("hisRead", Grid.from_rows([{"id": Ref("t1"), "range": range_text}]))
    assert len(grid) == 0 and grid.meta["hisStart"].year == 1


def test_his_read_needs_a_his_point(op: Client) -> None:
    with pytest.raises(CallError, match="not a 'his'"):
        op.his_read(Ref("s1"), "today")
    with pytest.raises(CallError, match="unknown id"):
        op.his_read(Ref("nope"), "today")


def test_batch_his_read_joins_on_ts(op: Client) -> None:
    op.his_write(Ref("t1"), [(ts(1), Number(1, "°F")), (ts(2), Number(2, "°F"))])
    op.his_write(Ref("t2"), [(ts(2), Number(20, "°F")), (ts(3), Number(30, "°F"))])
    grid = op.his_read_batch([Ref("t1"), Ref("t2")], dt.date(2026, 3, 2))
    assert [c.name for c in grid.cols] == ["ts", "v0", "v1"]
    assert grid.col("v1").meta["id"] == Ref("t2", "RAT")
    assert [(r["ts"].hour, r.get("v0"), r.get("v1")) for r in grid] == [
        (1, Number(1, "°F"), None),
        (2, Number(2, "°F"), Number(20, "°F")),
        (3, None, Number(30, "°F")),
    ]
    with pytest.raises(CallError, match="one timezone"):
        op.his_read_batch([Ref("t1"), Ref("chi")], dt.date(2026, 3, 2))
    req = Grid(
        ["id"], [{"id": Ref("t1")}, {"id": Ref("chi")}], {"range": "2026-03-02", "tz": "Chicago"}
    )
    mixed = op.call("hisRead", req)
    assert mixed.meta["hisStart"].tzinfo == CHI and mixed[0]["ts"].tzinfo == CHI


def test_batch_his_write(op: Client) -> None:
    op.his_write_batch(
        [Ref("t1"), Ref("t2")],
        [[ts(8), Number(1, "°F"), Number(2, "°F")], [ts(9), None, Number(3, "°F")]],
    )
    assert len(op.his_read(Ref("t2"), dt.date(2026, 3, 2))) == 2
    assert len(op.his_read(Ref("t1"), dt.date(2026, 3, 2))) == 1


@pytest.mark.parametrize(
    ("point", "sample", "message"),
    [
        ("t1", (ts(1, tz=CHI), Number(1, "°F")), "not in the point's timezone"),
        ("t1", (ts(1), Number(1, "°C")), "no unit conversion"),
        ("t1", (ts(1), "hot"), "point's kind is Number"),
        ("run", (ts(1), Number(1)), "point's kind is Bool"),
        ("s1", (ts(1), Number(1)), "not a 'his'"),
    ],
)
def test_his_write_refuses_conversion_and_stores_nothing(
    op: Client, point: str, sample: tuple[dt.datetime, object], message: str
) -> None:
    good = (ts(0), Number(5, "°F") if point == "t1" else True)
    with pytest.raises(CallError, match=message):
        op.his_write(Ref(point), [good, sample])
    if point != "s1":
        assert len(op.his_read(Ref(point), dt.date(2026, 3, 2))) == 0


def test_his_write_row_limit(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_rows=3)))
    samples = [(ts(0, m), Number(m, "°F")) for m in range(5)]
    with pytest.raises(CallError, match="over the limit"):
        live.client("op").his_write(Ref("t1"), samples)


def test_his_read_cap_marks_incomplete(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_his_read=2)))
    c = live.client("op")
    c.his_write(Ref("t1"), [(ts(0, m), Number(m, "°F")) for m in range(5)])
    got = c.his_read(Ref("t1"), dt.date(2026, 3, 2))
    assert len(got) == 2 and got.meta["incomplete"]["limit"] == Number(2)


# -- pointWrite -----------------------------------------------------------------------------


def test_point_write_priority_array(live: Live, op: Client) -> None:
    op.point_write(Ref("sp1"), 16, Number(72, "°F"), who="schedule")
    op.point_write(Ref("sp1"), 8, Number(68, "°F"))
    levels = live.client("viewer").point_write_array(Ref("sp1"))
    assert [r["level"] for r in levels] == [Number(n) for n in range(1, 18)]
    by_level = {int(r["level"].val): r for r in levels}
    assert by_level[8]["val"] == Number(68, "°F") and by_level[8]["who"] == "op"
    assert by_level[16]["who"] == "schedule"
    assert by_level[17]["levelDis"] == "17 (default)"
    point = op.read_ids([Ref("sp1")])[0]
    assert point["writeVal"] == Number(68, "°F") and point["writeLevel"] == Number(8)
    assert point["curVal"] == Number(68, "°F")
    op.point_write(Ref("sp1"), 8, None)  # auto: release the level
    point = op.read_ids([Ref("sp1")])[0]
    assert point["writeVal"] == Number(72, "°F") and point["writeLevel"] == Number(16)
    op.point_write(Ref("sp1"), 16, None)
    point = op.read_ids([Ref("sp1")])[0]
    assert "writeVal" not in point and "writeLevel" not in point


def test_point_write_duration_expires(make_live, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    op = make_live(ServerConfig(clock=clock)).client("op")
    op.point_write(Ref("sp1"), 8, Number(65, "°F"), duration=Number(1, "s"))
    assert op.read_ids([Ref("sp1")])[0]["writeVal"] == Number(65, "°F")
    clock.advance(1.2)
    levels = op.point_write_array(Ref("sp1"))
    assert all(r.get("val") is None for r in levels)
    assert "writeVal" not in op.read_ids([Ref("sp1")])[0]  # the look expired it


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": Ref("sp1"), "level": Number(18), "val": Number(1, "°F")}, "1 to 17"),
        ({"id": Ref("sp1"), "level": Number(8.5), "val": Number(1, "°F")}, "1 to 17"),
        ({"id": Ref("sp1"), "level": Number(8), "val": "warm"}, "point's kind is Number"),
        ({"id": Ref("sp1"), "level": Number(8), "val": Number(1, "kW")}, "unit"),
        (
            {"id": Ref("sp1"), "level": Number(10), "val": Number(1), "duration": Number(1, "min")},
            "level 8",
        ),
        (
            {"id": Ref("sp1"), "level": Number(8), "val": Number(1), "duration": Number(1, "kW")},
            "duration",
        ),
        ({"id": Ref("t1"), "level": Number(8), "val": Number(1)}, "not a 'writable'"),
    ],
)
def test_point_write_errors(op: Client, row: dict[str, object], message: str) -> None:
    with pytest.raises(CallError, match=message):
        op.call("pointWrite", Grid.from_rows([row]))


# -- watches --------------------------------------------------------------------------------


def test_watch_lifecycle(live: Live, op: Client) -> None:
    sub = op.watch_sub([Ref("t1"), Ref("nope"), "sp1"], dis="test", lease=Number(2, "min"))  # type: ignore[list-item]
    wid = sub.meta["watchId"]
    assert sub.meta["lease"] == Number(2, "min")
    assert [r.get("id") for r in sub] == [Ref("t1", "DAT"), None, Ref("sp1", "SP")]
    assert len(op.watch_poll(wid)) == 0
    op.point_write(Ref("sp1"), 8, Number(70, "°F"))
    changed = op.watch_poll(wid)
    assert [r["id"].id for r in changed] == ["sp1"]
    assert len(op.watch_poll(wid)) == 0
    assert {r["id"].id for r in op.watch_poll(wid, refresh=True)} == {"t1", "sp1"}
    op.watch_unsub(wid, [Ref("sp1")])
    op.point_write(Ref("sp1"), 8, Number(71, "°F"))
    assert len(op.watch_poll(wid)) == 0
    op.watch_unsub(wid, close=True)
    with pytest.raises(CallError, match="unknown or expired watch"):
        op.watch_poll(wid)


def test_watch_lease_is_clamped_and_expires(make_live, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(min_watch_lease=dt.timedelta(seconds=1), clock=clock))
    c = live.client("op")
    sub = c.watch_sub([Ref("t1")], lease=Number(1, "ms"))
    assert sub.meta["lease"] == Number(1, "s")
    clock.advance(1.3)
    with pytest.raises(CallError, match="expired"):
        c.watch_poll(sub.meta["watchId"])


def test_watches_are_private_and_capped(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_watches_per_user=2, max_ids=3)))
    op = live.client("op")
    wid = op.watch_sub([Ref("t1")]).meta["watchId"]
    op.watch_sub([Ref("t1")])
    with pytest.raises(CallError, match="already 2 watches"):
        op.watch_sub([Ref("t1")])
    with pytest.raises(CallError, match="at most 3"):
        op.watch_sub([Ref("t2"), Ref("sp1"), Ref("run")], watch_id=wid)  # 4 with t1
    op.watch_sub([Ref("t1"), Ref("t2"), Ref("sp1")], watch_id=wid)  # 3 distinct: fits
    live.client("admin").watch_poll(wid)  # admins may look at any watch
    import anyio

    from projecthaystack.auth import ScramCredentials
    from projecthaystack.server import Role, User

    anyio.run(
        live.store.create_user,
        User("op2", Role.OPERATOR, ScramCredentials.derive("operator2-password", iterations=4096)),
    )
    other = live.client("op2", "operator2-password")
    with pytest.raises(CallError, match="unknown or expired watch"):
        other.watch_poll(wid)


@pytest.mark.parametrize(
    ("lease", "expected"),
    [("90sec", Number(90, "s")), ("2min", Number(2, "min")), ("soon", None), ("@t1", None)],
)
def test_watch_lease_as_a_str(op: Client, lease: str, expected: Number | None) -> None:
    # rusty-haystack sends the lease as a Str; one that reads as a duration is taken.
    req = Grid.from_rows([{"id": Ref("t1")}], meta={"watchDis": "str lease", "lease": lease})
    if expected is None:
        with pytest.raises(CallError, match="duration unit"):
            op.call("watchSub", req)
    else:
        assert op.call("watchSub", req).meta["lease"] == expected


def test_watch_sub_needs_a_live_watch_id(op: Client) -> None:
    with pytest.raises(CallError, match="unknown or expired"):
        op.watch_sub([Ref("t1")], watch_id="w-made-up")


# -- invokeAction, defs ---------------------------------------------------------------------


def test_invoke_action(op: Client) -> None:
    op.invoke_action(
        Ref("sp1"), "override", {"val": Number(69, "°F"), "duration": Number(5, "min")}
    )
    assert op.read_ids([Ref("sp1")])[0]["writeVal"] == Number(69, "°F")
    op.invoke_action(Ref("sp1"), "release")
    assert "writeVal" not in op.read_ids([Ref("sp1")])[0]
    with pytest.raises(CallError, match="unknown action 'explode'"):
        op.invoke_action(Ref("sp1"), "explode")
    with pytest.raises(CallError, match="unknown id"):
        op.invoke_action(Ref("nope"), "release")
    # rusty-haystack's form: id and action in the row, the arguments beside them.
    in_row = {"id": Ref("sp1"), "action": "override", "val": Number(68, "°F")}
    op.call("invokeAction", Grid.from_rows([in_row]))
    assert op.read_ids([Ref("sp1")])[0]["writeVal"] == Number(68, "°F")
    with pytest.raises(CallError, match="'action'"):
        op.call("invokeAction", Grid.from_rows([{"id": Ref("sp1"), "action": Number(1)}]))
    with pytest.raises(CallError, match="meta 'id'"):
        op.call("invokeAction", Grid.from_rows([{"val": Number(1)}]))


def test_ops_filetypes_defs_without_a_namespace(live: Live) -> None:
    c = live.client("viewer")
    ops = {r["def"].val: r for r in c.ops()}
    assert set(ops) >= {
        f"op:{n}" for n in ("about", "read", "hisRead", "watchPoll", "invokeAction")
    }
    assert "noSideEffects" in ops["op:read"] and "noSideEffects" not in ops["op:hisWrite"]
    types = {r["def"].val: r["mime"] for r in c.filetypes()}
    assert types["filetype:zinc"] == "text/zinc" and "filetype:csv" in types
    assert len(c.defs("noSideEffects")) == 9
    assert c.libs()[0]["def"].val == "lib:hayserver"
    # Haystack 3's name for filetypes, which older clients still call.
    assert {r["mime"] for r in c.call("formats")} >= {"text/zinc", "application/json"}


def test_batch_his_write_of_one_point_in_two_columns_keeps_the_last(op: Client) -> None:
    req = Grid(
        [Col("ts"), Col("a", {"id": Ref("t1")}), Col("b", {"id": Ref("t1")})],
        [
            {"ts": ts(8), "a": Number(1, "°F"), "b": Number(2, "°F")},
            {"ts": ts(9), "a": Number(3, "°F")},
            {"ts": ts(7), "b": Number(4, "°F")},
        ],
    )
    op.call("hisWrite", req)
    got = op.his_read(Ref("t1"), dt.date(2026, 3, 2))
    assert [(r["ts"], r["val"]) for r in got] == [
        (ts(7), Number(4, "°F")),
        (ts(8), Number(2, "°F")),
        (ts(9), Number(3, "°F")),
    ]
