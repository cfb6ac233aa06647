"""The user-management REST API, for admins: ``{prefix}/admin/users[/{name}]``, and the
same at ``{prefix}/users/[{name}]`` (where haystack-py's server and tools have it).

Plain JSON in and out (this is not a Haystack op)::

    GET    /api/admin/users              [{"username", "role", "enabled", "created"}, ...]
    POST   /api/admin/users              {"username", "password", "role"?, "enabled"?} -> 201
    GET    /api/admin/users/{name}       {"username", "role", "enabled", "created"}
    PUT    /api/admin/users/{name}       {"password"?, "role"?, "enabled"?} (PATCH alike)
    DELETE /api/admin/users/{name}       204

    GET, POST            /api/users/
    GET, PUT, PATCH, DELETE  /api/users/{name}

Passwords are never returned.  Changing a password, disabling or deleting a user
revokes every token of theirs.  An admin cannot delete, disable or demote themself.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from projecthaystack.auth import ScramCredentials

from ._app import HaystackServer
from ._auth import LoginStep
from ._errors import HttpError
from ._responses import login_response
from ._store import Role, UnknownUserError, User, UserChanges, UserExistsError
from ._users import check_password, check_username

__all__ = ["user_routes"]

_MAX_BODY = 16 * 1024


def _public(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role.label,
        "enabled": user.enabled,
        "created": user.created.isoformat(),
    }


def _username(raw: Any) -> str:
    if not isinstance(raw, str):
        raise HttpError(400, "'username' must be a string")
    try:
        return check_username(raw)
    except ValueError as exc:
        raise HttpError(400, f"bad username: {exc}") from None


def _password(raw: Any) -> str:
    if not isinstance(raw, str):
        raise HttpError(400, "'password' must be a string")
    try:
        return check_password(raw)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None


def _role(raw: Any) -> Role:
    if not isinstance(raw, str):
        raise HttpError(400, "'role' must be a string")
    try:
        return Role.parse(raw)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None


def _enabled(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise HttpError(400, "'enabled' must be true or false")
    return raw


async def _json(request: Request, allowed: set[str]) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise HttpError(413, "request body too large")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise HttpError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the body must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise HttpError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    return data


def user_routes(server: HaystackServer, prefix: str) -> list[Route]:
    """The routes of the user API under ``prefix``."""
    store = server.store

    async def admin(request: Request) -> User | Response:
        now = server.now()
        who = await server.identify(request, now)
        if isinstance(who, LoginStep):
            return login_response(who)
        if who.user.role < Role.ADMIN:
            raise HttpError(403, "managing users needs the admin role")
        return who.user

    async def collection(request: Request) -> Response:
        try:
            me = await admin(request)
            if isinstance(me, Response):
                return me
            if request.method == "GET":
                return JSONResponse([_public(u) for u in await store.list_users()])
            data = await _json(request, {"username", "password", "role", "enabled"})
            name = _username(data.get("username"))
            password = _password(data.get("password"))
            role = _role(data.get("role", "viewer"))
            enabled = _enabled(data.get("enabled", True))
            creds = ScramCredentials.derive(password, hash=server.config.scram_hash)
            user = User(name, role, creds, enabled, server.now())
            try:
                await store.create_user(user)  # only if the name is free, in one call
            except UserExistsError:
                raise HttpError(409, f"user {name!r} already exists") from None
            return JSONResponse(_public(user), 201)
        except HttpError as exc:
            return JSONResponse({"error": str(exc)}, exc.status, exc.headers)

    async def item(request: Request) -> Response:
        try:
            me = await admin(request)
            if isinstance(me, Response):
                return me
            name = request.path_params["name"]
            user = await store.get_user(name)
            if user is None:
                raise HttpError(404, f"no user {name!r}")
            if request.method == "GET":
                return JSONResponse(_public(user))
            if request.method == "DELETE":
                if user.username == me.username:
                    raise HttpError(409, "an admin cannot delete themself")
                await store.delete_user(user.username)  # and their sessions, at once
                return Response(status_code=204)
            data = await _json(request, {"password", "role", "enabled"})
            role = _role(data["role"]) if "role" in data else None
            if role is not None and user.username == me.username and role < Role.ADMIN:
                raise HttpError(409, "an admin cannot demote themself")
            enabled = _enabled(data["enabled"]) if "enabled" in data else None
            if enabled is False and user.username == me.username:
                raise HttpError(409, "an admin cannot disable themself")
            creds = None
            if "password" in data:
                creds = ScramCredentials.derive(
                    _password(data["password"]), hash=server.config.scram_hash
                )
            try:
                # A new password or disabling ends the user's sessions in the same call.
                updated = await store.update_user(
                    user.username, UserChanges(role=role, enabled=enabled, credentials=creds)
                )
            except UnknownUserError:
                raise HttpError(404, f"no user {name!r}") from None
            return JSONResponse(_public(updated))
        except HttpError as exc:
            return JSONResponse({"error": str(exc)}, exc.status, exc.headers)

    item_methods = ["GET", "PUT", "PATCH", "DELETE"]
    return [
        Route(f"{prefix}/admin/users", collection, methods=["GET", "POST"]),
        Route(f"{prefix}/admin/users/{{name}}", item, methods=item_methods),
        # Where haystack-py's server and tools keep the same API.
        Route(f"{prefix}/users/", collection, methods=["GET", "POST"]),
        Route(f"{prefix}/users/{{name}}", item, methods=item_methods),
    ]
