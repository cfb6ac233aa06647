"""A spec-exact Haystack server as a bare Starlette ASGI application, with its storage protocol
and an in-memory store.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
