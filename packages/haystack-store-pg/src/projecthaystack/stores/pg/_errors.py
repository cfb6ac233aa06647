"""The errors of the PostgreSQL store.

::

    HaystackError                      (projecthaystack.kinds)
    └── PgStoreError
        └── SchemaError                the store's schema is newer than this package
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = ["PgStoreError", "SchemaError"]


class PgStoreError(HaystackError):
    """Something the PostgreSQL store cannot do as asked."""


class SchemaError(PgStoreError):
    """The store's schema cannot be used by this version of the package (it was written
    by a newer one)."""
