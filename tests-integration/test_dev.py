"""tools/dev.py: how it finds the Pythons it tests on, and what it says about them."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.name == "nt", reason="the fake interpreters are shell scripts: run these on POSIX"
)


def _load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "tools" / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = _load_dev()


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def fake_pyenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pyenv with 3.11.2 (no interpreter in it), 3.12.1, 3.12.10 and 3.13.0rc1 installed,
    whose shims fail as pyenv's do for an inactive version."""
    root = tmp_path / "pyenv"
    versions = "2.7.18 3.11.2 3.12.1 3.12.10 3.13.0rc1"
    _script(
        tmp_path / "bin" / "pyenv",
        f'case "$1" in root) echo "{root}";; versions) for v in {versions}; do echo $v; done;;'
        " *) exit 1;; esac",
    )
    _script(root / "versions" / "3.12.1" / "bin" / "python3.12", "exit 0")
    _script(root / "versions" / "3.12.10" / "bin" / "python3.12", "exit 0")
    _script(root / "versions" / "3.13.0rc1" / "bin" / "python3.13", "exit 0")
    for version in ("3.11", "3.12", "3.13"):
        _script(tmp_path / "shims" / f"python{version}", "exit 1")
    path = os.pathsep.join([str(tmp_path / "shims"), str(tmp_path / "bin")])
    monkeypatch.setenv("PATH", path)
    return tmp_path


def test_pyenv_versions_behind_failing_shims_are_found(fake_pyenv: Path) -> None:
    path, found, missing = dev.find_pythons(os.environ["PATH"])
    newest = fake_pyenv / "pyenv" / "versions" / "3.12.10" / "bin"
    assert found == {"3.12": str(newest / "python3.12")}
    assert missing == ["3.11", "3.13"]  # 3.11.2 has no interpreter; rc releases are not used
    assert path.split(os.pathsep)[0] == str(newest)
    assert path.endswith(os.environ["PATH"])


def test_a_python_already_on_path_is_used_as_it_is(
    fake_pyenv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _script(fake_pyenv / "own" / "python3.12", "exit 0")
    monkeypatch.setenv("PATH", str(own.parent) + os.pathsep + os.environ["PATH"])
    path, found, _ = dev.find_pythons(os.environ["PATH"])
    assert found["3.12"] == str(own)
    assert path == os.environ["PATH"]


def test_without_pyenv_only_path_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _script(tmp_path / "bin" / "python3.13", "exit 0")
    monkeypatch.setenv("PATH", str(own.parent))
    path, found, missing = dev.find_pythons(str(own.parent))
    assert found == {"3.13": str(own)}
    assert missing == ["3.11", "3.12"]
    assert path == str(own.parent)


def test_the_plan_names_what_is_tested_and_what_is_missing() -> None:
    found = {"3.11": "/x/python3.11", "3.13": "/y/python3.13"}
    args, line = dev.plan_tests(["--", "-k", "zinc"], found, ["3.12"])
    assert args == ["3.11", "3.13"]
    assert line == "Python 3.11 (/x/python3.11), 3.13 (/y/python3.13); not found: 3.12"


def test_pythons_chosen_by_the_caller_are_left_alone() -> None:
    found = {"3.11": "/x/python3.11"}
    assert dev.plan_tests(["-py", "3.11", "--", "-py"], found, []) == (
        None,
        "Python 3.11 (chosen with -py)",
    )
    args, line = dev.plan_tests(["--python=3.11,3.12"], found, ["3.12"])
    assert args is None
    assert line.endswith("not found: 3.12")
    assert dev.plan_tests(["-i", "py=3.11"], found, [])[0] is None
    # After "--" the arguments are pytest's, not a choice of Python.
    assert dev.plan_tests(["--", "-py", "3.12", "-a"], found, [])[0] == ["3.11"]


def test_the_summary_says_how_each_python_went() -> None:
    pythons = ["3.11", "3.12", "3.13"]
    assert (
        dev.summarize({"3.11": 0, "3.12": 0, "3.13": 0}, pythons, [])
        == "passed: Python 3.11 passed, 3.12 passed, 3.13 passed; not found: none"
    )
    assert dev.summarize({"3.11": 1, "3.12": 0}, ["3.11", "3.12"], ["3.13"]) == (
        "failed: Python 3.11 failed (exit 1), 3.12 passed; not found: 3.13"
    )
    assert dev.summarize({"3.11": 130}, pythons, []) == (
        "failed: Python 3.11 failed (exit 130), 3.12 not run (interrupted), "
        "3.13 not run (interrupted); not found: none"
    )


def test_dev_py_runs_on_the_standard_library_alone() -> None:
    imported = {
        line.split()[1].split(".")[0]
        for line in (ROOT / "tools" / "dev.py").read_text().splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def _fake_codecs(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A codecs package with two compiled modules, built for Python 3.11 from its
    sources (their SHA-256 in the extension files, as mypyc keeps the stamps)."""
    codecs = root / "codecs"
    (codecs / "_compiled").mkdir(parents=True)
    (codecs / "_impl.py").write_text('COMPILED_MODULES: Final = ("_a", "_b")\n')
    (codecs / "_a.py").write_text("A = 1\n")
    (codecs / "_b.py").write_text("B = 1\n")
    _build(codecs, "3.11")
    monkeypatch.setattr(dev, "CODECS", codecs)
    return codecs


def _build(codecs: Path, version: str) -> None:
    tag = version.replace(".", "")
    for name in ("_a", "_b"):
        digest = hashlib.sha256((codecs / f"{name}.py").read_bytes()).hexdigest()
        lib = codecs / "_compiled" / f"{name}.cpython-{tag}-x86_64-linux-gnu.so"
        lib.write_bytes(b"\x7fELF..." + digest.encode() + b"\x00...")


def test_compiled_codecs_built_from_other_sources_are_found_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codecs = _fake_codecs(tmp_path, monkeypatch)
    assert dev.stale_compiled(["3.11", "3.12"]) == []  # fresh; none built for 3.12
    (codecs / "_b.py").write_text("B = 2  # edited after compiling\n")
    assert dev.stale_compiled(["3.11", "3.12"]) == ["3.11"]
    (codecs / "_compiled" / "_a.cp313-win_amd64.pyd").write_bytes(b"MZ old build")
    assert dev.stale_compiled(["3.11", "3.13"]) == ["3.11", "3.13"]
    _build(codecs, "3.11")
    assert dev.stale_compiled(["3.11", "3.12"]) == []


def test_dev_py_test_rebuilds_stale_compiled_codecs_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codecs = _fake_codecs(tmp_path, monkeypatch)
    (codecs / "_a.py").write_text("A = 2\n")
    calls: list[list[str]] = []

    def compile_codecs(hatch: str, rest: list[str], *args: object) -> int:
        calls.append(rest)
        _build(codecs, "3.11")
        return 0

    monkeypatch.setattr(dev, "compile_codecs", compile_codecs)
    found = {"3.11": "/x/python3.11", "3.12": "/x/python3.12"}
    assert dev.rebuild_stale("hatch", ["3.11", "3.12"], {}, found)
    assert calls == [["-py", "3.11"]]
    err = capsys.readouterr().err
    assert "compiled codecs for Python 3.11 were built from other sources" in err
    assert "rebuilding them first" in err
    # Fresh now: nothing to do, nothing said.
    assert dev.rebuild_stale("hatch", ["3.11"], {}, found)
    assert calls == [["-py", "3.11"]]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("outcome", ["fails", "leaves them stale"])
def test_dev_py_test_stops_early_when_stale_compiled_codecs_cannot_be_rebuilt(
    outcome: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    codecs = _fake_codecs(tmp_path, monkeypatch)
    (codecs / "_a.py").write_text("A = 2\n")
    code = 1 if outcome == "fails" else 0
    monkeypatch.setattr(dev, "compile_codecs", lambda *args: code)
    assert not dev.rebuild_stale("hatch", ["3.11"], {}, {"3.11": "/x/python3.11"})
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "dev.py test: stale compiled codecs could not be rebuilt: run "
        "`python3 tools/dev.py compile` (or `compile --clean` for the pure-Python ones)"
    )


def test_dev_py_test_runs_no_test_when_the_rebuild_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codecs = _fake_codecs(tmp_path, monkeypatch)
    (codecs / "_a.py").write_text("A = 2\n")
    ran: list[list[str]] = []
    monkeypatch.setattr(dev, "ensure_tools", lambda: Path("hatch"))
    monkeypatch.setattr(dev, "find_pythons", lambda path: (path, {"3.11": "/x/python3.11"}, []))
    monkeypatch.setattr(dev, "_run", lambda cmd, env: ran.append(cmd) or 0)
    monkeypatch.setattr(dev, "compile_codecs", lambda *args: 1)
    assert dev.main(["test", "-py", "3.11", "--", "-q"]) == 1
    assert ran == []
    monkeypatch.setattr(dev, "compile_codecs", lambda *args: _build(codecs, "3.11") or 0)
    assert dev.main(["test", "-py", "3.11", "--", "-q"]) == 0
    assert ran == [["hatch", "test", "-py", "3.11", "--", "-q"]]
