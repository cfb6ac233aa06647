"""Third-party Haystack clients against our server, over 127.0.0.1, op by op.

The results are recorded in packages/haystack-server/README.md ("Interop").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from projecthaystack.auth import ScramCredentials
from projecthaystack.client import Client
from projecthaystack.server import (
    DEMO_ACTIONS,
    MemoryStore,
    Role,
    ServerConfig,
    User,
    create_app,
    demo_building,
)

PASSWORD = "interop-password"
SITE, AHU = "demo.site1", "demo.site1.ahu1"
SENSOR, SETPOINT = "demo.site1.ahu1.dat", "demo.site1.ahu1.datsp"
YESTERDAY = dt.date.today() - dt.timedelta(days=1)


def _serve_demo(serve_asgi: Callable[[Any], str], config: ServerConfig | None = None) -> str:
    building = demo_building(1, sites=1, ahus=1, vavs=2, days=2)

    async def users(store: Any) -> None:
        creds = ScramCredentials.derive(PASSWORD, iterations=4096)
        await store.create_user(User("operator", Role.OPERATOR, creds))

    app = create_app(
        MemoryStore(),
        config=config,
        admin=("admin", "admin-password"),
        on_startup=[building.load, users],
        actions=DEMO_ACTIONS,
    )
    return serve_asgi(app)


@pytest.fixture(scope="module")
def url(serve_asgi: Callable[[Any], str]) -> str:
    return _serve_demo(serve_asgi)


# -- phable ---------------------------------------------------------------------------------


def _phable_ops() -> dict[str, Callable[[Any], Any]]:
    from phable import Number, Ref

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "about": lambda c: c.about()["productName"] == "haystack-server",
        "read": lambda c: c.read("site")["id"].val == SITE,
        "read_all (filter, limit)": lambda c: len(c.read_all("point", limit=3).rows) == 3,
        "read_by_id": lambda c: c.read_by_id(Ref(AHU))["id"].val == AHU,
        "read_by_ids": lambda c: len(c.read_by_ids([Ref(SITE), Ref(AHU)]).rows) == 2,
        "his_read_by_id": lambda c: len(c.his_read_by_id(Ref(SENSOR), YESTERDAY).rows) == 96,
        "his_read_by_ids": lambda c: len(
            c.his_read_by_ids([Ref(SENSOR), Ref(AHU + ".rat")], YESTERDAY).rows
        )
        == 96,
        "his_write_by_id": lambda c: c.his_write_by_id(
            Ref(SENSOR), [{"ts": now.astimezone(_ny()), "val": Number(60, "°F")}]
        )
        is not None,
        "point_write": lambda c: c.point_write(Ref(SETPOINT), 8, Number(55, "°F"), "phable")
        is not None,
        "point_write_array": lambda c: len(c.point_write_array(Ref(SETPOINT)).rows) == 17,
        "call (nav)": lambda c: len(c.call("nav").rows) == 1,
    }


def _ny() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


@pytest.mark.parametrize("fmt", ["json", "zinc"])
@pytest.mark.parametrize("op", list(_phable_ops()))
def test_phable(url: str, fmt: str, op: str) -> None:
    from phable import open_haystack_client

    with open_haystack_client(url, "operator", PASSWORD, content_type=fmt) as client:
        assert _phable_ops()[op](client)


# -- pyhaystack ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_url(serve_asgi: Callable[[Any], str]) -> str:
    """The server root, with the ops at ``/api/{project}``, SkySpark's layout, where
    pyhaystack and haystack-nclient look for them."""
    return _serve_demo(serve_asgi, ServerConfig(prefix="/api/demo")).removesuffix("/api")


def _pyhaystack_ops() -> dict[str, Callable[[Any], Any]]:
    import hszinc
    import pytz

    def result(op: Any) -> Any:
        op.wait(30)
        return op.result

    def watch(s: Any) -> bool:
        sub = result(s.watch_sub([hszinc.Ref(SETPOINT)], watch_dis="pyhaystack", lease=60))
        wid = sub.metadata["watchId"]
        # pyhaystack drops ``refresh``: change the point so that the poll has something.
        result(s.invoke_action(hszinc.Ref(SETPOINT), "override", val=hszinc.Quantity(57, "°F")))
        polled = result(s.watch_poll(wid))
        result(s.watch_unsub(wid, points=[hszinc.Ref(SETPOINT)]))
        result(s.watch_unsub(wid))
        return len(sub) == 1 and polled[0]["id"].name == SETPOINT

    now = dt.datetime.now(pytz.timezone("America/New_York")).replace(microsecond=0)
    return {
        "about": lambda s: result(s.about())[0]["productName"] == "haystack-server",
        "formats": lambda s: len(result(s.formats())) >= 4,
        "read (filter, limit)": lambda s: len(result(s.read(filter_expr="point", limit=3))) == 3,
        "read (ids)": lambda s: len(result(s.read(ids=[hszinc.Ref(SITE), hszinc.Ref(AHU)]))) == 2,
        "nav": lambda s: len(result(s.nav())) == 1,
        "nav (navId)": lambda s: AHU in [r["id"].name for r in result(s.nav(nav_id=SITE))],
        "his_read": lambda s: len(result(s.his_read(hszinc.Ref(SENSOR), YESTERDAY.isoformat())))
        == 96,
        "his_read_series": lambda s: len(
            result(s.his_read_series(hszinc.Ref(SENSOR), YESTERDAY.isoformat()))
        )
        == 96,
        "his_write": lambda s: result(
            s.his_write(hszinc.Ref(SENSOR), {now: hszinc.Quantity(60, "°F")})
        )
        is not None,
        "watch_sub / watch_poll / watch_unsub": watch,
        "invoke_action": lambda s: result(
            s.invoke_action(hszinc.Ref(SETPOINT), "override", val=hszinc.Quantity(56, "°F"))
        )
        is not None,
        "get_entity": lambda s: SITE in result(s.get_entity([SITE])),
        "find_entity": lambda s: SITE in result(s.find_entity("site")),
    }


def _pyhaystack_session(url: str) -> Any:
    from pyhaystack.client.skyspark import SkysparkScramHaystackSession

    # SkySpark's layout: login at /ui, ops under /api/{project}.
    return SkysparkScramHaystackSession(
        uri=url, username="operator", password=PASSWORD, project="demo", pint=False
    )


# pyhaystack has regexes with invalid escapes, and hszinc, its parser, uses pyparsing's
# old names: both warn on import.
def old_pyhaystack(test: Callable[..., None]) -> Callable[..., None]:
    test = pytest.mark.filterwarnings("ignore:invalid escape sequence")(test)
    return pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")(test)


@old_pyhaystack
@pytest.mark.parametrize(
    "op",
    [
        "about",
        "formats",
        "read (filter, limit)",
        "read (ids)",
        "nav",
        "nav (navId)",
        "his_read",
        "his_read_series",
        "his_write",
        "watch_sub / watch_poll / watch_unsub",
        "invoke_action",
        "get_entity",
        "find_entity",
    ],
)
def test_pyhaystack(project_url: str, op: str) -> None:
    assert _pyhaystack_ops()[op](_pyhaystack_session(project_url))


@old_pyhaystack
def test_pyhaystack_point_write_is_refused_as_a_get(project_url: str) -> None:
    """pyhaystack sends pointWrite as a GET; the HTTP API allows GET only for ops without
    side effects, and we hold to that."""
    import hszinc
    from pyhaystack.client.http.exceptions import HTTPStatusError

    op = _pyhaystack_session(project_url).point_write(
        hszinc.Ref(SETPOINT), level=8, val=hszinc.Quantity(55, "°F")
    )
    op.wait(30)
    with pytest.raises(HTTPStatusError) as info:
        _ = op.result
    assert info.value.status == 405


# -- rusty-haystack --------------------------------------------------------------------------


def _rusty_ops() -> dict[str, Callable[[Any], bool]]:
    import rusty_haystack as rh

    def now() -> Any:
        t = dt.datetime.now(_ny()).replace(microsecond=0)
        offset = t.utcoffset()
        assert offset is not None
        fields = (t.year, t.month, t.day, t.hour, t.minute, t.second)
        return rh.HDateTime(*fields, int(offset.total_seconds()), "New_York")

    def point_write(c: Any) -> bool:
        c.point_write(SETPOINT, 8, rh.Number(54, "°F"))
        return bool(c.read_by_ids([SETPOINT]).rows()[0].get("writeVal") == rh.Number(54, "°F"))

    def watch(c: Any) -> bool:
        sub = c.watch_sub([SETPOINT], "60sec")
        wid = sub.meta().get("watchId")
        c.point_write(SETPOINT, 8, rh.Number(53, "°F"))
        polled = c.watch_poll(wid)
        c.watch_unsub(wid, [SETPOINT])
        c.watch_unsub(wid)
        return len(sub.rows()) == 1 and len(polled.rows()) == 1

    def invoke_action(c: Any) -> bool:
        c.point_write(SETPOINT, 8, rh.Number(52, "°F"))
        c.invoke_action(SETPOINT, "release")
        return c.read_by_ids([SETPOINT]).rows()[0].get("writeLevel") != rh.Number(8)

    return {
        "about": lambda c: c.about().rows()[0].get("productName") == "haystack-server",
        "ops": lambda c: len(c.ops().rows()) >= 15,
        "formats": lambda c: len(c.formats().rows()) == 5,
        "defs": lambda c: len(c.defs().rows()) > 0,
        "libs": lambda c: len(c.libs().rows()) >= 1,
        "read (filter, limit)": lambda c: len(c.read("point", 3).rows()) == 3,
        "read_by_ids": lambda c: len(c.read_by_ids([SITE, AHU]).rows()) == 2,
        "nav": lambda c: len(c.nav().rows()) == 1,
        "nav (navId)": lambda c: AHU in [r.id().val for r in c.nav(SITE).rows()],
        "his_read": lambda c: len(c.his_read(SENSOR, YESTERDAY.isoformat()).rows()) == 96,
        "his_write": lambda c: c.his_write(
            SENSOR, [rh.HDict({"ts": now(), "val": rh.Number(62, "°F")})]
        ).is_empty(),
        "point_write": point_write,
        "watch_sub / watch_poll / watch_unsub": watch,
        "invoke_action": invoke_action,
        "call": lambda c: len(c.call("about", rh.HGrid()).rows()) == 1,
    }


@pytest.mark.parametrize(
    "op",
    [
        "about",
        "ops",
        "formats",
        "defs",
        "libs",
        "read (filter, limit)",
        "read_by_ids",
        "nav",
        "nav (navId)",
        "his_read",
        "his_write",
        "point_write",
        "watch_sub / watch_poll / watch_unsub",
        "invoke_action",
        "call",
    ],
)
def test_rusty_haystack(url: str, op: str) -> None:
    from rusty_haystack.client import HaystackClient

    client = HaystackClient.connect(url, "operator", PASSWORD)
    try:
        assert _rusty_ops()[op](client)
    finally:
        client.close()


# -- haystack-py (Python >= 3.13 only) --------------------------------------------------------

needs_313 = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="haystack-py requires Python >= 3.13: run these on 3.13 (dev.py test -py 3.13)",
)


def _hspy_ops() -> dict[str, Callable[[Any], Any]]:
    from hs_py import Number, Ref

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    async def his_write(c: Any) -> bool:
        await c.his_write(Ref(SENSOR), [{"ts": now.astimezone(_ny()), "val": Number(61, "°F")}])
        return True

    async def point_write(c: Any) -> bool:
        await c.point_write(Ref(SETPOINT), 8, Number(56, "°F"))
        return True

    async def watch(c: Any) -> bool:
        sub = await c.watch_sub([Ref(SETPOINT)], "hs-py", raw=True)
        wid = sub.meta["watchId"]
        await c.watch_poll(wid)
        await c.watch_unsub(wid, [Ref(SETPOINT)])
        return True

    async def about(c: Any) -> bool:
        return bool((await c.about())[0]["productName"] == "haystack-server")

    async def read(c: Any) -> bool:
        return len(await c.read("point", 3)) == 3

    async def read_by_ids(c: Any) -> bool:
        return len(await c.read_by_ids([Ref(SITE), Ref(AHU)])) == 2

    async def nav(c: Any) -> bool:
        return len(await c.nav()) == 1

    async def his_read(c: Any) -> bool:
        return len(await c.his_read(Ref(SENSOR), YESTERDAY.isoformat())) == 96

    async def his_read_batch(c: Any) -> bool:
        return (
            len(await c.his_read_batch([Ref(SENSOR), Ref(AHU + ".rat")], YESTERDAY.isoformat()))
            == 96
        )

    async def point_write_array(c: Any) -> bool:
        return len(await c.point_write_array(Ref(SETPOINT), raw=False)) == 17

    async def ops(c: Any) -> bool:
        return len(await c.ops()) >= 15

    async def formats(c: Any) -> bool:
        return len(await c.formats()) >= 4

    async def invoke_action(c: Any) -> bool:
        await c.invoke_action(Ref(SETPOINT), "release", {})
        return True

    return {
        "about": about,
        "ops": ops,
        "formats (filetypes)": formats,
        "read": read,
        "read_by_ids": read_by_ids,
        "nav": nav,
        "his_read": his_read,
        "his_read_batch": his_read_batch,
        "his_write": his_write,
        "point_write": point_write,
        "point_write_array": point_write_array,
        "watch_sub/poll/unsub": watch,
        "invoke_action": invoke_action,
    }


@needs_313
@pytest.mark.parametrize(
    "op",
    [
        "about",
        "ops",
        "formats (filetypes)",
        "read",
        "read_by_ids",
        "nav",
        "his_read",
        "his_read_batch",
        "his_write",
        "point_write",
        "point_write_array",
        "watch_sub/poll/unsub",
        "invoke_action",
    ],
)
def test_haystack_py(url: str, op: str) -> None:
    from hs_py import Client

    async def run() -> Any:
        async with Client(url, "operator", PASSWORD) as client:
            return await _hspy_ops()[op](client)

    assert asyncio.run(run())


# -- haystack-nclient + haystack-core (Node) -------------------------------------------------

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def nclient_results(project_url: str) -> dict[str, str]:
    """Every op of tests-integration/node/nclient_ops.cjs, run once against the server."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for haystack-nclient (.ci/run installs them)")
        pytest.skip("node and npm are not installed: install them to run haystack-nclient")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
    )
    # nclient has no login of its own: it takes a bearer token, got here by SCRAM.
    with Client(project_url + "/api/demo", "operator", PASSWORD) as client:
        client.about()
        token = client.token
        assert token is not None
        now = dt.datetime.now(_ny()).replace(microsecond=0).isoformat() + " New_York"
        done = subprocess.run(
            [node, "nclient_ops.cjs", project_url, "demo", token, now],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    results: dict[str, str] = json.loads(done.stdout)
    return results


NCLIENT_OPS = [
    "about",
    "ops",
    "formats",
    "read (ids)",
    "read (filter, limit)",
    "nav",
    "nav (navId)",
    "hisRead (date)",
    "hisRead (today)",
    "hisWrite",
    "pointWrite",
    "pointRead",
    "invokeAction",
    "invokeOp",
    "watch (sub, poll, unsub)",
]


def test_nclient_runs_every_op(nclient_results: dict[str, str]) -> None:
    assert sorted(nclient_results) == sorted(NCLIENT_OPS)


@pytest.mark.parametrize("op", NCLIENT_OPS)
def test_nclient(nclient_results: dict[str, str], op: str) -> None:
    assert nclient_results[op] == "ok"
