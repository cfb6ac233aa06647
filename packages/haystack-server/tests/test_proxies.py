"""Proxy headers are believed only from configured proxies: by default the login
throttle counts the socket's address, whatever a client writes in its headers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from projecthaystack.auth import ClientHandshake, b64url_encode
from projecthaystack.server import ServerConfig
from projecthaystack.server.testing import free_port

from .conftest import Live


def _fail_login(http: httpx.Client, user: str, headers: dict[str, str]) -> None:
    """One complete SCRAM login with a wrong password."""
    hs = ClientHandshake(user, "not-the-password")
    header: str | None = hs.hello()
    statuses = []
    while header is not None:
        resp = http.get("about", headers={**headers, "Authorization": header})
        statuses.append(resp.status_code)
        if resp.status_code != 401:
            break
        header = hs.respond(resp.status_code, resp.headers)
    assert statuses[-1] == 403, statuses


def _hello(http: httpx.Client, user: str, headers: dict[str, str]) -> int:
    hello = {"Authorization": f"HELLO username={b64url_encode(user)}"}
    return http.get("about", headers={**headers, **hello}).status_code


def _xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_a_client_cannot_choose_its_address_by_default(make_live: Callable[..., Live]) -> None:
    live = make_live(ServerConfig(max_failures_per_user=2))
    with httpx.Client(base_url=live.url + "/", timeout=30) as http:
        _fail_login(http, "viewer", _xff("203.0.113.1"))
        _fail_login(http, "viewer", {"Forwarded": "for=203.0.113.2"})
        # Both failures counted for the socket's address: a third made-up one is throttled.
        assert _hello(http, "viewer", _xff("203.0.113.3")) == 429
        assert _hello(http, "viewer", {"Forwarded": "for=198.51.100.7"}) == 429


def test_a_trusted_proxy_names_the_client(make_live: Callable[..., Live]) -> None:
    live = make_live(ServerConfig(max_failures_per_user=2, trusted_proxies=("127.0.0.0/8",)))
    with httpx.Client(base_url=live.url + "/", timeout=30) as http:
        for _ in range(2):
            _fail_login(http, "viewer", _xff("203.0.113.5"))
        assert _hello(http, "viewer", _xff("203.0.113.5")) == 429
        # Another client behind the proxy, and the proxy's own address, are not throttled.
        assert _hello(http, "viewer", _xff("203.0.113.6")) == 401
        assert _hello(http, "viewer", {}) == 401
        # What the client wrote left of the address the proxy added is not believed.
        assert _hello(http, "viewer", _xff("203.0.113.6, 203.0.113.5")) == 429
        assert _hello(http, "viewer", _xff("203.0.113.5, 203.0.113.6")) == 401
        # The proxy's header is X-Forwarded-For: a Forwarded header is the client's own.
        assert (
            _hello(http, "viewer", {"Forwarded": "for=203.0.113.9", **_xff("203.0.113.5")}) == 429
        )


def test_a_trusted_proxy_writing_forwarded(make_live: Callable[..., Live]) -> None:
    config = ServerConfig(
        max_failures_per_user=1, trusted_proxies=("127.0.0.1",), proxy_header="Forwarded"
    )
    live = make_live(config)
    with httpx.Client(base_url=live.url + "/", timeout=30) as http:
        _fail_login(http, "viewer", {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'})
        assert _hello(http, "viewer", {"Forwarded": 'for="[2001:db8::1]"'}) == 429
        assert _hello(http, "viewer", {"Forwarded": "for=192.0.2.60;by=127.0.0.1"}) == 401
        assert _hello(http, "viewer", _xff("2001:db8::1")) == 401  # not the proxy's header


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trusted_proxies": ("proxy.example",)}, "not an IP address or network"),
        ({"proxy_header": "X-Real-IP"}, "X-Forwarded-For' or 'Forwarded"),
    ],
)
def test_proxy_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig(**kwargs)  # type: ignore[arg-type]


def test_the_command_ignores_forwarded_addresses_by_default() -> None:
    """``haystack-server serve`` runs uvicorn, which believes X-Forwarded-For from
    127.0.0.1 unless told otherwise."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAYSTACK_")}
    env |= {"HAYSTACK_ADMIN_USER": "boss", "HAYSTACK_ADMIN_PASSWORD": "boss-password"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "projecthaystack.server", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/", timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get("about")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
            for i in range(ServerConfig().max_failures_per_user):
                _fail_login(http, "boss", _xff(f"203.0.113.{i + 1}"))
            assert _hello(http, "boss", _xff("198.51.100.1")) == 429
    finally:
        proc.terminate()
        proc.wait(30)
