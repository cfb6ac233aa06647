"""A spec-exact Project Haystack server: a bare Starlette ASGI application from
:func:`create_app`, its storage protocol with an in-memory store, the user API, a
WebSocket endpoint, a demo building and the ``haystack-server`` command.

>>> from projecthaystack.server import MemoryStore, ServerConfig, create_app
>>> app = create_app(MemoryStore(), config=ServerConfig(prefix="/haystack"),
...                  admin=("admin", "change me now"))
>>> app.state.haystack.ops["read"].no_side_effects
True

Run it with any ASGI server (``uvicorn module:app``), or with ``haystack-server serve``.
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
from ._store import PriorityLevel as PriorityLevel
from ._store import Role as Role
from ._store import Session as Session
from ._store import Store as Store
from ._store import User as User
from ._store import Watch as Watch
from ._stores import STORES_GROUP as STORES_GROUP
from ._stores import open_store as open_store
from ._stores import store_schemes as store_schemes
from ._users import MAX_PASSWORD as MAX_PASSWORD
from ._users import MIN_PASSWORD as MIN_PASSWORD
from ._users import check_password as check_password

__all__ = [
    "PRIORITY_LEVELS",
    "STANDARD_OPS",
    "STORES_GROUP",
    "Action",
    "DEMO_ACTIONS",
    "DemoBuilding",
    "HaystackServer",
    "HttpError",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "MemoryStore",
    "Op",
    "OpContext",
    "OpError",
    "OpHandler",
    "PriorityLevel",
    "Role",
    "ServerConfig",
    "ServerError",
    "ServerLimits",
    "Session",
    "StartupError",
    "StartupHook",
    "Store",
    "User",
    "Watch",
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
    if isinstance(_obj, type | type(create_app)):
        _obj.__module__ = __name__
del _name, _obj
