"""The examples in every package's docstrings are tests too.

(The ontology's need the standard defs and run in that package's own tests.)
"""

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = [
    "projecthaystack.kinds",
    "projecthaystack.codecs",
    "projecthaystack.filter",
    "projecthaystack.auth",
    "projecthaystack.client",
    "projecthaystack.server",
]


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names.extend(m.name for m in pkgutil.iter_modules(module.__path__, package + "."))
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
