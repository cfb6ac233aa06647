"""The examples in the docstrings are tests too."""

import doctest
import importlib
import pkgutil

import pytest

import projecthaystack.client as package

MODULES = [package.__name__] + [
    m.name for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
