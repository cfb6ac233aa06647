"""A Project Haystack client over HTTP: ``Client`` (blocking) and ``AsyncClient``
(awaitable, asyncio or trio), one sans-I/O core underneath, every standard op.

>>> from projecthaystack.client import Client
>>> client = Client("http://localhost:8080/api", "user", "secret")  # doctest: +SKIP
>>> client.read("point and temp and sensor").to_python()            # doctest: +SKIP
"""

from .__about__ import __version__ as __version__
from ._client import AsyncClient as AsyncClient
from ._client import Client as Client
from ._core import ClientCore as ClientCore
from ._core import HisRange as HisRange
from ._core import format_range as format_range
from ._errors import AuthenticationError as AuthenticationError
from ._errors import CallError as CallError
from ._errors import ClientError as ClientError
from ._errors import RequestNotSentError as RequestNotSentError
from ._errors import ResponseError as ResponseError
from ._frames import his_frame as his_frame
from ._frames import to_pandas as to_pandas
from ._frames import to_polars as to_polars
from ._ws import AsyncWebSocketClient as AsyncWebSocketClient
from ._ws import WatchUpdate as WatchUpdate

__all__ = [
    "AsyncClient",
    "AsyncWebSocketClient",
    "AuthenticationError",
    "CallError",
    "Client",
    "ClientCore",
    "ClientError",
    "HisRange",
    "RequestNotSentError",
    "ResponseError",
    "WatchUpdate",
    "format_range",
    "his_frame",
    "to_pandas",
    "to_polars",
]
