"""Logins, tokens, roles, throttling, PLAINTEXT and client certificates, over real sockets."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import anyio
import httpx
import pytest

from projecthaystack.auth import (
    ClientHandshake,
    ScramCredentials,
    b64url_decode,
    b64url_encode,
    client_ssl_context,
    parse_auth_header,
)
from projecthaystack.auth.testing import generate_test_pki
from projecthaystack.client import AuthenticationError
from projecthaystack.kinds import Number, Ref
from projecthaystack.server import (
    MemoryStore,
    Role,
    ServerConfig,
    StartupError,
    User,
    create_app,
)
from projecthaystack.server._auth import Authenticator
from projecthaystack.server.testing import serve

from .conftest import ADMIN, Clock, Live


def _hello(http: httpx.Client, user: str) -> httpx.Response:
    return http.get("about", headers={"Authorization": f"HELLO username={b64url_encode(user)}"})


def test_scram_login_gives_a_working_token(live: Live) -> None:
    c = live.client("viewer")
    assert c.about()[0]["whoami"] == "viewer"
    assert c.token is not None
    with httpx.Client(base_url=live.url + "/") as http:
        ok = http.get("about", headers={"Authorization": f"Bearer authToken={c.token}"})
        assert ok.status_code == 200
        bare = http.get("about", headers={"Authorization": f"bearer {c.token}"})
        assert bare.status_code == 200  # the shapes real clients send
        bad = http.get("about", headers={"Authorization": "BEARER authToken=forged"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "HELLO"


def test_eager_client_first_in_hello(live: Live) -> None:
    c = live.client("viewer", hello_with_data=True)
    assert c.about()[0]["whoami"] == "viewer"


def test_wrong_password_and_unknown_user_look_alike(live: Live) -> None:
    with httpx.Client(base_url=live.url + "/") as http:
        known, unknown = _hello(http, "viewer"), _hello(http, "nobody-here")
    assert known.status_code == unknown.status_code == 401
    k = known.headers["www-authenticate"]
    u = unknown.headers["www-authenticate"]
    assert k.split()[0] == u.split()[0] == "SCRAM" and "hash=SHA-256" in k and "hash=SHA-256" in u
    for user, password in (("viewer", "wrong-password"), ("nobody-here", "whatever-pass")):
        with pytest.raises(AuthenticationError):
            live.client(user, password).about()


def _login_at(http: httpx.Client, path: str, user: str, password: str) -> httpx.Response:
    hs = ClientHandshake(user, password)
    step: str | None = hs.hello()
    while step is not None:
        resp = http.get(path, headers={"Authorization": step})
        if resp.status_code not in (200, 401):
            return resp
        step = hs.respond(resp.status_code, resp.headers)
    return resp


def test_login_at_skysparks_path(live: Live) -> None:
    root = live.url.removesuffix("/api")
    with httpx.Client(base_url=root) as http:
        challenge = http.get("/ui")
        assert challenge.status_code == 401 and challenge.headers["www-authenticate"] == "HELLO"
        done = _login_at(http, "/ui", "viewer", "viewer-password")
        assert done.status_code == 200
        token = parse_auth_header(done.headers["authentication-info"]).get("authToken")
        bearer = {"Authorization": f"BEARER authToken={token}"}
        assert http.get("/ui", headers=bearer).status_code == 200
        about = http.get("/api/about", headers={**bearer, "Accept": "application/json"})
        assert about.json()["rows"][0]["whoami"] == "viewer"
        wrong = _login_at(http, "/ui", "viewer", "not-the-password")
        assert wrong.status_code == 403 and "authentication failed" in wrong.text
        for bad in ("SCRAM data=x", "HELLO", "HELLO username=%%%"):
            at_ui = http.get("/ui", headers={"Authorization": bad})
            at_op = http.get("/api/about", headers={"Authorization": bad})
            assert at_ui.status_code == at_op.status_code and 400 <= at_ui.status_code < 500
        assert http.post("/ui").status_code == 405


def test_auth_headers_keep_their_usual_case(make_live) -> None:  # type: ignore[no-untyped-def]
    # pyhaystack looks them up in a plain dict, spelt as SkySpark sends them.  uvicorn's
    # h11 layer keeps the case the app gives; its httptools layer lower-cases every name.
    live = make_live(uvicorn={"http": "h11"})
    host, port = live.url.split("//")[1].split("/")[0].split(":")
    hello = f"GET /ui HTTP/1.1\r\nHost: x\r\nAuthorization: HELLO username={b64url_encode('op')}"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(hello.encode() + b"\r\nConnection: close\r\n\r\n")
        reply = b"".join(iter(lambda: sock.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.1 401") and b"\r\nWWW-Authenticate: SCRAM " in reply


def test_login_paths_can_be_turned_off(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(login_paths=()))
    with httpx.Client(base_url=live.url.removesuffix("/api")) as http:
        assert http.get("/ui").status_code == 404


def test_close_revokes_the_token(live: Live) -> None:
    c = live.client("viewer")
    c.about()
    token = c.token
    c.close_session()
    with httpx.Client(base_url=live.url + "/") as http:
        resp = http.get("about", headers={"Authorization": f"BEARER authToken={token}"})
    assert resp.status_code == 401


def test_tokens_expire(make_live, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(token_ttl=dt.timedelta(seconds=1), clock=clock))
    token = live.token("viewer")
    clock.advance(1.2)
    with httpx.Client(base_url=live.url + "/") as http:
        assert (
            http.get("about", headers={"Authorization": f"BEARER authToken={token}"}).status_code
            == 401
        )
    # Our client logs in again by itself.
    c = live.client("viewer")
    c.about()
    clock.advance(1.2)
    assert c.about()[0]["whoami"] == "viewer"


def test_handshakes_expire_and_are_single_use(make_live, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(handshake_ttl=dt.timedelta(seconds=60), clock=clock))
    with httpx.Client(base_url=live.url + "/") as http:
        hs = ClientHandshake("viewer", "viewer-password")
        first = http.get("about", headers={"Authorization": hs.hello()})
        step = hs.respond(first.status_code, first.headers)
        assert step is not None
        clock.advance(61)
        late = http.get("about", headers={"Authorization": step})
        assert late.status_code == 403
        # Within its time a handshake finishes once; its final message replayed is refused.
        hs = ClientHandshake("viewer", "viewer-password")
        reply = http.get("about", headers={"Authorization": hs.hello()})
        step = hs.respond(reply.status_code, reply.headers)
        assert step is not None
        reply = http.get("about", headers={"Authorization": step})
        final = hs.respond(reply.status_code, reply.headers)
        assert final is not None
        assert http.get("about", headers={"Authorization": final}).status_code == 200
        assert http.get("about", headers={"Authorization": final}).status_code == 403


def test_failed_proofs_are_throttled_per_user_and_address(make_live) -> None:  # type: ignore[no-untyped-def]
    live = make_live(ServerConfig(max_failures_per_user=2, max_failures_per_client=100))
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            live.client("viewer", "wrong-password").about()
    with httpx.Client(base_url=live.url + "/") as http:
        resp = _hello(http, "viewer")
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
    # Throttled for this user from this address only: another user still logs in.
    assert live.client("op").about()[0]["whoami"] == "op"


def test_a_flood_of_half_open_handshakes_stores_nothing_and_locks_no_one_out() -> None:
    """10,000 HELLOs (half of them followed by a client-first message) from 300
    addresses: the store is never written to, and a login from a fresh address works."""

    async def run() -> None:
        store = MemoryStore()
        await store.create_user(
            User("amy", Role.VIEWER, ScramCredentials.derive("amy-password", iterations=4096))
        )
        config = ServerConfig(secret=b"a secret of thirty-two bytes...!")
        auth = Authenticator(Spy(store), config, config.secret or b"")  # type: ignore[arg-type]
        now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        spy = auth._store
        assert isinstance(spy, Spy)
        for i in range(10_000):
            client = f"10.0.{i % 300 // 256}.{i % 256}"
            user = ("amy", f"user{i}")[i % 2]
            hs = ClientHandshake(user, "guess")
            step = await auth.login(hs.hello(), client=client, tls=False, now=now)
            assert step.status == 401
            if i % 2:
                first = hs.respond(step.status, step.headers)
                assert first is not None
                step = await auth.login(first, client=client, tls=False, now=now)
                assert step.status == 401
        assert set(spy.calls) == {"get_user", "throttle"}
        assert spy.recorded == 0  # no throttle call counted anything
        assert not store._b.claims and not store._b.attempts and not store._b.sessions
        hs = ClientHandshake("amy", "amy-password")
        value: str | None = hs.hello()
        while value is not None:
            step = await auth.login(value, client="192.0.2.7", tls=False, now=now)
            value = hs.respond(step.status, step.headers)
        assert hs.token is not None
        assert len(store._b.sessions) == 1 and len(store._b.claims) == 1

    anyio.run(run)


class Spy:
    """A store that notes the calls made to it."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.calls: dict[str, int] = {}
        self.recorded = 0

    def __getattr__(self, name: str) -> object:
        method = getattr(self._store, name)

        async def call(*args: object, **kwargs: object) -> object:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "throttle" and kwargs.get("record", True):
                self.recorded += 1
            return await method(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    "header",
    [
        "HELLO",
        "HELLO username=",
        "SCRAM data=abc",
        "SCRAM handshakeToken=nope, data=abc",
        "NEGOTIATE x",
        "HELLO username=!!!",
    ],
)
def test_malformed_auth_messages_are_4xx(live: Live, header: str) -> None:
    with httpx.Client(base_url=live.url + "/") as http:
        resp = http.get("about", headers={"Authorization": header})
    assert resp.status_code in (400, 401, 403)


def test_plaintext_refused_without_tls(live: Live) -> None:
    with httpx.Client(base_url=live.url + "/") as http:
        plain = http.get(
            "about",
            headers={
                "Authorization": f"PLAINTEXT username={b64url_encode('viewer')}, password={b64url_encode('viewer-password')}"
            },
        )
        assert plain.status_code == 403
        basic = http.get("about", auth=("viewer", "viewer-password"))
        assert basic.status_code == 403


# -- roles ----------------------------------------------------------------------------------


def test_viewers_read_but_do_not_write(live: Live) -> None:
    viewer = live.client("viewer")
    assert len(viewer.read("site")) == 2
    assert len(viewer.point_write_array(Ref("sp1"))) == 17
    with httpx.Client(
        base_url=live.url + "/",
        headers={"Authorization": f"BEARER authToken={live.token('viewer')}"},
    ) as http:
        for op, body in (
            ("hisWrite", 'ver:"3.0" id:@t1\nts,val\n'),
            ("pointWrite", 'ver:"3.0"\nid,level,val\n@sp1,8,70°F\n'),
            ("watchSub", 'ver:"3.0"\nid\n@t1\n'),
            ("invokeAction", 'ver:"3.0" id:@sp1 action:"release"\nempty\n'),
        ):
            resp = http.post(op, content=body.encode(), headers={"Content-Type": "text/zinc"})
            assert resp.status_code == 403, op
    op_client = live.client("op")
    op_client.point_write(Ref("sp1"), 8, Number(70, "°F"))
    with httpx.Client(
        base_url=live.url + "/", headers={"Authorization": f"BEARER authToken={live.token('op')}"}
    ) as http:
        assert http.get("admin/users").status_code == 403


# -- startup --------------------------------------------------------------------------------


def test_refuses_to_start_without_an_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAYSTACK_ADMIN_PASSWORD", raising=False)
    app = create_app(MemoryStore())

    async def start() -> None:
        await app.state.haystack.start()

    with pytest.raises(StartupError, match="no admin user"):
        anyio.run(start)


def test_admin_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAYSTACK_ADMIN_USER", "root")
    monkeypatch.setenv("HAYSTACK_ADMIN_PASSWORD", "root-password-123")
    store = MemoryStore()
    app = create_app(store)
    anyio.run(app.state.haystack.start)
    root = anyio.run(store.get_user, "root")
    assert root is not None and root.role is Role.ADMIN
    assert root.credentials.verify_password("root-password-123")


def test_admin_password_must_be_sensible() -> None:
    app = create_app(MemoryStore(), admin=("admin", "short"))
    with pytest.raises(StartupError, match="password: a password must be 8 to 1024"):
        anyio.run(app.state.haystack.start)


def test_shared_secret_makes_unknown_users_stable_across_workers() -> None:
    # Two apps over one store stand for two workers: an unknown user's salt must match.
    store = MemoryStore()
    config = ServerConfig(secret=b"0123456789abcdef0123456789abcdef")
    apps = [create_app(store, config=config, admin=ADMIN) for _ in range(2)]
    with serve(apps[0]) as url_a, serve(apps[1]) as url_b:
        urls = [url_a, url_b]
        salts = []
        for url in urls:
            hs = ClientHandshake("ghost", "pw-pw-pw-pw")
            with httpx.Client(base_url=url + "/") as http:
                first = http.get("about", headers={"Authorization": hs.hello()})
                step = hs.respond(first.status_code, first.headers)
                assert step is not None
                second = http.get("about", headers={"Authorization": step})
                challenge = parse_auth_header(second.headers["www-authenticate"])
                salts.append(challenge.get("data") or "")
        decoded = [b64url_decode(s).decode().split(",")[1] for s in salts]
        assert decoded[0] == decoded[1] and decoded[0].startswith("s=")
        # A login begun on one worker finishes on the other (the store holds the handshake).
        hs = ClientHandshake("admin", ADMIN[1])
        with httpx.Client() as http:
            header = hs.hello()
            for i in range(4):
                resp = http.get(f"{urls[i % 2]}/about", headers={"Authorization": header})
                nxt = hs.respond(resp.status_code, resp.headers)
                if nxt is None:
                    break
                header = nxt
        assert hs.token is not None
        with httpx.Client() as http:
            resp = http.get(
                f"{urls[1]}/about", headers={"Authorization": f"BEARER authToken={hs.token}"}
            )
        assert resp.status_code == 200


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path):  # type: ignore[no-untyped-def]
    return generate_test_pki(client_name="op").write(tmp_path)


def _tls_server(make_live, paths, config: ServerConfig) -> Live:  # type: ignore[no-untyped-def]
    from projecthaystack.server import tls_protocols

    uv = {
        "ssl_certfile": str(paths["server_cert"]),
        "ssl_keyfile": str(paths["server_key"]),
        "ssl_ca_certs": str(paths["ca"]),
        "ssl_cert_reqs": ssl.CERT_OPTIONAL,
        **tls_protocols(),
    }
    return make_live(config, uvicorn=uv)  # type: ignore[no-any-return]


def test_client_certificate_logs_in(make_live, pki) -> None:  # type: ignore[no-untyped-def]
    live = _tls_server(make_live, pki, ServerConfig())
    ctx = client_ssl_context(
        cafile=pki["ca"], certfile=pki["client_cert"], keyfile=pki["client_key"]
    )
    with httpx.Client(verify=ctx) as http:
        resp = http.get(live.url + "/about")
    assert resp.status_code == 200
    assert b'"op"' in resp.content  # whoami, with no Authorization header at all
    plain_ctx = client_ssl_context(cafile=pki["ca"])
    with httpx.Client(verify=plain_ctx) as http:
        assert http.get(live.url + "/about").status_code == 401


def test_plaintext_and_basic_over_tls_when_enabled(make_live, pki) -> None:  # type: ignore[no-untyped-def]
    live = _tls_server(make_live, pki, ServerConfig(allow_plaintext=True))
    ctx = client_ssl_context(cafile=pki["ca"])
    with httpx.Client(verify=ctx, base_url=live.url + "/") as http:
        resp = http.get(
            "about",
            headers={
                "Authorization": f"PLAINTEXT username={b64url_encode('viewer')}, password={b64url_encode('viewer-password')}"
            },
        )
        assert resp.status_code == 200 and "authToken=" in resp.headers["authentication-info"]
        assert http.get("about", auth=("viewer", "viewer-password")).status_code == 200
        assert http.get("about", auth=("viewer", "wrong-password")).status_code == 403
        assert http.get("about", auth=("nobody", "wrong-password")).status_code == 403


def test_disabled_user_cannot_log_in_and_loses_tokens(live: Live) -> None:
    token = live.token("viewer")
    creds = ScramCredentials.derive("viewer-password", iterations=4096)
    with live.http("admin") as http:
        assert http.patch("admin/users/viewer", json={"enabled": False}).status_code == 200
    with httpx.Client(base_url=live.url + "/") as http:
        assert (
            http.get("about", headers={"Authorization": f"BEARER authToken={token}"}).status_code
            == 401
        )
    with pytest.raises(AuthenticationError):
        live.client("viewer", "viewer-password").about()
    del creds
    anyio.run(
        live.store.create_user,
        User(
            "v2",
            Role.VIEWER,
            ScramCredentials.derive("v2-password", iterations=4096),
            enabled=False,
        ),
    )
    with pytest.raises(AuthenticationError):
        live.client("v2", "v2-password").about()
