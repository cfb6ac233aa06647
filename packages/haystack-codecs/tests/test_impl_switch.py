"""The switch between the implementations: ``HAYSTACK_IMPL`` picks, at import, the
pure-Python codecs or the compiled ones, ``IMPLEMENTATION`` says which runs, and compiled
modules that are missing, not compiled, or older than their source are refused."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from projecthaystack import codecs
from projecthaystack.codecs import _impl, _json, _zinc_read
from projecthaystack.codecs._impl import COMPILED_MODULES, compiled_modules

PURE: dict[str, ModuleType] = {"_json": _json, "_zinc_read": _zinc_read}


def _built() -> tuple[dict[str, ModuleType], str]:
    try:
        return compiled_modules(), ""
    except ImportError as exc:
        return {}, str(exc)


COMPILED, WHY_NOT = _built()


@pytest.fixture
def compiled() -> dict[str, ModuleType]:
    """The compiled modules; the test is skipped where they are not built (not in CI)."""
    if not COMPILED:
        if os.environ.get("CI") == "true":  # CI builds them first: their absence is a bug
            pytest.fail(f"CI builds the compiled codecs first: {WHY_NOT}")
        pytest.skip(
            "the compiled codecs are not built for this Python: run `python3 tools/dev.py compile`"
        )
    return COMPILED


def _run(impl: str | None, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HAYSTACK_IMPL"}
    if impl is not None:
        env["HAYSTACK_IMPL"] = impl
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


SHOW = (
    "from projecthaystack import codecs\n"
    "from projecthaystack.codecs import zinc\n"
    "print(codecs.IMPLEMENTATION, type(zinc.decode_grid).__name__)\n"
)


@pytest.mark.parametrize(
    ("impl", "expected"),
    [
        (None, "compiled builtin_function_or_method"),
        ("", "compiled builtin_function_or_method"),
        ("compiled", "compiled builtin_function_or_method"),
        ("COMPILED", "compiled builtin_function_or_method"),
        ("python", "python function"),
    ],
)
def test_the_switch_picks_the_implementation(
    impl: str | None, expected: str, compiled: dict[str, ModuleType]
) -> None:
    done = _run(impl, SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_an_unknown_implementation_is_an_import_error() -> None:
    done = _run("rust", SHOW)
    assert done.returncode == 1
    assert "ImportError: HAYSTACK_IMPL='rust': expected 'python', 'compiled' or unset" in (
        done.stderr
    )


def test_python_runs_where_asked_whether_or_not_compiled() -> None:
    done = _run("python", SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python function"


def test_this_process_runs_what_the_switch_says() -> None:
    wanted = os.environ.get("HAYSTACK_IMPL", "").strip().lower()
    wanted = wanted or ("compiled" if COMPILED else "python")
    assert wanted == codecs.IMPLEMENTATION
    runs = COMPILED if wanted == "compiled" else PURE
    assert codecs.zinc.decode_grid is runs["_zinc_read"].decode_grid
    assert codecs.json.encode_grid_bytes is runs["_json"].encode_grid_bytes
    for public in (codecs.zinc, codecs.json, codecs.trio, codecs.csv):
        for name in public.__all__:
            compiled = type(getattr(public, name)).__name__ == "builtin_function_or_method"
            assert compiled == (wanted == "compiled"), (public.__name__, name)
            assert getattr(public, name).__module__ == public.__name__


def test_compiled_modules_older_than_their_source_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compiled: dict[str, ModuleType]
) -> None:
    for name in COMPILED_MODULES:
        source = Path(_impl.__file__).with_name(f"{name}.py").read_text(encoding="utf-8")
        (tmp_path / f"{name}.py").write_text(source + "# edited\n", encoding="utf-8")
    monkeypatch.setattr(_impl, "_HERE", tmp_path)
    with pytest.raises(ImportError, match=r"built from another version of _\w+\.py; rebuild"):
        _impl.compiled_modules()
    monkeypatch.setenv("HAYSTACK_IMPL", "")
    with pytest.warns(RuntimeWarning, match="using the pure-Python codecs: .* rebuild it"):
        assert _impl._choose() == ("python", {})
    monkeypatch.setenv("HAYSTACK_IMPL", "compiled")
    with pytest.raises(ImportError, match="built from another version"):
        _impl._choose()


def test_missing_or_uncompiled_modules_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_impl, "COMPILED_MODULES", ("_nowhere",))
    with pytest.raises(ImportError, match=r"not built .*python3 tools/dev.py compile"):
        _impl.compiled_modules()
    monkeypatch.setenv("HAYSTACK_IMPL", "")
    assert _impl._choose() == ("python", {})  # quietly: nothing was built
    monkeypatch.setenv("HAYSTACK_IMPL", "compiled")
    with pytest.raises(ImportError, match=r"not built .*python3 tools/dev.py compile"):
        _impl._choose()
    # A plain .py module where an extension should be: not what was asked for.
    monkeypatch.setattr(_impl, "COMPILED_MODULES", ("__init__",))
    with pytest.raises(ImportError, match=r"_compiled.__init__ is not compiled"):
        _impl.compiled_modules()


def test_every_compiled_module_is_a_twin_of_its_source(
    compiled: dict[str, ModuleType],
) -> None:
    assert sorted(COMPILED_MODULES) == sorted(compiled)
    for name, module in compiled.items():
        assert module.__name__ == f"projecthaystack.codecs._compiled.{name}"
        assert not str(module.__file__).endswith(".py")


def _hatch_build() -> ModuleType:
    """The package's build script (beside its pyproject.toml), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "hatch_build.py"
    spec = importlib.util.spec_from_file_location("hatch_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_compiles_the_modules_the_switch_loads() -> None:
    assert _hatch_build().compiled_names() == COMPILED_MODULES


def test_the_compiled_copies_share_the_modules_that_are_not_compiled() -> None:
    build = _hatch_build()
    here = Path(_impl.__file__).parent
    for name in COMPILED_MODULES:
        source = (here / f"{name}.py").read_text(encoding="utf-8")
        copy = build.compiled_copy(name, source, COMPILED_MODULES)
        for line in copy.splitlines():
            if line.startswith("from ."):
                target = line.split()[1]
                if target.startswith(".._"):  # a shared module: one Limits, one error class
                    assert target[2:] not in COMPILED_MODULES
                    assert (here / f"{target[2:]}.py").exists(), line
                else:  # another compiled module
                    assert target[1:] in COMPILED_MODULES, line
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        assert copy.endswith(f'SOURCE_SHA256 = "{digest}"  # of {name}.py, for _impl\n')
    text = build.compiled_copy(
        "_x", "from ._limits import Limits\nfrom ._text import a\n", ("_text",)
    )
    assert text.startswith("from .._limits import Limits\nfrom ._text import a\n")
