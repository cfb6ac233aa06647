"""The sans-I/O core: request grids for every op, HTTP requests for them, decoding of
responses, and the login state.  ``Client`` and ``AsyncClient`` only move bytes."""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from projecthaystack.auth import (
    AuthError,
    ClientHandshake,
    format_bearer,
)
from projecthaystack.codecs import Codec, UnknownFormatError, codec_for_mime, codec_for_name
from projecthaystack.codecs.zinc import encode_value
from projecthaystack.filter import Filter
from projecthaystack.kinds import (
    DecodeError,
    EncodeError,
    Grid,
    GridBuilder,
    Number,
    Ref,
    tz_name,
)

from ._errors import AuthenticationError, CallError, ResponseError

__all__ = ["ClientCore", "Flow", "HisRange", "Reply", "Request", "format_range"]

MAX_LOGIN_STEPS: Final = 6

# The ops the standard defs mark noSideEffects: a GET may carry them.
NO_SIDE_EFFECTS: Final = frozenset(
    {"about", "defs", "libs", "ops", "filetypes", "read", "nav", "hisRead"}
)

HisRange = (
    str | _dt.date | _dt.datetime | tuple[_dt.date, _dt.date] | tuple[_dt.datetime, _dt.datetime]
)
"""A hisRead range: ``"today"``, ``"yesterday"``, a date, a pair of dates, a dateTime
(everything since), or a pair of dateTimes."""


def format_range(value: HisRange) -> str:
    """The Str a hisRead request carries for a range.

    >>> import datetime as dt
    >>> format_range("today"), format_range(dt.date(2012, 10, 1))
    ('today', '2012-10-01')
    >>> format_range((dt.date(2012, 10, 1), dt.date(2012, 10, 3)))
    '2012-10-01,2012-10-03'
    """
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError("a range tuple is (start, end)")
        return f"{format_range(value[0])},{format_range(value[1])}"
    if isinstance(value, _dt.datetime | _dt.date):
        return encode_value(value)
    raise TypeError(f"not a hisRead range: {value!r}")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the I/O layer sends back into a flow: status, headers, body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


T = TypeVar("T")
Flow = Generator["Request", Reply, T]
"""A sans-I/O exchange: yields each request, is sent each reply, returns the result."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to make: method, path under the base URL, query, headers, body."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


def _grid(rows: Iterable[Mapping[str, Any]] = (), meta: Mapping[str, Any] | None = None) -> Grid:
    rows = list(rows)
    if not rows:
        return Grid.empty(meta)
    return Grid.from_rows(rows, meta)


def _ref(value: Ref | str) -> Ref:
    if isinstance(value, Ref):
        return value
    return Ref(value[1:] if value.startswith("@") else value)


class ClientCore:
    """Everything a client does but the I/O.

    ``fmt`` picks the wire format (``zinc`` or ``json``; ``json3`` and ``trio`` work too).
    ``use_get`` lets side-effect-free ops go as GET with the request in the query, as
    the HTTP API allows; a server that answers 405 gets POST from then on.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        fmt: str = "zinc",
        use_get: bool = True,
        tls: bool = False,
        allow_plaintext: bool = False,
        hello_with_data: bool = False,
    ) -> None:
        self.codec: Codec = codec_for_name(fmt)
        self.username = username
        self._password = password
        self.use_get = use_get
        self._tls = tls
        self._allow_plaintext = allow_plaintext
        self._hello_with_data = hello_with_data
        self.token: str | None = None
        self.get_refused: set[str] = set()
        self.post_refused: set[str] = set()
        self._pad_base64 = False

    # ------------------------------------------------------------------ auth

    @property
    def needs_login(self) -> bool:
        """Whether a login must happen before the next call."""
        return self.username is not None and self.token is None

    def handshake(self) -> ClientHandshake:
        """A fresh login state machine for the configured user."""
        if self.username is None or self._password is None:
            raise AuthenticationError("the server wants a login and no credentials were given")
        return ClientHandshake(
            self.username,
            self._password,
            tls=self._tls,
            allow_plaintext=self._allow_plaintext,
            hello_with_data=self._hello_with_data,
            pad_base64=self._pad_base64,
        )

    def auth_request(self, authorization: str) -> Request:
        """One step of the login: a GET of ``about`` with the given Authorization."""
        return Request("GET", "about", {"Authorization": authorization})

    def auth_step(
        self, handshake: ClientHandshake, status: int, headers: Mapping[str, str]
    ) -> str | None:
        """Feed one login response; the next Authorization value, or None when done."""
        try:
            nxt = handshake.respond(status, headers)
        except AuthError as exc:
            raise AuthenticationError(str(exc)) from exc
        if nxt is None:
            self.token = handshake.token
        return nxt

    # ------------------------------------------------------------------ flows

    def login_flow(self) -> Flow[str]:
        """The login as a generator: it yields requests, is sent each ``Reply``, and
        returns the token."""
        handshake = self.handshake()
        value: str | None = handshake.hello()
        for step in range(MAX_LOGIN_STEPS):
            assert value is not None
            reply = yield self.auth_request(value)
            if reply.status == 400 and step == 0 and not self._pad_base64:
                # Servers that cannot read unpadded base64url (rusty-haystack) answer
                # the HELLO with 400: start again with padding, once.
                self._pad_base64 = True
                handshake = self.handshake()
                value = handshake.hello()
                continue
            challenge = _header(reply.headers, "www-authenticate") or ""
            if (
                step < 2
                and reply.status == 401
                and not self._hello_with_data
                and "data=" in challenge
            ):
                # The server answered a plain HELLO with server-first data (rusty-haystack
                # wants the client-first message inside the HELLO): start again that way.
                self._hello_with_data = True
                handshake = self.handshake()
                value = handshake.hello()
                continue
            value = self.auth_step(handshake, reply.status, reply.headers)
            if value is None:
                assert self.token is not None
                return self.token
        raise AuthenticationError("the login did not finish")

    def call_flow(self, op: str, grid: Grid) -> Flow[Grid]:
        """One op as a generator: login first if needed, one re-login on a 401, POST
        after a refused GET; returns the result grid."""
        if self.needs_login:
            yield from self.login_flow()
        for attempt in range(3):
            sent = self.request(op, grid)
            reply = yield sent
            if reply.status == 401 and attempt == 0 and self.username is not None:
                self.token = None
                yield from self.login_flow()
                continue
            if reply.status in (404, 405) and sent.method == "GET" and op not in self.get_refused:
                # 405 is the spec's refusal of GET; some servers route only POST and
                # answer 404 (rusty-haystack): either way, POST once before giving up.
                self.get_refused.add(op)
                continue
            if (
                reply.status == 405
                and sent.method == "POST"
                and op not in self.post_refused
                and self._query(grid) is not None
            ):
                # Some servers want GET where the spec says POST (haystack-py's close):
                # a refused POST did not run, so asking again with GET is safe.
                self.post_refused.add(op)
                continue
            result = self.decode(op, reply.status, reply.headers, reply.body)
            if op == "close":
                self.token = None
            return result
        raise ResponseError(f"{op}: no usable answer")

    # ------------------------------------------------------------------ requests

    def request(self, op: str, grid: Grid) -> Request:
        """The HTTP request for an op and its request grid."""
        headers = {"Accept": self.codec.mime}
        if self.token is not None:
            headers["Authorization"] = format_bearer(self.token)
        wants_get = self.use_get and op in NO_SIDE_EFFECTS and op not in self.get_refused
        if wants_get or op in self.post_refused:
            params = self._query(grid)
            if params is not None:
                return Request("GET", op, headers, params)
        headers["Content-Type"] = self.codec.content_type
        return Request("POST", op, headers, body=self.codec.encode(grid))

    @staticmethod
    def _query(grid: Grid) -> dict[str, str] | None:
        # GET carries only a request of one row of scalar tags, no grid or column meta.
        if grid.meta or len(grid) > 1 or any(c.meta for c in grid.cols):
            return None
        params: dict[str, str] = {}
        for name, value in (grid[0] if len(grid) else {}).items():
            if isinstance(value, list | dict | Grid):
                return None
            params[name] = encode_value(value)
        return params

    def decode(self, op: str, status: int, headers: Mapping[str, str], body: bytes) -> Grid:
        """The result grid of a response; ``CallError`` for an error grid."""
        if status != 200:
            text = body[:200].decode("utf-8", "replace").strip()
            raise ResponseError(f"HTTP {status} from {op}: {text}", status)
        content_type = _header(headers, "content-type") or self.codec.mime
        try:
            codec = codec_for_mime(content_type)
        except UnknownFormatError:
            raise ResponseError(f"{op}: unexpected content type {content_type!r}", status) from None
        try:
            grid = codec.decode(body)
        except DecodeError as exc:
            raise ResponseError(f"{op}: the response does not decode: {exc}", status) from exc
        if grid.is_error:
            raise CallError(grid)
        return grid

    # ------------------------------------------------------------------ op grids

    @staticmethod
    def empty() -> Grid:
        """The empty request grid of about, ops, filetypes, close."""
        return Grid.empty()

    @staticmethod
    def filter_grid(query: Filter | str | None, limit: int | None) -> Grid:
        """A ``filter``/``limit`` request (read, defs, libs)."""
        row: dict[str, Any] = {}
        if query is not None:
            row["filter"] = str(query)
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must be zero or more")
            row["limit"] = Number(limit)
        return _grid([row]) if row else Grid.empty()

    @staticmethod
    def ids_grid(ids: Sequence[Ref | str]) -> Grid:
        """A request of one ``id`` per row (read by id, watchUnsub)."""
        if not ids:
            raise ValueError("at least one id is needed")
        return Grid(["id"], [{"id": _ref(i)} for i in ids])

    @staticmethod
    def nav_grid(nav_id: Ref | str | None) -> Grid:
        """The nav request; ``None`` asks for the roots."""
        if nav_id is None:
            return Grid(["navId"], [{}])
        return Grid(["navId"], [{"navId": _ref(nav_id)}])

    @staticmethod
    def his_read_grid(point: Ref | str, span: HisRange) -> Grid:
        """A single-point hisRead request."""
        return Grid(["id", "range"], [{"id": _ref(point), "range": format_range(span)}])

    @staticmethod
    def his_read_batch_grid(points: Sequence[Ref | str], span: HisRange, tz: str | None) -> Grid:
        """The batch hisRead request: the range (and timezone) in the meta."""
        meta: dict[str, Any] = {"range": format_range(span)}
        if tz is not None:
            meta["tz"] = tz
        if not points:
            raise ValueError("at least one point is needed")
        return Grid(["id"], [{"id": _ref(p)} for p in points], meta)

    @staticmethod
    def his_write_grid(point: Ref | str, items: Iterable[tuple[_dt.datetime, Any]]) -> Grid:
        """A single-point hisWrite request: ``(ts, val)`` pairs, the id in the meta."""
        rows = []
        for ts, val in items:
            if not isinstance(ts, _dt.datetime) or ts.tzinfo is None:
                raise EncodeError(f"a history timestamp must be an aware datetime: {ts!r}")
            tz_name(ts.tzinfo)  # fails early for a zone Haystack cannot name
            rows.append({"ts": ts, "val": Number(float(val)) if _plain_number(val) else val})
        return Grid(["ts", "val"], rows, {"id": _ref(point)})

    @staticmethod
    def his_write_batch_grid(points: Sequence[Ref | str], rows: Iterable[Sequence[Any]]) -> Grid:
        """The batch hisWrite request: columns ``ts, v0, v1, ...`` with each point's id in
        its column meta; each row is ``(ts, v0, v1, ...)``."""
        cols = ["ts"] + [f"v{i}" for i in range(len(points))]
        b = GridBuilder()
        b.add_col("ts")
        for i, p in enumerate(points):
            b.add_col(f"v{i}", {"id": _ref(p)})
        for row in rows:
            if len(row) != len(cols):
                raise ValueError(f"each row needs {len(cols)} cells: ts and one per point")
            b.add_row([Number(float(v)) if _plain_number(v) else v for v in row])
        return b.build()

    @staticmethod
    def point_write_grid(
        point: Ref | str,
        level: int,
        value: Any,
        who: str | None,
        duration: Number | None,
    ) -> Grid:
        """A pointWrite request (write form)."""
        if not 1 <= level <= 17:
            raise ValueError("priority levels are 1 to 17")
        row: dict[str, Any] = {"id": _ref(point), "level": Number(level)}
        row["val"] = Number(float(value)) if _plain_number(value) else value
        if who is not None:
            row["who"] = who
        if duration is not None:
            row["duration"] = duration
        return Grid(["id", "level", "val", "who", "duration"], [row])

    @staticmethod
    def watch_sub_grid(
        ids: Sequence[Ref | str], watch_id: str | None, dis: str | None, lease: Number | None
    ) -> Grid:
        """A watchSub request: a new watch (``dis``) or more ids for ``watch_id``."""
        if watch_id is None and dis is None:
            dis = "projecthaystack client"
        meta: dict[str, Any] = {}
        if watch_id is not None:
            meta["watchId"] = watch_id
        if dis is not None and watch_id is None:
            meta["watchDis"] = dis
        if lease is not None:
            meta["lease"] = lease
        return Grid(["id"], [{"id": _ref(i)} for i in ids], meta)

    @staticmethod
    def watch_unsub_grid(watch_id: str, ids: Sequence[Ref | str], close: bool) -> Grid:
        """A watchUnsub request; ``close`` ends the watch."""
        meta: dict[str, Any] = {"watchId": watch_id}
        if close:
            from projecthaystack.kinds import Marker

            meta["close"] = Marker
        return Grid(["id"], [{"id": _ref(i)} for i in ids], meta)

    @staticmethod
    def watch_poll_grid(watch_id: str, refresh: bool) -> Grid:
        """A watchPoll request; ``refresh`` asks for every entity, not just changes."""
        from projecthaystack.kinds import Marker

        meta: dict[str, Any] = {"watchId": watch_id}
        if refresh:
            meta["refresh"] = Marker
        return Grid.empty(meta)

    @staticmethod
    def invoke_action_grid(target: Ref | str, action: str, args: Mapping[str, Any]) -> Grid:
        """An invokeAction request: the target and action in the meta, args in one row."""
        meta = {"id": _ref(target), "action": action}
        if not args:
            return Grid.empty(meta)
        return Grid.from_rows([dict(args)], meta)


def _plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def url_join(base: str, path: str) -> str:
    """``base`` (the API root, with or without a trailing slash) joined with an op name."""
    return base.rstrip("/") + "/" + urllib.parse.quote(path)
