"""The Project Haystack example buildings decode to equal data from JSON, Zinc and Trio,
and re-encode to equal data.

The buildings live outside this repository (in ``shared/`` beside a checkout, or where
``HAYSTACK_BUILDINGS`` points); outside CI a missing copy skips these tests, under CI it
fails them.
"""

import os
from pathlib import Path

import pytest

from projecthaystack.codecs import csv, json, trio, zinc
from projecthaystack.kinds import Grid, Number, Ref

ROOT = Path(__file__).resolve().parents[3]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)


def _load(name: str, ext: str) -> bytes:
    path = BUILDINGS / f"{name}.{ext}"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must have the example buildings")
        pytest.skip(f"example buildings not found at {BUILDINGS} (set HAYSTACK_BUILDINGS)")
    return path.read_bytes()


@pytest.fixture(scope="module", params=["alpha", "bravo"])
def building(request: pytest.FixtureRequest) -> tuple[str, Grid, Grid, Grid]:
    name = request.param
    return (
        name,
        json.decode_grid(_load(name, "json")),
        zinc.decode_grid(_load(name, "zinc")),
        trio.decode_grid(_load(name, "trio")),
    )


def _by_id(grid: Grid) -> dict[Ref, dict]:
    return {row["id"]: dict(row) for row in grid}


def test_three_formats_agree(building):
    name, from_json, from_zinc, from_trio = building
    assert from_json == from_zinc
    assert len(from_json) == {"alpha": 2032, "bravo": 1077}[name]
    # Trio has no grid meta and orders columns by first use; the records are the same.
    assert _by_id(from_trio) == _by_id(from_json)
    assert set(from_trio.col_names) == set(from_json.col_names)


def test_ref_display_names_survive(building):
    _, from_json, from_zinc, _ = building
    dis_json = [r.dis for row in from_json for r in row.values() if isinstance(r, Ref)]
    dis_zinc = [r.dis for row in from_zinc for r in row.values() if isinstance(r, Ref)]
    assert dis_json == dis_zinc


def test_reencode_to_equal_data(building):
    _, grid, _, _ = building
    assert zinc.decode_grid(zinc.encode_grid(grid)) == grid
    assert json.decode_grid(json.encode_grid(grid)) == grid
    assert json.decode_grid(json.encode_grid(grid, version=3), version=3) == grid
    assert _by_id(trio.decode_grid(trio.encode_grid(grid))) == _by_id(grid)
    assert len(csv.decode_grid(csv.encode_grid(grid))) == len(grid)


def test_known_facts(building):
    name, grid, _, _ = building
    sites = [row for row in grid if "site" in row]
    assert len(sites) == 1
    if name == "alpha":
        assert sites[0]["geoCity"] == "Hugo" and grid.meta["numPoints"] == Number(1842)
        assert sites[0]["area"] == Number(151455, "ft²")
    else:
        # bravo's chillers carry "10.6EER": a number whose unit starts with E.
        chillers = [row for row in grid if "chiller" in row and "equip" in row]
        assert len(chillers) == 2
        assert all(c["custom"]["designEfficiency"] == Number(10.6, "EER") for c in chillers)
