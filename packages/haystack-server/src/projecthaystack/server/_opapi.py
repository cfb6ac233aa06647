"""The public API for adding ops and actions: :class:`Op`, what a handler receives
(:class:`OpContext`) and the shapes of handlers and actions.

Register ops with ``create_app(ops=[Op(...)])`` (an op named like a standard one
replaces it) and actions with ``create_app(actions={"name": action})``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projecthaystack.kinds import Grid

from ._errors import HttpError
from ._store import Role, Store, User

if TYPE_CHECKING:
    from projecthaystack.ontology import Namespace

    from ._config import ServerConfig

__all__ = ["Action", "Op", "OpContext", "OpHandler"]


@dataclass(slots=True)
class OpContext:
    """What an op handler gets besides the request grid."""

    store: Store
    config: ServerConfig
    user: User
    token: str | None
    now: dt.datetime
    ops: Mapping[str, Op]
    actions: Mapping[str, Action]
    namespace: Namespace | None = None
    boot_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def require(self, role: Role, what: str) -> None:
        """Refuse (HTTP 403) unless the user has at least ``role``."""
        if self.user.role < role:
            raise HttpError(403, f"{what} needs the {role.label} role")


OpHandler = Callable[[OpContext, Grid], Awaitable[Grid]]
"""An op's implementation: the request grid in, the response grid out."""

Action = Callable[[OpContext, Mapping[str, Any], Mapping[str, Any]], Awaitable[Grid | None]]
"""An action for ``invokeAction``: (context, target entity, arguments) → a grid, or
``None`` for an empty one."""


@dataclass(frozen=True, slots=True)
class Op:
    """One op of the HTTP API.

    ``no_side_effects`` allows GET; ``role`` is the least role that may call it.

    >>> async def hello(ctx, req):
    ...     return Grid.from_rows([{"hello": ctx.user.username}])
    >>> Op("hello", hello, no_side_effects=True, doc="Greets the caller").name
    'hello'
    """

    name: str
    handler: OpHandler
    no_side_effects: bool = False
    role: Role = Role.VIEWER
    doc: str = ""
