"""The examples in the docstrings are tests too; they run against the standard libs."""

import doctest
import importlib
import pkgutil

import pytest

import projecthaystack.ontology as package
from projecthaystack.kinds import Marker, Ref

MODULES = [package.__name__] + [
    m.name for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, ns) -> None:
    module = importlib.import_module(name)
    extra = {"ns": ns, "Marker": Marker, "Ref": Ref}
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs=extra)
    assert result.failed == 0
