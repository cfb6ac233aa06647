"""Our client against our server over a real socket: the login, the errors a user meets,
logging out, and the command line on the demo building."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from projecthaystack.client import (
    AsyncWebSocketClient,
    CallError,
    Client,
    CredentialsRejectedError,
    RequestNotSentError,
    ResponseError,
    TooManyRequestsError,
    UnknownRecError,
)
from projecthaystack.kinds import Ref
from projecthaystack.server import MemoryStore, ServerConfig, create_app, demo_building

ADMIN = ("admin", "correct-horse-battery")
BUILDING = demo_building(sites=1, ahus=1, vavs=2, days=3)
POINT = "demo.site1.ahu1.dat"


def _app(config: ServerConfig | None = None) -> Any:
    return create_app(MemoryStore(), config=config, admin=ADMIN, on_startup=[BUILDING.load])


@pytest.fixture(scope="module")
def url(serve_asgi: Callable[[Any], str]) -> str:
    return serve_asgi(_app())


def _counting(log: list[str]) -> dict[str, Any]:
    def hook(request: httpx.Request) -> None:
        log.append(request.headers.get("authorization", "").split(" ", 1)[0])

    return {"event_hooks": {"request": [hook]}}


def test_login_takes_three_round_trips(url: str) -> None:
    sent: list[str] = []
    with Client(url, *ADMIN, **_counting(sent)) as c:
        c.login()
        assert sent == ["HELLO", "SCRAM", "SCRAM"]
        c.about()
        assert sent[3:] == ["BEARER"]


def test_many_fresh_clients_from_one_host_are_not_throttled(url: str) -> None:
    # Each login used to leave a handshake behind: the 30th or so client got 429.
    for _ in range(40):
        with Client(url, *ADMIN) as c:
            assert c.about()[0]["productName"] == "haystack-server"


def test_throttled_logins_say_how_long_to_wait(serve_asgi: Callable[[Any], str]) -> None:
    throttled = serve_asgi(_app(ServerConfig(max_failures_per_user=2)))
    for _ in range(2):
        with (
            Client(throttled, "admin", "wrong-password") as c,
            pytest.raises(CredentialsRejectedError),
        ):
            c.about()
    with Client(throttled, *ADMIN) as c, pytest.raises(TooManyRequestsError) as info:
        c.about()
    err = info.value
    assert err.retry_after == 15 * 60
    assert err.status == 429
    assert err.server_message == "too many failed logins; try again later"
    assert f"{throttled}/about" in str(err)
    assert "retry after 900 s" in str(err)


def test_errors_name_the_url_and_say_what_the_server_said(url: str) -> None:
    root = url.removesuffix("/api")
    with Client(root, *ADMIN) as c, pytest.raises(ResponseError) as missing:
        c.about()
    assert missing.value.status == 404
    assert "such as /api" in str(missing.value)
    assert f"{root}/about" in str(missing.value)
    with Client(url, *ADMIN) as c:
        with pytest.raises(ResponseError) as unknown:
            c.call("noSuchOp")
        assert str(unknown.value) == f"HTTP 404 from {url}/noSuchOp: unknown op 'noSuchOp'"
        with pytest.raises(CallError) as bad:
            c.read("((")
        assert str(bad.value).startswith(f"{url}/read: invalid filter")
        assert "ver:" not in str(bad.value)


def test_checked_read_by_ids(url: str) -> None:
    with Client(url, *ADMIN) as c:
        assert [r["id"].id for r in c.read_ids([POINT], checked=True)] == [POINT]
        assert len(c.read_ids([POINT, "nope"])) == 2
        with pytest.raises(UnknownRecError) as info:
            c.read_ids([POINT, "nope"], checked=True)
        assert info.value.ids == (Ref("nope"),)


def test_leaving_the_block_logs_out(url: str) -> None:
    with Client(url, *ADMIN) as c:
        c.about()
        token = c.token
    with httpx.Client() as http:
        resp = http.get(f"{url}/about", headers={"Authorization": f"BEARER authToken={token}"})
    assert resp.status_code == 401


def _haystack(*args: str, url: str) -> str:
    """Run the installed ``haystack`` command, as the README shows it."""
    command = Path(sys.executable).with_name("haystack")
    env = {"HAYSTACK_URL": url, "HAYSTACK_USER": ADMIN[0], "HAYSTACK_PASSWORD": ADMIN[1]}
    done = subprocess.run(
        [str(command), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readmes_command_line(url: str) -> None:
    pd = pytest.importorskip("pandas", reason="install the [pandas] extra (pip install pandas)")
    out = _haystack("read", "point and temp", "--limit", "10", "-o", "csv", url=url)
    frame = pd.read_csv(io.StringIO(out))
    assert len(frame) == 8
    assert frame["curVal [°F]"].dtype.kind == "f"
    his = pd.read_csv(io.StringIO(_haystack("his", f"@{POINT}", "yesterday", "-o", "csv", url=url)))
    assert list(his.columns) == ["ts", "val [°F]"]
    assert len(his) > 0
    assert pd.to_datetime(his["ts"], utc=True).is_monotonic_increasing
    first = json.loads(_haystack("his", f"@{POINT}", "yesterday", "-o", "json", url=url))[0]
    assert first["val"]["unit"] == "°F"
    assert "T00:00:00" in first["ts"]


@pytest.mark.anyio
async def test_websocket_client_logs_out_and_closes(url: str) -> None:
    async with AsyncWebSocketClient(url, *ADMIN, timeout=20) as ws:
        assert len(await ws.read_ids([POINT], checked=True)) == 1
        token = ws.token
    bearer = {"Authorization": f"BEARER authToken={token}"}
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/about", headers=bearer)
    assert resp.status_code == 401
    # close_session ends the session and the socket at once; no reconnection follows.
    async with AsyncWebSocketClient(url, *ADMIN, timeout=20) as ws:
        await ws.about()
        await ws.close_session()
        assert ws.token is None
        with pytest.raises(RequestNotSentError, match="not open"):
            await ws.about()
