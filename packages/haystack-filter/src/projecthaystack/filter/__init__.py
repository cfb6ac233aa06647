"""Haystack filters: the full grammar, an immutable AST, compiled evaluation against dicts and
grids, and a visitor for pushing filters down into stores.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
