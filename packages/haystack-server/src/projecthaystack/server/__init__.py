"""A spec-exact Project Haystack server: a bare Starlette ASGI application from
:func:`create_app`, its storage protocol with an in-memory store, the user API, a
WebSocket endpoint, a demo building and the ``haystack-server`` command.

>>> from projecthaystack.server import MemoryStore, ServerConfig, create_app
>>> app = create_app(MemoryStore(), config=ServerConfig(prefix="/haystack"),
...                  admin=("admin", "change me now"))
>>> app.state.haystack.ops["read"].no_side_effects
True

Run it with any ASGI server (``uvicorn --no-proxy-headers module:app``), or with
``haystack-server serve``.  :mod:`projecthaystack.server.testing` serves an app on a free
port for tests; :mod:`projecthaystack.server.storetests` is the store contract suite.
"""

from projecthaystack.codecs import parse_range as parse_range

from .__about__ import __version__ as __version__
from ._app import HaystackServer as HaystackServer
from ._app import StartupHook as StartupHook
from ._config import ServerConfig as ServerConfig
from ._config import ServerLimits as ServerLimits
from ._demo import DEMO_ACTIONS as DEMO_ACTIONS
from ._demo import DemoBuilding as DemoBuilding
from ._demo import demo_building as demo_building
from ._errors import HttpError as HttpError
from ._errors import OpError as OpError
from ._errors import ServerError as ServerError
from ._errors import StartupError as StartupError
from ._factory import create_app as create_app
from ._memory import MemoryStore as MemoryStore
from ._opapi import Action as Action
from ._opapi import Op as Op
from ._opapi import OpContext as OpContext
from ._opapi import OpHandler as OpHandler
from ._ops import STANDARD_OPS as STANDARD_OPS
from ._responses import error_grid as error_grid
from ._store import PRIORITY_LEVELS as PRIORITY_LEVELS
from ._store import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._store import Changes as Changes
from ._store import HisChunk as HisChunk
from ._store import PointWrite as PointWrite
from ._store import PriorityLevel as PriorityLevel
from ._store import Role as Role
from ._store import SchemaError as SchemaError
from ._store import Session as Session
from ._store import Store as Store
from ._store import StoreError as StoreError
from ._store import StoreInfo as StoreInfo
from ._store import StoreUnavailableError as StoreUnavailableError
from ._store import UnknownEntityError as UnknownEntityError
from ._store import UnknownUserError as UnknownUserError
from ._store import User as User
from ._store import UserChanges as UserChanges
from ._store import UserExistsError as UserExistsError
from ._store import Watch as Watch
from ._store import WatchLimitError as WatchLimitError
from ._store import WatchSub as WatchSub
from ._store import apply_point_write as apply_point_write
from ._stores import STORES_GROUP as STORES_GROUP
from ._stores import open_store as open_store
from ._stores import store_schemes as store_schemes
from ._users import MAX_PASSWORD as MAX_PASSWORD
from ._users import MIN_PASSWORD as MIN_PASSWORD
from ._users import check_password as check_password

__all__ = [
    "PRIORITY_LEVELS",
    "PROTOCOL_VERSION",
    "STANDARD_OPS",
    "STORES_GROUP",
    "Action",
    "DEMO_ACTIONS",
    "Changes",
    "DemoBuilding",
    "HaystackServer",
    "HisChunk",
    "HttpError",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "MemoryStore",
    "Op",
    "OpContext",
    "OpError",
    "OpHandler",
    "PointWrite",
    "PriorityLevel",
    "Role",
    "SchemaError",
    "ServerConfig",
    "ServerError",
    "ServerLimits",
    "Session",
    "StartupError",
    "StartupHook",
    "Store",
    "StoreError",
    "StoreInfo",
    "StoreUnavailableError",
    "UnknownEntityError",
    "UnknownUserError",
    "User",
    "UserChanges",
    "UserExistsError",
    "Watch",
    "WatchLimitError",
    "WatchSub",
    "apply_point_write",
    "check_password",
    "create_app",
    "demo_building",
    "error_grid",
    "open_store",
    "parse_range",
    "store_schemes",
]

for _name in __all__:
    _obj = globals()[_name]
    # Names re-exported from lower layers (parse_range) keep their own module.
    if isinstance(_obj, type | type(create_app)) and _obj.__module__.startswith(__name__):
        _obj.__module__ = __name__
del _name, _obj
