"""Redis storage for haystack-server: entities, history, watches, users and sessions
shared by every worker, on any Redis 6.2+ or Valkey, single node or cluster.

>>> from projecthaystack.stores.redis import open_store
>>> store = open_store("redis://127.0.0.1:6379/0?prefix=demo")
>>> store.keys.tag("site")
'{demo}:t:site'

``await store.open()`` connects; the server finds this store through the
``projecthaystack.stores`` entry point by the URL's scheme (``redis``, ``rediss``,
``redis+cluster``, ``rediss+cluster``).
"""

from .__about__ import __version__ as __version__
from ._errors import RedisStoreError as RedisStoreError
from ._errors import StoreUnavailableError as StoreUnavailableError
from ._keys import KeySpace as KeySpace
from ._keys import decode_part as decode_part
from ._keys import encode_part as encode_part
from ._store import LAYOUT as LAYOUT
from ._store import RedisStore as RedisStore
from ._store import open_store as open_store

__all__ = [
    "LAYOUT",
    "KeySpace",
    "RedisStore",
    "RedisStoreError",
    "StoreUnavailableError",
    "decode_part",
    "encode_part",
    "open_store",
]

for _name in __all__:
    _obj = globals()[_name]
    # StoreUnavailableError is the server's class, re-exported: it keeps its module.
    if isinstance(_obj, type | type(open_store)) and _obj.__module__.startswith(__name__):
        _obj.__module__ = __name__
del _name, _obj
