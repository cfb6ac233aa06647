"""The PostgreSQL store's exceptions.

::

    HaystackError
    └── ServerError                        (projecthaystack.server)
        └── StoreError
            ├── SchemaError                the schema is newer than this package (server's)
            ├── PgStoreError               data or configuration the store refuses
            └── StoreUnavailableError      PostgreSQL cannot be reached or is restarting
                                           (the server's, also an HttpError: 503)

``StoreUnavailableError`` is the server's own class (every store raises the same one),
re-exported here.  A write is never half-applied: each call is one transaction, applied
whole or not at all (when the connection broke while committing, the caller cannot tell
which, and every write of the protocol may be repeated safely).  The pool replaces
broken connections on its own.
"""

from __future__ import annotations

from projecthaystack.server import StoreError, StoreUnavailableError

__all__ = ["PgStoreError", "StoreUnavailableError"]


class PgStoreError(StoreError, ValueError):
    """Data or configuration the store cannot accept (a value nested too deeply to
    index, a bad URL parameter); nothing was written."""
