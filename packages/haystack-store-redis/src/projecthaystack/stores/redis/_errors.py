"""The Redis store's exceptions.

::

    HaystackError
    └── ServerError
        └── HttpError
            └── StoreUnavailableError   Redis cannot be reached or is failing over (503)
    HaystackError
    └── RedisStoreError                 the store refuses its data or configuration
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError
from projecthaystack.server import HttpError

__all__ = ["RedisStoreError", "StoreUnavailableError"]


class StoreUnavailableError(HttpError):
    """Redis cannot be reached, timed out, is loading, or a cluster shard is failing
    over.  The server answers 503 with ``Retry-After``; nothing was half-written (every
    write is one Lua script, which runs whole or not at all), so the client may retry.
    The connection pool reconnects on its own."""

    def __init__(self, message: str) -> None:
        super().__init__(503, f"store unavailable: {message}", {"Retry-After": "1"})


class RedisStoreError(HaystackError, ValueError):
    """Data or configuration the store cannot accept: a bad prefix or URL, a key layout
    written by an incompatible version, a history timestamp out of range."""
