"""The public names of projecthaystack.server, pinned: a change here is an API change."""

from __future__ import annotations

import inspect

import projecthaystack.server as server
from projecthaystack.server import testing

PUBLIC = [
    "DEMO_ACTIONS",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PRIORITY_LEVELS",
    "PROTOCOL_VERSION",
    "STANDARD_OPS",
    "STORES_GROUP",
    "Action",
    "Changes",
    "DemoBuilding",
    "HaystackServer",
    "HisChunk",
    "HttpError",
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


def test_public_names_are_pinned() -> None:
    assert sorted(server.__all__) == sorted(PUBLIC)
    assert testing.__all__ == ["free_port", "serve", "small_building"]


def test_public_classes_and_functions_name_the_package() -> None:
    for name in server.__all__:
        obj = getattr(server, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            # A re-export from a lower layer keeps the module that defines it.
            home = "projecthaystack.codecs" if name == "parse_range" else "projecthaystack.server"
            assert obj.__module__ == home, name


def test_every_public_name_has_a_docstring() -> None:
    for name in server.__all__:
        obj = getattr(server, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
    for name in testing.__all__:
        assert inspect.getdoc(getattr(testing, name)), name
