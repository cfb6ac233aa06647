"""Build the compiled codecs: the hot pure-Python modules, compiled with mypyc.

The pure-Python modules stay the source of truth.  The build copies each module named in
``_impl.COMPILED_MODULES`` into ``projecthaystack/codecs/_compiled/`` (in a scratch
directory, never in the sources), points its imports of the shared modules (limits,
errors) back at the package, stamps it with the SHA-256 of its source, and compiles the
copies with mypyc.  ``projecthaystack.codecs._impl`` loads them only when the stamps match.

Two ways in:

- as hatchling's build hook (``[tool.hatch.build.targets.wheel.hooks.custom]``): a wheel
  built where mypyc and a C compiler work carries the extension modules and is tagged for
  that Python and platform; anywhere else the build says why and the wheel is pure
  Python.  Editable installs are left pure (see below).
- as a script, ``python hatch_build.py --inplace``: builds for the running Python into the
  source tree, beside the pure modules (what ``python3 tools/dev.py compile`` runs in each
  development environment); ``--clean`` removes what it built.

``HAYSTACK_BUILD_COMPILED`` at build time: unset, try and fall back to pure Python;
``0``, do not try (and need no mypy); ``1``, fail the build when it cannot compile.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "projecthaystack" / "codecs"
COMPILED = PACKAGE / "_compiled"
KINDS_SRC = HERE.parent / "haystack-kinds" / "src"  # present in a clone of the monorepo
ENV_VAR = "HAYSTACK_BUILD_COMPILED"
BUILD_REQUIRES = ["mypy==1.18.2", "setuptools>=70"]
# The shared library of the compiled modules, beside them (not at the wheel's root).
GROUP = "projecthaystack.codecs._compiled.codecs"


def compiled_names() -> tuple[str, ...]:
    """``COMPILED_MODULES`` as ``_impl.py`` lists them (read, not imported)."""
    tree = ast.parse((PACKAGE / "_impl.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "COMPILED_MODULES"
            and node.value is not None
        ):
            names = ast.literal_eval(node.value)
            return tuple(str(n) for n in names)
    raise RuntimeError("COMPILED_MODULES not found in _impl.py")


def compiled_copy(name: str, source: str, names: tuple[str, ...]) -> str:
    """The text compiled for module ``name``: its imports of modules that are not compiled
    point at the package, and it carries the hash of its source."""

    def point(m: re.Match[str]) -> str:
        return m.group(0) if m.group(1) in names else f"from .._{m.group(1)[1:]} import"

    text = re.sub(r"^from \.(_\w+) import", point, source, flags=re.MULTILINE)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return text + f'\n\nSOURCE_SHA256 = "{digest}"  # of {name}.py, for _impl\n'


def build(out: Path) -> list[Path]:
    """Compile the modules for the running Python; the extension files, under ``out``.

    Raises whatever mypyc or the C compiler raise when they cannot build.
    """
    # Imported here: a pure build needs neither.
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    names = compiled_names()
    with tempfile.TemporaryDirectory(prefix="haystack-codecs-mypyc-") as tmp:
        scratch = Path(tmp)
        tree = scratch / "projecthaystack" / "codecs"
        shutil.copytree(PACKAGE, tree, ignore=shutil.ignore_patterns("_compiled", "__pycache__"))
        (tree / "_compiled").mkdir()
        shutil.copy2(COMPILED / "__init__.py", tree / "_compiled" / "__init__.py")
        paths = []
        for name in names:
            source = (PACKAGE / f"{name}.py").read_bytes().decode("utf-8")
            copy = tree / "_compiled" / f"{name}.py"
            copy.write_text(compiled_copy(name, source, names), encoding="utf-8")
            paths.append(str(copy.relative_to(scratch)))
        # mypy reads the scratch tree first, then the kinds sources of the clone (when
        # this is one); whatever it cannot find (msgspec in an isolated build) is Any.
        mypy_path = [str(scratch)] + ([str(KINDS_SRC)] if KINDS_SRC.is_dir() else [])
        old = os.getcwd(), os.environ.get("MYPYPATH")
        os.chdir(scratch)
        os.environ["MYPYPATH"] = os.pathsep.join(mypy_path)
        try:
            flags = ["--explicit-package-bases", "--ignore-missing-imports"]
            extensions = mypycify([*flags, *paths], opt_level="3", group_name=GROUP)
            dist = Distribution({"ext_modules": extensions})
            cmd = build_ext(dist)
            cmd.build_lib = str(scratch / "lib")
            cmd.build_temp = str(scratch / "temp")
            cmd.ensure_finalized()
            cmd.run()
        finally:
            os.chdir(old[0])
            if old[1] is None:
                os.environ.pop("MYPYPATH", None)
            else:
                os.environ["MYPYPATH"] = old[1]
        built = sorted((scratch / "lib").rglob("*" + _suffix()))
        if not built:
            raise RuntimeError("mypyc built nothing")
        out.mkdir(parents=True, exist_ok=True)
        done = []
        for lib in built:
            rel = lib.relative_to(scratch / "lib")
            if rel.parent != Path("projecthaystack/codecs/_compiled"):
                raise RuntimeError(f"unexpected extension {rel}")
            target = out / rel.name
            shutil.copy2(lib, target)
            done.append(target)
        return done


def _suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def clean(everything: bool) -> list[Path]:
    """Remove the extension modules built in the source tree: this Python's, or all."""
    gone = [
        path
        for path in sorted(COMPILED.iterdir())
        if path.name.endswith(_suffix())
        or (everything and path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)))
        or (everything and path.suffix in (".so", ".pyd"))
    ]
    for path in gone:
        path.unlink()
    return gone


def main(argv: list[str]) -> int:
    """``--inplace``: build into the sources for this Python; ``--clean [--all]``."""
    if "--clean" in argv:
        for path in clean(everything="--all" in argv):
            print(f"removed {path.relative_to(HERE)}")
        return 0
    if "--inplace" not in argv:
        print(__doc__)
        return 2
    clean(everything=False)
    for path in build(COMPILED):
        print(f"built {path.relative_to(HERE)}")
    return 0


try:
    from hatchling.builders.config import BuilderConfig
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script where hatchling is not installed: no hook to define
    pass
else:

    class CompiledCodecsHook(BuildHookInterface[BuilderConfig]):
        """hatchling's hook: compile into the wheel where it can, else a pure wheel."""

        PLUGIN_NAME = "custom"

        def dependencies(self) -> list[str]:
            """mypy (for mypyc) and setuptools (its build_ext), unless told not to compile."""
            return [] if os.environ.get(ENV_VAR) == "0" else list(BUILD_REQUIRES)

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            """Compile into a scratch directory and add the extensions to the wheel."""
            mode = os.environ.get(ENV_VAR, "")
            # Editable installs import the sources in place: `dev.py compile` builds there.
            if self.target_name != "wheel" or version == "editable" or mode == "0":
                return
            out = Path(self.directory) / ".compiled-codecs"
            shutil.rmtree(out, ignore_errors=True)
            try:
                built = build(out)
            except Exception as exc:  # no compiler, no mypyc, a mypyc error: a pure wheel
                if mode == "1":
                    raise
                self.app.display_warning(
                    f"haystack-codecs: building the compiled codecs failed, the wheel is pure "
                    f"Python ({type(exc).__name__}: {exc}); set {ENV_VAR}=0 to skip trying"
                )
                return
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            into = "projecthaystack/codecs/_compiled/"
            for path in built:
                build_data["force_include"][str(path)] = into + path.name
            self._out = out

        def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
            """Remove the scratch copies of the extensions."""
            out = getattr(self, "_out", None)
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
