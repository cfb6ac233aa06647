"""The HTTP API chapter's rules, over a real socket."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from projecthaystack.codecs import codec_for_mime, zinc
from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import Grid, Ref, Uri
from projecthaystack.server import (
    MemoryStore,
    ServerConfig,
    ServerLimits,
    Session,
    StoreUnavailableError,
    User,
)

from .conftest import Live

READ_SITES = 'ver:"3.0"\nfilter\n"site"\n'


def test_no_credentials_gets_the_hello_challenge(live: Live) -> None:
    with live.http(None) as http:
        resp = http.get("about")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "HELLO"


def test_get_allowed_only_for_no_side_effect_ops(live: Live) -> None:
    with live.http() as http:
        assert http.get("read", params={"filter": "site"}).status_code == 200
        resp = http.get("hisWrite")
        assert resp.status_code == 405
        assert resp.headers["allow"] == "POST"
        assert http.get("pointWrite").status_code == 405


def test_get_query_values_are_zinc_or_else_str(live: Live) -> None:
    with live.http() as http:
        resp = http.get("read", params={"id": "@s1"})
        grid = zinc.decode_grid(resp.content)
        assert [r["id"] for r in grid] == [Ref("s1", "HQ")]
        resp = http.get("read", params={"filter": 'geoCity == "Richmond"', "limit": "1"})
        assert [r["id"].id for r in zinc.decode_grid(resp.content)] == ["s1"]


def test_get_query_grids_keep_the_grid_rules(live: Live) -> None:
    with live.http() as http:
        # A name that is no tag name: 400, the name quoted.
        resp = http.get("read", params={"Filter": "site"})
        assert resp.status_code == 400
        assert "invalid tag name 'Filter'" in zinc.decode_grid(resp.content).meta["dis"]
        # Zinc's null: no cell (a null limit is no limit); the filter still applies.
        resp = http.get("read", params={"filter": "site", "limit": "N"})
        assert resp.status_code == 200
        assert sorted(r["id"].id for r in zinc.decode_grid(resp.content)) == ["s1", "s2"]
        # A repeated name: the last one counts, as it always did.
        resp = http.get("read", params=[("filter", "equip"), ("filter", "site")])
        assert sorted(r["id"].id for r in zinc.decode_grid(resp.content)) == ["s1", "s2"]
        # A bare "?" is no parameter at all: read says what it needs.
        resp = http.get("read?")
        grid = zinc.decode_grid(resp.content)
        assert resp.status_code == 200 and grid.is_error and "filter" in grid.meta["dis"]


@pytest.mark.parametrize(
    ("accept", "name"),
    [
        (None, "zinc"),
        ("*/*", "zinc"),
        ("text/zinc", "zinc"),
        ("application/json", "json"),
        ("application/vnd.haystack+json;version=4", "json"),
        ("application/vnd.haystack+json;version=3", "json3"),
        ("text/trio", "trio"),
        ("text/csv", "csv"),
        ("text/html;q=0.9, text/csv;q=0.1", "csv"),
    ],
)
def test_responses_follow_accept(live: Live, accept: str | None, name: str) -> None:
    headers = {"Accept": accept} if accept else {}
    with live.http() as http:
        resp = http.get("read", params={"filter": "site"}, headers=headers)
    assert resp.status_code == 200
    codec = codec_for_mime(resp.headers["content-type"])
    assert codec.name == name
    if codec.lossless:
        assert [r["dis"] for r in codec.decode(resp.content)] == ["HQ", "Annex"]
    else:
        assert b"Annex" in resp.content


def test_unsupported_accept_is_406(live: Live) -> None:
    with live.http() as http:
        resp = http.get("about", headers={"Accept": "image/png"})
    assert resp.status_code == 406


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("text/zinc", READ_SITES),
        ("text/zinc; charset=utf-8", READ_SITES),
        (
            "application/json",
            '{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"filter"}],"rows":[{"filter":"site"}]}',
        ),
        (
            "application/vnd.haystack+json;version=3",
            '{"meta":{"ver":"3.0"},"cols":[{"name":"filter"}],"rows":[{"filter":"s:site"}]}',
        ),
        ("text/trio", "filter: site\n"),
    ],
)
def test_post_bodies_in_every_readable_format(live: Live, ctype: str, body: str) -> None:
    with live.http() as http:
        resp = http.post("read", content=body.encode(), headers={"Content-Type": ctype})
    assert resp.status_code == 200, resp.text
    assert len(zinc.decode_grid(resp.content)) == 2


def test_post_without_content_type_is_sniffed_or_400(live: Live) -> None:
    with live.http() as http:
        ok = http.post("read", content=READ_SITES.encode(), headers={"Content-Type": ""})
        assert ok.status_code == 200
        bad = http.post("read", content=b"filter,site", headers={"Content-Type": ""})
        assert bad.status_code == 400


def test_unsupported_content_type_is_415(live: Live) -> None:
    with live.http() as http:
        resp = http.post("read", content=b"<grid/>", headers={"Content-Type": "application/xml"})
    assert resp.status_code == 415
    assert zinc.decode_grid(resp.content).is_error


def test_unreadable_grid_is_400_with_an_error_grid(live: Live) -> None:
    with live.http() as http:
        resp = http.post(
            "read",
            content=b'ver:"3.0"\nfilter\n"unterminated',
            headers={"Content-Type": "text/zinc"},
        )
    assert resp.status_code == 400
    err = zinc.decode_grid(resp.content)
    assert err.is_error and "line 3" in err.meta["dis"]


def test_unknown_op_is_404_and_other_methods_501(live: Live) -> None:
    with live.http() as http:
        assert http.get("nosuchop").status_code == 404
        assert http.put("read", content=b"").status_code == 501
        assert http.delete("read").status_code == 501


def test_request_errors_are_error_grids_without_traces(live: Live) -> None:
    with live.http() as http:
        resp = http.post(
            "read",
            content=b'ver:"3.0"\nfilter\n"site and ("',
            headers={"Content-Type": "text/zinc"},
        )
    assert resp.status_code == 200
    err = zinc.decode_grid(resp.content)
    assert err.is_error and err.meta["dis"].startswith("invalid filter")
    assert "errTrace" not in err.meta


def test_debug_puts_traces_in_error_grids(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(debug=True))
    with live.http() as http:
        resp = http.post(
            "hisRead",
            content=b'ver:"3.0"\nid,range\n@nope,"today"\n',
            headers={"Content-Type": "text/zinc"},
        )
    err = zinc.decode_grid(resp.content)
    assert err.is_error and "OpError" in err.meta["errTrace"]


def test_body_over_the_limit_is_413(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_body=1000)))
    with live.http() as http:
        big = 'ver:"3.0"\nfilter\n"' + "x" * 2000 + '"\n'
        resp = http.post("read", content=big.encode(), headers={"Content-Type": "text/zinc"})
        assert resp.status_code == 413
        # Without a Content-Length (chunked), the limit still holds.
        resp = http.post(
            "read", content=iter([big.encode()]), headers={"Content-Type": "text/zinc"}
        )
        assert resp.status_code == 413


def test_nesting_and_query_parameter_limits(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(limits=ServerLimits(max_depth=3, max_query_params=2)))
    with live.http() as http:
        deep = 'ver:"3.0"\nfilter\n[[[[["site"]]]]]\n'
        resp = http.post("read", content=deep.encode(), headers={"Content-Type": "text/zinc"})
        assert resp.status_code == 400 and "nesting" in zinc.decode_grid(resp.content).meta["dis"]
        resp = http.get("read", params={"a": "1", "b": "2", "c": "3"})
        assert resp.status_code == 400
        assert "too many" in zinc.decode_grid(resp.content).meta["dis"]
        # Repeats of one name are one parameter.
        resp = http.get("read", params=[("filter", "site"), ("filter", "site"), ("limit", "1")])
        assert resp.status_code == 200 and len(zinc.decode_grid(resp.content)) == 1


def test_custom_prefix(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(prefix="/haystack"))
    assert live.url.endswith("/haystack")
    assert live.client().about()[0]["whoami"] == "admin"


def test_root_of_the_prefix_answers_about(live: Live) -> None:
    with live.http() as http:
        resp = http.get("")
    assert resp.status_code == 200
    assert zinc.decode_grid(resp.content)[0]["haystackVersion"] == "4.0"


def test_json_bodies_decode_to_the_same_grid(live: Live) -> None:
    grid = Grid.from_rows([{"id": Ref("t1")}, {"id": Ref("nope")}])
    with live.http() as http:
        resp = http.post(
            "read",
            content=hjson.encode_grid_bytes(grid),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
    got = hjson.decode_grid(resp.content)
    assert got[0]["dis"] == "DAT" and dict(got[1]) == {}


@pytest.mark.parametrize("path", ["about/", "read/", "admin/users/", "ws/", "nosuchop/x"])
@pytest.mark.parametrize("user", [None, "viewer"])
def test_no_redirect_on_a_trailing_slash(live: Live, path: str, user: str | None) -> None:
    with live.http(user) as http:
        resp = http.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert resp.status_code == 404
    assert "location" not in resp.headers
    assert b"evil.example" not in resp.content
    err = zinc.decode_grid(resp.content)
    assert err.is_error and err.meta["dis"] == "not found"


def test_starlettes_405_is_an_error_grid(live: Live) -> None:
    with live.http() as http:
        resp = http.put("")
    assert resp.status_code == 405
    assert "GET" in resp.headers["allow"]
    assert zinc.decode_grid(resp.content).is_error


def test_the_prefix_without_its_slash_answers_like_the_root(live: Live) -> None:
    with httpx.Client(timeout=30) as http:
        resp = http.get(live.url, follow_redirects=False)  # ".../api", no slash
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "HELLO"
    with live.http() as http:
        resp = http.get(live.url, follow_redirects=False)
    assert resp.status_code == 200
    assert zinc.decode_grid(resp.content)[0]["haystackVersion"] == "4.0"


def test_home_says_where_the_api_is(live: Live) -> None:
    home = live.url.removesuffix("/api") + "/"
    with httpx.Client(timeout=30) as http:
        grid = zinc.decode_grid(http.get(home).content)
        page = http.get(home, headers={"Accept": "text/html,*/*;q=0.8"})
    assert grid[0]["api"] == Uri("/api/") and grid[0]["websocket"] == Uri("/api/ws")
    assert page.headers["content-type"].startswith("text/html")
    assert "/api/" in page.text and "password" not in page.text.lower()


class _FailingStore(MemoryStore):
    """A memory store whose session look-up fails once ``failure`` is set."""

    failure: Exception | None = None

    async def authenticate(self, token_hash: str, now: dt.datetime) -> tuple[Session, User] | None:
        if self.failure is not None:
            raise self.failure
        return await super().authenticate(token_hash, now)


def _read_while_authentication_fails(
    make_live, failure: Exception
) -> tuple[httpx.Response, httpx.Response]:  # type: ignore[no-untyped-def]
    """A read whose session look-up raises ``failure``, then an ``about`` once it no
    longer does."""
    store = _FailingStore()
    live = make_live(store=store)
    with live.http() as http:
        store.failure = failure
        resp = http.get("read", params={"filter": "site"})
        store.failure = None
        return resp, http.get("about")


def test_a_store_away_during_authentication_is_a_503_error_grid(make_live) -> None:  # type: ignore[no-untyped-def]
    failover = StoreUnavailableError("the store's cluster is failing over")
    resp, after = _read_while_authentication_fails(make_live, failover)
    assert resp.status_code == 503
    assert zinc.decode_grid(resp.content).meta["dis"].startswith("store unavailable")
    assert after.status_code == 200


def test_an_unexpected_failure_outside_an_op_is_a_500_error_grid_telling_nothing(make_live) -> None:  # type: ignore[no-untyped-def]
    # An op's own failures are error grids (200); a fault before the op runs (here the
    # session look-up) is a 500, still a grid a Haystack client can read, without the
    # exception's text.
    resp, after = _read_while_authentication_fails(make_live, RuntimeError("a secret detail"))
    assert resp.status_code == 500
    assert resp.headers["content-type"].startswith("text/zinc")
    err = zinc.decode_grid(resp.content)
    assert err.is_error and err.meta["dis"] == "internal server error"
    assert b"secret" not in resp.content
    assert after.status_code == 200  # the server goes on
