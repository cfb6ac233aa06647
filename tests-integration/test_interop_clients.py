"""Third-party Haystack clients against our server, over 127.0.0.1, op by op.

The results are recorded in packages/haystack-server/README.md ("Interop").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import pytest

from projecthaystack.auth import ScramCredentials
from projecthaystack.server import MemoryStore, Role, User, create_app, demo_building
from projecthaystack.server._demo import DEMO_ACTIONS

PASSWORD = "interop-password"
SITE, AHU = "demo.site1", "demo.site1.ahu1"
SENSOR, SETPOINT = "demo.site1.ahu1.dat", "demo.site1.ahu1.datsp"
YESTERDAY = dt.date.today() - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def url(serve_asgi: Callable[[Any], str]) -> str:
    building = demo_building(1, sites=1, ahus=1, vavs=2, days=2)

    async def users(store: Any) -> None:
        creds = ScramCredentials.derive(PASSWORD, iterations=4096)
        await store.put_user(User("operator", Role.OPERATOR, creds))

    app = create_app(
        MemoryStore(),
        admin=("admin", "admin-password"),
        on_startup=[building.load, users],
        actions=DEMO_ACTIONS,
    )
    return serve_asgi(app)


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


# -- haystack-py (Python >= 3.13 only) --------------------------------------------------------

needs_313 = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="haystack-py requires Python >= 3.13"
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
