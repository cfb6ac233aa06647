"""The Project Haystack def ontology: libs normalized into a namespace, taxonomy,
reflection, choices, protos, relationships, and RDF export.

>>> from projecthaystack.ontology import Namespace
>>> ns = Namespace.load("defs/")   # doctest: +SKIP
>>> ns.fits("ahu", "equip")       # the four standard libs, loaded from where you keep them
True
"""

from .__about__ import __version__ as __version__
from ._errors import NamespaceError as NamespaceError
from ._libs import Lib as Lib
from ._libs import load_lib as load_lib
from ._namespace import Namespace as Namespace
from ._namespace import Reflection as Reflection
from ._rdf import to_graph as to_graph
from ._rdf import to_jsonld as to_jsonld
from ._rdf import to_turtle as to_turtle

__all__ = [
    "Lib",
    "Namespace",
    "NamespaceError",
    "Reflection",
    "load_lib",
    "to_graph",
    "to_jsonld",
    "to_turtle",
]

# Show the public module in tracebacks and reprs rather than the private one.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type | type(load_lib)):
        _obj.__module__ = __name__
del _name, _obj
