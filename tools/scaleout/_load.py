"""The load driver: clients (``AsyncClient``), each logged in once and then sent by the
balancer to any instance, mixing reads, navs, hisReads, hisWrites, pointWrites and watch
polls, bounded in requests and in seconds; and the ledger of what each write was
answered, which the checks (``_checks``) compare with what the store holds afterwards.

Every write carries values that say who wrote it and when in that writer's order, so
that what is read back can be matched sample for sample and level for level:

- hisWrite: client ``k`` writes batches to its two points ``rig.his{k}.a`` and ``.b``;
  batch ``j`` holds ``B`` samples at minutes ``j*B .. j*B+B-1`` after ``HIS_T0`` with the
  values ``j*B+i`` (on ``a``) and ``-(j*B+i) - 0.5`` (on ``b``): one request, two points,
  all or nothing.
- pointWrite: client ``k`` owns one level of one point ``rig.sp{n}`` (a few clients per
  point, each at its own level) and writes ``1, 2, 3, ...`` there, ``who`` its name.
- watches: each client watches a few ``rig.sp`` points (its own among them) and polls
  them at a fixed cadence (every ``poll_every`` seconds, as a dashboard does), beside its
  other requests, so that the time from a write to the poll that shows it measures the
  servers, not the gaps between one client's other requests.

A request that was sent but never answered (the connection dropped, HAProxy's 502 for
an instance killed mid-request, a timeout) is repeated once; a 503 is not repeated (it
is the server's answer while the store is away) and the client waits its Retry-After.
A write whose answer did not come back is ``unknown``: it may or may not have happened,
but never in part.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import math
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from projecthaystack.client import (
    AsyncClient,
    CallError,
    ClientError,
    RequestNotSentError,
    ResponseError,
)
from projecthaystack.kinds import Marker, Number, Ref

__all__ = [
    "HIS_T0",
    "MIX",
    "OPS",
    "Driver",
    "Ledger",
    "LoadClient",
    "Sample",
    "World",
    "rig_records",
]

HIS_T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""Where the rig's own history starts (apart from the demo building's)."""

REPEAT_AFTER = 0.25
"""Seconds a request never answered waits before its one repeat."""

MIX: dict[str, int] = {
    "read": 20,
    "nav": 10,
    "hisRead": 15,
    "hisWrite": 15,
    "pointWrite": 10,
}
"""The mix: relative weights of each kind of step.  A ``pointWrite`` step is two
requests: the write, then its read form (``pointArray``: read your writes, through
whichever instance the balancer picks).  Watch polls are not drawn from the mix: each
client polls its watch at a fixed cadence besides (:class:`Driver`)."""

OPS = ("read", "nav", "hisRead", "hisWrite", "pointWrite", "pointArray", "watchPoll")
"""The request kinds reported."""

READ_FILTERS = (
    'point and his and kind == "Number"',
    "equip",
    "site",
    "ahu",
    "point and writable",
    "point and sensor and temp",
)


@dataclass(frozen=True)
class World:
    """The rig's entities: how many clients, points and levels there are."""

    clients: int
    his_batch: int = 20
    watch_size: int = 4
    owners_per_point: int = 4

    @property
    def sp_count(self) -> int:
        """How many writable points the clients share."""
        return max(1, math.ceil(self.clients / self.owners_per_point))

    def his_points(self, k: int) -> tuple[str, str]:
        """Client ``k``'s two history points."""
        return f"rig.his{k}.a", f"rig.his{k}.b"

    def sp_of(self, k: int) -> tuple[str, int]:
        """The point and level client ``k`` writes."""
        return f"rig.sp{k % self.sp_count}", 10 + k // self.sp_count

    def owners(self, point: str) -> dict[int, int]:
        """Level -> client for a writable point."""
        found = {}
        for k in range(self.clients):
            p, level = self.sp_of(k)
            if p == point:
                found[level] = k
        return found

    def sp_points(self) -> list[str]:
        """Every writable point."""
        return [f"rig.sp{n}" for n in range(self.sp_count)]

    def watched(self, k: int) -> list[str]:
        """The points client ``k`` watches (its own first)."""
        n = self.sp_count
        first = k % n
        return [f"rig.sp{(first + i) % n}" for i in range(min(self.watch_size, n))]

    def batch(self, k: int, j: int) -> list[tuple[dt.datetime, Number, Number]]:
        """Batch ``j`` of client ``k``: rows (ts, a, b)."""
        base = j * self.his_batch
        return [
            (
                HIS_T0 + dt.timedelta(minutes=base + i),
                Number(float(base + i), "kWh"),
                Number(-float(base + i) - 0.5, "kWh"),
            )
            for i in range(self.his_batch)
        ]


def rig_records(world: World, site: Ref) -> list[dict[str, Any]]:
    """The rig's own points, besides the demo building: two history points per client
    and the shared writable points."""
    records: list[dict[str, Any]] = []
    for k in range(world.clients):
        for pid in world.his_points(k):
            records.append(
                {
                    "id": Ref(pid),
                    "dis": f"Rig meter {pid}",
                    "point": Marker,
                    "his": Marker,
                    "sensor": Marker,
                    "energy": Marker,
                    "kind": "Number",
                    "unit": "kWh",
                    "tz": "UTC",
                    "siteRef": site,
                    "rig": Marker,
                }
            )
    for pid in world.sp_points():
        records.append(
            {
                "id": Ref(pid),
                "dis": f"Rig setpoint {pid}",
                "point": Marker,
                "writable": Marker,
                "cur": Marker,
                "sp": Marker,
                "temp": Marker,
                "kind": "Number",
                "unit": "°F",
                "tz": "UTC",
                "siteRef": site,
                "rig": Marker,
            }
        )
    return records


@dataclass
class Sample:
    """One request as the driver saw it."""

    op: str
    client: int
    start: float
    end: float
    outcome: str
    """``ok``; ``ok-retried`` (answered on the one repeat); ``503`` (an error grid with
    503); ``503-bare`` (503 without a grid); ``unanswered`` (no answer even on the
    repeat); ``error-grid`` (an error grid with 200); ``http-<status>``; ``not-sent``."""
    detail: str = ""
    instance: str = ""


@dataclass
class WriteRecord:
    """A pointWrite: value ``seq`` at ``level``, when it was sent and answered."""

    seq: int
    start: float
    end: float
    status: str  # acked | unknown


@dataclass
class Report:
    """One watch poll (or the watchSub that opened the watch): for each point it
    reported, ``(writeLevel, writeVal)`` as ``(level, seq)`` (``None`` when unset)."""

    start: float
    end: float
    points: dict[str, tuple[int, int] | None]
    refresh: bool = False


@dataclass
class Ledger:
    """What every write was answered, across all phases of one store's run."""

    his: dict[tuple[int, int], str] = field(default_factory=dict)
    writes: dict[tuple[str, int], list[WriteRecord]] = field(default_factory=dict)
    watches: dict[int, tuple[str, list[Report]]] = field(default_factory=dict)
    next_batch: dict[int, int] = field(default_factory=dict)
    next_seq: dict[int, int] = field(default_factory=dict)
    logins: dict[int, list[str]] = field(default_factory=dict)
    """For each client, the instances that answered the steps of its login."""
    relogins: int = 0
    """Logins after the first (a session that did not survive would show here)."""


_ANSWERED_BY: contextvars.ContextVar[str] = contextvars.ContextVar("answered_by", default="")
"""The instance that answered the last response of this task (a client's polls run in a
task of their own beside its other requests, so one attribute would mix the two)."""


@functools.cache
def _shared_tls() -> ssl.SSLContext:
    # The load speaks plain HTTP; an httpx client still makes a TLS context of its own,
    # which costs 50 ms of CPU each (the system's CA file): one serves every client.
    return ssl.create_default_context()


def _level_val(rec: Any) -> tuple[int, int] | None:
    level = rec.get("writeLevel") if rec is not None else None
    val = rec.get("writeVal") if rec is not None else None
    if isinstance(level, Number) and isinstance(val, Number):
        return int(level.val), int(val.val)
    return None


class LoadClient:
    """One client of the load: an ``AsyncClient`` through the balancer, its user, its
    share of the rig's points, and what it saw."""

    def __init__(
        self,
        k: int,
        url: str,
        username: str,
        password: str,
        world: World,
        ledger: Ledger,
        nav_ids: Sequence[Ref],
        his_ids: Sequence[Ref],
        seed: int,
    ) -> None:
        self.k = k
        self.world = world
        self.ledger = ledger
        self.nav_ids = list(nav_ids)
        self.his_ids = list(his_ids)
        self.rng = random.Random(seed * 1000 + k)
        self.in_login = False
        self.login_steps: list[str] = []

        async def seen(response: httpx.Response) -> None:
            instance = response.headers.get("x-haystack-instance", "")
            _ANSWERED_BY.set(instance)
            if self.in_login:
                self.login_steps.append(instance)

        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=5.0),
            event_hooks={"response": [seen]},
            verify=_shared_tls(),
        )
        self.client = AsyncClient(url, username, password, http=self.http)
        self.samples: list[Sample] = []
        self.token: str | None = None

    async def login(self) -> None:
        """Log in (once, for the whole run) and open the watch."""
        self.in_login = True
        try:
            self.token = await self.client.login()
        finally:
            self.in_login = False
        self.ledger.logins[self.k] = list(self.login_steps)
        start = time.monotonic()
        sub = await self.client.watch_sub(
            self.world.watched(self.k), dis=f"rig client {self.k}", lease=Number(30, "min")
        )
        end = time.monotonic()
        points = {r["id"].id: _level_val(r) for r in sub if isinstance(r.get("id"), Ref)}
        self.ledger.watches[self.k] = (sub.meta["watchId"], [Report(start, end, points, True)])

    async def aclose(self) -> None:
        """Release the connections (the session is left to expire)."""
        await self.http.aclose()

    # -- one request, with the one repeat of a request never answered ----------------------
    async def _request(self, op: str, call: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        start = time.monotonic()
        outcome, detail, result = "ok", "", None
        for attempt in range(2):
            if attempt:
                # As a client would, the repeat waits a moment: a balancer closes a client's
                # connection without an answer when the idle connection it reused to an
                # instance just killed was dead (HAProxy's way of saying "safe to repeat"),
                # and at once it may still hold such connections for the next try too.
                await asyncio.sleep(REPEAT_AFTER)
            try:
                result = await call()
                outcome = "ok" if attempt == 0 else "ok-retried"
                break
            except RequestNotSentError as exc:
                outcome, detail = "not-sent", str(exc)
            except ResponseError as exc:
                if exc.status == 503:
                    outcome = "503" if exc.server_message else "503-bare"
                    detail = exc.server_message or str(exc)
                    break
                if exc.status not in (None, 502, 504):
                    outcome, detail = f"http-{exc.status}", str(exc)
                    break
                outcome, detail = "unanswered", str(exc)
            except CallError as exc:
                outcome, detail = "error-grid", exc.dis if hasattr(exc, "dis") else str(exc)
                break
            except ClientError as exc:
                outcome, detail = type(exc).__name__, str(exc)
                break
        end = time.monotonic()
        self.samples.append(
            Sample(op, self.k, start, end, outcome, detail[:300], _ANSWERED_BY.get())
        )
        if self.client.token != self.token:
            self.ledger.relogins += 1
            self.token = self.client.token
        if outcome in ("503", "503-bare"):
            await asyncio.sleep(1.0)  # the Retry-After the server gives
        return outcome.startswith("ok"), result

    # -- the ops ----------------------------------------------------------------------------
    async def one(self, op: str) -> None:
        """One request of kind ``op``."""
        c = self.client
        if op == "read":
            flt = self.rng.choice(READ_FILTERS)
            await self._request(op, lambda: c.read(flt, limit=100))
        elif op == "nav":
            target = self.rng.choice([None, *self.nav_ids])
            await self._request(op, lambda: c.nav(target))
        elif op == "hisRead":
            await self._his_read()
        elif op == "hisWrite":
            await self._his_write()
        elif op == "pointWrite":
            await self._point_write()
        elif op == "watchPoll":
            await self.poll()
        else:
            raise ValueError(op)

    async def _his_read(self) -> None:
        c = self.client
        done = self.ledger.next_batch.get(self.k, 0)
        if done == 0 or self.rng.random() < 0.5:
            point = self.rng.choice(self.his_ids)
            await self._request("hisRead", lambda: c.his_read(point, "yesterday"))
            return
        # Our own recent batches, both points at once: each batch whole or absent.
        first = max(0, done - 5)
        span = (
            HIS_T0 + dt.timedelta(minutes=first * self.world.his_batch),
            HIS_T0 + dt.timedelta(minutes=done * self.world.his_batch),
        )
        points = self.world.his_points(self.k)
        ok, grid = await self._request("hisRead", lambda: c.his_read_batch(points, span))
        if ok:
            self._check_batches(grid, first, done)

    def _check_batches(self, grid: Any, first: int, done: int) -> None:
        per: dict[int, list[tuple[Any, Any]]] = {}
        for row in grid:
            minute = int((row["ts"] - HIS_T0).total_seconds() // 60)
            per.setdefault(minute // self.world.his_batch, []).append(
                (row.get("v0"), row.get("v1"))
            )
        for j in range(first, done):
            rows = per.get(j, [])
            status = self.ledger.his.get((self.k, j))
            whole = len(rows) == self.world.his_batch and all(
                a is not None and b is not None for a, b in rows
            )
            if rows and not whole:
                self.samples[-1].outcome = "torn-batch"
                self.samples[-1].detail = f"batch {j}: {len(rows)} rows, some half written"
            elif not rows and status == "acked":
                self.samples[-1].outcome = "lost-batch"
                self.samples[-1].detail = f"acknowledged batch {j} of client {self.k} missing"

    async def _his_write(self) -> None:
        j = self.ledger.next_batch.get(self.k, 0)
        self.ledger.next_batch[self.k] = j + 1
        rows = [list(r) for r in self.world.batch(self.k, j)]
        points = self.world.his_points(self.k)
        self.ledger.his[(self.k, j)] = "unknown"  # until answered
        ok, _ = await self._request("hisWrite", lambda: self.client.his_write_batch(points, rows))
        if ok:
            self.ledger.his[(self.k, j)] = "acked"

    async def _point_write(self) -> None:
        point, level = self.world.sp_of(self.k)
        seq = self.ledger.next_seq.get(self.k, 0) + 1
        self.ledger.next_seq[self.k] = seq
        start = time.monotonic()
        record = WriteRecord(seq, start, start, "unknown")
        self.ledger.writes.setdefault((point, level), []).append(record)
        ok, _ = await self._request(
            "pointWrite",
            lambda: self.client.point_write(
                point, level, Number(float(seq), "°F"), who=f"rig-client-{self.k}"
            ),
        )
        record.end = time.monotonic()
        if not ok:
            return
        record.status = "acked"
        # Read it back at once, through whichever instance the balancer picks.
        ok, grid = await self._request("pointArray", lambda: self.client.point_write_array(point))
        if ok:
            got = next((r for r in grid if int(r["level"].val) == level), None)
            val = got.get("val") if got is not None else None
            # Only this client writes this level, so nothing newer can be there.
            if not (isinstance(val, Number) and int(val.val) == seq):
                self.samples[-1].outcome = "stale-array"
                self.samples[-1].detail = f"{point} level {level}: {val!r}, wrote {seq}"

    async def poll(self) -> None:
        """Poll the client's watch for changes (what it reports goes to the ledger)."""
        watch_id, reports = self.ledger.watches[self.k]
        start = time.monotonic()
        ok, grid = await self._request("watchPoll", lambda: self.client.watch_poll(watch_id))
        if ok:
            points = {r["id"].id: _level_val(r) for r in grid if isinstance(r.get("id"), Ref)}
            reports.append(Report(start, time.monotonic(), points))

    async def final_poll(self) -> None:
        """A last poll after the load (what the watch still had to report)."""
        await self.poll()


class Driver:
    """Runs the clients for a while: each picks ops by weight, one at a time, as fast
    as it is answered (a closed loop: with enough clients the servers are saturated, and
    a request's latency is mostly its wait in the queue), and polls its watch every
    ``poll_every`` seconds besides, at a random phase."""

    def __init__(
        self, clients: Sequence[LoadClient], seed: int, *, poll_every: float = 2.0
    ) -> None:
        self.clients = list(clients)
        self.rng = random.Random(seed)
        self.ops = list(MIX)
        self.weights = [MIX[o] for o in self.ops]
        self.poll_every = poll_every

    async def run(
        self,
        seconds: float,
        max_requests: int,
        tick: Callable[[], None] | None = None,
        until: Callable[[], float] | None = None,
    ) -> tuple[list[Sample], float]:
        """Run every client until ``seconds`` pass (or the time ``until()`` says, when
        given: a monotonic time it may move on) or ``max_requests`` were made; the
        samples of this run and the seconds it took."""
        for c in self.clients:
            c.samples = []
        fixed = time.monotonic() + seconds
        deadline = until if until is not None else (lambda: fixed)
        budget = [max_requests]
        started = time.monotonic()

        async def loop(c: LoadClient) -> None:
            while time.monotonic() < deadline() and budget[0] > 0:
                op = c.rng.choices(self.ops, self.weights)[0]
                budget[0] -= 2 if op == "pointWrite" else 1
                await c.one(op)

        async def polls(c: LoadClient) -> None:
            # A fixed cadence: a poll that took longer than the period is followed by
            # the next one at once, and the ticks it missed are skipped, not made up.
            due = started + c.rng.uniform(0, self.poll_every)
            while True:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if time.monotonic() >= deadline() or budget[0] <= 0:
                    return
                budget[0] -= 1
                await c.poll()
                due = max(due + self.poll_every, time.monotonic())

        async def ticker() -> None:
            while tick is not None:
                tick()
                await asyncio.sleep(1.0)

        ticking = asyncio.ensure_future(ticker())
        try:
            await asyncio.gather(
                *(loop(c) for c in self.clients),
                *(polls(c) for c in self.clients if self.poll_every > 0),
            )
        finally:
            ticking.cancel()
        took = time.monotonic() - started
        return [s for c in self.clients for s in c.samples], took
