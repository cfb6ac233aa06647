"""The sans-I/O core: request grids for every op, HTTP requests for them, decoding of
responses, and the login state.  ``Client`` and ``AsyncClient`` only move bytes."""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from projecthaystack import auth
from projecthaystack.auth import AuthError
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

if TYPE_CHECKING:
    # The handshake loads at the first login, through the auth package (see its __init__).
    from projecthaystack.auth import ClientHandshake

from ._errors import (
    AuthenticationError,
    AuthProtocolError,
    CallError,
    CredentialsRejectedError,
    CredentialsRequiredError,
    ResponseError,
    ServerSignatureError,
    TooManyRequestsError,
    UnknownRecError,
    UnsupportedMechanismError,
)

__all__ = ["ClientCore", "Flow", "HisRange", "Reply", "Request", "format_range"]

MAX_LOGIN_STEPS: Final = 6
LOGIN_PATH: Final = "about"
# Error bodies are read for their message only up to this size.
_MAX_ERROR_BODY: Final = 64 * 1024
# The auth layer's errors and the client's of the same name, most specific first.
_AUTH_ERRORS: Final[tuple[tuple[type[AuthError], type[AuthenticationError]], ...]] = (
    (auth.CredentialsRejectedError, CredentialsRejectedError),
    (auth.ServerSignatureError, ServerSignatureError),
    (auth.UnsupportedMechanismError, UnsupportedMechanismError),
    (auth.AuthProtocolError, AuthProtocolError),
)

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

    ``base_url`` is the API root (``http://host/api``), used to name the URL in errors;
    ``fmt`` picks the wire format (``zinc`` or ``json``; ``json3`` and ``trio`` work too).
    ``use_get`` lets side-effect-free ops go as GET with the request in the query, as
    the HTTP API allows; a server that answers 405 gets POST from then on.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        base_url: str = "",
        fmt: str = "zinc",
        use_get: bool = True,
        tls: bool = False,
        allow_plaintext: bool = False,
        hello_with_data: bool = False,
    ) -> None:
        self.codec: Codec = codec_for_name(fmt)
        self.base_url = base_url
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

    def url(self, path: str) -> str:
        """The full URL of an op (or any path under the API root)."""
        return url_join(self.base_url, path) if self.base_url else path

    # ------------------------------------------------------------------ auth

    @property
    def needs_login(self) -> bool:
        """Whether a login must happen before the next call."""
        return self.username is not None and self.token is None

    def handshake(self) -> ClientHandshake:
        """A fresh login state machine for the configured user."""
        if self.username is None or self._password is None:
            url = self.url(LOGIN_PATH)
            raise CredentialsRequiredError(
                f"{url} wants a login and this client has no user name and password",
                url=url,
            )
        return auth.ClientHandshake(
            self.username,
            self._password,
            tls=self._tls,
            allow_plaintext=self._allow_plaintext,
            hello_with_data=self._hello_with_data,
            pad_base64=self._pad_base64,
        )

    def auth_request(self, authorization: str) -> Request:
        """One step of the login: a GET of ``about`` with the given Authorization."""
        return Request("GET", LOGIN_PATH, {"Authorization": authorization})

    def auth_step(
        self, handshake: ClientHandshake, status: int, headers: Mapping[str, str]
    ) -> str | None:
        """Feed one login response; the next Authorization value, or None when done.

        The auth layer's errors come out as the client's of the same name (each also a
        subclass of the auth layer's), with the URL."""
        try:
            nxt = handshake.respond(status, headers)
        except AuthError as exc:
            url = self.url(LOGIN_PATH)
            kind = next((c for a, c in _AUTH_ERRORS if isinstance(exc, a)), AuthenticationError)
            raise kind(f"login at {url} failed: {exc}", url=url) from exc
        if nxt is None:
            self.token = handshake.token
        return nxt

    # ------------------------------------------------------------------ flows

    def login_flow(self) -> Flow[str]:
        """The login as a generator: it yields requests, is sent each ``Reply``, and
        returns the token.

        The Auth chapter's three round trips: HELLO, client-first, client-final.  Two
        deviations are tolerated, each only where the standard exchange has failed, on
        the reply to a HELLO: a 400 (the server cannot read unpadded base64url, as
        rusty-haystack) starts again with padding, and server-first data in answer to a
        plain HELLO (the server wants the client-first message inside the HELLO, as
        rusty-haystack) starts again that way.  What was learned holds for later logins.
        """
        handshake = self.handshake()
        value: str | None = handshake.hello()
        answers_hello = True  # the next reply answers a HELLO
        for _ in range(MAX_LOGIN_STEPS):
            assert value is not None
            reply = yield self.auth_request(value)
            if answers_hello and reply.status == 400 and not self._pad_base64:
                self._pad_base64 = True
                handshake = self.handshake()
                value = handshake.hello()
                continue
            if (
                answers_hello
                and reply.status == 401
                and not self._hello_with_data
                and _challenge_data(reply.headers) is not None
            ):
                # A plain HELLO carries no client nonce, so server-first data in answer
                # to it cannot continue this exchange.
                self._hello_with_data = True
                handshake = self.handshake()
                value = handshake.hello()
                continue
            answers_hello = False
            if reply.status == 403:
                url = self.url(LOGIN_PATH)
                said = _server_message(reply.headers, reply.body)
                raise CredentialsRejectedError(
                    f"login at {url} failed: the server refused user {self.username!r}"
                    + (f" ({said})" if said else ""),
                    url=url,
                )
            if reply.status not in (200, 401):
                raise self.status_error(LOGIN_PATH, reply, login=True)
            value = self.auth_step(handshake, reply.status, reply.headers)
            if value is None:
                assert self.token is not None
                return self.token
        url = self.url(LOGIN_PATH)
        raise AuthProtocolError(
            f"login at {url} did not finish in {MAX_LOGIN_STEPS} round trips", url=url
        )

    def call_flow(self, op: str, grid: Grid) -> Flow[Grid]:
        """One op as a generator: login first if needed, one re-login on a 401, POST
        after a refused GET; returns the result grid."""
        if self.needs_login:
            yield from self.login_flow()
        for attempt in range(3):
            sent = self.request(op, grid)
            reply = yield sent
            if reply.status == 401:
                if op == "close":
                    # The session is already over: logging in to log out would be absurd.
                    self.token = None
                    return Grid.empty()
                if self.username is None:
                    url = self.url(op)
                    raise CredentialsRequiredError(
                        f"{url} wants a login and this client has no user name and "
                        "password (give them to the client)",
                        url=url,
                    )
                if attempt == 0:
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
        raise ResponseError(f"{self.url(op)}: no usable answer", url=self.url(op))

    def status_error(self, op: str, reply: Reply, *, login: bool = False) -> ResponseError:
        """The error for an HTTP error status: the URL, the status, what the server said
        (the ``dis`` of an error grid), ``Retry-After`` for a 429, and a hint when a
        login finds nothing at the URL."""
        url = self.url(op)
        said = _server_message(reply.headers, reply.body)
        if reply.status == 429:
            retry = _retry_after(_header(reply.headers, "retry-after"))
            wait = f"; retry after {retry:g} s" if retry is not None else ""
            return TooManyRequestsError(
                f"HTTP 429 Too Many Requests from {url}: {said or 'no reason given'}{wait}",
                retry_after=retry,
                url=url,
                server_message=said,
            )
        text = f"HTTP {reply.status} from {url}" + (f": {said}" if said else "")
        if reply.status == 404 and (login or op == LOGIN_PATH):
            text += (
                " (no Haystack API answers at this URL: is the API path, such as /api, "
                "missing from the base URL?)"
            )
        return ResponseError(text, reply.status, url=url, server_message=said)

    def check_ids(self, ids: Sequence[Ref | str], grid: Grid) -> Grid:
        """``grid`` (a read by ids) when every id has a record; else
        :class:`UnknownRecError` with the missing ids, in the order asked."""
        found = {row["id"].id for row in grid if isinstance(row.get("id"), Ref)}
        missing = tuple(ref for ref in map(_ref, ids) if ref.id not in found)
        if missing:
            raise UnknownRecError(missing, grid, url=self.url("read"))
        return grid

    # ------------------------------------------------------------------ requests

    def request(self, op: str, grid: Grid) -> Request:
        """The HTTP request for an op and its request grid."""
        headers = {"Accept": self.codec.mime}
        if self.token is not None:
            headers["Authorization"] = auth.format_bearer(self.token)
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
        url = self.url(op)
        if status != 200:
            raise self.status_error(op, Reply(status, headers, body))
        content_type = _header(headers, "content-type") or self.codec.mime
        try:
            codec = codec_for_mime(content_type)
        except UnknownFormatError:
            raise ResponseError(
                f"{url}: unexpected content type {content_type!r}", status, url=url
            ) from None
        try:
            grid = codec.decode(body)
        except DecodeError as exc:
            raise ResponseError(
                f"{url}: the response does not decode: {exc}", status, url=url
            ) from exc
        if grid.is_error:
            raise CallError(grid, url=url)
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


def _challenge_data(headers: Mapping[str, str]) -> str | None:
    """The ``data`` of a SCRAM challenge in ``WWW-Authenticate``, if there is one."""
    challenge = _header(headers, "www-authenticate")
    if not challenge:
        return None
    try:
        header = auth.parse_auth_header(challenge)
    except AuthError:
        return None
    return header.get("data") if header.scheme == "SCRAM" else None


def _server_message(headers: Mapping[str, str], body: bytes) -> str | None:
    """What the server said in an error response: the ``dis`` of an error grid, or a
    short plain-text body; never raw Zinc or an HTML page."""
    if not body or len(body) > _MAX_ERROR_BODY:
        return None
    content_type = (_header(headers, "content-type") or "").lower()
    try:
        grid = codec_for_mime(content_type).decode(body)
    except (UnknownFormatError, DecodeError, RecursionError):
        grid = None
    if grid is not None:
        dis = grid.meta.get("dis") if grid.is_error else None
        return _shorten(dis) if isinstance(dis, str) and dis else None
    if not content_type or content_type.startswith("text/plain"):
        return _shorten(body.decode("utf-8", "replace")) or None
    return None


def _shorten(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    # Imported here: email.utils brings socket, calendar and locale (some 10 ms of import
    # time), for the rare HTTP-date form of a 429 or 503.
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return max(0.0, (when - _dt.datetime.now(_dt.UTC)).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def url_join(base: str, path: str) -> str:
    """``base`` (the API root, with or without a trailing slash) joined with an op name."""
    return base.rstrip("/") + "/" + urllib.parse.quote(path)
