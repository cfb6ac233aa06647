#!/usr/bin/env python3
"""One entry point for working on the monorepo with nothing but Python and pip.

    python3 tools/dev.py demo      # the main job (see the README)
    python3 tools/dev.py test      # the tests, on every Python 3.11-3.13 found
    python3 tools/dev.py lint      # ruff check and format check
    python3 tools/dev.py types     # mypy --strict
    python3 tools/dev.py bench     # the benchmarks under tools/bench
    python3 tools/dev.py scaleout  # servers behind HAProxy under load and faults (tools/scaleout)
    python3 tools/dev.py wheels    # dist/wheels: a wheelhouse to pip install from
    python3 tools/dev.py compile   # the compiled codecs (mypyc), for every Python found
    python3 tools/dev.py docs      # build the documentation site (strict) into site/
    python3 tools/dev.py docs serve  # serve it on 127.0.0.1:8000, rebuilt on change
    python3 tools/dev.py hatch ... # any other hatch command

The first run makes ``.tools-venv`` beside this repository's root with pinned hatch and
uv, and hatch makes the project's environments from there; later runs reuse both.

Pythons are found on ``PATH`` and, where pyenv is installed, among pyenv's versions (its
shims run only the active one, so the newest patch release of each supported version is
put on ``PATH`` by its own ``bin`` directory). ``test`` says which it tests and which it
could not find; under ``CI=true`` a missing one is an error.

The packages are not on PyPI yet, and PyPI's ``haystack-client`` is an unrelated project
with a higher version number, so install ours from a wheelhouse and from nowhere else::

    python3 tools/dev.py wheels       # our nine wheels and the libraries they need
    pip install --no-index --find-links dist/wheels haystack-client

``compile`` builds haystack-codecs' hot modules with mypyc into its sources, once for each
Python 3.11-3.13 found (``-py X.Y`` for one), so the test, bench and demo environments run
them; ``HAYSTACK_IMPL=python`` runs the pure-Python modules instead.  It needs a C
compiler; under ``CI=true`` a Python it cannot build for is an error.  ``compile --clean``
removes what it built.  ``test`` first rebuilds the compiled codecs of the Pythons it tests
when they were built from other versions of their sources (an edit after compiling),
which would otherwise fail every test with the warning ``_impl`` gives.  The wheels
``wheels`` builds stay pure Python (one wheel for every Python); ``pip install
packages/haystack-codecs`` compiles where it can.

``wheels --ours`` builds only our wheels (no download); ``--extras`` also fetches the
libraries of every optional extra; ``--python X.Y`` fetches them for another Python than
the one running dev.py; ``--dest DIR`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools-venv"
PINS = ["hatch==1.18.2", "uv==0.13.9"]
STAMP = TOOLS / "pins.txt"
HATCH_BUILD = ROOT / "packages" / "haystack-codecs" / "hatch_build.py"
CODECS = ROOT / "packages" / "haystack-codecs" / "src" / "projecthaystack" / "codecs"
SUPPORTED = ("3.11", "3.12", "3.13")

COMMANDS = {
    "demo": ["run", "demo"],
    "test": ["test"],
    "lint": ["run", "lint:check"],
    "types": ["run", "types:check"],
    "bench": ["run", "bench:run"],
    "docs": ["run", "docs:build"],
    "scaleout": ["run", "scaleout:rig"],
}


def _bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return TOOLS / sub / (name + (".exe" if os.name == "nt" else ""))


def ensure_tools() -> Path:
    """The hatch executable, installing it into the tools venv when missing or stale."""
    hatch = _bin("hatch")
    want = "\n".join(PINS)
    if hatch.exists() and STAMP.exists() and STAMP.read_text() == want:
        return hatch
    if not _bin("python").exists():
        print(f"Creating {TOOLS.name} with {', '.join(PINS)} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
    pip = [str(_bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    STAMP.write_text(want)
    return hatch


def _runs(exe: str, path: str) -> str | None:
    """Where ``exe`` is on ``path``, if it is there and actually runs."""
    # A pyenv shim exists for every installed version but fails for inactive ones.
    found = shutil.which(exe, path=path)
    if found is None:
        return None
    probe = subprocess.run([found, "-c", "pass"], capture_output=True, check=False)
    return found if probe.returncode == 0 else None


def _pyenv_bins() -> dict[str, Path]:
    """The ``bin`` directory of pyenv's newest patch release of each supported version."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return {}

    def ask(*args: str) -> str:
        done = subprocess.run([pyenv, *args], capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    root = Path(ask("root").strip())
    bins: dict[str, Path] = {}
    for version in SUPPORTED:
        patches = [
            int(m.group(1))
            for line in ask("versions", "--bare").split()
            if (m := re.fullmatch(re.escape(version) + r"\.(\d+)", line))
        ]
        if patches:
            bins[version] = root / "versions" / f"{version}.{max(patches)}" / "bin"
    return bins


def find_pythons(path: str) -> tuple[str, dict[str, str], list[str]]:
    """The ``PATH`` to give hatch, the supported Pythons found on it, those missing.

    A version that does not run from ``path`` gets pyenv's ``bin`` directory in front.
    """
    extra: list[str] = []
    found: dict[str, str] = {}
    missing: list[str] = []
    bins = _pyenv_bins()
    for version in SUPPORTED:
        exe = f"python{version}"
        where = _runs(exe, path)
        if where is None and version in bins:
            where = _runs(exe, str(bins[version]))
            if where is not None:
                extra.append(str(bins[version]))
        if where is None:
            missing.append(version)
        else:
            found[version] = where
    return os.pathsep.join([*extra, path]), found, missing


def _options(rest: list[str]) -> list[str]:
    """hatch's options: what comes before ``--`` (after it, pytest's)."""
    return rest[: rest.index("--")] if "--" in rest else rest


def _chosen(rest: list[str]) -> list[str] | None:
    """The versions named by ``-py``/``--python`` before ``--``; None if none are named."""
    options = _options(rest)
    chosen: list[str] = []
    for i, arg in enumerate(options):
        value = None
        if arg in ("-py", "--python") and i + 1 < len(options):
            value = options[i + 1]
        elif arg.startswith("--python="):
            value = arg.split("=", 1)[1]
        if value:
            chosen += [v.strip() for v in value.split(",") if v.strip()]
    return chosen or None


def _names(versions: list[str] | dict[str, str]) -> str:
    return ", ".join(versions) if versions else "none"


def plan_tests(
    rest: list[str], found: dict[str, str], missing: list[str]
) -> tuple[list[str] | None, str]:
    """The Pythons to test on, one ``hatch test`` each, and the line saying so.

    None when the caller chose the Pythons with hatch's own options.
    """
    chosen = _chosen(rest)
    if chosen is not None:
        absent = [v for v in chosen if v not in found]
        line = f"Python {_names(chosen)} (chosen with -py)"
        return None, line + (f"; not found: {_names(absent)}" if absent else "")
    if any(a in ("-i", "--include", "--all", "-a") for a in _options(rest)):
        return None, "the Pythons your hatch options select"
    where = ", ".join(f"{v} ({exe})" for v, exe in found.items()) or "none"
    line = f"Python {where}; not found: {_names(missing)}"
    return list(found), line


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Run a command from the root; Ctrl-C reaches it too, so wait for it, quietly."""
    process = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(30)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        return 130


def _projects() -> dict[str, dict[str, Any]]:
    """Each package's ``[project]`` table by distribution name (``_dir``: its folder)."""
    projects: dict[str, dict[str, Any]] = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        project["_dir"] = pyproject.parent
        projects[str(project["name"])] = project
    return projects


def third_party(projects: dict[str, dict[str, Any]], extras: bool = False) -> list[str]:
    """The requirements of our packages on libraries that are not ours, each once."""
    found: list[str] = []
    for project in projects.values():
        reqs = list(project.get("dependencies", []))
        if extras:
            for group in project.get("optional-dependencies", {}).values():
                reqs += group
        for req in reqs:
            name = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]
            if name not in projects and req not in found:
                found.append(req)
    return found


def wheels(argv: list[str]) -> int:
    """Build every package's wheel into a wheelhouse, with the libraries they need."""
    parser = argparse.ArgumentParser(prog="dev.py wheels", description=wheels.__doc__)
    parser.add_argument("--dest", type=Path, default=ROOT / "dist" / "wheels")
    parser.add_argument("--ours", action="store_true", help="only our wheels, no download")
    parser.add_argument("--extras", action="store_true", help="also every extra's libraries")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    parser.add_argument(
        "--python",
        default=here,
        metavar="X.Y",
        help=f"the Python the libraries are for (default {here}, the one running dev.py)",
    )
    args = parser.parse_args(argv)
    ensure_tools()
    python = str(_bin("python"))
    dest: Path = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    projects = _projects()
    # An older build of ours beside the new one would leave pip a choice to get wrong.
    for name in projects:
        for old in dest.glob(name.replace("-", "_") + "-*.whl"):
            old.unlink()
    # One wheel for every Python: haystack-codecs' build does not compile (the wheel of a
    # `pip install packages/haystack-codecs` does, for the Python that installs it).
    pure = dict(os.environ, HAYSTACK_BUILD_COMPILED="0")
    for name, project in projects.items():
        # hatchling comes with the pinned hatch: building needs no download.
        build = [python, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dest)]
        done = subprocess.run(
            build, check=False, cwd=project["_dir"], capture_output=True, text=True, env=pure
        )
        if done.returncode != 0:
            print(f"dev.py wheels: building {name} failed:\n{done.stderr}", file=sys.stderr)
            return 1
    if not args.ours:
        reqs = third_party(projects, extras=args.extras)
        download = [python, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
        download += ["--python-version", args.python, "--only-binary", ":all:", *reqs]
        if _run(download, dict(os.environ)) != 0:
            print("dev.py wheels: downloading the libraries failed", file=sys.stderr)
            return 1
    print(f"{len(projects)} wheels of ours in {dest}. Install from a clone with:")
    print(f"  pip install --no-index --find-links {dest} haystack-client")
    return 0


def main(argv: list[str]) -> int:
    """Run the named command; anything after it goes to hatch (or pytest, for ``test``)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb == "wheels":
        return wheels(rest)
    if verb == "compile" and "--clean" in rest:
        return _run([sys.executable, str(HATCH_BUILD), "--clean", "--all"], dict(os.environ))
    if verb not in ("hatch", "compile") and verb not in COMMANDS:
        print(f"unknown command {verb!r}\n{__doc__}", file=sys.stderr)
        return 2
    hatch = ensure_tools()
    env = dict(os.environ)
    # hatch finds uv beside itself; pyenv's other Pythons go on PATH for the test matrix
    # and the 3.13 bench env; the project's caches stay inside the tools venv.
    path, found, missing = find_pythons(env.get("PATH", ""))
    env["PATH"] = str(_bin("hatch").parent) + os.pathsep + path
    env.setdefault("HATCH_DATA_DIR", str(TOOLS / "hatch-data"))
    # The envs install haystack-codecs editable, which never compiles (`compile` builds in
    # place): its build then needs no mypy either.
    env.setdefault("HAYSTACK_BUILD_COMPILED", "0")
    if verb == "hatch":
        return _run([str(hatch), *rest], env)
    if verb == "docs" and rest[:1] == ["serve"]:
        return _run([str(hatch), "run", "docs:serve", *rest[1:]], env)
    if verb == "compile":
        return compile_codecs(str(hatch), rest, env, found, missing)
    if verb != "test":
        return _run([str(hatch), *COMMANDS[verb], *rest], env)
    pythons, line = plan_tests(rest, found, missing)
    print(f"dev.py test: testing on {line}", file=sys.stderr, flush=True)
    if pythons is not None and not found:
        print("dev.py test: no Python 3.11, 3.12 or 3.13 found", file=sys.stderr)
        return 1
    if pythons is not None and missing and env.get("CI") == "true":
        print(f"dev.py test: CI tests every Python; missing {_names(missing)}", file=sys.stderr)
        return 1
    if not rebuild_stale(str(hatch), pythons or _chosen(rest) or list(found), env, found):
        return 1
    if pythons is None:
        code = _run([str(hatch), *COMMANDS[verb], *rest], env)
        outcome = "passed" if code == 0 else f"failed (exit {code})"
        print(f"\ndev.py test: {outcome}; tested on {line}", file=sys.stderr)
        return code
    # One hatch run per Python: a failure on one does not stop the others, and the
    # summary says what happened on each.
    results: dict[str, int] = {}
    for version in pythons:
        results[version] = _run([str(hatch), *COMMANDS[verb], "-py", version, *rest], env)
        if results[version] == 130:  # Ctrl-C
            break
    print(f"\ndev.py test: {summarize(results, pythons, missing)}", file=sys.stderr)
    return next((code for code in results.values() if code != 0), 0)


def compile_codecs(
    hatch: str, rest: list[str], env: dict[str, str], found: dict[str, str], missing: list[str]
) -> int:
    """Build the compiled codecs into the sources for each Python found (or chosen)."""
    chosen = _chosen(rest)
    versions = [v for v in (chosen or list(found)) if v in found]
    absent = [v for v in (chosen or SUPPORTED) if v not in found]
    if not versions or (absent and env.get("CI") == "true"):
        print(f"dev.py compile: Python not found: {_names(absent)}", file=sys.stderr)
        return 1
    results: dict[str, int] = {}
    for version in versions:
        results[version] = _run([hatch, "run", f"compile.py{version}:build"], env)
        if results[version] == 130:  # Ctrl-C
            break
    failed = [v for v, code in results.items() if code != 0]
    print(
        f"\ndev.py compile: built for Python {_names([v for v in results if v not in failed])}"
        f"; failed: {_names(failed)}; not found: {_names(absent)}",
        file=sys.stderr,
    )
    if failed and env.get("CI") != "true":
        # Without a compiler the pure-Python codecs run: a fallback, not a broken checkout.
        print("dev.py compile: the pure-Python codecs run where it failed", file=sys.stderr)
    return 1 if failed else 0


def stale_compiled(versions: list[str]) -> list[str]:
    """The Pythons among ``versions`` whose compiled codecs are in the tree but were built
    from other versions of their sources.

    Each compiled module carries the SHA-256 of the source it was built from (see
    hatch_build.py); mypyc keeps that string as it is in the extension files, so a stamp
    is looked for in their bytes, without importing them (which needs the test env).
    """
    compiled = CODECS / "_compiled"
    impl = CODECS / "_impl.py"
    if not compiled.is_dir() or not impl.is_file():
        return []
    names: tuple[str, ...] = ()
    for node in ast.parse(impl.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "COMPILED_MODULES"
            and node.value is not None
        ):
            names = tuple(ast.literal_eval(node.value))
    digests = [
        hashlib.sha256((CODECS / f"{name}.py").read_bytes()).hexdigest().encode()
        for name in names
        if (CODECS / f"{name}.py").is_file()
    ]
    stale = []
    for version in versions:
        tag = version.replace(".", "")
        # CPython's extension suffixes: .cpython-311-<platform>.so, .cp311-<platform>.pyd
        built = [
            path
            for path in sorted(compiled.iterdir())
            if f".cpython-{tag}-" in path.name or f".cp{tag}-" in path.name
        ]
        if not built:
            continue  # none built for this Python: the pure-Python codecs run, rightly
        blob = b"".join(path.read_bytes() for path in built)
        if any(digest not in blob for digest in digests):
            stale.append(version)
    return stale


def rebuild_stale(
    hatch: str, versions: list[str], env: dict[str, str], found: dict[str, str]
) -> bool:
    """Rebuild the compiled codecs of the Pythons about to be tested where they are stale
    (``_impl`` would warn, and pytest makes that warning an error in every test); False
    when that fails."""
    stale = stale_compiled([v for v in versions if v in found])
    if not stale:
        return True
    print(
        f"dev.py test: the compiled codecs for Python {_names(stale)} were built from other "
        "sources; rebuilding them first (dev.py compile)",
        file=sys.stderr,
        flush=True,
    )
    code = compile_codecs(hatch, ["-py", ",".join(stale)], env, found, [])
    if code != 0 or stale_compiled(stale):
        print(
            "dev.py test: stale compiled codecs could not be rebuilt: run "
            "`python3 tools/dev.py compile` (or `compile --clean` for the pure-Python ones)",
            file=sys.stderr,
        )
        return False
    return True


def summarize(results: dict[str, int], pythons: list[str], missing: list[str]) -> str:
    """One line: passed or failed, and how it went on each Python."""
    each = [
        f"{v} " + ("passed" if results[v] == 0 else f"failed (exit {results[v]})") for v in results
    ]
    each += [f"{v} not run (interrupted)" for v in pythons if v not in results]
    failed = any(code != 0 for code in results.values()) or len(results) < len(pythons)
    return (
        f"{'failed' if failed else 'passed'}: Python {', '.join(each)}; "
        f"not found: {_names(missing)}"
    )


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
