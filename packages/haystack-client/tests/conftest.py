"""A small Haystack server for the client's tests, run by uvicorn on 127.0.0.1.

It speaks the Auth chapter through haystack-auth and answers the standard ops over a
little building, enough to drive every client method over a real socket.  The real
server (haystack-server) has its own tests; this one exists so that the client is
proven against HTTP, not against mocks.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from projecthaystack.auth import (
    ScramCredentials,
    ServerAuth,
    b64url_encode,
    parse_auth_header,
    parse_bearer,
)
from projecthaystack.codecs import codec_for_mime, zinc
from projecthaystack.filter import select
from projecthaystack.kinds import (
    NA,
    Grid,
    HaystackError,
    Marker,
    Number,
    Ref,
    tz_from_name,
)
from projecthaystack.server import testing
from projecthaystack.server.testing import serve

NO_SIDE_EFFECTS = {"about", "defs", "libs", "ops", "filetypes", "read", "nav", "hisRead"}
NY = tz_from_name("New_York")


def building() -> list[dict[str, Any]]:
    site = Ref("s1", "HQ")
    ahu = Ref("ahu1", "AHU-1")
    return [
        {"id": site, "dis": "HQ", "site": Marker, "tz": "New_York", "geoCity": "Richmond"},
        {"id": ahu, "dis": "AHU-1", "equip": Marker, "ahu": Marker, "siteRef": site},
        {
            "id": Ref("t1", "DAT"),
            "dis": "DAT",
            "point": Marker,
            "temp": Marker,
            "sensor": Marker,
            "his": Marker,
            "kind": "Number",
            "unit": "°F",
            "tz": "New_York",
            "curVal": Number(55, "°F"),
            "equipRef": ahu,
            "siteRef": site,
        },
        {
            "id": Ref("sp1", "SP"),
            "dis": "SP",
            "point": Marker,
            "sp": Marker,
            "writable": Marker,
            "kind": "Number",
            "unit": "°F",
            "equipRef": ahu,
            "siteRef": site,
        },
    ]


@dataclass
class ServerState:
    users: dict[str, ScramCredentials]
    records: list[dict[str, Any]] = field(default_factory=building)
    tokens: dict[str, str] = field(default_factory=dict)
    used_handshakes: set[str] = field(default_factory=set)
    history: dict[str, list[tuple[dt.datetime, Any]]] = field(default_factory=dict)
    priority: dict[str, dict[int, Any]] = field(default_factory=dict)
    watches: dict[str, set[str]] = field(default_factory=dict)
    refuse_get: bool = False
    refuse_post: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Every login request, as (scheme, has data) pairs.
    logins: list[tuple[str, bool]] = field(default_factory=list)
    # Servers in the wild: "padded_only" answers unpadded base64 with 400; "hello_data"
    # answers a plain HELLO with server-first data (both as rusty-haystack does);
    # "bad_signature" sends a server signature that proves nothing (an impostor).
    quirks: set[str] = field(default_factory=set)
    # A canned answer to every login request: (status, headers, body).
    login_answer: tuple[int, dict[str, str], bytes] | None = None
    # Canned watchPoll answers (rows), used in turn before the real ones.
    poll_answers: list[list[dict[str, Any]]] = field(default_factory=list)


def _error(dis: str) -> Grid:
    return Grid.empty({"err": Marker, "dis": dis, "errTrace": "trace: " + dis})


def make_app(state: ServerState) -> Starlette:
    auth = ServerAuth(state.users.get, b"test-secret-0123456789abcdef")

    def answer(request: Request, grid: Grid, status: int = 200) -> Response:
        accept = request.headers.get("accept", "text/zinc").split(",")[0]
        codec = codec_for_mime(accept)
        return Response(codec.encode(grid), status, media_type=codec.content_type)

    async def endpoint(request: Request) -> Response:
        op = request.path_params["op"]
        header = request.headers.get("authorization", "")
        token = parse_bearer(header) if header else None
        if token is None or token not in state.tokens:
            return await login(request, header)
        state.requests.append((request.method, op))  # authenticated calls, not logins
        if request.method == "GET":
            if (op not in NO_SIDE_EFFECTS and op not in state.refuse_post) or state.refuse_get:
                return Response(status_code=405)
            row = {k: zinc.decode_value(v) for k, v in request.query_params.items()}
            grid = Grid.from_rows([row]) if row else Grid.empty()
        elif op in state.refuse_post:
            return Response(status_code=405)
        else:
            body = await request.body()
            grid = codec_for_mime(request.headers.get("content-type", "text/zinc")).decode(body)
        try:
            return answer(request, run(op, grid, state.tokens[token], token))
        except (HaystackError, KeyError, ValueError) as exc:
            return answer(request, _error(f"{type(exc).__name__}: {exc}"))

    async def login(request: Request, header: str) -> Response:
        if not header:
            return Response(status_code=401, headers={"WWW-Authenticate": "HELLO"})
        parsed = parse_auth_header(header)
        if parsed.scheme in ("HELLO", "SCRAM"):
            state.logins.append((parsed.scheme, parsed.get("data") is not None))
        if state.login_answer is not None:
            status, canned, body = state.login_answer
            return Response(body, status, canned)
        padded = any(v.endswith("=") for v in parsed.params.values())
        if "padded_only" in state.quirks and parsed.scheme == "HELLO" and not padded:
            return Response(b"bad base64", 400, media_type="text/plain")
        if "hello_data" in state.quirks and parsed.scheme == "HELLO" and not parsed.get("data"):
            # A server-first message of the server's own making: no client nonce in it.
            first = b64url_encode("r=servernonce,s=c2FsdHNhbHRzYWx0,i=4096")
            challenge = f"SCRAM handshakeToken=abc, hash=SHA-256, data={first}"
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        try:
            if parsed.scheme == "HELLO":
                reply = auth.hello(parsed)
            elif parsed.scheme == "SCRAM":
                reply = auth.scram(parsed)  # the handshake's state is in its token
            else:
                return Response(status_code=401, headers={"WWW-Authenticate": "HELLO"})
        except HaystackError:
            return Response(status_code=403)
        if reply.replay_key is not None:
            if reply.replay_key in state.used_handshakes:
                return Response(status_code=403)  # one handshake, one login
            state.used_handshakes.add(reply.replay_key)
        headers = dict(reply.headers)
        if reply.username is not None and "bad_signature" in state.quirks:
            wrong = b64url_encode("v=" + base64.b64encode(b"\0" * 32).decode())
            headers["Authentication-Info"] = f"hash=SHA-256, data={wrong}"
        if reply.username is not None:
            new = f"tok{len(state.tokens)}x{time.monotonic_ns()}"
            state.tokens[new] = reply.username
            headers["Authentication-Info"] = f"authToken={new}, " + headers["Authentication-Info"]
        return Response(status_code=reply.status, headers=headers)

    return Starlette(routes=[Route("/api/{op}", endpoint, methods=["GET", "POST"])])


def run(op: str, req: Grid, user: str, token: str) -> Grid:
    state = _STATE[0]
    by_id = {r["id"].id: r for r in state.records}
    if op == "about":
        return Grid.from_rows(
            [
                {
                    "haystackVersion": "4.0",
                    "serverName": "test",
                    "productName": "conftest",
                    "whoami": user,
                }
            ]
        )
    if op == "close":
        state.tokens.pop(token, None)
        return Grid.empty()
    if op in ("ops", "filetypes", "defs", "libs"):
        return Grid.from_rows([{"def": f"{op}:x"}])
    if op == "read":
        row = req[0] if len(req) else {}
        if "filter" in row:
            limit = int(row["limit"].val) if "limit" in row else None
            return Grid.from_rows(select(row["filter"], state.records, limit=limit))
        rows = [by_id.get(r["id"].id, {}) for r in req]
        names: dict[str, None] = {}
        for r in rows:
            names.update(dict.fromkeys(r))
        return Grid(names or ["id"], rows)
    if op == "nav":
        nav = req[0].get("navId") if len(req) else None
        if nav is None:
            return Grid.from_rows([r for r in state.records if "site" in r])
        return Grid.from_rows(
            [r for r in state.records if r.get("siteRef") == nav and "equip" in r]
        )
    if op == "hisRead":
        if "range" in req.meta:
            cols = ["ts"] + [f"v{i}" for i in range(len(req))]
            return Grid(cols, [], {"range": req.meta["range"]})
        point = req[0]["id"].id
        rows = [{"ts": ts, "val": v} for ts, v in state.history.get(point, [])]
        return Grid(["ts", "val"], rows, {"id": req[0]["id"], "range": req[0]["range"]})
    if op == "hisWrite":
        if "id" in req.meta:
            state.history.setdefault(req.meta["id"].id, []).extend(
                (r["ts"], r.get("val")) for r in req
            )
        else:
            for i, col in enumerate(req.cols[1:]):
                state.history.setdefault(col.meta["id"].id, []).extend(
                    (r["ts"], r.get(f"v{i}")) for r in req
                )
        return Grid.empty()
    if op == "pointWrite":
        row = req[0]
        levels = state.priority.setdefault(row["id"].id, {})
        if "level" not in row:
            return Grid.from_rows(
                [{"level": Number(lv), "val": levels.get(lv)} for lv in range(1, 18)]
            )
        levels[int(row["level"].val)] = row.get("val")
        return Grid.empty()
    if op == "watchSub":
        wid = req.meta.get("watchId")
        if wid is not None and wid not in state.watches:
            raise KeyError(f"unknown watch {wid}")
        wid = wid or f"w{time.monotonic_ns()}"
        state.watches.setdefault(wid, set()).update(r["id"].id for r in req)
        rows = [by_id.get(r["id"].id, {}) for r in req]
        return Grid(
            ["id", *{k: None for r in rows for k in r if k != "id"}],
            rows,
            {"watchId": wid, "lease": Number(1, "min")},
        )
    if op == "watchUnsub":
        if "close" in req.meta:
            state.watches.pop(req.meta["watchId"], None)
        else:
            state.watches[req.meta["watchId"]] -= {r["id"].id for r in req}
        return Grid.empty()
    if op == "watchPoll":
        ids = state.watches[req.meta["watchId"]]
        if state.poll_answers:
            return Grid.from_rows(state.poll_answers.pop(0), {"watchId": req.meta["watchId"]})
        return Grid.from_rows(
            [by_id[i] for i in sorted(ids)] if "refresh" in req.meta else [],
            {"watchId": req.meta["watchId"]},
        )
    if op == "invokeAction":
        if req.meta.get("action") != "reset":
            raise ValueError(f"unknown action {req.meta.get('action')!r}")
        return Grid.from_rows([{"ok": Marker, "args": NA if not len(req) else Number(len(req[0]))}])
    if op == "eval":
        return Grid.from_rows([{"val": Number(42)}])
    return _error(f"unknown op {op}")


_STATE: list[ServerState] = []


@dataclass
class LiveServer:
    url: str
    state: ServerState


@pytest.fixture
def server() -> Iterator[LiveServer]:
    state = ServerState({"user": ScramCredentials.derive("pencil", iterations=4096)})
    _STATE[:] = [state]
    with serve(make_app(state), path="/api", lifespan="off") as url:
        yield LiveServer(url, state)


@pytest.fixture
def free_port() -> int:
    return testing.free_port()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
