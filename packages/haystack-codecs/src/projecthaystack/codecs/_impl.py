"""Which implementation of the codecs runs: the pure-Python modules, or the same modules
compiled with mypyc into ``projecthaystack.codecs._compiled``.

The environment variable ``HAYSTACK_IMPL`` picks it once, at import (as psycopg's
``PSYCOPG_IMPL`` does):

- unset or empty: ``compiled`` when it is built and matches the sources, else ``python``;
- ``python``: the pure-Python modules, always available;
- ``compiled``: the compiled modules, or an ``ImportError`` saying why they cannot load.

The pure-Python modules are the source of truth; the compiled ones are built from copies
of them (see ``hatch_build.py`` beside the package's ``pyproject.toml``), and each copy
carries the SHA-256 of the file it was built from.  A compiled module older than its source
is not used: a silent mismatch between the two would make every test of one say nothing
about the other.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

__all__ = [
    "COMPILED_MODULES",
    "ENV_VAR",
    "IMPLEMENTATION",
    "compiled_modules",
    "pure_modules",
    "use_compiled",
]

ENV_VAR: Final = "HAYSTACK_IMPL"

COMPILED_MODULES: Final = (
    "_text",
    "_encoding",
    "_zinc_read",
    "_zinc_write",
    "_json4_read",
    "_json4_write",
    "_json3_read",
    "_json3_write",
    "_json",
    "_trio",
    "_csv",
)
"""The private modules compiled; the rest (limits, errors, ranges, the registry) are
shared by both implementations, so a ``Limits`` or an error is one class whichever runs."""

_HERE = Path(__file__).resolve().parent
_BUILD_HINT = "`python3 tools/dev.py compile` in a clone, or a pip install with a C compiler"


def pure_modules() -> dict[str, ModuleType]:
    """The pure-Python module of each name of :data:`COMPILED_MODULES`: the other side of
    :func:`compiled_modules`, for comparing the two implementations."""
    return {name: importlib.import_module(f"{__package__}.{name}") for name in COMPILED_MODULES}


def compiled_modules() -> dict[str, ModuleType]:
    """The compiled twin of each module of :data:`COMPILED_MODULES`, by name.

    Raises ``ImportError`` when one is not built, is not an extension module, or was built
    from another version of its pure-Python source.
    """
    found: dict[str, ModuleType] = {}
    for name in COMPILED_MODULES:
        try:
            module = importlib.import_module(f"{__package__}._compiled.{name}")
        except ImportError as exc:
            raise ImportError(
                f"the compiled codecs are not built ({exc}); build them with {_BUILD_HINT}"
            ) from exc
        where = str(getattr(module, "__file__", ""))
        if not where.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            raise ImportError(
                f"{module.__name__} is not compiled ({where}); build it with {_BUILD_HINT}"
            )
        source = _HERE / f"{name}.py"
        built_from = getattr(module, "SOURCE_SHA256", None)
        if source.exists() and built_from != hashlib.sha256(source.read_bytes()).hexdigest():
            raise ImportError(
                f"{module.__name__} was built from another version of {source.name}; "
                f"rebuild it with {_BUILD_HINT}"
            )
        found[name] = module
    return found


def _choose() -> tuple[Literal["python", "compiled"], dict[str, ModuleType]]:
    """The implementation ``HAYSTACK_IMPL`` asks for, and its compiled modules if any."""
    wanted = os.environ.get(ENV_VAR, "").strip().lower()
    if wanted == "python":
        return "python", {}
    if wanted == "compiled":
        return "compiled", compiled_modules()  # or the ImportError saying why not
    if wanted:
        raise ImportError(f"{ENV_VAR}={wanted!r}: expected 'python', 'compiled' or unset")
    try:
        return "compiled", compiled_modules()
    except ImportError as exc:
        if "built from another version" in str(exc):
            # Stale compiled modules beside edited sources: say so, rather than test the
            # pure modules while believing the compiled ones run.
            warnings.warn(f"using the pure-Python codecs: {exc}", RuntimeWarning, stacklevel=2)
        return "python", {}


_CHOSEN, _TWINS = _choose()
IMPLEMENTATION: Final[Literal["python", "compiled"]] = _CHOSEN
"""``"compiled"`` or ``"python"``: the implementation this process runs."""


def use_compiled(namespace: dict[str, Any], names: list[str]) -> None:
    """Put in ``namespace`` the compiled twin of each function or class of ``names``,
    when the compiled implementation runs; leave the pure-Python ones otherwise.

    The public modules import the pure-Python names (what type checkers and the
    documentation read) and call this before anything else sees them.
    """
    for name in names:
        module = namespace[name].__module__.rpartition(".")[2]
        if module in _TWINS:
            namespace[name] = getattr(_TWINS[module], name)
