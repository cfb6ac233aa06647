"""Two separate ``haystack-server serve --store redis://...`` processes on one Redis and
key prefix act as one server: a login on one is honoured by the other, a watch on one
sees writes made through the other, eight concurrent writers of 10,000 samples each
(through both) lose nothing, and ``close``, disabling a user or changing a password ends
sessions on both.  The second process runs ``--workers 2``.

Uses the shared Redis on 127.0.0.1:6379 (database 0) under a key prefix of its own,
deleted afterwards with SCAN + UNLINK on that prefix only.  Outside CI, without Redis,
these tests skip (start redis-server); under ``CI=true`` they fail.  Every server process
is started by ``conftest.serve_store`` (the building they load is
``conftest.SERVE_BUILDING``) and stopped by its PID (its workers too).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from projecthaystack.client import CallError, Client, CredentialsRejectedError
from projecthaystack.codecs import zinc
from projecthaystack.kinds import Grid, Number, Ref

REDIS = "redis://127.0.0.1:6379/0"
ADMIN, PASSWORD = "admin", "two-servers-one-redis"
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
TIMEOUT = 60.0  # seconds any one wait may take (a start, a stop, a request)


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError:
        message = f"Redis is not reachable at {REDIS}: start redis-server on port 6379"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _drop_prefix(prefix: str) -> int:
    """SCAN + UNLINK of the keys under ``{prefix}:`` (never FLUSH*)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.unlink(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


@dataclass
class Servers:
    """Two servers (``conftest.ServeProcesses``) on one prefix: ``a`` with one worker,
    ``b`` with two."""

    urls: list[str]
    procs: Any  # conftest.ServeProcesses
    prefix: str


@pytest.fixture(scope="module")
def servers(serve_store: Callable[..., Any]) -> Iterator[Servers]:
    _require_redis()
    prefix = "hs-it-" + secrets.token_hex(6)
    procs = None
    try:
        procs = serve_store(f"{REDIS}?prefix={prefix}", PASSWORD, workers=(1, 2))
        yield Servers(procs.urls, procs, prefix)
    finally:
        if procs is not None:
            procs.stop()
        _drop_prefix(prefix)


def _status(url: str, token: str) -> int:
    """The status of ``about`` with this bearer token."""
    headers = {"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"}
    return httpx.get(url + "/about", headers=headers, timeout=TIMEOUT).status_code


def _users(url: str, token: str, method: str, name: str = "", **body: object) -> httpx.Response:
    """A call to the user API as the holder of ``token``."""
    headers = {"Authorization": f"BEARER authToken={token}"}
    path = f"{url}/admin/users" + (f"/{name}" if name else "")
    return httpx.request(method, path, headers=headers, json=body or None, timeout=TIMEOUT)


def _login(url: str, user: str, password: str) -> str:
    """A fresh session's token (the connections are released, the session kept)."""
    client = Client(url, user, password, timeout=TIMEOUT)
    try:
        return client.login()
    finally:
        client.close()


def test_a_login_on_one_is_honoured_by_the_other(servers: Servers) -> None:
    a, b = servers.urls
    token = _login(a, ADMIN, PASSWORD)
    assert _status(b, token) == 200
    assert _status(a, token) == 200
    assert _status(b, "0" * 64) == 401
    token = _login(b, ADMIN, PASSWORD)
    assert _status(a, token) == 200


def test_a_watch_on_one_sees_writes_through_the_other(servers: Servers) -> None:
    a, b = servers.urls
    with (
        Client(a, ADMIN, PASSWORD, timeout=TIMEOUT) as on_a,
        Client(b, ADMIN, PASSWORD, timeout=TIMEOUT) as on_b,
    ):
        watch_id = on_a.watch_sub(["sp"], dis="it").meta["watchId"]
        assert on_a.watch_poll(watch_id).rows == ()
        on_b.point_write("sp", 8, Number(68, "°F"), who="other server")
        changed = on_a.watch_poll(watch_id)
        assert [r["id"] for r in changed] == [Ref("sp")]
        assert changed[0]["writeVal"] == Number(68, "°F")
        assert on_a.watch_poll(watch_id).rows == ()
        # And the other way round, with the watch polled through b's two workers.
        on_b.watch_sub(["sp"], watch_id=watch_id)
        on_a.point_write("sp", 8, Number(70, "°F"), who="first server")
        changed = on_b.watch_poll(watch_id)
        assert [r["writeVal"] for r in changed] == [Number(70, "°F")]
        on_b.watch_unsub(watch_id, close=True)
        with pytest.raises(CallError, match="unknown or expired watch"):
            on_a.watch_poll(watch_id)


def test_eight_concurrent_writers_lose_nothing(servers: Servers) -> None:
    writers, each, batch = 8, 10_000, 2_000

    def write(k: int) -> int:
        with Client(servers.urls[k % 2], ADMIN, PASSWORD, timeout=TIMEOUT) as client:
            for start in range(0, each, batch):
                slots = [writers * i + k for i in range(start, start + batch)]
                items = [(T0 + dt.timedelta(seconds=n), Number(float(n), "kWh")) for n in slots]
                client.his_write("shared", items)
        return k

    with ThreadPoolExecutor(writers) as pool:
        done = [pool.submit(write, k) for k in range(writers)]
        assert sorted(f.result(timeout=10 * TIMEOUT) for f in done) == list(range(writers))
    for url in servers.urls:
        with Client(url, ADMIN, PASSWORD, timeout=TIMEOUT) as client:
            his = client.his_read("shared", "2026-03-02,2026-03-04")
        got = [(r["ts"].astimezone(dt.UTC), r["val"]) for r in his]
        want = [
            (T0 + dt.timedelta(seconds=n), Number(float(n), "kWh")) for n in range(writers * each)
        ]
        assert len(got) == len(want)
        assert got == want


def test_close_ends_the_session_on_both(servers: Servers) -> None:
    a, b = servers.urls
    with Client(a, ADMIN, PASSWORD, timeout=TIMEOUT) as client:
        token = client.login()
        assert _status(b, token) == 200
        client.close_session()
    assert _status(a, token) == 401
    assert _status(b, token) == 401
    # Closed through the other server: a login on a, the close op on b.
    token = _login(a, ADMIN, PASSWORD)
    headers = {"Authorization": f"BEARER authToken={token}", "Content-Type": "text/zinc"}
    body = zinc.encode_grid(Grid.empty())
    closed = httpx.post(b + "/close", headers=headers, content=body, timeout=TIMEOUT)
    assert closed.status_code == 200
    assert _status(a, token) == 401
    assert _status(b, token) == 401


def test_disabling_a_user_ends_their_sessions_on_both(servers: Servers) -> None:
    a, b = servers.urls
    admin = _login(a, ADMIN, PASSWORD)
    made = _users(a, admin, "POST", username="dana", password="dana-password-1")
    assert made.status_code == 201
    on_a, on_b = _login(a, "dana", "dana-password-1"), _login(b, "dana", "dana-password-1")
    assert [_status(u, t) for u in (a, b) for t in (on_a, on_b)] == [200] * 4
    assert _users(b, admin, "PATCH", "dana", enabled=False).status_code == 200
    assert [_status(u, t) for u in (a, b) for t in (on_a, on_b)] == [401] * 4
    with pytest.raises(CredentialsRejectedError):
        _login(a, "dana", "dana-password-1")
    assert _users(a, admin, "PATCH", "dana", enabled=True).status_code == 200
    assert _status(b, _login(b, "dana", "dana-password-1")) == 200


def test_a_new_password_ends_sessions_on_both(servers: Servers) -> None:
    a, b = servers.urls
    admin = _login(b, ADMIN, PASSWORD)
    made = _users(b, admin, "POST", username="eli", password="eli-password-1")
    assert made.status_code == 201
    on_a, on_b = _login(a, "eli", "eli-password-1"), _login(b, "eli", "eli-password-1")
    assert [_status(u, t) for u in (a, b) for t in (on_a, on_b)] == [200] * 4
    assert _users(a, admin, "PUT", "eli", password="eli-password-2").status_code == 200
    assert [_status(u, t) for u in (a, b) for t in (on_a, on_b)] == [401] * 4
    with pytest.raises(CredentialsRejectedError):
        _login(b, "eli", "eli-password-1")
    assert _status(a, _login(b, "eli", "eli-password-2")) == 200
    # The admin's own session was not touched.
    assert _status(a, admin) == 200


def test_two_workers_serve_as_one(servers: Servers) -> None:
    """b runs two worker processes; requests on fresh connections land on either, and
    every one of them honours a token made on a and sees a's writes."""
    a, b = servers.urls
    workers = [p for p in servers.procs.below(1) if _worker(p)]
    assert len(workers) == 2, workers
    token = _login(a, ADMIN, PASSWORD)
    assert [_status(b, token) for _ in range(20)] == [200] * 20
    value = Number(float(secrets.randbelow(1000)), "°F")
    with Client(a, ADMIN, PASSWORD, timeout=TIMEOUT) as on_a:
        on_a.point_write("sp", 1, value, who="a")
        try:
            for _ in range(10):
                with httpx.Client(timeout=TIMEOUT) as fresh:
                    on_b = Client(b, ADMIN, PASSWORD, http=fresh)
                    row = on_b.read_ids(["sp"])[0]
                    on_b.close_session()
                assert (row["writeVal"], row["writeLevel"]) == (value, Number(1))
        finally:
            on_a.point_write("sp", 1, None)


def _worker(pid: int) -> bool:
    """Whether ``pid`` is a worker (a Python process of multiprocessing's spawn, not its
    resource tracker)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"spawn_main" in part for part in cmdline) and not any(
        b"resource_tracker" in part for part in cmdline
    )
