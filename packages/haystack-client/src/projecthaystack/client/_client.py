"""``Client`` and ``AsyncClient``: the same ops over httpx, blocking or awaitable."""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from projecthaystack.filter import Filter
from projecthaystack.kinds import Grid, Number, Ref

from ._core import ClientCore, Flow, HisRange, Reply, Request, url_join
from ._errors import ClientError, RequestNotSentError, ResponseError
from ._observe import ClientHooks, observer
from ._watch import AsyncWatch, Watch

# httpx (and anyio) load when a client is made, not when this package is imported: the
# CLI's --help and code that only names the types should not pay their import time.
if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")


def _translate(exc: httpx.HTTPError, url: str) -> ClientError:
    import httpx

    # Failures where httpx never got the request to the server.
    not_sent = (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.UnsupportedProtocol,
    )
    if isinstance(exc, not_sent):
        return RequestNotSentError(
            f"request to {url} not sent: {type(exc).__name__}: {exc}", url=url
        )
    return ResponseError(
        f"request to {url} sent, then failed: {type(exc).__name__}: {exc}", url=url
    )


def _ends_session(et: type[BaseException] | None) -> bool:
    """Whether leaving a ``with`` block should end the server session: on a normal exit
    or an ordinary exception, but not on cancellation, Ctrl-C or exit, where no network
    call should be made."""
    return et is None or issubclass(et, Exception)


class _Base:
    def __init__(
        self,
        base_url: str,
        username: str | None,
        password: str | None,
        *,
        fmt: str,
        use_get: bool,
        allow_plaintext: bool,
        hello_with_data: bool,
        hooks: ClientHooks | None,
        tracer_provider: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        # None unless there are hooks or OpenTelemetry: then the plain path costs nothing.
        self._obs = observer(hooks, tracer_provider)
        self._core = ClientCore(
            username,
            password,
            base_url=self.base_url,
            fmt=fmt,
            use_get=use_get,
            tls=self.base_url.startswith("https:"),
            allow_plaintext=allow_plaintext,
            hello_with_data=hello_with_data,
        )

    def _build(self, req: Request) -> tuple[str, str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"headers": dict(req.headers)}
        if req.params:
            kwargs["params"] = dict(req.params)
        if req.body is not None:
            kwargs["content"] = req.body
        url = url_join(self.base_url, req.path)
        if self._obs is not None:
            self._obs.inject(kwargs["headers"])
            self._obs.sent(url, len(req.body or b""))
        return req.method, url, kwargs

    def _closed_error(self, url: str) -> RequestNotSentError:
        return RequestNotSentError(f"request to {url} not sent: the client is closed", url=url)

    @property
    def token(self) -> str | None:
        """The current auth token, once logged in."""
        return self._core.token


class Client(_Base):
    """A blocking Haystack client.

    >>> with Client("http://localhost:8080/api", "user", "pass") as client:  # doctest: +SKIP
    ...     sites = client.read("site")
    ...     his = client.his_read(sites[0]["id"], "yesterday")

    ``fmt`` is the wire format (``"zinc"`` or ``"json"``); any other keyword goes to
    ``httpx.Client`` (``timeout``, ``verify`` with an SSL context for mTLS, ``proxy``,
    ``limits``, ...).  The login happens on first use and again, once, on a 401.

    :meth:`close` releases the connections, as with httpx; :meth:`close_session` is the
    Haystack ``close`` op (log out).  Leaving a ``with`` block does both: it ends the
    session if the client is logged in (best effort: a failure there is ignored, and
    nothing is sent when the block is left by Ctrl-C or cancellation), then releases
    the connections.  A client given its own ``http=`` leaves that one open.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        fmt: str = "zinc",
        use_get: bool = True,
        allow_plaintext: bool = False,
        hello_with_data: bool = False,
        hooks: ClientHooks | None = None,
        tracer_provider: Any = None,
        http: httpx.Client | None = None,
        **httpx_options: Any,
    ) -> None:
        super().__init__(
            base_url,
            username,
            password,
            fmt=fmt,
            use_get=use_get,
            allow_plaintext=allow_plaintext,
            hello_with_data=hello_with_data,
            hooks=hooks,
            tracer_provider=tracer_provider,
        )
        self._own_http = http is None
        self._closed = False
        if http is None:
            import httpx

            http = httpx.Client(**httpx_options)
        self._http = http

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if _ends_session(et) and self.token is not None:
                with contextlib.suppress(ClientError):
                    self.close_session()
        finally:
            self.close()

    def close(self) -> None:
        """Release the HTTP connections (not those of an ``http=`` client you gave).

        The server session stays valid until it expires: :meth:`close_session` ends it.
        Calls after this raise :class:`RequestNotSentError`.
        """
        self._closed = True
        if self._own_http:
            self._http.close()
        if self._obs is not None:
            self._obs.disconnected(self.base_url, "closed")

    def _send(self, req: Request) -> httpx.Response:
        method, url, kwargs = self._build(req)
        if self._closed or self._http.is_closed:
            raise self._closed_error(url)
        obs = self._obs
        if obs is not None and obs.traces_connections:
            kwargs["extensions"] = {"trace": obs.sync_trace(url)}
        try:
            response = self._http.request(method, url, **kwargs)
        except Exception as exc:
            # httpx is loaded by now (it made self._http); looked up only on failure.
            import httpx

            if isinstance(exc, httpx.HTTPError):
                raise _translate(exc, url) from exc
            raise
        if obs is not None:
            obs.received(url, len(response.content))
        return response

    def _drive(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                resp = self._send(request)
                request = flow.send(Reply(resp.status_code, resp.headers, resp.content))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def login(self) -> str:
        """Authenticate now (it happens by itself on first use); returns the token."""
        return self._drive(self._core.login_flow())

    def call(self, op: str, grid: Grid | None = None) -> Grid:
        """Call any op, standard or vendor (``eval``, ...), with a request grid."""
        flow = self._core.call_flow(op, grid if grid is not None else Grid.empty())
        if self._obs is None:
            return self._drive(flow)
        with self._obs.request(op, self._core.url(op)):
            return self._drive(flow)

    # ------------------------------------------------------------------ the standard ops

    def about(self) -> Grid:
        """The ``about`` op: the server's name, version, product and time."""
        return self.call("about")

    def close_session(self) -> Grid:
        """The Haystack ``close`` op: log out, ending the session on the server (the
        token stops working; the next call logs in again).  Sends nothing when the
        client is not logged in.  :meth:`close` is what releases the connections."""
        if self.token is None:
            return Grid.empty()
        return self.call("close")

    def defs(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``defs`` op, all defs or those matching a filter."""
        return self.call("defs", self._core.filter_grid(query, limit))

    def libs(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``libs`` op."""
        return self.call("libs", self._core.filter_grid(query, limit))

    def ops(self) -> Grid:
        """The ``ops`` op."""
        return self.call("ops")

    def filetypes(self) -> Grid:
        """The ``filetypes`` op."""
        return self.call("filetypes")

    def read(self, query: Filter | str, limit: int | None = None) -> Grid:
        """The ``read`` op by filter."""
        return self.call("read", self._core.filter_grid(query, limit))

    def read_ids(self, ids: Sequence[Ref | str], *, checked: bool = False) -> Grid:
        """The ``read`` op by ids: one row per id, in order.

        By default an id with no record gives a row of nulls in its place, as the spec
        says; with ``checked=True`` it raises :class:`UnknownRecError`, whose ``ids``
        are the missing ones.
        """
        grid = self.call("read", self._core.ids_grid(ids))
        return self._core.check_ids(ids, grid) if checked else grid

    def nav(self, nav_id: Ref | str | None = None) -> Grid:
        """The ``nav`` op: the children of ``nav_id``, or the roots."""
        return self.call("nav", self._core.nav_grid(nav_id))

    def his_read(self, point: Ref | str, span: HisRange) -> Grid:
        """The ``hisRead`` op for one point: ``ts``, ``val`` rows."""
        return self.call("hisRead", self._core.his_read_grid(point, span))

    def his_read_batch(
        self, points: Sequence[Ref | str], span: HisRange, tz: str | None = None
    ) -> Grid:
        """The batch ``hisRead``: ``ts``, ``v0``, ``v1``, ... rows."""
        return self.call("hisRead", self._core.his_read_batch_grid(points, span, tz))

    def his_write(self, point: Ref | str, items: Iterable[tuple[_dt.datetime, Any]]) -> Grid:
        """The ``hisWrite`` op for one point: ``(ts, val)`` pairs."""
        return self.call("hisWrite", self._core.his_write_grid(point, items))

    def his_write_batch(self, points: Sequence[Ref | str], rows: Iterable[Sequence[Any]]) -> Grid:
        """The batch ``hisWrite``: rows of ``(ts, v0, v1, ...)``."""
        return self.call("hisWrite", self._core.his_write_batch_grid(points, rows))

    def point_write(
        self,
        point: Ref | str,
        level: int,
        value: Any,
        who: str | None = None,
        duration: Number | None = None,
    ) -> Grid:
        """The ``pointWrite`` op: write (``None`` releases) a priority level."""
        return self.call(
            "pointWrite", self._core.point_write_grid(point, level, value, who, duration)
        )

    def point_write_array(self, point: Ref | str) -> Grid:
        """The ``pointWrite`` op's read form: the 17-level priority array."""
        return self.call("pointWrite", self._core.ids_grid([point]))

    def watch_sub(
        self,
        ids: Sequence[Ref | str],
        watch_id: str | None = None,
        dis: str | None = None,
        lease: Number | None = None,
    ) -> Grid:
        """The ``watchSub`` op; the result meta carries ``watchId`` and ``lease``."""
        return self.call("watchSub", self._core.watch_sub_grid(ids, watch_id, dis, lease))

    def watch_unsub(
        self, watch_id: str, ids: Sequence[Ref | str] = (), close: bool = False
    ) -> Grid:
        """The ``watchUnsub`` op; ``close=True`` ends the watch."""
        return self.call("watchUnsub", self._core.watch_unsub_grid(watch_id, ids, close))

    def watch_poll(self, watch_id: str, refresh: bool = False) -> Grid:
        """The ``watchPoll`` op: what changed (everything with ``refresh``)."""
        return self.call("watchPoll", self._core.watch_poll_grid(watch_id, refresh))

    def watch(
        self,
        ids: Iterable[Ref | str],
        *,
        dis: str | None = None,
        lease: Number | None = None,
        partial: bool = False,
    ) -> Watch:
        """A :class:`Watch` on ``ids``: the current record of each entity, kept up to
        date by :meth:`Watch.poll`.  Nothing is sent until it is opened (``with``,
        :meth:`Watch.open` or the first poll).  ``partial=True`` is for servers whose
        polls send only the changed tags of an entity.

        >>> with client.watch(["@p1", "@p2"], dis="dashboard") as watch:  # doctest: +SKIP
        ...     for changes in watch.changes(interval=5):
        ...         print({i: watch[i].get("curVal") for i in changes.updated})
        """
        return Watch(self, ids, dis=dis, lease=lease, partial=partial)

    def invoke_action(
        self, target: Ref | str, action: str, args: Mapping[str, Any] | None = None
    ) -> Grid:
        """The ``invokeAction`` op."""
        return self.call("invokeAction", self._core.invoke_action_grid(target, action, args or {}))


class AsyncClient(_Base):
    """The awaitable twin of :class:`Client`, on ``httpx.AsyncClient`` (asyncio or trio).

    >>> async with AsyncClient("http://localhost:8080/api", "user", "pass") as c:  # doctest: +SKIP
    ...     sites = await c.read("site")

    :meth:`aclose` releases the connections, as with httpx; :meth:`close_session` is the
    Haystack ``close`` op.  Leaving an ``async with`` block ends the session (best
    effort, and not when cancelled) and then releases the connections.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        fmt: str = "zinc",
        use_get: bool = True,
        allow_plaintext: bool = False,
        hello_with_data: bool = False,
        hooks: ClientHooks | None = None,
        tracer_provider: Any = None,
        http: httpx.AsyncClient | None = None,
        **httpx_options: Any,
    ) -> None:
        super().__init__(
            base_url,
            username,
            password,
            fmt=fmt,
            use_get=use_get,
            allow_plaintext=allow_plaintext,
            hello_with_data=hello_with_data,
            hooks=hooks,
            tracer_provider=tracer_provider,
        )
        self._own_http = http is None
        self._closed = False
        if http is None:
            import httpx

            http = httpx.AsyncClient(**httpx_options)
        self._http = http

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if _ends_session(et) and self.token is not None:
                with contextlib.suppress(ClientError):
                    await self.close_session()
        finally:
            # Closing local sockets is quick; done even when the block was cancelled.
            import anyio

            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP connections (not those of an ``http=`` client you gave).
        The server session stays valid until it expires: :meth:`close_session` ends it."""
        self._closed = True
        if self._own_http:
            await self._http.aclose()
        if self._obs is not None:
            self._obs.disconnected(self.base_url, "closed")

    async def _send(self, req: Request) -> httpx.Response:
        method, url, kwargs = self._build(req)
        if self._closed or self._http.is_closed:
            raise self._closed_error(url)
        obs = self._obs
        if obs is not None and obs.traces_connections:
            kwargs["extensions"] = {"trace": obs.async_trace(url)}
        try:
            response = await self._http.request(method, url, **kwargs)
        except Exception as exc:
            # httpx is loaded by now (it made self._http); looked up only on failure.
            import httpx

            if isinstance(exc, httpx.HTTPError):
                raise _translate(exc, url) from exc
            raise
        if obs is not None:
            obs.received(url, len(response.content))
        return response

    async def _drive(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                resp = await self._send(request)
                request = flow.send(Reply(resp.status_code, resp.headers, resp.content))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def login(self) -> str:
        """Authenticate now; returns the token."""
        return await self._drive(self._core.login_flow())

    async def call(self, op: str, grid: Grid | None = None) -> Grid:
        """Call any op with a request grid."""
        flow = self._core.call_flow(op, grid if grid is not None else Grid.empty())
        if self._obs is None:
            return await self._drive(flow)
        with self._obs.request(op, self._core.url(op)):
            return await self._drive(flow)

    async def about(self) -> Grid:
        """The ``about`` op."""
        return await self.call("about")

    async def close_session(self) -> Grid:
        """The Haystack ``close`` op: log out (nothing is sent when not logged in).
        :meth:`aclose` is what releases the connections."""
        if self.token is None:
            return Grid.empty()
        return await self.call("close")

    async def defs(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``defs`` op."""
        return await self.call("defs", self._core.filter_grid(query, limit))

    async def libs(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``libs`` op."""
        return await self.call("libs", self._core.filter_grid(query, limit))

    async def ops(self) -> Grid:
        """The ``ops`` op."""
        return await self.call("ops")

    async def filetypes(self) -> Grid:
        """The ``filetypes`` op."""
        return await self.call("filetypes")

    async def read(self, query: Filter | str, limit: int | None = None) -> Grid:
        """The ``read`` op by filter."""
        return await self.call("read", self._core.filter_grid(query, limit))

    async def read_ids(self, ids: Sequence[Ref | str], *, checked: bool = False) -> Grid:
        """The ``read`` op by ids; ``checked=True`` raises :class:`UnknownRecError` for
        ids with no record instead of giving rows of nulls (see :meth:`Client.read_ids`)."""
        grid = await self.call("read", self._core.ids_grid(ids))
        return self._core.check_ids(ids, grid) if checked else grid

    async def nav(self, nav_id: Ref | str | None = None) -> Grid:
        """The ``nav`` op."""
        return await self.call("nav", self._core.nav_grid(nav_id))

    async def his_read(self, point: Ref | str, span: HisRange) -> Grid:
        """The ``hisRead`` op for one point."""
        return await self.call("hisRead", self._core.his_read_grid(point, span))

    async def his_read_batch(
        self, points: Sequence[Ref | str], span: HisRange, tz: str | None = None
    ) -> Grid:
        """The batch ``hisRead``."""
        return await self.call("hisRead", self._core.his_read_batch_grid(points, span, tz))

    async def his_write(self, point: Ref | str, items: Iterable[tuple[_dt.datetime, Any]]) -> Grid:
        """The ``hisWrite`` op for one point."""
        return await self.call("hisWrite", self._core.his_write_grid(point, items))

    async def his_write_batch(
        self, points: Sequence[Ref | str], rows: Iterable[Sequence[Any]]
    ) -> Grid:
        """The batch ``hisWrite``."""
        return await self.call("hisWrite", self._core.his_write_batch_grid(points, rows))

    async def point_write(
        self,
        point: Ref | str,
        level: int,
        value: Any,
        who: str | None = None,
        duration: Number | None = None,
    ) -> Grid:
        """The ``pointWrite`` op."""
        return await self.call(
            "pointWrite", self._core.point_write_grid(point, level, value, who, duration)
        )

    async def point_write_array(self, point: Ref | str) -> Grid:
        """The ``pointWrite`` read form."""
        return await self.call("pointWrite", self._core.ids_grid([point]))

    async def watch_sub(
        self,
        ids: Sequence[Ref | str],
        watch_id: str | None = None,
        dis: str | None = None,
        lease: Number | None = None,
    ) -> Grid:
        """The ``watchSub`` op."""
        return await self.call("watchSub", self._core.watch_sub_grid(ids, watch_id, dis, lease))

    async def watch_unsub(
        self, watch_id: str, ids: Sequence[Ref | str] = (), close: bool = False
    ) -> Grid:
        """The ``watchUnsub`` op."""
        return await self.call("watchUnsub", self._core.watch_unsub_grid(watch_id, ids, close))

    async def watch_poll(self, watch_id: str, refresh: bool = False) -> Grid:
        """The ``watchPoll`` op."""
        return await self.call("watchPoll", self._core.watch_poll_grid(watch_id, refresh))

    def watch(
        self,
        ids: Iterable[Ref | str],
        *,
        dis: str | None = None,
        lease: Number | None = None,
        partial: bool = False,
    ) -> AsyncWatch:
        """An :class:`AsyncWatch` on ``ids`` (see :meth:`Client.watch`); open it with
        ``async with`` or :meth:`AsyncWatch.open`.  From an
        :class:`AsyncWebSocketClient` its records follow the server's pushes (no polling
        needed) and are refreshed after a reconnect; its changes go to the watch
        (:meth:`AsyncWatch.changes`), not to ``updates()``."""
        return AsyncWatch(self, ids, dis=dis, lease=lease, partial=partial)

    # Whether the server pushes watch changes to this client (a WebSocket does).
    _pushes_watches = False

    def _watch_moved(self, watch: AsyncWatch, old: str | None, new: str | None) -> None:
        """A watch object was opened, reopened under a new id, or closed."""

    def _watch_opening(self, delta: int) -> None:
        """A watch object starts (1) or ends (-1) an exchange that may open a watch."""

    async def invoke_action(
        self, target: Ref | str, action: str, args: Mapping[str, Any] | None = None
    ) -> Grid:
        """The ``invokeAction`` op."""
        return await self.call(
            "invokeAction", self._core.invoke_action_grid(target, action, args or {})
        )
