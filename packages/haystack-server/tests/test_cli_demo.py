"""The demo generator and the haystack-server command, run as a user would."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from projecthaystack.client import Client, RequestNotSentError
from projecthaystack.codecs import zinc
from projecthaystack.kinds import Grid, Marker, Number, Ref, tz_from_name
from projecthaystack.server import StartupError, demo_building
from projecthaystack.server._cli import main, open_store

from .conftest import free_port


def test_demo_is_deterministic_and_sized_by_options() -> None:
    a = demo_building(5, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    b = demo_building(5, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    assert a.records == b.records and a.history == b.history
    c = demo_building(6, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    assert a.history != c.history
    kinds = {
        name: sum(1 for r in a.records if name in r)
        for name in ("site", "ahu", "vav", "meter", "point")
    }
    assert kinds == {"site": 1, "ahu": 2, "vav": 6, "meter": 1, "point": 2 * 6 + 6 * 4 + 2}
    # Two days at 15 minutes for each historized non-setpoint point.
    assert {len(s) for s in a.history.values()} == {2 * 96}
    ny = tz_from_name("New_York")
    first = a.history["demo.site1.ahu1.dat"][0]
    assert first[0] == dt.datetime(2026, 2, 27, tzinfo=ny)
    assert first[1].unit == "°F"
    energy = [v.val for _, v in a.history["demo.site1.meter.energy"]]
    assert energy == sorted(energy)  # totalized: never decreases


def test_demo_records_are_valid_haystack() -> None:
    b = demo_building(1, sites=5, ahus=1, vavs=1, days=0)
    grid = Grid.from_rows(b.records)
    assert zinc.decode_grid(zinc.encode_grid(grid)) == grid
    refs = {r["id"].id for r in b.records}
    for rec in b.records:
        for name in ("siteRef", "equipRef"):
            if name in rec:
                assert rec[name].id in refs
        if "point" in rec:
            assert rec["kind"] in ("Number", "Bool") and "tz" in rec
    with pytest.raises(ValueError, match="sites"):
        demo_building(sites=9)


def test_open_store_urls() -> None:
    assert type(open_store("memory:")).__name__ == "MemoryStore"
    with pytest.raises(StartupError, match="unknown store URL"):
        open_store("mongodb://x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--workers", "2"], "shared store"),
        (["serve", "--certfile", "x.pem"], "go together"),
        (["serve", "--client-ca", "ca.pem"], "needs --certfile"),
    ],
)
def test_serve_refuses_bad_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAYSTACK_")}
    env.update(extra)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "projecthaystack.server._cli", *args]


def test_demo_command_serves_and_queries() -> None:
    done = subprocess.run(
        _command("demo", "--once", "--demo-sites", "1", "--demo-days", "2"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "password:" in out
    assert "read 'site': 1 sites" in out
    assert "nav @demo.site1" in out
    assert "hisRead @demo.site1" in out and "96 samples" in out


def test_serve_loads_a_file_and_refuses_without_admin(tmp_path: Path) -> None:
    grid = Grid.from_rows(
        [{"id": Ref("x1"), "dis": "Loaded", "site": Marker, "area": Number(10, "m²")}]
    )
    path = tmp_path / "site.zinc"
    path.write_text(zinc.encode_grid(grid))
    port = free_port()
    refused = subprocess.run(
        _command("serve", "--port", str(port), "--load", str(path)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "no admin user" in refused.stderr

    proc = subprocess.Popen(
        _command("serve", "--port", str(port), "--load", str(path), "--log-level", "warning"),
        env=_env(HAYSTACK_ADMIN_USER="boss", HAYSTACK_ADMIN_PASSWORD="boss-password"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        with Client(f"http://127.0.0.1:{port}/api", "boss", "boss-password") as client:
            while True:
                try:
                    sites = client.read("site")
                    break
                except RequestNotSentError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        assert [r["dis"] for r in sites] == ["Loaded"]
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
