"""Stores are found by URL scheme through the ``projecthaystack.stores`` entry points."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from projecthaystack.server import MemoryStore, StartupError, open_store, store_schemes
from projecthaystack.server._cli import main

FAKE_STORE = """
from projecthaystack.server import MemoryStore

class FakeStore(MemoryStore):
    def __init__(self, url):
        super().__init__()
        self.url = url

def open_store(url):
    if "bad" in url:
        raise ValueError("no such database")
    return FakeStore(url)
"""


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution on sys.path whose metadata registers two stores, one broken."""
    info = tmp_path / "fakestore-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakestore\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[projecthaystack.stores]\n"
        "fake = fakestore_mod:open_store\n"
        "broken = fakestore_missing_mod:open_store\n"
    )
    (tmp_path / "fakestore_mod.py").write_text(FAKE_STORE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fakestore_mod", None)


@pytest.mark.parametrize("url", ["memory:", "memory://", "MEMORY:"])
def test_memory_store_comes_through_its_entry_point(url: str) -> None:
    assert store_schemes()["memory"].value.startswith("projecthaystack.server")
    assert type(open_store(url)) is MemoryStore


def test_a_memory_url_with_an_address_is_refused() -> None:
    with pytest.raises(StartupError, match="takes no address"):
        open_store("memory://elsewhere")


def test_a_third_party_store_is_found_by_its_scheme(fake_dist: Path) -> None:
    assert {"fake", "broken", "memory"} <= set(store_schemes())
    store = open_store("fake://db1")
    assert type(store).__name__ == "FakeStore" and store.url == "fake://db1"  # type: ignore[attr-defined]


def test_store_errors_are_one_clear_startup_error(fake_dist: Path) -> None:
    with pytest.raises(StartupError, match=r"fake: store URL: no such database"):
        open_store("fake://bad")
    with pytest.raises(StartupError, match=r"broken: store .* cannot be loaded"):
        open_store("broken://x")
    with pytest.raises(StartupError, match=r"no installed store serves mongodb: URLs"):
        open_store("mongodb://x")
    with pytest.raises(StartupError, match="starts with its scheme"):
        open_store("just-a-path")


def test_a_missing_store_package_says_how_to_install_it_from_a_clone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever is installed here, make the pg store absent.
    only_memory = [EntryPoint("memory", store_schemes()["memory"].value, "projecthaystack.stores")]
    stores_module = sys.modules["projecthaystack.server._stores"]
    monkeypatch.setattr(stores_module, "entry_points", lambda group: only_memory)
    with pytest.raises(StartupError) as err:
        open_store("postgresql://localhost/db")
    message = str(err.value)
    assert "haystack-store-pg" in message and "pip install -e packages/haystack-store-pg" in message
    assert "installed: memory:" in message
    assert "pip install haystack-store-pg" not in message


def test_serve_with_an_unknown_store_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--store", "mongodb://x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no installed store serves mongodb:" in err
