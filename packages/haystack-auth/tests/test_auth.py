import base64
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

import projecthaystack.auth as auth
import projecthaystack.auth.testing as testing
from projecthaystack.auth import (
    AuthHeader,
    AuthProtocolError,
    ClientHandshake,
    CredentialsRejectedError,
    ScramClient,
    ScramCredentials,
    ScramServerExchange,
    ServerAuth,
    ServerSignatureError,
    UnsupportedMechanismError,
    b64url_decode,
    b64url_encode,
    client_ssl_context,
    fake_credentials,
    format_auth_header,
    format_bearer,
    identity_from_der,
    parse_auth_header,
    parse_bearer,
    saslprep,
    server_ssl_context,
)
from projecthaystack.auth.testing import generate_test_pki
from projecthaystack.kinds import HaystackError

# RFC 7677, section 3.
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_SERVER_FIRST = f"r={RFC_NONCE}{RFC_SERVER_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (
    f"c=biws,r={RFC_NONCE}{RFC_SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SECRET = b"0123456789abcdef0123456789abcdef"


def test_public_names_are_pinned():
    assert sorted(auth.__all__) == sorted(
        [
            "DEFAULT_ITERATIONS",
            "HASHES",
            "AuthError",
            "AuthHeader",
            "AuthProtocolError",
            "CredentialsRejectedError",
            "CertIdentity",
            "ClientHandshake",
            "ScramClient",
            "ScramCredentials",
            "ScramServerExchange",
            "ServerAuth",
            "ServerReply",
            "ServerSignatureError",
            "UnsupportedMechanismError",
            "b64url_decode",
            "b64url_encode",
            "client_ssl_context",
            "fake_credentials",
            "format_auth_header",
            "format_bearer",
            "identity_from_der",
            "identity_from_ssl",
            "parse_auth_header",
            "parse_bearer",
            "saslprep",
            "server_ssl_context",
        ]
    )
    assert issubclass(CredentialsRejectedError, HaystackError)
    assert issubclass(AuthProtocolError, ValueError)
    for name in auth.__all__:
        obj = getattr(auth, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "projecthaystack.auth", name
    assert sorted(testing.__all__) == ["TestPKI", "generate_test_pki"]
    assert testing.TestPKI.__module__ == "projecthaystack.auth.testing"


def test_a_bad_server_signature_is_not_a_wrong_password():
    assert not issubclass(ServerSignatureError, CredentialsRejectedError)
    assert not issubclass(CredentialsRejectedError, ServerSignatureError)


def test_importing_auth_does_not_import_cryptography():
    code = (
        "import sys, projecthaystack.auth, projecthaystack.auth.testing;"
        "assert 'cryptography' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_handshakes_load_on_first_use():
    # A client imports the package for its error classes; SCRAM, the handshakes, SASLprep
    # and the SSL contexts (ssl, hashlib, secrets) wait for the first use of their names.
    private = [f"projecthaystack.auth.{m}" for m in ("_http", "_scram", "_handshakes", "_tls")]
    code = (
        "import sys, projecthaystack.auth as a\n"
        f"private = {private!r}\n"
        "assert not [m for m in private + ['ssl'] if m in sys.modules], 'loaded early'\n"
        "assert {'ClientHandshake', 'ScramCredentials', 'saslprep'} <= set(dir(a))\n"
        "from projecthaystack.auth import ClientHandshake\n"
        "assert ClientHandshake.__module__ == 'projecthaystack.auth'\n"
        "assert 'projecthaystack.auth._http' in sys.modules\n"
        "assert 'ssl' not in sys.modules and a.client_ssl_context().check_hostname\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="Nope"):
        auth.Nope  # noqa: B018


def test_reading_a_certificate_without_cryptography_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ImportError, match=r"identity_from_der needs .*\[tls\] extra"):
        identity_from_der(b"0")
    with pytest.raises(ImportError, match=r"generate_test_pki needs .*\[tls\] extra"):
        generate_test_pki()


def test_rfc7677_vector_client_side():
    client = ScramClient("user", "pencil", nonce=RFC_NONCE)
    assert client.client_first() == f"n,,n=user,r={RFC_NONCE}"
    assert client.client_final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify_server_final(RFC_SERVER_FINAL)


def test_rfc7677_vector_server_side():
    creds = ScramCredentials.derive("pencil", salt=RFC_SALT, iterations=4096)
    exchange = ScramServerExchange.start(f"n,,n=user,r={RFC_NONCE}", creds, nonce=RFC_SERVER_NONCE)
    assert exchange.server_first == RFC_SERVER_FIRST
    assert exchange.finish(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    again = ScramServerExchange.from_dict(exchange.to_dict())
    assert again == exchange and again.finish(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL


def test_tampered_proofs_and_wrong_passwords_fail():
    creds = ScramCredentials.derive("pencil", salt=RFC_SALT, iterations=4096)
    exchange = ScramServerExchange.start(f"n,,n=user,r={RFC_NONCE}", creds, nonce=RFC_SERVER_NONCE)
    proof = RFC_CLIENT_FINAL.rsplit("=", 2)
    tampered = (
        RFC_CLIENT_FINAL[:-10]
        + ("A" if RFC_CLIENT_FINAL[-10] != "A" else "B")
        + RFC_CLIENT_FINAL[-9:]
    )
    with pytest.raises(CredentialsRejectedError):
        exchange.finish(tampered)
    wrong = ScramClient("user", "pencils", nonce=RFC_NONCE)
    with pytest.raises(CredentialsRejectedError):
        exchange.finish(wrong.client_final(RFC_SERVER_FIRST))
    with pytest.raises(CredentialsRejectedError, match="nonce"):
        exchange.finish(RFC_CLIENT_FINAL.replace(RFC_NONCE, "x" * len(RFC_NONCE)))
    with pytest.raises(AuthProtocolError, match="no proof"):
        exchange.finish("c=biws,r=abc")
    with pytest.raises(CredentialsRejectedError):
        exchange.finish(RFC_CLIENT_FINAL[: RFC_CLIENT_FINAL.index(",p=")] + ",p=AAAA")
    assert proof


def test_wrong_server_signature_is_detected():
    client = ScramClient("user", "pencil", nonce=RFC_NONCE)
    client.client_final(RFC_SERVER_FIRST)
    with pytest.raises(ServerSignatureError, match="impostor"):
        client.verify_server_final("v=" + base64.b64encode(b"x" * 32).decode())
    with pytest.raises(ServerSignatureError, match="no signature"):
        client.verify_server_final("x=1")
    with pytest.raises(CredentialsRejectedError, match="other-error"):
        client.verify_server_final("e=other-error")
    fresh = ScramClient("user", "pencil")
    with pytest.raises(AuthProtocolError):
        fresh.verify_server_final(RFC_SERVER_FINAL)


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        ("r=someoneelse,s=AAAA,i=4096", "does not extend"),
        (f"r={RFC_NONCE},s=AAAA,i=4096", "does not extend"),
        (f"r={RFC_NONCE}x,s=AAAA", "lacks r, s or i"),
        (f"r={RFC_NONCE}x,s=AAAA,i=many", "invalid iteration"),
        (f"r={RFC_NONCE}x,s=AAAA,i=100000000", "outside the accepted range"),
        (f"r={RFC_NONCE}x,s=AAAA,i=1", "outside the accepted range"),
        (f"m=ext,r={RFC_NONCE}x,s=AAAA,i=4096", "extension"),
        ("garbage", "malformed"),
    ],
)
def test_client_rejects_hostile_server_first(server_first, message):
    client = ScramClient("user", "pencil", nonce=RFC_NONCE)
    with pytest.raises(AuthProtocolError, match=message):
        client.client_final(server_first)


@pytest.mark.parametrize(
    ("client_first", "error", "message"),
    [
        ("x=user,r=abc", AuthProtocolError, "gs2"),
        ("user,r=abc", AuthProtocolError, "gs2"),
        ("p=tls-unique,,n=user,r=abc", UnsupportedMechanismError, "channel binding"),
        ("n,,r=abc", AuthProtocolError, "lacks n or r"),
        ("n,,n=user,r=a,b", AuthProtocolError, "malformed"),
        ("n,,n=us=3Xer,r=abc", AuthProtocolError, "escape"),
        ("n,,m=x,n=user,r=abc", AuthProtocolError, "extensions"),
        ("n,,n=user,r=ab\x7fc", AuthProtocolError, "nonce"),
    ],
)
def test_server_rejects_malformed_client_first(client_first, error, message):
    creds = ScramCredentials.derive("pencil", iterations=4096)
    with pytest.raises(error, match=message):
        ScramServerExchange.start(client_first, creds)


def test_user_names_are_escaped_and_prepared():
    client = ScramClient("a=b,c", "pw")
    assert client.client_first().startswith("n,,n=a=3Db=2Cc,r=")
    _, _, user, _ = ScramServerExchange.parse_client_first(client.client_first())
    assert user == "a=b,c"
    assert (
        saslprep("I\u00adX") == "IX"
        and saslprep("\u2168") == "IX"
        and saslprep("a\u00a0b") == "a b"
    )
    with pytest.raises(AuthProtocolError):
        saslprep("a\x07b")
    with pytest.raises(AuthProtocolError):
        saslprep("\u0627a")  # right-to-left mixed with left-to-right


def test_credentials():
    creds = ScramCredentials.derive("pencil", iterations=4096)
    assert creds.verify_password("pencil") and not creds.verify_password("pencil ")
    assert ScramCredentials.from_dict(creds.to_dict()) == creds
    assert creds.hash == "SHA-256" and len(creds.salt) == 16
    other = ScramCredentials.derive("pencil", iterations=4096)
    assert other.salt != creds.salt and other.stored_key != creds.stored_key
    with pytest.raises(UnsupportedMechanismError):
        ScramCredentials.derive("x", hash="MD5")
    sha512 = ScramCredentials.derive("pencil", hash="sha-512", iterations=4096)
    assert sha512.hash == "SHA-512" and len(sha512.stored_key) == 64


def test_fake_credentials_are_stable_and_match_nothing():
    a, b = fake_credentials("ghost", SECRET), fake_credentials("ghost", SECRET)
    assert a == b and a != fake_credentials("other", SECRET)
    assert a != fake_credentials("ghost", SECRET[::-1])
    assert not a.verify_password("") and not a.verify_password("ghost")


def test_base64url():
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b64url_decode("+/8=") == b"\xfb\xff"
    for bad in ("a", "a!bc"):
        with pytest.raises(AuthProtocolError):
            b64url_decode(bad)


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("value", "scheme", "params", "token68"),
    [
        ("HELLO username=dXNlcg", "HELLO", {"username": "dXNlcg"}, None),
        (
            "SCRAM hash=SHA-256, handshakeToken=aabbcc",
            "SCRAM",
            {"hash": "SHA-256", "handshakeToken": "aabbcc"},
            None,
        ),
        ("scram handshakeToken=a,data=b==", "SCRAM", {"handshakeToken": "a", "data": "b=="}, None),
        ("authToken=xxyyzz", "", {"authToken": "xxyyzz"}, None),
        (
            "authToken=xx, hash=SHA-256, data=dj0x",
            "",
            {"authToken": "xx", "hash": "SHA-256", "data": "dj0x"},
            None,
        ),
        ("Bearer abc.def", "BEARER", {}, "abc.def"),
        ('SCRAM hash="SHA-256"', "SCRAM", {"hash": "SHA-256"}, None),
        ("PLAINTEXT", "PLAINTEXT", {}, None),
        ("Basic dXNlcjpwYXNz", "BASIC", {}, "dXNlcjpwYXNz"),
    ],
)
def test_parse_auth_header(value, scheme, params, token68):
    header = parse_auth_header(value)
    assert (header.scheme, dict(header.params), header.token68) == (scheme, params, token68)


def test_header_errors_and_bearer():
    with pytest.raises(AuthProtocolError):
        parse_auth_header("SCRAM a=b, broken")
    with pytest.raises(AuthProtocolError):
        parse_auth_header("SCRAM " + "a=b," * 5000)
    with pytest.raises(AuthProtocolError):
        format_auth_header("X", a="has space")
    assert format_bearer("tok") == "BEARER authToken=tok"
    for value in (
        "BEARER authToken=tok",
        "Bearer authToken=tok",
        "bearer tok",
        "Bearer  authtoken=tok",
        "BEARER authToken=tok, hash=SHA-256",  # more parameters: the general parser
        'BEARER authToken="tok"',
    ):
        assert parse_bearer(value) == "tok", value
    assert parse_bearer("SCRAM data=x") is None and parse_bearer("Bearer a=b, ,,x") is None
    # What the quick path must not take as a token.
    for value in ("BEARER authToken=", "BEARER authToken=a b", "BEARERX authToken=tok", "Bearer"):
        assert parse_bearer(value) is None, value


# --------------------------------------------------------------------------- client <-> server


class _Server:
    """A minimal server loop over ServerAuth, as the server package runs it: nothing is
    kept of a handshake but the replay record of a completed proof."""

    def __init__(
        self,
        users: dict[str, ScramCredentials],
        *,
        plaintext: bool = False,
        hash: str = "SHA-256",
        clock: Callable[[], float] = time.time,
    ):
        self.auth = ServerAuth(users.get, SECRET, allow_plaintext=plaintext, hash=hash, clock=clock)
        self.claimed: set[str] = set()
        self.tokens: dict[str, str] = {}

    def request(self, authorization: str, *, tls: bool = False) -> tuple[int, dict[str, str]]:
        header = parse_auth_header(authorization)
        try:
            if header.scheme == "HELLO":
                reply = self.auth.hello(header)
            elif header.scheme == "SCRAM":
                reply = self.auth.scram(header)
            elif header.scheme == "PLAINTEXT":
                reply = self.auth.plaintext(header, tls=tls)
            else:
                return 400, {}
        except (CredentialsRejectedError, AuthProtocolError, UnsupportedMechanismError):
            return 403, {}
        if reply.replay_key is not None:
            if reply.replay_key in self.claimed:
                return 403, {}
            self.claimed.add(reply.replay_key)
        headers = dict(reply.headers)
        if reply.username is not None:
            token = f"token-{len(self.tokens)}"
            self.tokens[token] = reply.username
            info = headers.get("Authentication-Info")
            headers["Authentication-Info"] = f"authToken={token}" + (f", {info}" if info else "")
        return reply.status, headers


def _login(
    server: _Server, handshake: ClientHandshake, *, tls: bool = False, max_steps: int = 6
) -> str:
    value: str | None = handshake.hello()
    for _ in range(max_steps):
        status, headers = server.request(value, tls=tls)
        value = handshake.respond(status, headers)
        if value is None:
            assert handshake.token is not None
            return handshake.token
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize("hash_name", ["SHA-256", "SHA-512"])
def test_full_scram_login(hash_name):
    users = {"user": ScramCredentials.derive("pencil", hash=hash_name, iterations=4096)}
    server = _Server(users, hash=hash_name)
    token = _login(server, ClientHandshake("user", "pencil"))
    assert server.tokens[token] == "user"


def test_hello_with_data_for_eager_servers():
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    handshake = ClientHandshake("user", "pencil", hello_with_data=True)
    assert handshake.hello().startswith("HELLO username=dXNlcg, data=")
    assert server.tokens[_login(server, handshake)] == "user"


def test_padded_base64_for_servers_that_want_it():
    # rusty-haystack refuses the spec's unpadded base64url; our server reads both.
    server = _Server({"op": ScramCredentials.derive("pencil", iterations=4096)})
    handshake = ClientHandshake("op", "pencil", pad_base64=True, hello_with_data=True)
    hello = handshake.hello()
    assert hello.startswith("HELLO username=b3A=, data=")
    assert server.tokens[_login(server, handshake)] == "op"


@pytest.mark.parametrize("nonce_length", [20, 21, 22])
@pytest.mark.parametrize("pad", [True, False])
def test_the_server_pads_only_for_a_client_that_pads(nonce_length, pad):
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    _, headers = server.request("HELLO username=" + b64url_encode("user"))
    token = parse_auth_header(headers["WWW-Authenticate"]).get("handshakeToken")
    client = ScramClient("user", "pencil", nonce="n" * nonce_length)
    first = base64.urlsafe_b64encode(client.client_first().encode()).decode()
    first = first if pad else first.rstrip("=")
    _, headers = server.request(f"SCRAM handshakeToken={token}, data={first}")
    first_answer = parse_auth_header(headers["WWW-Authenticate"]).get("data") or ""
    assert (len(first_answer) % 4 == 0) if first.endswith("=") else ("=" not in first_answer)
    server_first = b64url_decode(first_answer)
    final = base64.urlsafe_b64encode(client.client_final(server_first.decode()).encode()).decode()
    data = final if pad else final.rstrip("=")
    status, headers = server.request(f"SCRAM handshakeToken={token}, data={data}")
    answer = parse_auth_header(headers["Authentication-Info"]).get("data") or ""
    client.verify_server_final(b64url_decode(answer).decode())
    # A SHA-256 server-final is 46 bytes, which base64 fills out with two '='; only a
    # client whose own message showed padding gets them.
    assert status == 200 and answer.endswith("==") == data.endswith("=")


def test_rfc7677_vector_without_the_gs2_header():
    # pyhaystack sends the bare client-first; it means "no channel binding".
    creds = ScramCredentials.derive("pencil", salt=RFC_SALT, iterations=4096)
    exchange = ScramServerExchange.start(f"n=user,r={RFC_NONCE}", creds, nonce=RFC_SERVER_NONCE)
    assert exchange.server_first == RFC_SERVER_FIRST
    assert exchange.finish(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    # ... and then a client-final that claims channel binding is still refused.
    tampered = RFC_CLIENT_FINAL.replace("c=biws", "c=" + b64url_encode("y,,"))
    with pytest.raises(AuthProtocolError, match="channel binding"):
        exchange.finish(tampered)


def test_a_pyhaystack_style_exchange():
    """Data first in the challenge, a bare client-first, a lower-case final message and
    a proof in padded standard base64 with a trailing newline."""
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    status, headers = server.request("HELLO username=" + b64url_encode("user"))
    token = parse_auth_header(headers["WWW-Authenticate"]).get("handshakeToken")
    client = ScramClient("user", "pencil")
    bare = client.client_first().removeprefix("n,,")
    status, headers = server.request(f"SCRAM handshakeToken={token}, data={b64url_encode(bare)}")
    challenge = headers["WWW-Authenticate"]
    assert status == 401 and challenge.startswith("SCRAM data=")
    server_first = b64url_decode(parse_auth_header(challenge).get("data") or "").decode()
    final = client.client_final(server_first)
    without_proof, _, proof = final.rpartition(",p=")
    proof = base64.b64encode(b64url_decode(proof)).decode() + "\n"
    data = b64url_encode(f"{without_proof},p={proof}")
    status, headers = server.request(f"scram handshaketoken={token},data={data}")
    issued = parse_auth_header(headers["Authentication-Info"]).get("authToken")
    assert status == 200 and server.tokens[issued or ""] == "user"


def test_the_handshake_token_is_kept_through_the_exchange():
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    handshake = ClientHandshake("user", "pencil")
    first = server.request(handshake.hello())
    token = parse_auth_header(first[1]["WWW-Authenticate"]).get("handshakeToken")
    assert token is not None and set(token) <= set("0123456789abcdef")
    step = handshake.respond(first[0], first[1])
    assert step is not None
    second = server.request(step)
    assert parse_auth_header(second[1]["WWW-Authenticate"]).get("handshakeToken") == token


def test_wrong_password_and_unknown_user_look_alike():
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    with pytest.raises(CredentialsRejectedError):
        _login(server, ClientHandshake("user", "wrong"))
    with pytest.raises(CredentialsRejectedError):
        _login(server, ClientHandshake("nobody", "pencil"))
    known = server.request(ClientHandshake("user", "x").hello())
    unknown = server.request(ClientHandshake("nobody", "x").hello())
    assert known[0] == unknown[0] == 401
    assert (
        parse_auth_header(known[1]["WWW-Authenticate"]).params.keys()
        == parse_auth_header(unknown[1]["WWW-Authenticate"]).params.keys()
    )
    # The unknown user's salt is the same every time, like a real user's.
    firsts = []
    for _ in range(2):
        hs = ClientHandshake("nobody", "x")
        _, headers = server.request(hs.hello())
        nxt = hs.respond(401, headers)
        _, headers = server.request(nxt)
        data = parse_auth_header(headers["WWW-Authenticate"]).get("data")
        firsts.append(b64url_decode(data).decode().split(",", 1)[1])
    assert firsts[0] == firsts[1]


def test_replayed_client_final_is_refused():
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    hs = ClientHandshake("user", "pencil")
    _, h1 = server.request(hs.hello())
    second = hs.respond(401, h1)
    _, h2 = server.request(second)
    final = hs.respond(401, h2)
    assert server.request(final)[0] == 200
    assert server.request(final)[0] == 403  # the handshake was used up


def test_client_checks_the_server_signature():
    users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    server = _Server(users)
    hs = ClientHandshake("user", "pencil")
    _, h1 = server.request(hs.hello())
    _, h2 = server.request(hs.respond(401, h1))
    status, h3 = server.request(hs.respond(401, h2))
    forged = (
        h3["Authentication-Info"].split(", data=")[0]
        + ", data="
        + b64url_encode("v=" + base64.b64encode(b"y" * 32).decode())
    )
    with pytest.raises(ServerSignatureError):
        hs.respond(status, {"Authentication-Info": forged})
    hs2 = ClientHandshake("user", "pencil")
    _, g1 = server.request(hs2.hello())
    _, g2 = server.request(hs2.respond(401, g1))
    server.request(hs2.respond(401, g2))
    with pytest.raises(ServerSignatureError, match="no signature"):
        hs2.respond(200, {"Authentication-Info": "authToken=abc"})
    early = ClientHandshake("user", "pencil")
    early.hello()
    early.respond(401, {"WWW-Authenticate": "SCRAM hash=SHA-256, handshakeToken=t"})
    with pytest.raises(AuthProtocolError, match="before the SCRAM proof"):
        early.respond(200, {"Authentication-Info": "authToken=abc"})


def test_client_tolerates_padding_and_quirks():
    users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    server = _Server(users)
    hs = ClientHandshake("user", "pencil")
    _, h1 = server.request(hs.hello())
    _, h2 = server.request(hs.respond(401, h1))
    # Re-encode the server's data with padding and the standard alphabet, as some servers do.
    header = parse_auth_header(h2["WWW-Authenticate"])
    raw = b64url_decode(header.get("data"))
    padded = base64.b64encode(raw).decode()
    h2 = {
        "www-authenticate": f"scram handshakeToken={header.get('handshakeToken')}, hash=SHA-256, data={padded}"
    }
    status, h3 = server.request(hs.respond(401, h2))
    info = parse_auth_header(h3["Authentication-Info"])
    final_padded = base64.b64encode(b64url_decode(info.get("data"))).decode()
    hs.respond(
        status,
        {
            "Authentication-Info": f"authToken={info.get('authToken')}, hash=SHA-256, data={final_padded}"
        },
    )
    assert hs.token == info.get("authToken")


def test_client_protocol_errors():
    hs = ClientHandshake("user", "pencil")
    hs.hello()
    with pytest.raises(CredentialsRejectedError):
        hs.respond(403, {})
    with pytest.raises(AuthProtocolError, match="status 500"):
        hs.respond(500, {})
    with pytest.raises(AuthProtocolError, match="without a WWW-Authenticate"):
        hs.respond(401, {})
    with pytest.raises(UnsupportedMechanismError, match="NTLM"):
        hs.respond(401, {"WWW-Authenticate": "NTLM"})
    with pytest.raises(UnsupportedMechanismError, match="MD5"):
        hs.respond(401, {"WWW-Authenticate": "SCRAM hash=MD5"})
    with pytest.raises(AuthProtocolError, match="without an Authentication-Info"):
        hs.respond(200, {})
    with pytest.raises(AuthProtocolError, match="without an authToken"):
        hs.respond(200, {"Authentication-Info": "hash=SHA-256"})
    with pytest.raises(AuthProtocolError, match="unexpected SCRAM server data"):
        ClientHandshake("u", "p").respond(401, {"WWW-Authenticate": "SCRAM data=abcd"})


def test_plaintext_only_over_tls_and_only_when_enabled():
    users = {"user": ScramCredentials.derive("password", iterations=4096)}
    challenge = {"WWW-Authenticate": "PLAINTEXT"}
    with pytest.raises(UnsupportedMechanismError, match="only over TLS"):
        ClientHandshake("user", "password").respond(401, challenge)
    with pytest.raises(UnsupportedMechanismError):
        ClientHandshake("user", "password", allow_plaintext=True).respond(401, challenge)
    hs = ClientHandshake("user", "password", allow_plaintext=True, tls=True)
    value = hs.respond(401, challenge)
    assert value == "PLAINTEXT username=dXNlcg, password=cGFzc3dvcmQ"
    enabled = _Server(users, plaintext=True)
    assert enabled.request(value, tls=True)[0] == 200
    assert enabled.request(value, tls=False)[0] == 403
    assert _Server(users).request(value, tls=True)[0] == 403
    wrong = ClientHandshake("user", "nope", allow_plaintext=True, tls=True).respond(401, challenge)
    assert enabled.request(wrong, tls=True)[0] == 403
    ghost = ClientHandshake("ghost", "password", allow_plaintext=True, tls=True).respond(
        401, challenge
    )
    assert enabled.request(ghost, tls=True)[0] == 403
    basic = ClientHandshake("user", "pw", allow_plaintext=True, allow_insecure=True).respond(
        401, {"WWW-Authenticate": 'Basic realm="x"'}
    )
    assert basic == "Basic " + base64.b64encode(b"user:pw").decode()


def test_server_rejects_bad_requests():
    server = ServerAuth({}.get, SECRET)
    with pytest.raises(AuthProtocolError, match="without a username"):
        server.hello(AuthHeader("HELLO", {}))
    with pytest.raises(AuthProtocolError, match="without data"):
        server.scram(AuthHeader("SCRAM", {"handshakeToken": "x"}))
    token = parse_auth_header(
        server.hello(AuthHeader("HELLO", {"username": b64url_encode("user")})).headers[
            "WWW-Authenticate"
        ]
    ).get("handshakeToken")
    mismatch = b64url_encode("n,,n=mallory,r=abc")
    with pytest.raises(AuthProtocolError, match="differs"):
        server.scram(AuthHeader("SCRAM", {"handshakeToken": token or "", "data": mismatch}))
    extended = b64url_encode("n,,n=user,r=abc,x=1")
    with pytest.raises(AuthProtocolError, match="extensions"):
        server.scram(AuthHeader("SCRAM", {"handshakeToken": token or "", "data": extended}))
    with pytest.raises(ValueError, match="16 bytes"):
        ServerAuth({}.get, b"short")


# --------------------------------------------------------------------------- handshake tokens


def _steps(server: _Server, user: str = "user", password: str = "pencil") -> list[str]:
    """The three Authorization values of a SCRAM login, the last one not yet sent."""
    handshake = ClientHandshake(user, password)
    values = [handshake.hello()]
    for _ in range(2):
        status, headers = server.request(values[-1])
        step = handshake.respond(status, headers)
        assert step is not None
        values.append(step)
    return values


def test_a_handshake_begun_on_one_server_finishes_on_another_once():
    users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    first, second = _Server(users), _Server(users)
    second.claimed = first.claimed  # the store both workers share
    hello, scram_first, final = _steps(first)  # HELLO and client-first on the first
    assert hello.startswith("HELLO") and scram_first.startswith("SCRAM")
    assert second.request(final)[0] == 200  # the proof on the second
    assert first.request(final)[0] == 403  # a replay, on either worker
    assert second.request(final)[0] == 403


def test_handshake_tokens_expire_by_the_clock():
    now = [1_000_000.0]
    server = _Server(
        {"user": ScramCredentials.derive("pencil", iterations=4096)}, clock=lambda: now[0]
    )
    final = _steps(server)[2]
    now[0] += 121
    assert server.request(final)[0] == 403
    now[0] -= 2  # within the token's life it would have been good
    assert server.request(final)[0] == 200


def test_forged_or_altered_handshake_state_is_refused():
    users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    server = _Server(users)
    other = ServerAuth(users.get, b"another secret, sixteen bytes+")
    final = _steps(server)[2]
    header = parse_auth_header(final)
    token = header.get("handshakeToken") or ""
    data = header.get("data") or ""
    # Another secret's token, a flipped bit, a token cut short: all alike refused.
    foreign = other.hello(AuthHeader("HELLO", {"username": b64url_encode("user")}))
    foreign_token = parse_auth_header(foreign.headers["WWW-Authenticate"]).get("handshakeToken")
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (foreign_token, flipped, token[:20], "zz" + token[2:], ""):
        status, _ = server.request(f"SCRAM handshakeToken={bad}, data={data}")
        assert status == 403, bad
    # A nonce changed in the final message no longer carries the server's tag.
    message = b64url_decode(data).decode()
    tampered = message.replace(",r=", ",r=x", 1)
    status, _ = server.request(f"SCRAM handshakeToken={token}, data={b64url_encode(tampered)}")
    assert status == 403
    assert server.request(final)[0] == 200  # the genuine one still works


def test_a_final_message_for_another_handshake_token_is_refused():
    users = {"user": ScramCredentials.derive("pencil", iterations=4096)}
    server = _Server(users)
    final_a = parse_auth_header(_steps(server)[2])
    final_b = parse_auth_header(_steps(server)[2])
    swapped = f"SCRAM handshakeToken={final_b.get('handshakeToken')}, data={final_a.get('data')}"
    assert server.request(swapped)[0] == 403


@pytest.mark.parametrize("hash_name", ["SHA-256", "SHA-512"])
def test_a_padding_client_always_shows_it_in_its_final_message(hash_name):
    # rusty-haystack pads its base64 and refuses an unpadded server-final; the server
    # sizes its nonce so that the client-final message is never a multiple of 3 long,
    # whatever the client nonce, so the padding shows and is answered in kind.
    users = {"user": ScramCredentials.derive("pencil", hash=hash_name, iterations=4096)}
    server = _Server(users, hash=hash_name)
    for length in range(10, 40):
        _, headers = server.request("HELLO username=" + b64url_encode("user"))
        token = parse_auth_header(headers["WWW-Authenticate"]).get("handshakeToken")
        client = ScramClient("user", "pencil", hash=hash_name, nonce="n" * length)
        first = base64.urlsafe_b64encode(client.client_first().encode()).decode()
        _, headers = server.request(f"SCRAM handshakeToken={token}, data={first}")
        server_first = b64url_decode(
            parse_auth_header(headers["WWW-Authenticate"]).get("data") or ""
        )
        final = client.client_final(server_first.decode(), hash=hash_name)
        assert len(final) % 3, length
        data = base64.urlsafe_b64encode(final.encode()).decode()
        status, headers = server.request(f"SCRAM handshakeToken={token}, data={data}")
        answer = parse_auth_header(headers["Authentication-Info"]).get("data") or ""
        # Padded (a SHA-512 server-final of 90 bytes needs no '=' to be whole).
        assert status == 200 and len(answer) % 4 == 0
        assert answer.endswith("=") == (hash_name == "SHA-256")


def test_hello_costs_the_server_nothing_it_keeps():
    server = _Server({"user": ScramCredentials.derive("pencil", iterations=4096)})
    for i in range(200):
        server.request("HELLO username=" + b64url_encode(f"user{i}"))
    assert server.claimed == set() and server.tokens == {}
    assert server.tokens[_login(server, ClientHandshake("user", "pencil"))] == "user"


# --------------------------------------------------------------------------- TLS


def test_mutual_tls_over_a_real_socket(tmp_path):
    paths = generate_test_pki(client_name="operator").write(tmp_path)
    server_ctx = server_ssl_context(
        paths["server_cert"], paths["server_key"], cafile=paths["ca"], require_client_cert=True
    )
    client_ctx = client_ssl_context(
        cafile=paths["ca"], certfile=paths["client_cert"], keyfile=paths["client_key"]
    )
    assert server_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["identity"] = auth.identity_from_ssl(tls)
                tls.sendall(tls.recv(5))
        except (ssl.SSLError, OSError) as exc:  # reported by the assertions below
            seen["error"] = exc
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"hello")
            assert tls.recv(5) == b"hello"
    finally:
        thread.join(10)
        listener.close()
    assert "error" not in seen
    identity = seen["identity"]
    assert identity.common_name == "operator" and "operator@localhost" in identity.names


def test_tls_refuses_a_client_without_a_certificate(tmp_path):
    paths = generate_test_pki().write(tmp_path)
    server_ctx = server_ssl_context(
        paths["server_cert"], paths["server_key"], cafile=paths["ca"], require_client_cert=True
    )
    client_ctx = client_ssl_context(cafile=paths["ca"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            conn.close()  # the refusal this test expects

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def talk() -> None:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"x")
            tls.recv(1)

    try:
        with pytest.raises((ssl.SSLError, OSError)):
            talk()
    finally:
        thread.join(10)
        listener.close()
    with pytest.raises(ValueError, match="needs a cafile"):
        server_ssl_context(paths["server_cert"], paths["server_key"], require_client_cert=True)


def test_certificate_identity():
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pki = generate_test_pki(hosts=("haystack.test", "10.1.2.3"), client_name="viewer")
    server = x509.load_pem_x509_certificate(pki.server_cert)
    identity = identity_from_der(server.public_bytes(serialization.Encoding.DER))
    assert identity.common_name == "haystack.test" and identity.dns_names == ("haystack.test",)
    client = x509.load_pem_x509_certificate(pki.client_cert)
    who = identity_from_der(client.public_bytes(serialization.Encoding.DER))
    assert who.names == ("viewer", "viewer@localhost")
    assert auth.identity_from_ssl(None) is None
