"""A Haystack HTTP and WebSocket client, with a sync `Client` and an `AsyncClient` over one
sans-I/O core, and the `haystack` command line.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
