import datetime as dt
import email.utils

import anyio
import httpx
import pytest

import projecthaystack.auth as auth
import projecthaystack.client as client_pkg
from projecthaystack.client import (
    AsyncClient,
    AuthenticationError,
    CallError,
    Client,
    ClientError,
    CredentialsRejectedError,
    CredentialsRequiredError,
    RequestNotSentError,
    ResponseError,
    ServerSignatureError,
    TooManyRequestsError,
    UnknownRecError,
    format_range,
)
from projecthaystack.kinds import Grid, HaystackError, Marker, Number, Ref, tz_from_name

NY = tz_from_name("New_York")
FORMATS = ["zinc", "json", "json3"]


def test_public_names_are_pinned():
    assert sorted(client_pkg.__all__) == sorted(
        [
            "AsyncClient",
            "AsyncWatch",
            "AsyncWebSocketClient",
            "AuthProtocolError",
            "AuthenticationError",
            "CallError",
            "Client",
            "ClientCore",
            "ClientError",
            "ClientHooks",
            "CredentialsRejectedError",
            "CredentialsRequiredError",
            "HisRange",
            "RequestNotSentError",
            "ResponseError",
            "ServerSignatureError",
            "TooManyRequestsError",
            "UnknownRecError",
            "UnsupportedMechanismError",
            "Watch",
            "WatchChanges",
            "WatchUpdate",
            "format_range",
            "his_frame",
            "to_pandas",
            "to_polars",
        ]
    )
    for name in client_pkg.__all__:
        obj = getattr(client_pkg, name)
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__module__")):
            assert obj.__module__ == "projecthaystack.client", name


def test_the_error_tree():
    for name in client_pkg.__all__:
        obj = getattr(client_pkg, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert name.endswith("Error") and issubclass(obj, ClientError), name
    assert issubclass(ClientError, HaystackError)
    # A server that cannot prove itself is not a wrong password; both are login failures,
    # and each is also the auth layer's error of the same name.
    assert not issubclass(ServerSignatureError, CredentialsRejectedError)
    assert not issubclass(CredentialsRejectedError, ServerSignatureError)
    for cls in (ServerSignatureError, CredentialsRejectedError, CredentialsRequiredError):
        assert issubclass(cls, AuthenticationError)
    assert issubclass(ServerSignatureError, auth.ServerSignatureError)
    assert issubclass(CredentialsRejectedError, auth.CredentialsRejectedError)
    assert issubclass(AuthenticationError, auth.AuthError)
    assert issubclass(TooManyRequestsError, ResponseError)
    assert issubclass(UnknownRecError, LookupError)
    assert not issubclass(RequestNotSentError, ResponseError)


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
        c.close_session()
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
        c.close_session()
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
    # str() is the URL and the server's message, not the grid's Zinc.
    assert str(info.value) == f"{server.url}/invokeAction: {info.value.dis}"
    assert info.value.url == f"{server.url}/invokeAction"


def test_wrong_password_and_missing_credentials(server):
    with Client(server.url, "user", "wrong") as c, pytest.raises(CredentialsRejectedError) as bad:
        c.about()
    assert f"{server.url}/about" in str(bad.value) and "'user'" in str(bad.value)
    with Client(server.url, "nobody", "pencil") as c, pytest.raises(CredentialsRejectedError):
        c.about()
    with Client(server.url) as c, pytest.raises(CredentialsRequiredError) as info:
        c.about()
    assert "no user name and password" in str(info.value)
    assert info.value.url == f"{server.url}/about"
    with Client(server.url, "user") as c, pytest.raises(CredentialsRequiredError):
        c.about()


def test_a_server_that_cannot_prove_itself_is_not_a_wrong_password(server):
    server.state.quirks.add("bad_signature")
    with Client(server.url, "user", "pencil") as c, pytest.raises(ServerSignatureError) as info:
        c.about()
    assert not isinstance(info.value, CredentialsRejectedError)
    assert isinstance(info.value, auth.ServerSignatureError)
    assert "impostor" in str(info.value) and info.value.url == f"{server.url}/about"
    assert c.token is None


def test_login_takes_the_three_round_trips_of_the_spec(server):
    with Client(server.url, "user", "pencil") as c:
        c.login()
    # HELLO, SCRAM client-first, SCRAM client-final: nothing abandoned, nothing repeated.
    assert server.state.logins == [("HELLO", False), ("SCRAM", True), ("SCRAM", True)]


HELLO, HELLO_DATA, SCRAM = ("HELLO", False), ("HELLO", True), ("SCRAM", True)


@pytest.mark.parametrize(
    ("quirks", "first", "again"),
    [
        # Unpadded base64 refused with 400: the HELLO again, padded.
        ({"padded_only"}, [HELLO, HELLO, SCRAM, SCRAM], [HELLO, SCRAM, SCRAM]),
        # Server data for a plain HELLO: the client-first message goes in the HELLO.
        ({"hello_data"}, [HELLO, HELLO_DATA, SCRAM], [HELLO_DATA, SCRAM]),
        ({"padded_only", "hello_data"}, [HELLO, HELLO, HELLO_DATA, SCRAM], [HELLO_DATA, SCRAM]),
    ],
)
def test_deviating_servers_get_a_fallback_only_after_the_standard_form_fails(
    server, quirks, first, again
):
    server.state.quirks |= quirks
    with Client(server.url, "user", "pencil") as c:
        c.login()
        assert server.state.logins == first
        # What was learned holds: the next login goes straight to the form that works.
        server.state.logins.clear()
        server.state.tokens.clear()
        assert c.about()[0]["whoami"] == "user"
        assert server.state.logins == again


def test_a_429_carries_retry_after_and_the_servers_message(server):
    grid = b'ver:"3.0" err dis:"too many failed logins; try again later"\nempty\n'
    server.state.login_answer = (429, {"Retry-After": "900", "Content-Type": "text/zinc"}, grid)
    with Client(server.url, "user", "pencil") as c, pytest.raises(TooManyRequestsError) as info:
        c.about()
    err = info.value
    assert err.retry_after == 900 and err.status == 429
    assert err.server_message == "too many failed logins; try again later"
    assert "too many failed logins" in str(err) and "900" in str(err)
    assert err.url == f"{server.url}/about" and err.url in str(err)
    assert 'ver:"3.0"' not in str(err)
    # Retry-After may also be an HTTP date; a missing one is None.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    server.state.login_answer = (429, {"Retry-After": email.utils.format_datetime(later)}, b"")
    with Client(server.url, "user", "pencil") as c, pytest.raises(TooManyRequestsError) as info:
        c.about()
    assert info.value.retry_after is not None and 500 < info.value.retry_after <= 600
    server.state.login_answer = (429, {}, b"slow down")
    with Client(server.url, "user", "pencil") as c, pytest.raises(TooManyRequestsError) as info:
        c.about()
    assert info.value.retry_after is None
    assert info.value.server_message == "slow down"


def test_a_404_at_login_hints_at_the_api_path(server):
    root = server.url.removesuffix("/api")
    with Client(root, "user", "pencil") as c, pytest.raises(ResponseError) as info:
        c.about()
    assert info.value.status == 404 and info.value.url == f"{root}/about"
    assert "/api" in str(info.value) and f"{root}/about" in str(info.value)


def test_other_login_failures_say_what_the_server_said(server):
    server.state.login_answer = (500, {"Content-Type": "text/html"}, b"<html>oops</html>")
    with Client(server.url, "user", "pencil") as c, pytest.raises(ResponseError) as info:
        c.about()
    assert str(info.value) == f"HTTP 500 from {server.url}/about"
    assert not isinstance(info.value, AuthenticationError)


def test_read_ids_can_be_checked(server):
    with Client(server.url, "user", "pencil") as c:
        # By default a missing id gives a row of nulls in its place, as the spec says.
        rows = c.read_ids(["t1", "@nope", "s1"])
        assert len(rows) == 3 and dict(rows[1]) == {}
        assert [r["id"] for r in c.read_ids(["t1", "s1"], checked=True)] == [Ref("t1"), Ref("s1")]
        with pytest.raises(UnknownRecError) as info:
            c.read_ids(["t1", "@nope", Ref("gone"), "s1"], checked=True)
    assert info.value.ids == (Ref("nope"), Ref("gone"))
    assert str(info.value) == "unknown ids: @nope, @gone"
    assert len(info.value.grid) == 4 and info.value.url == f"{server.url}/read"


def test_close_releases_connections_and_close_session_logs_out(server):
    c = Client(server.url, "user", "pencil")
    c.about()
    token = c.token
    c.close()  # the connections, not the session
    assert token in server.state.tokens
    with pytest.raises(RequestNotSentError, match="closed"):
        c.about()
    c.close()  # twice is fine

    with Client(server.url, "user", "pencil") as c:
        c.about()
        second = c.token
        c.close_session()
        assert c.token is None and second not in server.state.tokens
        assert len(c.close_session()) == 0  # not logged in: nothing sent
        assert c.about()[0]["whoami"] == "user"  # logs in again
    assert ("POST", "close") in server.state.requests


def test_leaving_the_with_block_logs_out_and_releases(server):
    with Client(server.url, "user", "pencil") as c:
        c.about()
        assert len(server.state.tokens) == 1
    assert not server.state.tokens
    with pytest.raises(RequestNotSentError, match="closed"):
        c.about()

    # On an error too (the error is not hidden), and not at all when never logged in.
    def fail_inside() -> None:
        with Client(server.url, "user", "pencil") as c:
            c.about()
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside()
    assert not server.state.tokens
    before = len(server.state.requests)
    with Client(server.url, "user", "pencil"):
        pass
    assert len(server.state.requests) == before


def test_leaving_the_with_block_ignores_a_failed_logout(server):
    with Client(server.url, "user", "pencil") as c:
        c.about()
        server.state.refuse_post = {"close"}
        server.state.refuse_get = True
    assert c.token is not None  # the logout failed; leaving the block did not raise


def test_a_logout_with_an_expired_session_does_not_log_in_again(server):
    with Client(server.url, "user", "pencil") as c:
        c.about()
        server.state.tokens.clear()
        logins = len(server.state.logins)
        c.close_session()
        assert c.token is None and len(server.state.logins) == logins


def test_a_given_http_client_is_left_open(server):
    http = httpx.Client()
    with Client(server.url, "user", "pencil", http=http) as c:
        c.about()
    assert not http.is_closed
    http.close()


def test_request_not_sent_versus_sent_then_failed(server, free_port):
    url = f"http://127.0.0.1:{free_port}/api"
    with Client(url, "user", "pencil", timeout=2) as c, pytest.raises(RequestNotSentError) as info:
        c.about()
    assert info.value.url == f"{url}/about" and f"request to {url}/about not sent" in str(
        info.value
    )

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
        with pytest.raises(UnknownRecError):
            await c.read_ids(["t1", "nope"], checked=True)
        await c.close_session()
        assert c.token is None and not server.state.tokens
        with pytest.raises(CallError):
            await c.invoke_action("ahu1", "explode")
    assert not server.state.tokens  # the with block logged out again
    with pytest.raises(RequestNotSentError, match="closed"):
        await c.about()


@pytest.mark.anyio
async def test_async_close_and_the_with_block(server):
    c = AsyncClient(server.url, "user", "pencil")
    await c.about()
    await c.aclose()
    assert c.token in server.state.tokens  # aclose releases connections only
    async with AsyncClient(server.url, "user", "pencil") as c:
        await c.about()
        assert len(server.state.tokens) == 2
    assert len(server.state.tokens) == 1
    # A cancelled block sends nothing on the way out, but still releases the connections.
    c = AsyncClient(server.url, "user", "pencil")
    with anyio.CancelScope() as scope:
        async with c:
            await c.about()
            scope.cancel()
            await anyio.sleep(10)
    assert c.token in server.state.tokens and len(server.state.tokens) == 2
    with pytest.raises(RequestNotSentError, match="closed"):
        await c.about()


@pytest.mark.anyio
async def test_async_errors(server, free_port):
    async with AsyncClient(f"http://127.0.0.1:{free_port}/api", "user", "pencil") as c:
        with pytest.raises(RequestNotSentError):
            await c.about()
    async with AsyncClient(server.url, "user", "bad") as c:
        with pytest.raises(CredentialsRejectedError):
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
