"""The Project Haystack def ontology: libs normalized into a namespace, taxonomy,
reflection, choices, protos, relationships, and RDF export.

>>> from projecthaystack.ontology import Namespace
>>> ns = Namespace.load("defs/")          # doctest: +SKIP
>>> ns.fits("ahu", "equip")              # doctest: +SKIP
True
"""

from .__about__ import __version__ as __version__
from ._libs import Lib as Lib
from ._libs import NamespaceError as NamespaceError
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
