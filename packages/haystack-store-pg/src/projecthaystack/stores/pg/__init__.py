"""PostgreSQL storage for haystack-server: entities, history, priority arrays, watches,
users and sessions in one database, shared by every worker and host.

>>> from projecthaystack.stores.pg import open_store
>>> store = open_store("postgresql://postgres@127.0.0.1/test?schema=haystack_doc")
>>> store.schema
'haystack_doc'

``haystack-server serve --store postgresql://...`` finds this store through the
``projecthaystack.stores`` entry points; call ``await store.open()`` before use when
using it directly.
"""

from .__about__ import __version__ as __version__
from ._errors import PgStoreError as PgStoreError
from ._errors import StoreUnavailableError as StoreUnavailableError
from ._schema import LATEST_VERSION as LATEST_VERSION
from ._store import FEED_SIZE as FEED_SIZE
from ._store import PgStore as PgStore
from ._store import open_store as open_store

__all__ = [
    "FEED_SIZE",
    "LATEST_VERSION",
    "PgStore",
    "PgStoreError",
    "StoreUnavailableError",
    "open_store",
]

for _name in __all__:
    _obj = globals()[_name]
    # StoreUnavailableError is the server's class, re-exported: it keeps its module.
    if isinstance(_obj, type | type(open_store)) and _obj.__module__.startswith(__name__):
        _obj.__module__ = __name__
del _name, _obj
