"""Redis storage for haystack-server: entities, history, watches, users and sessions shared by
every worker.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
