"""The Haystack def ontology: namespaces loaded from Trio libs, taxonomy, reflection,
validation and RDF export.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
