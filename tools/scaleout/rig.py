"""The scale-out rig: several ``haystack-server`` instances behind HAProxy on one
store, under load, with faults, checked for lost writes and split sessions.

    python3 tools/dev.py scaleout                 # both stores, the full run (~10 min)
    python3 tools/dev.py scaleout --short         # 2 instances, 10 clients, kill -9, store fault
    python3 tools/dev.py scaleout --stores postgresql --seconds 20

For each store (a PostgreSQL cluster and a Redis Cluster of three masters with a
replica each, both started by the rig in temporary directories on free ports of
127.0.0.1; or an existing server by ``--pg-url``/``--redis-url``, with a schema or key
prefix of the rig's own and no faults), the rig:

1. loads the demo building and its own points into the store, and makes the users;
2. starts ``--instances`` servers (the deployment guide's systemd command line,
   ``haystack-server serve --workers 2``, one ``HAYSTACK_SECRET``) and HAProxy in front
   with the guide's configuration (round robin, no stickiness, health checks on
   ``GET /``, TLS, an mTLS frontend), both read from ``docs/deployment.md``;
3. logs ``--clients`` clients in once each and runs the load on 1, 2, ... instances in
   turn (``--steps``), measuring throughput, latency per op and CPU per request;
4. runs the load on all instances again while it ``kill -9``s one instance (and starts
   it again), restarts PostgreSQL or crashes the Redis master holding the store;
5. checks what must hold (``_checks``), the sessions across instances, TLS and mTLS at
   the balancer, and the size of a million samples in the store;
6. writes ``results.json`` and ``results.md`` into ``--out`` (``plot.py`` draws the
   figure from the JSON) and stops everything it started, by PID.

The exit status is 0 when every check held, 1 when one did not, 2 when a tool is missing
(the message says which to install).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from projecthaystack.auth import ScramCredentials
from projecthaystack.client import AsyncClient
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import (
    HisChunk,
    Role,
    User,
    UserExistsError,
    demo_building,
    open_store,
)

from ._backends import (
    Backend,
    ExternalPostgres,
    ExternalRedis,
    OwnPostgres,
    OwnRedisCluster,
    Unavailable,
)
from ._checks import (
    Check,
    FaultWindow,
    check_faults,
    check_history,
    check_points,
    check_sessions,
    check_tls,
    check_watches,
    percentiles,
)
from ._fleet import Balancer, Fleet
from ._load import OPS, Driver, Ledger, LoadClient, Sample, World, rig_records
from ._procs import CpuMeter, MachineCpu, machine_cpu, rss_bytes

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin"
STORES = ("postgresql", "redis-cluster")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- setup ------------------------------------------------------------------------------------


async def _preload(url: str, world: World, passwords: dict[str, str], days: int) -> dict[str, Any]:
    """The demo building, the rig's points and the load's users, straight into the
    store (as an operator's import would)."""
    building = demo_building(seed=1, sites=2, ahus=2, vavs=5, days=days)
    site = next(r["id"] for r in building.records if "site" in r)
    store = open_store(url)
    await store.open()
    try:
        await building.load(store)
        await store.put_entities(rig_records(world, site))
        for name, password in passwords.items():
            user = User(name, Role.OPERATOR, ScramCredentials.derive(password))
            with contextlib.suppress(UserExistsError):
                await store.create_user(user)
        count = await store.count_entities()
    finally:
        await store.close()
    nav = [r["id"] for r in building.records if "site" in r or "equip" in r]
    his = [
        r["id"]
        for r in building.records
        if "his" in r and r.get("kind") == "Number" and r["id"].id in building.history
    ]
    return {"entities": count, "samples": building.sample_count, "nav": nav, "his": his}


def _backend(kind: str, args: argparse.Namespace, work: Path) -> Backend:
    if kind == "postgresql":
        if args.pg_url:
            return ExternalPostgres(args.pg_url)
        return OwnPostgres(work)
    if kind == "redis-cluster":
        if args.redis_url:
            return ExternalRedis(args.redis_url)
        return OwnRedisCluster(work)
    raise ValueError(f"unknown store {kind!r}: {', '.join(STORES)}")


# -- one step of load ------------------------------------------------------------------------


def _summary(
    samples: Sequence[Sample],
    took: float,
    cpu: dict[str, float],
    driver_cpu: float,
    machine: MachineCpu,
) -> dict[str, Any]:
    """One load run: throughput, latency per op, and where the CPU went.

    The CPU of every party is counted (the servers' process trees, the store's, HAProxy's
    and the rig's own process, which is the load driver), and so is the whole machine's
    (``/proc/stat``): what the machine was busy with besides the rig is other work on a
    shared machine, which the rig did not get.  The throughput of a closed loop is the
    cores the rig got divided by the CPU a request costs all parties together."""
    ops: dict[str, Any] = {}
    for op in OPS:
        mine = [s for s in samples if s.op == op]
        ok = [s.end - s.start for s in mine if s.outcome.startswith("ok")]
        p50, p99 = percentiles(ok)
        ops[op] = {
            "requests": len(mine),
            "ok": len(ok),
            "rps": round(len(ok) / took, 1) if took else 0.0,
            "p50_ms": round(p50 * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
        }
    requests = len(samples)
    ok_all = sum(1 for s in samples if s.outcome.startswith("ok"))
    used = {
        "servers": cpu.get("servers", 0.0),
        "store": cpu.get("store", 0.0),
        "balancer": cpu.get("balancer", 0.0),
        "driver": driver_cpu,
    }
    rig = sum(used.values())
    servers = used["servers"]

    def per_request(seconds: float) -> float:
        return round(seconds / requests * 1000, 2) if requests else 0.0

    def cores(seconds: float) -> float:
        return round(max(0.0, seconds) / took, 2) if took else 0.0

    return {
        "seconds": round(took, 2),
        "requests": requests,
        "ok": ok_all,
        "rps": round(ok_all / took, 1) if took else 0.0,
        "ops": ops,
        "cpu_s": {k: round(v, 2) for k, v in used.items()},
        "cpu_ms_per_request": {
            **{k: per_request(v) for k, v in used.items()},
            "all": per_request(rig),
        },
        "cores": {
            "rig": cores(rig),
            "other_processes": cores(machine.busy - rig),
            "idle": cores(machine.idle),
            "stolen": cores(machine.steal),
        },
        "servers_cpu_ms_per_request": per_request(servers),
        "store_cpu_ms_per_request": per_request(used["store"]),
        "requests_per_server_core_s": round(requests / servers, 1) if servers else 0.0,
        "requests_per_core_s": round(requests / rig, 1) if rig else 0.0,
        "instances_answering": dict(
            sorted(collections.Counter(s.instance or "?" for s in samples).items())
        ),
        "outcomes": dict(sorted(collections.Counter(s.outcome for s in samples).items())),
    }


# -- faults -----------------------------------------------------------------------------------


async def _fault_script(
    args: argparse.Namespace,
    fleet: Fleet,
    balancer: Balancer,
    backend: Backend,
    meter: CpuMeter,
    started: float,
    seconds: float,
) -> tuple[list[FaultWindow], list[dict[str, Any]]]:
    windows: list[FaultWindow] = []
    events: list[dict[str, Any]] = []

    def at(t: float) -> float:
        return round(t - started, 2)

    if "kill" in args.faults:
        await asyncio.sleep(0.1 * seconds)
        victim = len(fleet.procs) - 1
        name = f"s{victim + 1}"
        _log(f"fault: kill -9 of instance {name} (supervisor and workers)")
        began = time.monotonic()
        await asyncio.to_thread(fleet.kill, victim)
        down = await asyncio.to_thread(balancer.wait_down, name)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(fleet.start, victim)
        meter.track("servers", [fleet.procs[victim].pid])
        up = await asyncio.to_thread(balancer.wait_up, name)
        _log(f"fault: {name} back in the balancer after {up - began:.1f} s")
        windows.append(FaultWindow(f"kill -9 of {name}", "instance", began, up, 0.0))
        events.append(
            {
                "what": f"kill -9 of instance {name}",
                "at_s": at(began),
                "marked_down_after_s": round(down - began, 2),
                "restarted_and_up_after_s": round(up - began, 2),
            }
        )
    if "store" in args.faults and backend.can_fault():
        await asyncio.sleep(max(0.0, started + 0.35 * seconds - time.monotonic()))
        _log(f"fault: the store ({backend.kind})")
        report = await asyncio.to_thread(backend.fault, args.store_gap)
        meter.track("store", backend.pids())
        _log(f"fault: the store serves again after {report.store_back - report.began:.1f} s")
        windows.append(FaultWindow(report.what, "store", report.began, report.store_back, 30.0))
        events.append(
            {
                "what": report.what,
                "at_s": at(report.began),
                "store_back_after_s": round(report.store_back - report.began, 2),
            }
        )
    return windows, events


# -- one store --------------------------------------------------------------------------------


async def _run_store(kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"store": kind, "steps": [], "checks": []}
    checks: list[Check] = []
    backend = _backend(kind, args, work)
    world = World(args.clients)
    users = {f"rig-load-{k}": secrets.token_urlsafe(12) for k in range(args.clients)}
    admin_password = secrets.token_urlsafe(16)
    fleet: Fleet | None = None
    balancer: Balancer | None = None
    clients: list[LoadClient] = []
    _log(f"{kind}: starting the store")
    await asyncio.to_thread(backend.start)
    try:
        result["version"] = await asyncio.to_thread(backend.version)
        loaded = await _preload(backend.url, world, users, args.days)
        _log(f"{kind}: {loaded['entities']} entities, {loaded['samples']} samples loaded")
        env = {
            **os.environ,
            "HAYSTACK_SECRET": secrets.token_hex(32),
            "HAYSTACK_ADMIN_USER": ADMIN,
            "HAYSTACK_ADMIN_PASSWORD": admin_password,
        }
        (work / kind).mkdir(exist_ok=True)
        fleet = Fleet(work / kind, backend.url, args.instances, workers=args.workers, env=env)
        _log(f"{kind}: starting {args.instances} instances of {args.workers} workers")
        await asyncio.to_thread(fleet.start)
        balancer = Balancer(work / kind, fleet.ports, log_requests=args.keep)
        await asyncio.to_thread(balancer.start)
        result["balancer"] = balancer.version()
        meter = CpuMeter()
        meter.track("servers", fleet.pids())
        meter.track("store", backend.pids())
        meter.track("balancer", balancer.pids())

        ledger = Ledger()
        clients = [
            LoadClient(
                k,
                balancer.url,
                f"rig-load-{k}",
                users[f"rig-load-{k}"],
                world,
                ledger,
                loaded["nav"],
                loaded["his"],
                args.seed,
            )
            for k in range(args.clients)
        ]
        gate = asyncio.Semaphore(10)

        async def login(c: LoadClient) -> None:
            async with gate:
                await c.login()

        await asyncio.gather(*(login(c) for c in clients))
        spread = [len(set(steps)) for steps in ledger.logins.values()]
        result["logins"] = {
            "clients": len(clients),
            "spanning_two_or_more_instances": sum(1 for n in spread if n > 1),
        }
        _log(f"{kind}: {len(clients)} clients logged in")
        driver = Driver(clients, args.seed, poll_every=args.poll_every)

        # What the parties cost with no request at all (health checks, timers), so that
        # it is not mistaken for a cost per request.
        mark, box0, t0 = meter.mark(), machine_cpu(), time.monotonic()
        await asyncio.sleep(3.0)
        rest, box, took = meter.since(mark), machine_cpu() - box0, time.monotonic() - t0
        result["at_rest"] = {
            **{f"{k}_cores": round(v / took, 3) for k, v in sorted(rest.items())},
            "other_processes_cores": round(max(0.0, box.busy - sum(rest.values())) / took, 2),
        }

        for n in args.steps:
            await asyncio.to_thread(balancer.use, n)
            mark, cpu0, box0 = meter.mark(), _self_cpu(), machine_cpu()
            samples, took = await driver.run(args.seconds, args.max_requests, meter.sample)
            step = _summary(
                samples, took, meter.since(mark), _self_cpu() - cpu0, machine_cpu() - box0
            )
            step["instances"] = n
            step["servers_rss_mb"] = round(rss_bytes(fleet.pids()) / 2**20, 1)
            result["steps"].append(step)
            failed = {k: v for k, v in step["outcomes"].items() if not k.startswith("ok")}
            said = sorted({f"{s.op}: {s.outcome} {s.detail}" for s in samples if s.detail})
            checks.append(
                Check(
                    f"{n} instance(s): every request answered",
                    not failed,
                    f"{step['requests']} requests, {step['rps']} per second"
                    + (f"; failures: {failed}: {'; '.join(said[:5])}" if failed else ""),
                )
            )
            _log(
                f"{kind}: {n} instance(s): {step['rps']} requests/s, "
                f"{step['servers_cpu_ms_per_request']} ms server CPU per request"
                + (f", failures {failed}" if failed else "")
            )

        if args.faults:
            await asyncio.to_thread(balancer.use, args.instances)
            _log(f"{kind}: load with faults ({', '.join(args.faults)}) for {args.fault_seconds} s")
            mark, cpu0, box0 = meter.mark(), _self_cpu(), machine_cpu()
            started = time.monotonic()
            # The load goes on until the faults are over and everything has had time
            # to settle, however long a restart takes on a busy machine.
            end = [math.inf]
            load = asyncio.ensure_future(
                driver.run(args.fault_seconds, args.max_requests, meter.sample, lambda: end[0])
            )
            try:
                windows, events = await _fault_script(
                    args, fleet, balancer, backend, meter, started, args.fault_seconds
                )
            finally:
                settle = max(8.0, 0.3 * args.fault_seconds)
                end[0] = max(started + args.fault_seconds, time.monotonic() + settle)
            samples, took = await load
            fault = _summary(
                samples, took, meter.since(mark), _self_cpu() - cpu0, machine_cpu() - box0
            )
            fault_checks, seen = check_faults(samples, windows, started + took, started)
            fault.update(events=events, **seen)
            result["fault"] = fault
            checks.extend(fault_checks)
            if "store" in args.faults and not backend.can_fault():
                checks.append(
                    Check(
                        "store fault",
                        True,
                        "not injected: the store is not the rig's own (--pg-url/--redis-url)",
                    )
                )

        if fleet is not None:
            # An instance that stopped on its own (not the one the rig killed and started
            # again) would leave the others serving and every other check green.
            stopped = await asyncio.to_thread(fleet.stopped)
            checks.append(
                Check(
                    "every instance still runs after the load and the faults",
                    not stopped,
                    "; ".join(f"{n} stopped: {t}" for n, t in stopped.items())
                    or f"{len(fleet.procs)} instances running",
                )
            )
        _log(f"{kind}: checking what the store holds")
        for c in clients:
            await c.final_poll()
        async with AsyncClient(balancer.url, ADMIN, admin_password, timeout=60) as admin:
            checks.append(await check_history(admin, world, ledger))
            point_check, finals = await check_points(admin, world, ledger)
            checks.append(point_check)
        watch_check, delays = check_watches(world, ledger, finals)
        checks.append(watch_check)
        if delays:
            p50, p99 = percentiles(delays)
            result["watch_delay_s"] = {"p50": round(p50, 3), "p99": round(p99, 3)}
        checks.append(
            Check(
                "sessions survive: each client logged in once",
                ledger.relogins == 0,
                f"{ledger.relogins} logins after the first",
            )
        )
        _log(f"{kind}: checking sessions across instances")
        checks.extend(
            await check_sessions(
                balancer.url,
                [fleet.url(i) for i in range(args.instances)],
                (ADMIN, admin_password),
            )
        )
        checks.extend(
            await check_tls(
                balancer.tls_url,
                balancer.mtls_url,
                balancer.ca,
                balancer.client_pem,
                (ADMIN, admin_password),
            )
        )
        if args.sizing_samples:
            _log(f"{kind}: measuring {args.sizing_samples:,} samples")
            result["sizing"] = await _sizing(backend, args.sizing_samples)
    finally:
        for c in clients:
            await c.aclose()
        if balancer is not None:
            balancer.stop()
        if fleet is not None:
            fleet.stop()
        await asyncio.to_thread(backend.stop)
    for check in checks:
        check.store = kind
    result["checks"] = [c.as_dict() for c in checks]
    result["ok"] = all(c.ok for c in checks)
    return result


async def _sizing(backend: Backend, samples: int) -> dict[str, Any]:
    """The store's growth for ``samples`` samples of 5-minute Numbers on 10 points."""
    points = 10
    each = samples // points
    store = open_store(backend.url)
    await store.open()
    try:
        await store.put_entities(
            [
                {
                    "id": Ref(f"rig.size{i}"),
                    "point": Marker,
                    "his": Marker,
                    "kind": "Number",
                    "unit": "kW",
                    "tz": "UTC",
                }
                for i in range(points)
            ]
        )
        before = await asyncio.to_thread(backend.data_bytes)
        t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        step = dt.timedelta(minutes=5)
        chunk = 50_000
        for start in range(0, each, chunk):
            n = min(chunk, each - start)
            times = tuple(t0 + step * (start + i) for i in range(n))
            batch = {
                f"rig.size{p}": HisChunk(
                    times,
                    tuple(
                        Number(round(20 + ((start + i) * 7 + p) % 97 / 10, 1), "kW")
                        for i in range(n)
                    ),
                )
                for p in range(points)
            }
            await store.his_write(batch)
        after = await asyncio.to_thread(backend.data_bytes)
    finally:
        await store.close()
    written = each * points
    return {
        "samples": written,
        "bytes": after - before,
        "mb_per_million_samples": round((after - before) / written * 1e6 / 2**20, 1)
        if written
        else 0.0,
        "measured_as": "used_memory of the shard"
        if "redis" in backend.kind
        else "tables, indexes and TOAST of the schema",
    }


# -- the report -------------------------------------------------------------------------------


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Scale-out rig results",
        "",
        f"{report['generated']}; {report['machine']['cores']} cores "
        f"({report['machine']['cpu']}), Python {report['machine']['python']}; "
        f"{report['config']['clients']} clients, {report['config']['workers']} workers per "
        f"instance, {report['config']['seconds']} s per step.",
        "",
    ]
    for store in report["stores"]:
        lines += [f"## {store['store']}: {store.get('version', '')}", ""]
        if "error" in store:
            lines += [f"Not run: {store['error']}", ""]
            continue
        lines += [
            "| instances | requests/s | CPU ms per request: servers / store / HAProxy / "
            "driver / all | requests/s per server core | requests/s per core, all parties "
            "| cores: the rig's / other processes' / idle | servers' memory (MB) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for step in store["steps"]:
            c, k = step["cpu_ms_per_request"], step["cores"]
            lines.append(
                f"| {step['instances']} | {step['rps']} | {c['servers']} / {c['store']} / "
                f"{c['balancer']} / {c['driver']} / **{c['all']}** "
                f"| {step['requests_per_server_core_s']} | {step['requests_per_core_s']} "
                f"| {k['rig']} / {k['other_processes']} / {k['idle']} "
                f"| {step['servers_rss_mb']} |"
            )
        if store["steps"]:
            lines += [
                "",
                "A closed loop: the throughput is the cores the rig got divided by the CPU a "
                "request costs all parties (servers, store, HAProxy and the load driver, which "
                "share the machine), and a request's latency is mostly its wait in the queue "
                "(p50 ≈ clients ÷ throughput).",
            ]
        rest = store.get("at_rest")
        if rest:
            lines.append(
                "At rest (no request): servers "
                f"{rest.get('servers_cores', 0)} cores, store {rest.get('store_cores', 0)}, "
                f"HAProxy {rest.get('balancer_cores', 0)}; other processes "
                f"{rest['other_processes_cores']}."
            )
        if store["steps"]:
            head = " | ".join(f"{s['instances']} inst. p50 / p99 ms" for s in store["steps"])
            lines += ["", f"| op | {head} |", "|---|" + "---:|" * len(store["steps"])]
            for op in OPS:
                cells = " | ".join(
                    f"{s['ops'][op]['p50_ms']} / {s['ops'][op]['p99_ms']}" for s in store["steps"]
                )
                lines.append(f"| {op} | {cells} |")
        fault = store.get("fault")
        if fault:
            lines += ["", "Faults during the load:", ""]
            for event in fault["events"]:
                rest = ", ".join(f"{k} {v}" for k, v in event.items() if k != "what")
                lines.append(f"- {event['what']} ({rest})")
            lines.append(
                f"- requests answered on their one repeat: {fault['retried_once']}; 503 error "
                f"grids per fault: {fault['errors_by_fault']}; recovery after the store was "
                f"back: {fault['recovery_after_store_back_s']} s"
            )
        if "sizing" in store:
            s = store["sizing"]
            lines += [
                "",
                f"Size: {s['mb_per_million_samples']} MB per million samples "
                f"({s['samples']:,} samples, {s['measured_as']}).",
            ]
        if "watch_delay_s" in store:
            w = store["watch_delay_s"]
            lines.append(
                f"From an acknowledged write to the first poll showing it: p50 {w['p50']} s, "
                f"p99 {w['p99']} s (each client polls every {report['config']['poll_every']} s)."
            )
        lines += ["", "Checks:", ""]
        for c in store["checks"]:
            lines.append(f"- {'✓' if c['ok'] else '✗'} {c['name']}: {c['detail']}")
        lines.append("")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scaleout",
        description="Several haystack-server instances behind HAProxy, under load and faults.",
    )
    p.add_argument("--stores", default=",".join(STORES), help="postgresql,redis-cluster")
    p.add_argument("--pg-url", help="use this PostgreSQL (a schema of the rig's own; no fault)")
    p.add_argument("--redis-url", help="use this Redis (a key prefix of the rig's own; no fault)")
    p.add_argument("--instances", type=int, default=3, help="server instances (default 3)")
    p.add_argument("--steps", default=None, help="instances per load step (default 1,2,...,N)")
    p.add_argument("--workers", type=int, default=2, help="workers per instance (default 2)")
    p.add_argument("--clients", type=int, default=50, help="load clients (default 50)")
    p.add_argument("--seconds", type=float, default=30, help="seconds per load step")
    p.add_argument("--max-requests", type=int, default=200_000, help="requests per step, at most")
    p.add_argument(
        "--poll-every",
        type=float,
        default=2.0,
        help="seconds between two watch polls of a client (default 2; 0: no polls)",
    )
    p.add_argument("--fault-seconds", type=float, default=60, help="seconds of load with faults")
    p.add_argument(
        "--faults", default="kill,store", help="kill (an instance), store (restart/failover)"
    )
    p.add_argument("--store-gap", type=float, default=3.0, help="seconds PostgreSQL stays down")
    p.add_argument("--sizing-samples", type=int, default=1_000_000, help="0 to skip")
    p.add_argument("--days", type=int, default=2, help="days of demo history")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "dist" / "scaleout"), help="where results go")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the logs of servers, stores and HAProxy (which then logs every request)",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="the short form: 2 instances, 10 clients, 8 s, then 20 s or more with a kill -9 "
        "of an instance and a store fault",
    )
    return p


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if args.short:
        given = set(argv or sys.argv[1:])

        def default(flag: str, name: str, value: Any) -> None:
            if flag not in given:
                setattr(args, name, value)

        default("--instances", "instances", 2)
        default("--clients", "clients", 10)
        default("--seconds", "seconds", 8)
        default("--fault-seconds", "fault_seconds", 20)
        default("--faults", "faults", "kill,store")
        default("--sizing-samples", "sizing_samples", 0)
        default("--days", "days", 1)
        if "--steps" not in given:
            args.steps = str(args.instances)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for s in args.stores:
        if s not in STORES:
            raise SystemExit(f"scaleout: unknown store {s!r} (choose from {', '.join(STORES)})")
    args.steps = (
        [int(n) for n in args.steps.split(",")]
        if args.steps
        else list(range(1, args.instances + 1))
    )
    if any(not 1 <= n <= args.instances for n in args.steps):
        raise SystemExit("scaleout: each step needs 1 to --instances instances")
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if args.instances < 2 and "kill" in args.faults:
        raise SystemExit("scaleout: a kill -9 needs at least 2 instances")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rig; 0 when every check held."""
    args = _options(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="haystack-scaleout-"))
    report: dict[str, Any] = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "config": {
            k: getattr(args, k)
            for k in (
                "instances",
                "steps",
                "workers",
                "clients",
                "seconds",
                "fault_seconds",
                "faults",
                "max_requests",
                "poll_every",
            )
        },
        "stores": [],
    }
    status = 0
    try:
        for kind in args.stores:
            try:
                result = asyncio.run(_run_store(kind, args, work))
            except Unavailable as exc:
                _log(f"{kind}: cannot run: {exc}")
                report["stores"].append({"store": kind, "error": str(exc), "ok": False})
                status = 2
                continue
            except Exception as exc:  # the report says what broke; the others still run
                _log(f"{kind}: the rig failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                error = f"the rig failed: {type(exc).__name__}: {exc}"
                report["stores"].append({"store": kind, "error": error, "ok": False})
                status = max(status, 1)
                continue
            report["stores"].append(result)
            if not result["ok"]:
                status = max(status, 1)
            for c in result["checks"]:
                _log(f"{kind}: {'ok ' if c['ok'] else 'FAILED'} {c['name']}")
    finally:
        report["ok"] = status == 0
        (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "results.md").write_text(_markdown(report))
        if args.keep:
            with contextlib.suppress(OSError, shutil.Error):
                shutil.copytree(
                    work, out / "logs", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sock")
                )
        shutil.rmtree(work, ignore_errors=True)
    _log(f"results in {out / 'results.md'} and {out / 'results.json'}")
    return status
