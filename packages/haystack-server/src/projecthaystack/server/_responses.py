"""The answers every endpoint shares: error grids and auth-step responses."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from projecthaystack.kinds import Grid, Marker

from ._auth import LoginStep

__all__ = ["error_grid", "login_response"]


def error_grid(dis: str, trace: str | None = None) -> Grid:
    """An error grid as the HTTP API chapter defines it.

    >>> error_grid("unknown id @x").meta["dis"]
    'unknown id @x'
    """
    meta: dict[str, Any] = {"err": Marker, "dis": dis}
    if trace:
        meta["errTrace"] = trace
    return Grid.empty(meta)


def login_response(step: LoginStep) -> Response:
    """The HTTP response of an auth step, header names in their usual case.

    Names are case-insensitive, but pyhaystack looks ``WWW-Authenticate`` up in a plain
    dict, as SkySpark spells it, and Starlette would send it lower-cased.
    """
    response = Response(status_code=step.status)
    response.raw_headers.extend(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in step.headers.items()
    )
    return response
