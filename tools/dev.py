#!/usr/bin/env python3
"""One entry point for working on the monorepo with nothing but Python and pip.

    python3 tools/dev.py demo      # the main job (see the README)
    python3 tools/dev.py test      # the tests, on every Python 3.11-3.13 found on PATH
    python3 tools/dev.py lint      # ruff check and format check
    python3 tools/dev.py types     # mypy --strict
    python3 tools/dev.py bench     # the benchmarks under tools/bench
    python3 tools/dev.py docs      # build the documentation site (strict) into site/
    python3 tools/dev.py docs serve  # serve it on 127.0.0.1:8000, rebuilt on change
    python3 tools/dev.py hatch ... # any other hatch command

The first run makes ``.tools-venv`` beside this repository's root with pinned hatch and
uv, and hatch makes the project's environments from there; later runs reuse both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools-venv"
PINS = ["hatch==1.18.2", "uv==0.13.9"]
STAMP = TOOLS / "pins.txt"
SUPPORTED = ("3.11", "3.12", "3.13")

COMMANDS = {
    "demo": ["run", "demo"],
    "test": ["test"],
    "lint": ["run", "lint:check"],
    "types": ["run", "types:check"],
    "bench": ["run", "bench:run"],
    "docs": ["run", "docs:build"],
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


def _runs(exe: str) -> bool:
    # A pyenv shim exists for every installed version but fails for inactive ones.
    path = shutil.which(exe)
    if path is None:
        return False
    probe = subprocess.run([path, "-c", "pass"], capture_output=True, check=False)
    return probe.returncode == 0


def _pythons(rest: list[str]) -> list[str]:
    """``-py`` with every supported Python on PATH, unless the caller chose already."""
    if any(a in ("-py", "--python", "-i", "--include", "--all", "-a") for a in rest):
        return []
    found = [v for v in SUPPORTED if _runs(f"python{v}")]
    return ["-py", ",".join(found)] if found else []


def main(argv: list[str]) -> int:
    """Run the named command; anything after it goes to hatch (or pytest, for ``test``)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb == "hatch":
        cmd = rest
    elif verb == "test":
        cmd = [*COMMANDS[verb], *_pythons(rest), *rest]
    elif verb == "docs" and rest[:1] == ["serve"]:
        cmd = ["run", "docs:serve", *rest[1:]]
    elif verb in COMMANDS:
        cmd = [*COMMANDS[verb], *rest]
    else:
        print(f"unknown command {verb!r}\n{__doc__}", file=sys.stderr)
        return 2
    hatch = ensure_tools()
    env = dict(os.environ)
    # hatch finds uv beside itself; keep the project's caches inside the tools venv.
    env["PATH"] = str(_bin("hatch").parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("HATCH_DATA_DIR", str(TOOLS / "hatch-data"))
    return subprocess.run([str(hatch), *cmd], cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
