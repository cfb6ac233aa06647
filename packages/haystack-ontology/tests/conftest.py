"""The standard libs live outside this repository (``shared/reference/defs`` beside a
checkout, or where ``HAYSTACK_DEFS`` points): they are not ours to ship."""

import os
from pathlib import Path

import pytest

from projecthaystack.ontology import Namespace

ROOT = Path(__file__).resolve().parents[3]
DEFS = Path(os.environ.get("HAYSTACK_DEFS", ROOT.parent / "shared" / "reference" / "defs"))
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)


def _need(path: Path, what: str, variable: str) -> Path:
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must have the {what} (set {variable})")
        pytest.skip(f"the {what} are not at {path}: set {variable} to where they are")
    return path


@pytest.fixture(scope="session")
def defs_dir() -> Path:
    return _need(DEFS, "standard Haystack defs", "HAYSTACK_DEFS")


@pytest.fixture(scope="session")
def ns(defs_dir: Path) -> Namespace:
    return Namespace.load(defs_dir)


@pytest.fixture(scope="session")
def alpha() -> list:
    from projecthaystack.codecs import json

    path = _need(BUILDINGS / "alpha.json", "example buildings", "HAYSTACK_BUILDINGS")
    return list(json.decode_grid(path.read_bytes()).rows)
