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

from typing import TYPE_CHECKING, Any

from .__about__ import __version__ as __version__

if TYPE_CHECKING:
    from projecthaystack.codecs import parse_range as parse_range

    from ._app import HaystackServer as HaystackServer
    from ._app import StartupHook as StartupHook
    from ._config import MAX_PASSWORD as MAX_PASSWORD
    from ._config import MIN_PASSWORD as MIN_PASSWORD
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
    from ._tls import tls_protocols as tls_protocols
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
    "tls_protocols",
]

# Every public name loads its module on first use: the app brings Starlette and anyio,
# the store registry importlib.metadata, the ops the codecs and the filter, none of
# which ``haystack-server --help`` (or a script that wants only ServerConfig) needs.
_LAZY: dict[str, str] = {
    "Action": "._opapi",
    "Changes": "._store",
    "DEMO_ACTIONS": "._demo",
    "DemoBuilding": "._demo",
    "HaystackServer": "._app",
    "HisChunk": "._store",
    "HttpError": "._errors",
    "MAX_PASSWORD": "._config",
    "MIN_PASSWORD": "._config",
    "MemoryStore": "._memory",
    "Op": "._opapi",
    "OpContext": "._opapi",
    "OpError": "._errors",
    "OpHandler": "._opapi",
    "PRIORITY_LEVELS": "._store",
    "PROTOCOL_VERSION": "._store",
    "PointWrite": "._store",
    "PriorityLevel": "._store",
    "Role": "._store",
    "STANDARD_OPS": "._ops",
    "STORES_GROUP": "._stores",
    "SchemaError": "._store",
    "ServerConfig": "._config",
    "ServerError": "._errors",
    "ServerLimits": "._config",
    "Session": "._store",
    "StartupError": "._errors",
    "StartupHook": "._app",
    "Store": "._store",
    "StoreError": "._store",
    "StoreInfo": "._store",
    "StoreUnavailableError": "._store",
    "UnknownEntityError": "._store",
    "UnknownUserError": "._store",
    "User": "._store",
    "UserChanges": "._store",
    "UserExistsError": "._store",
    "Watch": "._store",
    "WatchLimitError": "._store",
    "WatchSub": "._store",
    "apply_point_write": "._store",
    "check_password": "._users",
    "create_app": "._factory",
    "demo_building": "._demo",
    "error_grid": "._responses",
    "open_store": "._stores",
    "parse_range": "projecthaystack.codecs",
    "store_schemes": "._stores",
    "tls_protocols": "._tls",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    # Our own classes and functions show the package as their home (names re-exported
    # from lower layers, parse_range, keep their own).
    if isinstance(value, type | type(__getattr__)) and value.__module__.startswith(__name__):
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
