"""``haystack his`` for long work against haystack-server's demo building: a range read
in chunks to CSV and Parquet files (the same samples as one hisRead), a filter's points,
quiet when piped, and a plot; the command as a user runs it (a subprocess)."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from projecthaystack.client import Client
from projecthaystack.server import MemoryStore, create_app, demo_building
from projecthaystack.server.testing import serve

ADMIN = ("admin", "correct-horse-battery")
BUILDING = demo_building(sites=1, ahus=1, vavs=2, days=10)
POINT = "demo.site1.ahu1.dat"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(MemoryStore(), admin=ADMIN, on_startup=[BUILDING.load])
    with serve(app) as base:
        yield base


def _haystack(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("haystack")
    env = {"HAYSTACK_URL": url, "HAYSTACK_USER": ADMIN[0], "HAYSTACK_PASSWORD": ADMIN[1]}
    done = subprocess.run(
        [str(command), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done


def _range(url: str) -> tuple[str, int]:
    with Client(url, *ADMIN) as c:
        his = c.his_read(POINT, "yesterday")
        day = his.meta["hisStart"].date()
    first = day.fromordinal(day.toordinal() - 8)
    text = f"{first.isoformat()},{day.isoformat()}"
    with Client(url, *ADMIN) as c:
        whole = len(c.his_read(POINT, text))
    return text, whole


def test_a_long_range_in_chunks_to_csv(url: str, tmp_path: Path) -> None:
    span, whole = _range(url)
    done = _haystack(
        "his", f"@{POINT}", span, "--out", "dat.csv", "--chunk-days", "2", url=url, cwd=tmp_path
    )
    assert done.stderr == ""  # no terminal: no progress
    with (tmp_path / "dat.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == whole > 9 * 90
    assert {r["id"] for r in rows} == {POINT}
    assert {r["unit"] for r in rows} == {"°F"}
    assert not (tmp_path / "dat.csv.progress").exists()


def test_a_filters_points_to_parquet_and_a_plot(url: str, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="install the [parquet] extra")
    image = pytest.importorskip("matplotlib.image", reason="install the [plot] extra")
    span, whole = _range(url)
    _haystack(
        "his",
        "--filter",
        "point and temp and sensor and not zone",
        span,
        "--out",
        "temps.parquet",
        "--plot",
        "temps.png",
        url=url,
        cwd=tmp_path,
    )
    table = pq.read_table(tmp_path / "temps.parquet")
    ids = set(table.column("id").to_pylist())
    assert ids == {"demo.site1.ahu1.dat", "demo.site1.ahu1.rat", "demo.site1.ahu1.oat"}
    assert table.num_rows == 3 * whole
    pixels = image.imread(tmp_path / "temps.png")
    assert pixels.shape[:2] == (500, 1000)
    flat = pixels.reshape(-1, pixels.shape[2])
    assert len({tuple(p) for p in flat[::7]}) > 20  # lines, axes and labels: not blank
