"""The packages install from a clone: ``tools/dev.py wheels`` and ``pip install --no-index``.

PyPI's ``haystack-client`` is an unrelated project with a higher version than ours, so an
install that may look at PyPI can pick it; the wheelhouse is installed with ``--no-index``.
The venvs here are made and filled by uv (from the tools venv dev.py makes): it resolves
a wheelhouse as pip does, in a fraction of the time.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted((ROOT / "packages").glob("*/pyproject.toml"))
PROJECTS = {
    tomllib.loads(p.read_text(encoding="utf-8"))["project"]["name"]: tomllib.loads(
        p.read_text(encoding="utf-8")
    )["project"]
    for p in PACKAGES
}


def _wheels(dest: Path, *options: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "tools" / "dev.py"), "wheels", "--dest", str(dest)]
    return subprocess.run([*cmd, *options], capture_output=True, text=True, check=False)


def _uv() -> str:
    uv = ROOT / ".tools-venv" / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    if not uv.exists():
        pytest.fail("uv is missing from .tools-venv: run the tests with python3 tools/dev.py test")
    return str(uv)


def _venv(path: Path) -> Path:
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    return path / ("Scripts" if os.name == "nt" else "bin") / "python"


def _install(python: Path, *args: str) -> None:
    # Only the wheelhouse may serve the install: no configuration of this machine (an
    # extra index, find-links) may fill the gaps.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["UV_NO_CONFIG"] = "1"
    cmd = [_uv(), "pip", "install", "--quiet", "--no-index", "--python", str(python), *args]
    subprocess.run(cmd, check=True, env=env)


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(zf.read(name).decode())


@pytest.fixture(scope="module")
def our_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("wheelhouse")
    done = _wheels(dest, "--ours")
    assert done.returncode == 0, done.stderr
    assert "pip install --no-index --find-links" in done.stdout
    return dest


def test_the_wheelhouse_holds_our_nine_wheels(our_wheels: Path) -> None:
    expected = {
        f"{name.replace('-', '_')}-{importlib.metadata.version(name)}-py3-none-any.whl"
        for name in PROJECTS
    }
    assert len(expected) == 9
    assert {w.name for w in our_wheels.glob("*.whl")} == expected


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_each_wheel_says_what_it_is(our_wheels: Path, name: str) -> None:
    project = PROJECTS[name]
    wheel = next(our_wheels.glob(f"{name.replace('-', '_')}-*.whl"))
    meta = _metadata(wheel)
    assert meta["Name"] == name
    assert meta["Version"] == importlib.metadata.version(name)
    assert meta["Requires-Python"] == project["requires-python"]
    requires = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert {r.replace(" ", "") for r in requires} == {
        r.replace(" ", "") for r in project["dependencies"]
    }
    with zipfile.ZipFile(wheel) as zf:
        files = zf.namelist()
    # PEP 420: the shared roots have no __init__.py in any wheel.
    assert "projecthaystack/__init__.py" not in files
    assert "projecthaystack/stores/__init__.py" not in files
    assert any(f.endswith("/py.typed") for f in files)


def test_a_rebuild_replaces_older_wheels_of_ours(tmp_path: Path) -> None:
    stale = tmp_path / "haystack_kinds-0.0.1-py3-none-any.whl"
    stale.write_bytes(b"old")
    foreign = tmp_path / "msgspec-0.0.1-py3-none-any.whl"
    foreign.write_bytes(b"not ours")
    assert _wheels(tmp_path, "--ours").returncode == 0
    assert not stale.exists()
    assert foreign.exists()


def test_the_wheels_install_without_deps_and_import(our_wheels: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    _install(python, "--no-deps", *map(str, our_wheels.glob("*.whl")))
    # The third-party libraries come from this test environment, after the venv's own
    # site-packages; our editable installs there are .pth files, which a plain path entry
    # does not run, so every projecthaystack module must come from the wheels.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "third_party_from_tests.pth").write_text("\n".join(here) + "\n")
    modules = [
        "projecthaystack.kinds",
        "projecthaystack.codecs",
        "projecthaystack.filter",
        "projecthaystack.ontology",
        "projecthaystack.auth",
        "projecthaystack.client",
        "projecthaystack.server",
        "projecthaystack.stores.redis",
        "projecthaystack.stores.pg",
    ]
    check = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    m = importlib.import_module(name)\n"
        f"    assert m.__file__.startswith({site!r}), (name, m.__file__)\n"
        "print('ok')\n"
    )
    done = subprocess.run([str(python), "-c", check], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_haystack_client_installs_from_the_wheelhouse_alone(tmp_path: Path) -> None:
    """The README's install, end to end: nothing but the wheelhouse, no index."""
    house = tmp_path / "wheels"
    built = _wheels(house)
    if built.returncode != 0:
        message = (
            "dev.py wheels could not download the libraries our packages need: reach "
            f"pypi.org, or set PIP_INDEX_URL to a mirror\n{built.stderr[-2000:]}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    python = _venv(tmp_path / "venv")
    _install(python, "--find-links", str(house), "haystack-client")
    check = (
        "import importlib.metadata as m\n"
        "from projecthaystack.client import Client\n"
        "import projecthaystack.client as c\n"
        "print(m.version('haystack-client'), m.version('haystack-auth'), c.__file__)\n"
    )
    done = subprocess.run([str(python), "-c", check], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    version, auth, where = done.stdout.split()
    assert version == importlib.metadata.version("haystack-client")
    assert auth == importlib.metadata.version("haystack-auth")
    assert str(tmp_path / "venv") in where
