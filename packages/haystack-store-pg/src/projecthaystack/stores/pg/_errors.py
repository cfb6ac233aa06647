"""The PostgreSQL store's exceptions.

::

    HaystackError
    └── ServerError                        (projecthaystack.server)
        └── StoreError
            ├── SchemaError                the schema is newer than this package (server's)
            ├── PgStoreError               data or configuration the store refuses
            └── StoreUnavailableError      PostgreSQL cannot be reached or is restarting
                                           (also an HttpError: the server answers 503)
"""

from __future__ import annotations

from projecthaystack.server import HttpError, StoreError

__all__ = ["PgStoreError", "StoreUnavailableError"]


class PgStoreError(StoreError, ValueError):
    """Data or configuration the store cannot accept (a value nested too deeply to
    index, a bad URL parameter); nothing was written."""


class StoreUnavailableError(StoreError, HttpError):
    """PostgreSQL cannot be reached, refused the connection, is restarting, or the pool
    had no connection in time.  The server answers HTTP 503 with ``Retry-After``.  A
    write is never half-applied: each call is one transaction, applied whole or not at
    all (when the connection broke while committing, the caller cannot tell which, and
    every write of the protocol may be repeated safely).  The pool replaces broken
    connections on its own."""

    def __init__(self, message: str) -> None:
        HttpError.__init__(self, 503, f"store unavailable: {message}", {"Retry-After": "1"})
