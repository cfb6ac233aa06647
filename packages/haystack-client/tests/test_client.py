import datetime as dt

import anyio
import httpx
import pytest

import projecthaystack.client as client_pkg
from projecthaystack.client import (
    AsyncClient,
    AuthenticationError,
    CallError,
    Client,
    RequestNotSentError,
    ResponseError,
    format_range,
)
from projecthaystack.kinds import Grid, Marker, Number, Ref, tz_from_name

NY = tz_from_name("New_York")
FORMATS = ["zinc", "json", "json3"]


def test_public_names_are_pinned():
    assert sorted(client_pkg.__all__) == sorted(
        [
            "AsyncClient",
            "AsyncWebSocketClient",
            "AuthenticationError",
            "CallError",
            "Client",
            "ClientCore",
            "ClientError",
            "HisRange",
            "RequestNotSentError",
            "ResponseError",
            "WatchUpdate",
            "format_range",
            "his_frame",
            "to_pandas",
            "to_polars",
        ]
    )


def test_format_range():
    assert format_range("yesterday") == "yesterday"
    start = dt.datetime(2020, 1, 1, tzinfo=NY)
    assert format_range(start) == "2020-01-01T00:00:00-05:00 New_York"
    assert format_range((start, start + dt.timedelta(days=1))).count("New_York") == 2
    with pytest.raises(TypeError):
        format_range(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start, end"):
        format_range((dt.date(2020, 1, 1),))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_op_sync(server, fmt):
    with Client(server.url, "user", "pencil", fmt=fmt, timeout=10) as c:
        about = c.about()
        assert about[0]["whoami"] == "user" and c.token
        points = c.read("point and temp")
        assert [r["id"] for r in points] == [Ref("t1")]
        assert len(c.read("point", limit=1)) == 1
        by_id = c.read_ids([Ref("t1"), "@nope", "s1"])
        assert by_id[0]["id"] == Ref("t1") and dict(by_id[1]) == {} and by_id[2]["id"] == Ref("s1")
        assert [r["id"] for r in c.nav()] == [Ref("s1")]
        assert [r["id"] for r in c.nav("@s1")] == [Ref("ahu1")]
        ts = [dt.datetime(2024, 1, 1, h, tzinfo=NY) for h in range(3)]
        c.his_write("t1", [(t, 70 + i) for i, t in enumerate(ts)])
        his = c.his_read(Ref("t1"), (dt.date(2024, 1, 1), dt.date(2024, 1, 2)))
        assert [r["val"] for r in his] == [Number(70), Number(71), Number(72)]
        assert his.meta["range"] == "2024-01-01,2024-01-02"
        c.his_write_batch(["t1", "sp1"], [(ts[0], 1, 2)])
        batch = c.his_read_batch(["t1", "sp1"], "today", tz="New_York")
        assert batch.col_names == ("ts", "v0", "v1")
        c.point_write("sp1", 8, 72.5, who="tester", duration=Number(1, "h"))
        array = c.point_write_array("sp1")
        assert len(array) == 17 and array[7]["val"] == Number(72.5)
        sub = c.watch_sub(["t1"], dis="test", lease=Number(1, "min"))
        wid = sub.meta["watchId"]
        assert sub[0]["id"] == Ref("t1")
        c.watch_sub(["s1"], watch_id=wid)
        assert len(c.watch_poll(wid, refresh=True)) == 2
        assert len(c.watch_poll(wid)) == 0
        c.watch_unsub(wid, ["t1"], close=True)
        assert c.invoke_action("@ahu1", "reset", {"force": Marker})[0]["ok"] is Marker
        assert c.call("eval", Grid.from_rows([{"expr": "1+1"}]))[0]["val"] == Number(42)
        for op in (c.defs, c.libs, c.ops, c.filetypes):
            assert len(op()) == 1
        assert len(c.defs("x", limit=5)) == 1
        c.close()
        assert c.token is None


def test_get_for_side_effect_free_ops_post_for_the_rest(server):
    with Client(server.url, "user", "pencil") as c:
        c.read("site")
        c.his_write("t1", [(dt.datetime(2024, 1, 1, tzinfo=NY), 1)])
        c.read_ids(["t1", "s1"])  # two rows: a GET cannot carry it
    calls = [call for call in server.state.requests if call[1] in ("read", "hisWrite")]
    assert ("GET", "read") in calls and ("POST", "hisWrite") in calls
    assert calls[-1] == ("POST", "read")


def test_falls_back_to_post_when_get_is_refused(server):
    server.state.refuse_get = True
    with Client(server.url, "user", "pencil") as c:
        assert len(c.read("site")) == 1
        assert len(c.read("site")) == 1
    reads = [m for m, op in server.state.requests if op == "read"]
    assert reads == ["GET", "POST", "POST"]


def test_uses_get_when_a_server_refuses_post(server):
    # haystack-py's server answers 405 to a POSTed close; a refused POST did not run.
    server.state.refuse_post = {"close"}
    with Client(server.url, "user", "pencil") as c:
        c.about()
        c.close()
        assert c.token is None
    closes = [m for m, op in server.state.requests if op == "close"]
    assert closes == ["POST", "GET"]


def test_a_refused_post_that_cannot_go_as_get_is_an_error(server):
    server.state.refuse_post = {"hisWrite"}
    with Client(server.url, "user", "pencil") as c, pytest.raises(ResponseError, match="405"):
        c.his_write_batch(["t1", "t2"], [[dt.datetime(2024, 1, 1, tzinfo=NY), 1, 2]])


def test_post_only_when_asked(server):
    with Client(server.url, "user", "pencil", use_get=False) as c:
        c.about()
    assert ("POST", "about") in server.state.requests and (
        "GET",
        "about",
    ) not in server.state.requests


def test_transparent_reauth_once_after_a_401(server):
    with Client(server.url, "user", "pencil") as c:
        c.about()
        first = c.token
        server.state.tokens.clear()  # the server forgot the session
        assert c.about()[0]["whoami"] == "user"
        assert c.token != first


def test_call_errors_carry_the_error_grid(server):
    with Client(server.url, "user", "pencil") as c, pytest.raises(CallError) as info:
        c.invoke_action("@ahu1", "explode")
    assert "unknown action" in info.value.dis
    assert info.value.err_trace and info.value.err_trace.startswith("trace:")
    assert info.value.grid.is_error


def test_wrong_password_and_missing_credentials(server):
    with Client(server.url, "user", "wrong") as c, pytest.raises(AuthenticationError):
        c.about()
    with Client(server.url, "nobody", "pencil") as c, pytest.raises(AuthenticationError):
        c.about()
    with Client(server.url) as c, pytest.raises(ResponseError) as info:
        c.about()
    assert info.value.status == 401


def test_request_not_sent_versus_sent_then_failed(server, free_port):
    url = f"http://127.0.0.1:{free_port}/api"
    with Client(url, "user", "pencil", timeout=2) as c, pytest.raises(RequestNotSentError):
        c.about()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    failing = httpx.Client(transport=httpx.MockTransport(slow))
    with Client(server.url, http=failing) as c, pytest.raises(ResponseError, match="then failed"):
        c.about()


def test_bad_responses_are_response_errors(server):
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b'ver:"3.0"\na\n"open', headers={"content-type": "text/zinc"}
        )

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"})

    for handler, message in ((garbage, "does not decode"), (html, "content type")):
        http = httpx.Client(transport=httpx.MockTransport(handler))
        with Client(server.url, http=http) as c, pytest.raises(ResponseError, match=message):
            c.about()


def test_bad_arguments_fail_before_sending(server):
    with Client(server.url, "user", "pencil") as c:
        with pytest.raises(ValueError, match="priority"):
            c.point_write("sp1", 18, 1)
        with pytest.raises(ValueError, match="at least one"):
            c.read_ids([])
        with pytest.raises(ValueError, match="limit"):
            c.read("site", limit=-1)
        with pytest.raises(ValueError, match="aware datetime"):
            c.his_write("t1", [(dt.datetime(2024, 1, 1), 1)])
        with pytest.raises(ValueError, match="cells"):
            c.his_write_batch(["t1"], [(dt.datetime(2024, 1, 1, tzinfo=NY),)])


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["zinc", "json"])
async def test_async_client(server, fmt):
    async with AsyncClient(server.url, "user", "pencil", fmt=fmt, timeout=10) as c:
        assert (await c.about())[0]["whoami"] == "user"
        assert [r["id"] for r in await c.read("point and temp")] == [Ref("t1")]
        assert len(await c.read_ids(["t1"])) == 1
        assert len(await c.nav()) == 1
        ts = dt.datetime(2024, 1, 1, tzinfo=NY)
        await c.his_write("t1", [(ts, 1)])
        assert len(await c.his_read("t1", "today")) == 1
        await c.his_write_batch(["t1"], [(ts, 2)])
        assert (await c.his_read_batch(["t1"], "today")).col_names == ("ts", "v0")
        await c.point_write("sp1", 10, 5)
        assert (await c.point_write_array("sp1"))[9]["val"] == Number(5)
        wid = (await c.watch_sub(["t1"])).meta["watchId"]
        assert len(await c.watch_poll(wid, refresh=True)) == 1
        await c.watch_unsub(wid, close=True)
        assert (await c.invoke_action("ahu1", "reset"))[0]["ok"] is Marker
        for op in (c.defs, c.libs, c.ops, c.filetypes):
            assert len(await op()) == 1
        server.state.tokens.clear()
        assert (await c.about())[0]["whoami"] == "user"  # re-login after the 401
        await c.close()
        with pytest.raises(CallError):
            await c.invoke_action("ahu1", "explode")


@pytest.mark.anyio
async def test_async_errors(server, free_port):
    async with AsyncClient(f"http://127.0.0.1:{free_port}/api", "user", "pencil") as c:
        with pytest.raises(RequestNotSentError):
            await c.about()
    async with AsyncClient(server.url, "user", "bad") as c:
        with pytest.raises(AuthenticationError):
            await c.login()


def test_concurrent_async_clients(server):
    async def main() -> list[str]:
        results: list[str] = []

        async def one() -> None:
            async with AsyncClient(server.url, "user", "pencil") as c:
                results.append((await c.about())[0]["whoami"])

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        return results

    assert anyio.run(main) == ["user"] * 5
