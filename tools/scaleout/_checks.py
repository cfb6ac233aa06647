"""What must hold, checked against what the store holds once the load has stopped.

- Nothing lost: every acknowledged hisWrite batch is read back sample for sample, and
  every batch, acknowledged or not, is there whole or not at all; every acknowledged
  pointWrite is in the priority array (unless a later write of the same level may have
  replaced it) and the point's ``writeVal``/``writeLevel`` follow the array's top level.
- Every watch saw every change: what it reported of a point never went back in time
  (whichever instance answered), and the last thing it reported is the point's state.
- Sessions are one: a login finished on any instance works on all; ``close``, disabling
  a user and changing their password end the session on every instance at once.
- Faults: every failed request fell into a fault's window and was a 503 error grid or
  a request never answered that succeeded when repeated once; after the last fault
  every request succeeded again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import secrets
import shutil
import ssl
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from projecthaystack.client import AsyncClient, ClientError, CredentialsRejectedError
from projecthaystack.kinds import Number

from ._fleet import make_certificates
from ._load import HIS_T0, Ledger, Sample, World

__all__ = [
    "ALLOWED_IN_GAP",
    "Check",
    "FaultWindow",
    "check_faults",
    "check_history",
    "check_points",
    "check_sessions",
    "check_tls",
    "check_watches",
    "percentiles",
]

ALLOWED_IN_GAP = frozenset({"503"})
"""Failures a client may see while the store is away: the server's 503 error grid."""


@dataclass
class Check:
    """One property, whether it held, and what was seen."""

    name: str
    ok: bool
    detail: str
    store: str = ""

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return asdict(self)


@dataclass
class FaultWindow:
    """A fault and the time (monotonic) during which requests may fail because of it."""

    what: str
    kind: str  # "instance" or "store"
    began: float
    back: float
    """When the thing was back (the instance up in HAProxy, the store serving)."""
    grace: float
    """Seconds after :attr:`back` in which failures still count as the fault's."""


# -- history -------------------------------------------------------------------------------


async def check_history(client: AsyncClient, world: World, ledger: Ledger) -> Check:
    """Every client's batches read back: acknowledged ones whole and exact, the others
    whole or absent, nothing else there."""
    problems: list[str] = []
    acked = unknown_present = unknown_absent = samples = 0
    for k in range(world.clients):
        count = ledger.next_batch.get(k, 0)
        if count == 0:
            continue
        span = (HIS_T0, HIS_T0 + dt.timedelta(minutes=count * world.his_batch))
        grid = await client.his_read_batch(world.his_points(k), span)
        got: dict[int, dict[int, tuple[Any, Any]]] = {}
        for row in grid:
            minute = int((row["ts"] - HIS_T0).total_seconds() // 60)
            got.setdefault(minute // world.his_batch, {})[minute] = (row.get("v0"), row.get("v1"))
        for j in range(count):
            status = ledger.his.get((k, j), "unknown")
            rows = got.pop(j, {})
            want = {
                int((ts - HIS_T0).total_seconds() // 60): (a, b) for ts, a, b in world.batch(k, j)
            }
            if status == "acked":
                acked += 1
            if not rows:
                if status == "acked":
                    problems.append(f"client {k} batch {j}: acknowledged, missing")
                else:
                    unknown_absent += 1
                continue
            if rows != want:
                wrong = sum(1 for m, v in want.items() if rows.get(m) != v)
                problems.append(
                    f"client {k} batch {j} ({status}): {wrong} of {len(want)} samples "
                    "missing or different (half written?)"
                )
                continue
            samples += 2 * len(want)
            if status != "acked":
                unknown_present += 1
        for j in got:
            problems.append(f"client {k}: samples in batch {j}, which was never written")
    detail = (
        f"{acked} acknowledged batches ({samples} samples) read back exactly; batches not "
        f"answered: {unknown_present} there whole, {unknown_absent} absent"
    )
    if problems:
        detail += "; " + "; ".join(problems[:10])
    return Check("hisWrite: nothing lost, no batch half written", not problems, detail)


# -- points --------------------------------------------------------------------------------


async def check_points(
    client: AsyncClient, world: World, ledger: Ledger
) -> tuple[Check, dict[str, tuple[int, int] | None]]:
    """Each level holds its writer's last acknowledged value (or a later unanswered
    one); ``writeVal``/``writeLevel`` are the top level's.  Also returns each point's
    final ``(writeLevel, writeVal)``."""
    problems: list[str] = []
    finals: dict[str, tuple[int, int] | None] = {}
    levels_checked = 0
    records = {r["id"].id: r for r in await client.read_ids(world.sp_points())}
    for point in world.sp_points():
        array = await client.point_write_array(point)
        held = {int(r["level"].val): r for r in array if r.get("val") is not None}
        for level, k in world.owners(point).items():
            history = ledger.writes.get((point, level), [])
            last_acked = max((i for i, w in enumerate(history) if w.status == "acked"), default=-1)
            allowed: set[int | None] = {history[last_acked].seq} if last_acked >= 0 else {None}
            allowed |= {w.seq for w in history[last_acked + 1 :]}
            row = held.get(level)
            val = row.get("val") if row is not None else None
            got = int(val.val) if isinstance(val, Number) else None
            levels_checked += 1
            if got not in allowed:
                problems.append(f"{point} level {level}: holds {got}, expected one of {allowed}")
            if row is not None and row.get("who") != f"rig-client-{k}":
                problems.append(f"{point} level {level}: who is {row.get('who')!r}")
        rec = records.get(point)
        final = (
            (int(rec["writeLevel"].val), int(rec["writeVal"].val))
            if rec is not None and isinstance(rec.get("writeVal"), Number)
            else None
        )
        finals[point] = final
        top = min(held, default=None)
        expect = (top, int(held[top]["val"].val)) if top is not None else None
        if final != expect:
            problems.append(f"{point}: writeLevel/writeVal {final}, the array's top is {expect}")
    detail = (
        f"{levels_checked} levels of {len(world.sp_points())} points hold their last "
        f"acknowledged write; writeVal follows the array"
    )
    if problems:
        detail += "; " + "; ".join(problems[:10])
    return Check("pointWrite: array and writeVal", not problems, detail), finals


# -- watches -------------------------------------------------------------------------------


def _key(state: tuple[int, int] | None) -> tuple[int, int]:
    # Levels are only ever set (never released) and each writer's values grow, so a
    # point's state only moves forward in this order.
    return (-state[0], state[1]) if state is not None else (-99, -1)


def check_watches(
    world: World, ledger: Ledger, finals: Mapping[str, tuple[int, int] | None]
) -> tuple[Check, list[float]]:
    """What each watch reported never went back, and ends at each point's state; and
    the delays from an acknowledged write to the first poll that showed it."""
    problems: list[str] = []
    delays: list[float] = []
    reports_seen = 0
    for k, (_, reports) in sorted(ledger.watches.items()):
        opened = reports[0].end if reports else 0.0
        for point in world.watched(k):
            seen = [(r, r.points[point]) for r in reports if point in r.points]
            reports_seen += len(seen)
            for (_, s1), (_, s2) in itertools.pairwise(seen):
                if _key(s2) < _key(s1):
                    problems.append(f"watch of client {k}: {point} went back from {s1} to {s2}")
                    break
            last = seen[-1][1] if seen else None
            if _key(last) != _key(finals.get(point)):
                problems.append(
                    f"watch of client {k}: last saw {point} as {last}, it is {finals.get(point)}"
                )
            final = finals.get(point)
            if final is None:
                continue
            for w in ledger.writes.get((point, final[0]), []):
                if w.status != "acked" or w.start < opened:
                    continue
                first = next(
                    (r for r, s in seen if r.end >= w.start and _key(s) >= _key((final[0], w.seq))),
                    None,
                )
                if first is not None:
                    delays.append(max(0.0, first.end - w.end))
    detail = (
        f"{len(ledger.watches)} watches, {reports_seen} reports of their points: none went "
        "back, each ends at the point's state"
    )
    if delays:
        ordered = sorted(delays)
        detail += (
            f"; from an acknowledged write to the first poll showing it: median "
            f"{statistics.median(ordered):.2f} s (watches are polled, not pushed, here)"
        )
    if problems:
        detail += "; " + "; ".join(problems[:10])
    return Check("watches: every change seen, from any instance", not problems, detail), delays


# -- sessions ------------------------------------------------------------------------------


async def _status(http: httpx.AsyncClient, url: str, token: str) -> int:
    response = await http.get(
        f"{url}/about",
        headers={"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"},
    )
    return response.status_code


async def _statuses(http: httpx.AsyncClient, urls: Sequence[str], token: str) -> list[int]:
    return [await _status(http, u, token) for u in urls]


async def check_sessions(
    balancer: str, instances: Sequence[str], admin: tuple[str, str]
) -> list[Check]:
    """Logins and their end, across instances (each instance asked directly)."""
    checks: list[Check] = []
    user = "rig-session-" + secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    async with (
        httpx.AsyncClient(timeout=20) as http,
        AsyncClient(balancer, *admin, timeout=20) as admin_client,
    ):
        admin_token = await admin_client.login()
        auth = {"Authorization": f"BEARER authToken={admin_token}"}

        async def users(method: str, path: str, body: Mapping[str, Any]) -> int:
            response = await http.request(
                method, f"{balancer}/admin/users{path}", json=dict(body), headers=auth
            )
            return response.status_code

        created = await users(
            "POST", "", {"username": user, "password": password, "role": "operator"}
        )
        if created != 201:
            return [Check("sessions", False, f"creating a user answered {created}")]

        # A login finished on each instance works on every instance.
        seen = []
        for i, url in enumerate(instances):
            async with AsyncClient(url, user, password, timeout=20) as one:
                token = await one.login()
                seen.append((i, await _statuses(http, instances, token)))
                await one.close_session()
        ok = all(all(s == 200 for s in statuses) for _, statuses in seen)
        checks.append(
            Check(
                "a login finished on any instance works on all",
                ok,
                "; ".join(f"login on s{i + 1}: {statuses}" for i, statuses in seen),
            )
        )

        async def ended(what: str, end: Any) -> Check:
            async with AsyncClient(balancer, user, password, timeout=20) as c:
                token = await c.login()
                before = await _statuses(http, instances, token)
                await end(c)
                after = await _statuses(http, instances, token)
            good = all(s == 200 for s in before) and all(s in (401, 403) for s in after)
            return Check(
                f"{what} ends the session on every instance at once",
                good,
                f"each instance's answer to the token before: {before}, right after: {after}",
            )

        async def close(c: AsyncClient) -> None:
            await c.close_session()

        checks.append(await ended("close", close))

        async def disable(c: AsyncClient) -> None:
            assert await users("PATCH", f"/{user}", {"enabled": False}) == 200

        checks.append(await ended("disabling the user", disable))
        refused = await _refused(balancer, user, password)
        assert await users("PATCH", f"/{user}", {"enabled": True}) == 200
        checks.append(Check("a disabled user cannot log in", refused, f"login refused: {refused}"))

        new_password = secrets.token_urlsafe(12)

        async def repassword(c: AsyncClient) -> None:
            assert await users("PATCH", f"/{user}", {"password": new_password}) == 200

        checks.append(await ended("a password change", repassword))
        old_refused = await _refused(balancer, user, password)
        async with AsyncClient(balancer, user, new_password, timeout=20) as c:
            new_works = bool(await c.login())
        checks.append(
            Check(
                "after a password change only the new one logs in",
                old_refused and new_works,
                f"old refused: {old_refused}, new accepted: {new_works}",
            )
        )
        await users("DELETE", f"/{user}", {})
    return checks


async def _refused(url: str, user: str, password: str) -> bool:
    try:
        async with AsyncClient(url, user, password, timeout=20) as c:
            await c.login()
    except CredentialsRejectedError:
        return True
    except ClientError:
        return False
    return False


# -- faults --------------------------------------------------------------------------------


def check_faults(
    samples: Sequence[Sample], windows: Sequence[FaultWindow], end: float, started: float = 0.0
) -> tuple[list[Check], dict[str, Any]]:
    """Every failure in a fault's window and of the kind allowed there; and after the
    last fault, requests succeed again.  Also a summary of what clients saw (times of
    failures in seconds after ``started``, when the load began)."""
    bad: list[str] = []
    by_window: dict[str, dict[str, int]] = {w.what: {} for w in windows if w.kind == "store"}
    retried = sum(1 for s in samples if s.outcome == "ok-retried")
    last_failure = 0.0
    for s in samples:
        if s.outcome in ("ok", "ok-retried"):
            continue
        last_failure = max(last_failure, s.end)
        window = next(
            (
                w
                for w in windows
                if w.kind == "store" and w.began - 0.5 <= s.end and s.start <= w.back + w.grace
            ),
            None,
        )
        if window is not None and s.outcome in ALLOWED_IN_GAP:
            counts = by_window[window.what]
            counts[s.outcome] = counts.get(s.outcome, 0) + 1
            continue
        bad.append(
            f"{s.op} at +{s.start - started:.2f} s to +{s.end - started:.2f} s "
            f"(answered by {s.instance or '?'}): {s.outcome} {s.detail[:160]}"
        )
    store_windows = [w for w in windows if w.kind == "store"]
    recovered = [
        max(0.0, last_failure - w.back) if last_failure > w.began else 0.0 for w in store_windows
    ]
    after = [s for s in samples if s.start > last_failure]
    recovered_ok = not last_failure or (
        bool(after) and all(s.outcome.startswith("ok") for s in after) and end - last_failure > 3
    )
    checks = [
        Check(
            "faults: every failure is a 503 error grid during a store gap, or answered on "
            "its one repeat",
            not bad,
            f"{retried} requests answered on their one repeat; 503 error grids per fault: "
            f"{by_window}" + ("; other failures: " + "; ".join(bad[:8]) if bad else ""),
        ),
        Check(
            "faults: everything works again afterwards, without restarting the servers",
            recovered_ok,
            f"{len(after)} requests after the last failure, all answered; the last failure "
            f"{end - last_failure:.1f} s before the end"
            if last_failure
            else "no request failed (beyond those answered on their one repeat)",
        ),
    ]
    for w in store_windows:
        seen = by_window.get(w.what, {})
        checks.append(
            Check(
                "faults: while the store was away, clients got 503 error grids",
                sum(seen.values()) > 0,
                f"{w.what}: {sum(seen.values())} answered with a 503 error grid (a gap no "
                "request noticed would test nothing)",
            )
        )
    for w in windows:
        if w.kind != "instance":
            continue
        name = w.what.rsplit(" ", 1)[-1]
        served = sum(1 for s in samples if s.start > w.back and s.instance == name)
        checks.append(
            Check(
                f"faults: the balancer sends requests to {name} again once it is back",
                served > 0,
                f"{served} requests answered by {name} after its restart",
            )
        )
    summary = {
        "retried_once": retried,
        "errors_by_fault": by_window,
        "other_failures": bad[:20],
        "recovery_after_store_back_s": [round(r, 2) for r in recovered],
    }
    return checks, summary


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 of ``values`` (seconds)."""
    if not values:
        return 0.0, 0.0
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return p50, p99


# -- TLS at the balancer -------------------------------------------------------------------


async def check_tls(
    tls_url: str, mtls_url: str, ca: Path, client_pem: Path, admin: tuple[str, str]
) -> list[Check]:
    """The guide's TLS listener and mTLS frontend, as HAProxy runs them: a login and an
    op over TLS (the certificate checked against the rig's CA); through the mTLS
    frontend, a client with a certificate of that CA is let in, and one whose
    certificate names the same CA but was signed by another key is refused."""
    checks: list[Check] = []
    trust = ssl.create_default_context(cafile=str(ca))
    try:
        async with (
            httpx.AsyncClient(verify=trust, timeout=20) as http,
            AsyncClient(tls_url, *admin, http=http) as c,
        ):
            about = await c.about()
            name = about[0].get("serverName")
        checks.append(
            Check("TLS at the balancer: a login and an op", bool(name), f"serverName {name!r}")
        )
    except (ClientError, httpx.HTTPError, ssl.SSLError) as exc:
        checks.append(
            Check("TLS at the balancer: a login and an op", False, f"{type(exc).__name__}: {exc}")
        )

    home = mtls_url.rsplit("/", 1)[0] + "/"
    with_cert = ssl.create_default_context(cafile=str(ca))
    with_cert.load_cert_chain(str(client_pem))
    try:
        async with httpx.AsyncClient(verify=with_cert, timeout=20) as http:
            status = (await http.get(home)).status_code
        admitted, said = status == 200, f"with the CA's client certificate: {status}"
    except (httpx.HTTPError, ssl.SSLError) as exc:
        admitted, said = False, f"with the CA's client certificate: {type(exc).__name__}: {exc}"

    # A certificate naming the same CA, signed by another key: HAProxy must refuse it.
    other = Path(tempfile.mkdtemp(prefix="rig-other-ca-"))
    try:
        _, _, stranger = make_certificates(other)
        foreign = ssl.create_default_context(cafile=str(ca))
        foreign.load_cert_chain(str(stranger))
        try:
            async with httpx.AsyncClient(verify=foreign, timeout=20) as http:
                refused_status = str((await http.get(home)).status_code)
            refused = False
        except (httpx.HTTPError, ssl.SSLError) as exc:
            # Under TLS 1.3 the client's certificate is judged after the client's side of
            # the handshake is done: the refusal comes as an alert on the first read.
            refused, refused_status = True, f"refused ({type(exc).__name__}: {exc})"
    finally:
        shutil.rmtree(other, ignore_errors=True)
    checks.append(
        Check(
            "mTLS at the balancer: the CA's client certificates only",
            admitted and refused,
            f"{said}; with one signed by another key in the CA's name: {refused_status}",
        )
    )
    return checks
