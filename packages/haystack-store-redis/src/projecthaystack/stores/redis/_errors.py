"""The Redis store's exceptions.

::

    HaystackError
    ├── ServerError                      (projecthaystack.server)
    │   └── StoreError
    │       └── StoreUnavailableError    Redis cannot be reached or is failing over
    │                                    (the server's, also an HttpError: 503)
    └── RedisStoreError                  the store refuses its data or configuration

``StoreUnavailableError`` is the server's own class (every store raises the same one),
re-exported here.  Nothing is half-written when it is raised (every write is one Lua
script, which runs whole or not at all), so the client may retry; the connection pool
reconnects on its own.
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError
from projecthaystack.server import StoreUnavailableError

__all__ = ["RedisStoreError", "StoreUnavailableError"]


class RedisStoreError(HaystackError, ValueError):
    """Data or configuration the store cannot accept: a bad prefix or URL, a key layout
    written by an incompatible version, a history timestamp out of range."""
