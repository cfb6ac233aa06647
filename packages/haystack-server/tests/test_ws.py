"""The WebSocket endpoint with our AsyncWebSocketClient, and raw frames for the errors."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws

from projecthaystack.client import (
    AsyncWebSocketClient,
    CallError,
    RequestNotSentError,
    ResponseError,
)
from projecthaystack.kinds import Grid, Number, Ref
from projecthaystack.server import ServerConfig, ServerLimits, UserChanges

from .conftest import PASSWORDS, Live

pytestmark = pytest.mark.anyio


def ws_client(live: Live, user: str = "op", **kwargs: Any) -> AsyncWebSocketClient:
    return AsyncWebSocketClient(live.url, user, PASSWORDS[user], timeout=20, **kwargs)


async def test_ops_over_one_socket(live: Live) -> None:
    async with ws_client(live, "viewer") as ws:
        assert (await ws.about())[0]["whoami"] == "viewer"
        assert [r["id"].id for r in await ws.read("site")] == ["s1", "s2"]
        assert len(await ws.read_ids([Ref("t1"), Ref("nope")])) == 2
        with pytest.raises(CallError, match="unknown id"):
            await ws.his_read(Ref("nope"), "today")
        with pytest.raises(CallError, match="needs the operator role"):
            await ws.his_write(Ref("t1"), [])
        with pytest.raises(CallError, match="unknown op"):
            await ws.call("nosuchop")


async def test_batch_in_order_with_errors_in_place(live: Live) -> None:
    async with ws_client(live) as ws:
        grids = await ws.batch(
            [
                ("about", None),
                ("read", Grid.from_rows([{"filter": "site"}])),
                ("read", Grid.from_rows([{"filter": "site and"}])),
                ("nav", None),
            ]
        )
        assert grids[0][0]["whoami"] == "op"
        assert len(grids[1]) == 2
        assert grids[2].is_error and "invalid filter" in grids[2].meta["dis"]
        assert len(grids[3]) == 2


async def test_watch_changes_are_pushed(live: Live) -> None:
    async with ws_client(live) as ws:
        sub = await ws.watch_sub([Ref("sp1"), Ref("t1")], dis="push test")
        wid = sub.meta["watchId"]
        # A write from another connection (HTTP) reaches this socket's watch.
        other = live.client("op")
        await anyio.to_thread.run_sync(lambda: other.point_write(Ref("sp1"), 8, Number(66, "°F")))
        update = await ws.next_update(timeout=10)
        assert update.watch_id == wid
        assert [r["id"].id for r in update.grid] == ["sp1"]
        assert update.grid[0]["writeVal"] == Number(66, "°F")
        await ws.watch_unsub(wid, close=True)


async def test_reconnects_and_resubscribes(live: Live) -> None:
    async with ws_client(live) as ws:
        sub = await ws.watch_sub([Ref("sp1")])
        wid = sub.meta["watchId"]
        # Revoke the token: the server closes the socket at the next message.
        op = await live.store.get_user("op")
        assert op is not None  # a new password (the same one) ends every session
        await live.store.update_user("op", UserChanges(credentials=op.credentials))
        with pytest.raises((ResponseError, CallError)):
            await ws.about()
        with anyio.fail_after(15):
            while True:
                try:
                    about = await ws.about()
                    break
                except (ResponseError, RequestNotSentError):
                    await anyio.sleep(0.1)
        assert about[0]["whoami"] == "op"
        other = live.client("op")
        await anyio.to_thread.run_sync(lambda: other.point_write(Ref("sp1"), 8, Number(61, "°F")))
        update = await ws.next_update(timeout=10)
        assert update.watch_id == wid and update.grid[0]["writeVal"] == Number(61, "°F")


async def test_refused_login_is_raised_at_connect(live: Live) -> None:
    from projecthaystack.client import AuthenticationError

    with pytest.raises(AuthenticationError):
        async with AsyncWebSocketClient(live.url, "op", "wrong-password", timeout=10):
            pass


async def test_not_open_is_request_not_sent(live: Live) -> None:
    ws = ws_client(live)
    with pytest.raises(RequestNotSentError):
        await ws.about()
    await ws.aclose()


# -- raw frames -----------------------------------------------------------------------------


async def _raw(live: Live, token: str | None) -> Any:
    headers = {"Authorization": f"BEARER authToken={token}"} if token else {}
    return aconnect_ws(live.url.replace("http", "ws") + "/ws", httpx.AsyncClient(), headers=headers)


async def test_unauthenticated_socket_is_closed_4001(live: Live) -> None:
    async with httpx.AsyncClient() as http, aconnect_ws(live.url + "/ws", http) as ws:
        await ws.send_text(json.dumps({"id": 1, "op": "about"}))
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)
    assert closed.value.code == 4001


async def test_first_message_token_for_browsers(live: Live) -> None:
    token = await anyio.to_thread.run_sync(live.token, "viewer")
    async with httpx.AsyncClient() as http, aconnect_ws(live.url + "/ws", http) as ws:
        await ws.send_text(json.dumps({"id": "a", "auth": token}))
        assert json.loads(await ws.receive_text(timeout=10)) == {"id": "a", "auth": "ok"}
        await ws.send_text(json.dumps({"id": 2, "op": "about"}))
        reply = json.loads(await ws.receive_text(timeout=10))
        assert reply["id"] == 2 and reply["grid"]["rows"][0]["whoami"] == "viewer"


async def test_malformed_and_refused_frames(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_batch=2)))
    token = await anyio.to_thread.run_sync(live.token, "viewer")
    async with (
        httpx.AsyncClient() as http,
        aconnect_ws(
            live.url + "/ws", http, headers={"Authorization": f"BEARER authToken={token}"}
        ) as ws,
    ):

        async def ask(text: str) -> Any:
            await ws.send_text(text)
            return json.loads(await ws.receive_text(timeout=10))

        bad = await ask("{not json")
        assert bad["id"] is None and "malformed" in bad["grid"]["meta"]["dis"]
        unknown_field = await ask(json.dumps({"id": 1, "op": "about", "x": 1}))
        assert "malformed" in unknown_field["grid"]["meta"]["dis"]
        # A trace context the server cannot use is ignored: the op runs as without one.
        for n, trace in enumerate(
            [None, "00-x", [1], {"traceparent": 7}, {"traceparent": "junk", "tracestate": "?"}]
        ):
            traced = await ask(json.dumps({"id": f"t{n}", "op": "about", "trace": trace}))
            assert traced["id"] == f"t{n}" and not traced["grid"]["meta"].get("err")
        empty = await ask(json.dumps({"id": 2}))
        assert "needs 'op' or 'batch'" in empty["grid"]["meta"]["dis"]
        forbidden = await ask(json.dumps({"id": 3, "op": "hisWrite"}))
        assert forbidden["status"] == 403
        missing = await ask(json.dumps({"id": 4, "op": "nosuch"}))
        assert missing["status"] == 404
        big = await ask(json.dumps({"id": 5, "batch": [{"op": "about"}] * 3}))
        assert "at most 2" in big["grid"]["meta"]["dis"]
        unreadable = await ask('{"id": 6, "op": "read", "grid": {"_kind": "grid", "cols": 5}}')
        assert unreadable["status"] == 400
        ok = await ask(json.dumps({"id": 7, "op": "about"}))
        assert ok["grid"]["rows"][0]["whoami"] == "viewer"


async def test_close_op_ends_the_socket(live: Live) -> None:
    token = await anyio.to_thread.run_sync(live.token, "viewer")
    async with (
        httpx.AsyncClient() as http,
        aconnect_ws(
            live.url + "/ws", http, headers={"Authorization": f"BEARER authToken={token}"}
        ) as ws,
    ):
        await ws.send_text(json.dumps({"id": 1, "op": "close"}))
        assert json.loads(await ws.receive_text(timeout=10))["id"] == 1
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text(timeout=10)


async def test_no_server_is_request_not_sent() -> None:
    from projecthaystack.server.testing import free_port

    with pytest.raises(RequestNotSentError, match=r"cannot connect|not sent"):
        async with AsyncWebSocketClient(
            f"http://127.0.0.1:{free_port()}/api", "op", "pw", timeout=10
        ):
            pass
