"""Redis store speed against raw redis-py floors on the same server, in one run, and
history memory per million samples (ours beside a naive sorted set).

    python tools/bench/redis_bench.py [redis://127.0.0.1:6379/0]
    python3 tools/dev.py bench redis      # the same, from tools/bench/run.py

Needs a Redis it may write to under throwaway prefixes (deleted at the end, SCAN +
UNLINK on those prefixes only).  Floors:

- load: the same entities' JSON v4 text by a pipelined ``HSET`` (no indexes);
- hisWrite: the same samples by a pipelined ``ZADD`` (member: time and value as text);
- hisRead of one day: ``ZRANGEBYSCORE`` on that sorted set plus building the same typed
  columns (datetimes in the zone, Numbers with the unit);
- filters: ``HGETALL`` of every entity, decoded, and ``select`` over them (a full scan).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import medians, table
from redis.asyncio import Redis
from redis.exceptions import RedisError

from projecthaystack.codecs import json as hjson
from projecthaystack.codecs import zinc
from projecthaystack.filter import parse, select
from projecthaystack.kinds import Number, Ref, tz_from_name
from projecthaystack.server import HisChunk
from projecthaystack.stores.redis import RedisStore

ROOT = Path(__file__).resolve().parents[2]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)
FILTERS = (
    "point",
    "point and temp and sensor",
    "equipRef->ahu",
    'siteRef->geoCity == "Hugo"',
    "not his",
    "(ahu or vav) and not point",
    'unit == "°F" and kind == "Number" and his',
)
NY = tz_from_name("New_York")
T0 = dt.datetime(2026, 1, 1, tzinfo=NY)
N_SAMPLES = 100_000
URL_ENV = "HAYSTACK_BENCH_REDIS"


async def _memory(redis: Redis, pattern: str) -> int:
    total = 0
    async for key in redis.scan_iter(match=pattern, count=1000):
        total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


async def bench(url: str) -> None:
    records = [dict(r) for r in zinc.decode_grid((BUILDINGS / "alpha.zinc").read_bytes())]
    blobs = {r["id"].id: hjson.encode_value_bytes(r) for r in records}
    run = uuid.uuid4().hex[:8]
    raw = Redis.from_url(url)
    store = RedisStore(url, prefix=f"bench-{run}")
    await store.open()
    point = next(r["id"].id for r in records if "point" in r and "his" in r)
    ts = [T0 + dt.timedelta(minutes=5 * i) for i in range(N_SAMPLES)]
    vals = [Number(float(i % 1000), "kW") for i in range(N_SAMPLES)]
    chunk = HisChunk(ts, vals)
    loop = asyncio.get_running_loop()
    floor_key = f"bench-{run}-floor"

    async def load_ours() -> None:
        await store.put_entities(records)

    # A first load into an empty store: a fresh store (prefix) for every call.
    rounds = 9  # a fresh store each: the first load is measured once per store
    empty = [RedisStore(url, prefix=f"bench-{run}-load{i}") for i in range(rounds + 1)]
    for each in empty:
        await each.open()
    unused = list(empty)

    async def load_empty() -> None:
        await unused.pop().put_entities(records)

    async def load_floor() -> None:
        async with raw.pipeline(transaction=False) as pipe:
            for i, b in blobs.items():
                pipe.hset(floor_key + ":e", i, b)
            await pipe.execute()

    async def write_ours() -> None:
        await store.his_write({point: chunk})

    async def write_floor() -> None:
        async with raw.pipeline(transaction=False) as pipe:
            for i in range(0, N_SAMPLES, 10_000):
                pipe.zadd(
                    floor_key + ":z",
                    {
                        f"{int(t.timestamp() * 1000)}|{v.val}": int(t.timestamp() * 1000)
                        for t, v in zip(ts[i : i + 10_000], vals[i : i + 10_000], strict=True)
                    },
                )
            await pipe.execute()

    day0 = T0 + dt.timedelta(days=100)
    day1 = day0 + dt.timedelta(days=1)

    async def read_ours() -> Any:
        return await store.his_read([point], day0, day1, tz=NY)

    async def read_floor() -> Any:
        got = await raw.zrangebyscore(
            floor_key + ":z", int(day0.timestamp() * 1000), f"({int(day1.timestamp() * 1000)}"
        )
        times, values = [], []
        for m in got:
            t, _, v = m.partition(b"|")
            times.append(dt.datetime.fromtimestamp(int(t) / 1000, NY))
            values.append(Number(float(v), "kW"))
        return HisChunk(times, values)

    def sync(fn: Any) -> Any:
        return lambda: asyncio.run_coroutine_threadsafe(fn(), loop).result()

    # The timing helper is synchronous: run it in a thread beside this loop.
    results = await asyncio.to_thread(
        medians,
        {
            "load": sync(load_ours),
            "load empty": sync(load_empty),
            "load floor": sync(load_floor),
        },
        rounds,
    )
    await write_ours()
    await write_floor()
    his = await asyncio.to_thread(
        medians,
        {
            "write": sync(write_ours),
            "write floor": sync(write_floor),
        },
        5,
    )
    await read_ours()  # the first read after rewrites tidies the day's chunks once
    his.update(
        await asyncio.to_thread(
            medians, {"read": sync(read_ours), "read floor": sync(read_floor)}, 15
        )
    )
    assert sum(map(len, (await read_ours())[0])) == len((await read_floor()).ts) == 288
    load_empty_row = (results["load empty"], results["load floor"])
    rows = [
        ("load 2,032 entities (alpha) into an empty store", *load_empty_row, 1.5, None),
        ("load them again (replacing)", results["load"], results["load floor"], 1.5, None),
        ("hisWrite 100,000 samples", his["write"], his["write floor"], 1.5, None),
        ("hisRead one day (288 samples)", his["read"], his["read floor"], 1.5, None),
    ]
    for text in FILTERS:
        flt = parse(text)

        async def ours(flt: Any = flt) -> Any:
            return await store.query(flt)

        async def scan(flt: Any = flt) -> Any:
            every = await raw.hgetall(floor_key + ":e")
            return select(flt, [hjson.decode_value(b) for b in every.values()])

        assert len(await ours()) == len(await scan())
        got = await asyncio.to_thread(medians, {"ours": sync(ours), "scan": sync(scan)}, 7)
        rows.append((f"query `{text}`", got["ours"], got["scan"], None, None))
    print(f"Redis store (one run against {url.rsplit('@', 1)[-1]}); floors: raw redis-py")
    print(table(rows))

    # Memory per million samples: 1,000,000 samples over 10 points, 5-minute data.
    mem = RedisStore(url, prefix=f"bench-{run}-mem")
    await mem.open()
    pts = [f"m{i}" for i in range(10)]
    await mem.put_entities([{"id": Ref(p)} for p in pts])
    for p in pts:
        await mem.his_write({p: chunk})
    ours_bytes = await _memory(raw, f"{{bench-{run}-mem}}:h*")
    await raw.delete(floor_key + ":z")
    for p in pts:
        await write_floor()
        await raw.rename(floor_key + ":z", f"{floor_key}:z{p}")
    naive = await _memory(raw, f"{floor_key}:z*")
    print(
        f"\nhistory memory per million samples: ours {ours_bytes / 1e6:.1f} MB, "
        f"a sorted set of text members {naive / 1e6:.1f} MB"
    )
    await mem.drop()
    await mem.close()
    for each in empty:
        await each.drop()
        await each.close()
    await store.drop()
    await store.close()
    async for key in raw.scan_iter(match=f"bench-{run}-floor*"):
        await raw.unlink(key)
    await raw.aclose()


def main(argv: list[str] | None = None) -> None:
    """Run the Redis store benchmark against the URL in ``argv`` (the command line's
    when ``None``; else ``HAYSTACK_BENCH_REDIS``, else the local Redis); skipped, with
    a line saying why, without a Redis or the Alpha building."""
    args = sys.argv[1:] if argv is None else argv
    url = (args[0] if args else None) or os.environ.get(URL_ENV) or "redis://127.0.0.1:6379/0"
    shown = url.rsplit("@", 1)[-1]
    try:
        asyncio.run(_ping(url))
    except (RedisError, OSError) as exc:
        print(f"redis bench: no Redis at {shown} ({exc}); start one or set {URL_ENV}; skipped")
        return
    if not (BUILDINGS / "alpha.zinc").exists():
        print("redis bench: no Alpha building (set HAYSTACK_BUILDINGS); skipped")
        return
    asyncio.run(bench(url))


async def _ping(url: str) -> None:
    raw = Redis.from_url(url, socket_connect_timeout=3)
    try:
        await raw.ping()
    finally:
        await raw.aclose()


if __name__ == "__main__":
    main()
