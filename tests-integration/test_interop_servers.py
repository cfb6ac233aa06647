"""Our clients against other Haystack servers from PyPI, over 127.0.0.1, op by op.

rusty-haystack's embedded Rust server, and haystack-py's FastAPI server (Python >= 3.13).
The results are recorded in packages/haystack-client/README.md ("Interop").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from projecthaystack.client import CallError, Client
from projecthaystack.kinds import Number, Ref, tz_from_name

needs_313 = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="haystack-py requires Python >= 3.13: run these on 3.13 (dev.py test -py 3.13)",
)

NY = tz_from_name("New_York")


@pytest.fixture(scope="module")
def hspy_url(serve_asgi: Callable[[Any], str]) -> str:
    from hs_py.auth_types import StorageAuthenticator
    from hs_py.fastapi_server import create_fastapi_app
    from hs_py.kinds import MARKER
    from hs_py.kinds import Ref as HRef
    from hs_py.storage.memory import InMemoryAdapter
    from hs_py.user import Role, create_user

    storage = InMemoryAdapter(
        [
            {"id": HRef("s1"), "dis": "HQ", "site": MARKER, "tz": "New_York"},
            {"id": HRef("e1"), "dis": "AHU", "equip": MARKER, "siteRef": HRef("s1")},
            {
                "id": HRef("p1"),
                "dis": "Temp",
                "point": MARKER,
                "his": MARKER,
                "writable": MARKER,
                "kind": "Number",
                "unit": "°F",
                "tz": "New_York",
                "equipRef": HRef("e1"),
                "siteRef": HRef("s1"),
            },
        ]
    )

    async def users() -> None:
        await storage.create_user(create_user("op", "op-password", role=Role.OPERATOR))
        await storage.create_user(create_user("root", "root-password", role=Role.ADMIN))

    asyncio.run(users())
    app = create_fastapi_app(
        storage=storage, authenticator=StorageAuthenticator(storage), user_store=storage
    )
    return serve_asgi(app)


def _now() -> dt.datetime:
    return dt.datetime.now(NY).replace(microsecond=0)


OPS: dict[str, Callable[[Client], Any]] = {
    "about": lambda c: c.about()[0]["haystackVersion"],
    "ops": lambda c: len(c.ops()) >= 10,
    "read": lambda c: [r["id"].id for r in c.read("site")] == ["s1"],
    "read (limit)": lambda c: len(c.read("id", limit=2)) == 2,
    "read_ids": lambda c: [r.get("id") for r in c.read_ids([Ref("p1")])] == [Ref("p1", "Temp")],
    "nav": lambda c: len(c.nav()) >= 1,
    "his_write + his_read": lambda c: (
        c.his_write(Ref("p1"), [(_now(), Number(70, "°F"))]) is not None
        and len(c.his_read(Ref("p1"), "today")) >= 1
    ),
    # haystack-py answers the batch forms as if single (ts/val columns) and does not
    # store batch-written samples: only the exchange itself can be checked.
    "his_write_batch": lambda c: c.his_write_batch(
        [Ref("p1")], [[_now() - dt.timedelta(minutes=1), Number(69, "°F")]]
    ).is_error
    is False,
    "his_read_batch": lambda c: c.his_read_batch([Ref("p1")], "today").has_col("ts"),
    "point_write + point_write_array": lambda c: (
        c.point_write(Ref("p1"), 8, Number(72, "°F"), who="interop") is not None
        and len(c.point_write_array(Ref("p1"))) == 17
    ),
    "watch_sub / watch_poll / watch_unsub": lambda c: (
        c.watch_poll(wid := c.watch_sub([Ref("p1")], dis="interop").meta["watchId"]) is not None
        and c.watch_unsub(wid, close=True) is not None
    ),
    "close (the server wants GET)": lambda c: c.close_session() is not None and c.token is None,
}


@needs_313
@pytest.mark.parametrize("fmt", ["json", "zinc"])
@pytest.mark.parametrize("op", list(OPS))
def test_our_client_against_haystack_py(hspy_url: str, fmt: str, op: str) -> None:
    with Client(hspy_url, "op", "op-password", fmt=fmt) as client:
        assert OPS[op](client)


@needs_313
@pytest.mark.parametrize("op", ["filetypes", "defs", "libs"])
def test_ops_haystack_py_lacks_are_clean_call_errors(hspy_url: str, op: str) -> None:
    with (
        Client(hspy_url, "op", "op-password") as client,
        pytest.raises(CallError, match="not supported"),
    ):
        client.call(op)


@needs_313
def test_async_client_against_haystack_py(hspy_url: str) -> None:
    from projecthaystack.client import AsyncClient

    async def run() -> int:
        async with AsyncClient(hspy_url, "op", "op-password") as client:
            return len(await client.read("point"))

    assert asyncio.run(run()) == 1


# -- rusty-haystack --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rusty_url() -> str:
    import base64

    import rusty_haystack as rh
    from rusty_haystack.server import AuthManager, HaystackServer

    from projecthaystack.auth import ScramCredentials

    creds = ScramCredentials.derive("op-password", iterations=4096)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    users = (
        "[users.op]\n"
        f'password_hash = "{b64(creds.salt)}:{creds.iterations}:'
        f'{b64(creds.stored_key)}:{b64(creds.server_key)}"\n'
        'role = "operator"\n'
    )
    zinc = (
        'ver:"3.0"\n'
        "id,dis,site,equip,point,his,writable,kind,unit,tz,siteRef,equipRef\n"
        '@s1,"HQ",M,,,,,,,"New_York",,\n'
        '@e1,"AHU",,M,,,,,,,@s1,\n'
        '@p1,"Temp",,,M,M,M,"Number","°F","New_York",@s1,@e1\n'
    )
    server = HaystackServer(rh.SharedGraph.from_grid(rh.decode_grid("text/zinc", zinc)))
    server.with_auth(AuthManager.from_toml_str(users))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server.host("127.0.0.1")
    server.port(port)
    server.run_background()  # a Rust thread: it ends with the test process
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert server.bg_error() is None, server.bg_error()
            assert time.monotonic() < deadline, "rusty-haystack did not start"
            time.sleep(0.05)
    return url


RUSTY_OPS: dict[str, Callable[[Client], Any]] = {
    "about": lambda c: len(c.about()) == 1,
    "ops": lambda c: len(c.ops()) >= 10,
    "read (the server routes only POST)": lambda c: [r["id"].id for r in c.read("site")] == ["s1"],
    "read_ids": lambda c: c.read_ids([Ref("p1"), Ref("nope")])[0]["id"].id == "p1",
    "nav": lambda c: len(c.nav()) == 1,
    "his_write + his_read": lambda c: (
        c.his_write(Ref("p1"), [(_now(), Number(70, "°F"))]) is not None
        and len(c.his_read(Ref("p1"), "today")) >= 1
    ),
    "point_write": lambda c: c.point_write(Ref("p1"), 8, Number(72, "°F")).is_error is False,
    "watch_sub / watch_poll / watch_unsub": lambda c: (
        c.watch_poll(wid := c.watch_sub([Ref("p1")], dis="interop").meta["watchId"]) is not None
        and c.watch_unsub(wid, close=True) is not None
    ),
    "close": lambda c: c.close_session() is not None and c.token is None,
}


@pytest.mark.parametrize("fmt", ["json", "zinc"])
@pytest.mark.parametrize("op", list(RUSTY_OPS))
def test_our_client_against_rusty_haystack(rusty_url: str, fmt: str, op: str) -> None:
    # The login alone exercises two quirks: the server refuses unpadded base64url (the
    # client retries padded) and wants the client-first message inside the HELLO.
    with Client(rusty_url, "op", "op-password", fmt=fmt) as client:
        assert RUSTY_OPS[op](client)
