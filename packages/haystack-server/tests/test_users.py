"""The admin user API, at ``{prefix}/admin/users`` and at haystack-py's ``{prefix}/users/``."""

from __future__ import annotations

import pytest

from projecthaystack.client import AuthenticationError

from .conftest import Live

# (the collection, the prefix of an item, the verb that updates)
PATHS = [("admin/users", "admin/users/", "PATCH"), ("users/", "users/", "PUT")]
paths = pytest.mark.parametrize(("users", "user", "update"), PATHS, ids=["admin", "users"])


@paths
def test_create_list_get_update_delete(live: Live, users: str, user: str, update: str) -> None:
    with live.http("admin") as http:
        made = http.post(
            users,
            json={"username": "carol", "password": "carol-password", "role": "operator"},
        )
        assert made.status_code == 201
        assert made.json()["role"] == "operator" and "password" not in made.text
        names = [u["username"] for u in http.get(users).json()]
        assert names == ["admin", "carol", "op", "viewer"]
        assert http.get(user + "carol").json()["enabled"] is True
        assert "credentials" not in http.get(user + "carol").text
    assert live.client("carol", "carol-password").about()[0]["userRole"] == "operator"
    with live.http("admin") as http:
        assert (
            http.request(update, user + "carol", json={"role": "viewer"}).json()["role"] == "viewer"
        )
    assert live.client("carol", "carol-password").about()[0]["userRole"] == "viewer"
    carol = live.client("carol", "carol-password")
    carol.about()
    with live.http("admin") as http:
        assert (
            http.request(
                update, user + "carol", json={"password": "new-carol-password"}
            ).status_code
            == 200
        )
    # The old token is revoked; the client logs in again with the old password and fails.
    with pytest.raises(AuthenticationError):
        carol.about()
    assert live.client("carol", "new-carol-password").about()[0]["whoami"] == "carol"
    with live.http("admin") as http:
        assert http.delete(user + "carol").status_code == 204
        assert http.get(user + "carol").status_code == 404
        assert http.delete(user + "carol").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "x", "password": "short"}, 400, "8 to 1024"),
        ({"username": "", "password": "long-enough"}, 400, "1 to 64"),
        ({"username": "a,b", "password": "long-enough"}, 400, "without"),
        ({"username": "dave", "password": "long-enough", "role": "god"}, 400, "unknown role"),
        ({"username": "dave", "password": "long-enough", "enabled": "yes"}, 400, "true or false"),
        ({"username": "dave", "password": "long-enough", "extra": 1}, 400, "unknown fields"),
        ({"username": "viewer", "password": "long-enough"}, 409, "already exists"),
        ({"username": 5, "password": "long-enough"}, 400, "string"),
    ],
)
@paths
def test_create_errors(
    live: Live,
    body: dict[str, object],
    status: int,
    message: str,
    users: str,
    user: str,
    update: str,
) -> None:
    with live.http("admin") as http:
        resp = http.post(users, json=body)
    assert resp.status_code == status
    assert message in resp.json()["error"]


@paths
def test_bad_json_and_big_bodies(live: Live, users: str, user: str, update: str) -> None:
    with live.http("admin") as http:
        assert http.post(users, content=b"{not json").status_code == 400
        assert http.post(users, content=b"[1,2]").status_code == 400
        assert http.post(users, content=b'{"username": "' + b"x" * 20000 + b'"}').status_code == 413


@paths
def test_admin_cannot_remove_themself(live: Live, users: str, user: str, update: str) -> None:
    with live.http("admin") as http:
        assert http.delete(user + "admin").status_code == 409
        assert http.request(update, user + "admin", json={"role": "operator"}).status_code == 409
        assert http.request(update, user + "admin", json={"enabled": False}).status_code == 409
        assert http.get(user + "admin").json()["role"] == "admin"


@paths
def test_only_admins_manage_users(live: Live, users: str, user: str, update: str) -> None:
    for who in ("op", "viewer"):
        with live.http(who) as http:
            assert http.get(users).status_code == 403
            assert (
                http.post(users, json={"username": "z", "password": "zzzzzzzzz"}).status_code == 403
            )
            assert http.delete(user + "viewer").status_code == 403
            assert http.request(update, user + "op", json={"role": "admin"}).status_code == 403
    with live.http(None) as http:
        assert http.get(users).status_code == 401
        assert http.get(user + "admin").status_code == 401


def test_both_paths_manage_the_same_users(live: Live) -> None:
    with live.http("admin") as http:
        assert (
            http.post("users/", json={"username": "erin", "password": "erin-password"}).status_code
            == 201
        )
        assert http.get("admin/users/erin").json()["role"] == "viewer"
        assert http.put("admin/users/erin", json={"role": "operator"}).status_code == 200
        assert http.get("users/erin").json()["role"] == "operator"
        assert http.patch("users/erin", json={"enabled": False}).json()["enabled"] is False
        assert http.delete("users/erin").status_code == 204
        assert http.get("admin/users/erin").status_code == 404
