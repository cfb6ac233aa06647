"""Every distribution is what it says it is: its version, its typing marker, its weight.

Which packages each may depend on (the layer table, not a straight line) is checked
against both the declared requirements and the imports in test_structure.py.
"""

import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

LAYERS = {
    "haystack-kinds": "projecthaystack.kinds",
    "haystack-codecs": "projecthaystack.codecs",
    "haystack-filter": "projecthaystack.filter",
    "haystack-ontology": "projecthaystack.ontology",
    "haystack-auth": "projecthaystack.auth",
    "haystack-client": "projecthaystack.client",
    "haystack-server": "projecthaystack.server",
    "haystack-store-redis": "projecthaystack.stores.redis",
    "haystack-store-pg": "projecthaystack.stores.pg",
}


@pytest.mark.parametrize(("distribution", "module"), LAYERS.items())
def test_version_matches_the_installed_metadata(distribution: str, module: str) -> None:
    assert importlib.import_module(module).__version__ == importlib.metadata.version(distribution)


@pytest.mark.parametrize("module", LAYERS.values())
def test_ships_py_typed_under_namespace_packages(module: str) -> None:
    package_dir = Path(importlib.import_module(module).__file__).parent
    assert (package_dir / "py.typed").is_file()
    root = package_dir
    while root.name != "projecthaystack":
        root = root.parent
    # projecthaystack and projecthaystack.stores are PEP 420 namespaces.
    assert not (root / "__init__.py").exists()
    assert not (root / "stores" / "__init__.py").exists()


def _name(requirement: str) -> str:
    """The distribution a requirement names, without extras, versions or markers."""
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def test_the_client_stays_light() -> None:
    """Installing haystack-client must not pull in a server stack."""
    requires = importlib.metadata.requires("haystack-client") or []
    plain = [r for r in requires if "extra ==" not in r]
    required = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in plain}
    third_party = {n for n in required if not n.startswith("haystack-")}
    # wsproto comes with httpx-ws; the client imports it too (per-message deflate).
    assert third_party == {"httpx", "httpx-ws", "wsproto", "anyio", "msgspec"}


def test_cryptography_is_an_extra_of_auth() -> None:
    """A client needs cryptography only to read certificates: the [tls] extra."""
    requires = importlib.metadata.requires("haystack-auth") or []
    plain = {_name(r) for r in requires if "extra ==" not in r}
    assert plain == {"haystack-kinds"}
    assert any(_name(r) == "cryptography" and "extra == 'tls'" in r for r in requires)
    server = importlib.metadata.requires("haystack-server") or []
    assert any(r.startswith("haystack-auth[tls]") for r in server)
