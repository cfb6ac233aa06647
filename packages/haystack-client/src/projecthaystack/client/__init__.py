"""A Project Haystack client over HTTP: ``Client`` (blocking) and ``AsyncClient``
(awaitable, asyncio or trio), one sans-I/O core underneath, every standard op; and
``AsyncWebSocketClient`` for the ops over one WebSocket with pushed watch changes.

>>> from projecthaystack.client import Client
>>> with Client("http://localhost:8080/api", "user", "secret") as client:  # doctest: +SKIP
...     client.read("point and temp and sensor").to_python()

Every error derives from ``ClientError``; which ones are safe to retry is drawn in the
docstring of the private ``_errors`` module and in the README's "Errors" section.
"""

from typing import TYPE_CHECKING, Any

from .__about__ import __version__ as __version__
from ._client import AsyncClient as AsyncClient
from ._client import Client as Client
from ._core import ClientCore as ClientCore
from ._core import HisRange as HisRange
from ._core import format_range as format_range
from ._errors import AuthenticationError as AuthenticationError
from ._errors import AuthProtocolError as AuthProtocolError
from ._errors import CallError as CallError
from ._errors import ClientError as ClientError
from ._errors import CredentialsRejectedError as CredentialsRejectedError
from ._errors import CredentialsRequiredError as CredentialsRequiredError
from ._errors import RequestNotSentError as RequestNotSentError
from ._errors import ResponseError as ResponseError
from ._errors import ServerSignatureError as ServerSignatureError
from ._errors import TooManyRequestsError as TooManyRequestsError
from ._errors import UnknownRecError as UnknownRecError
from ._errors import UnsupportedMechanismError as UnsupportedMechanismError
from ._frames import his_frame as his_frame
from ._frames import to_pandas as to_pandas
from ._frames import to_polars as to_polars
from ._observe import ClientHooks as ClientHooks
from ._watch import AsyncWatch as AsyncWatch
from ._watch import Watch as Watch
from ._watch import WatchChanges as WatchChanges

if TYPE_CHECKING:
    from ._ws import AsyncWebSocketClient as AsyncWebSocketClient
    from ._ws import WatchUpdate as WatchUpdate

__all__ = [
    "AsyncClient",
    "AsyncWatch",
    "AsyncWebSocketClient",
    "AuthProtocolError",
    "AuthenticationError",
    "CallError",
    "Client",
    "ClientCore",
    "ClientError",
    "ClientHooks",
    "CredentialsRejectedError",
    "CredentialsRequiredError",
    "HisRange",
    "RequestNotSentError",
    "ResponseError",
    "ServerSignatureError",
    "TooManyRequestsError",
    "UnknownRecError",
    "UnsupportedMechanismError",
    "Watch",
    "WatchChanges",
    "WatchUpdate",
    "format_range",
    "his_frame",
    "to_pandas",
    "to_polars",
]

# Names whose module loads on first use: the WebSocket client brings httpx, httpx-ws and
# anyio's streams, which a plain HTTP client (or the CLI's --help) does not need.
_LAZY: dict[str, str] = {"AsyncWebSocketClient": "._ws", "WatchUpdate": "._ws"}


def _public(obj: Any) -> Any:
    """Show the public module in tracebacks and reprs rather than the private one."""
    if isinstance(obj, type | type(format_range)):
        obj.__module__ = __name__
    return obj


def __getattr__(name: str) -> Any:
    """Load a lazy name (see ``_LAZY``) on first access and keep it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = _public(getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name
