"""The PostgreSQL store against the raw psycopg floor on the same server (a report, not
a test).

    python tools/bench/pg_bench.py [--big]     # PostgreSQL at HAYSTACK_PG_URL or 127.0.0.1
    python3 tools/dev.py bench pg              # the same, in the bench env (Python 3.13)
    HAYSTACK_BENCH_BIG=1 python3 tools/dev.py bench pg     # with --big

Each operation is timed against a floor doing the same job by hand with psycopg on the
same server, interleaved round by round (medians):

* load Alpha's 2,032 entities: the floor is ``orjson.dumps`` of the same untyped rows and
  COPY into a table like the store's (primary key, GIN index);
* hisWrite 100,000 samples: the floor is a binary COPY of the same ``(ts, val, pid)``
  into a partitioned table like the store's;
* hisRead one day (10,000 of 100,000 samples): the floor is a binary range SELECT that
  builds the same typed values (timestamps in the zone, Numbers with the unit);
* the issue's filters: the floor is a hand-written SQL query returning the same rows,
  decoded the same way (and, beside it, that query alone).

It also reports the table size per million samples, and with ``--big`` a one-day
hisRead at 10 million samples over 1,000 points next to the same read at 100,000 (the
990 other points' chunks made by one ``generate_series`` statement, which is how the run
stays short).  Where haystack-py and asyncpg are importable (the ``bench`` env on Python
3.13), its PostgreSQL store (``hs_py.storage.timescale``, on plain PostgreSQL here) is
timed on the same operations, in a schema of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from projecthaystack.codecs import json as hjson
from projecthaystack.filter import parse
from projecthaystack.kinds import Number, tz_from_name
from projecthaystack.server import HisChunk
from projecthaystack.stores.pg import PgStore
from projecthaystack.stores.pg._jsonb import decode_many
from projecthaystack.stores.pg._schema import CHUNK_SAMPLES

ROOT = Path(__file__).resolve().parents[2]
BUILDINGS = Path(
    os.environ.get("HAYSTACK_BUILDINGS", ROOT.parent / "shared" / "data" / "buildings")
)
PG_URL = os.environ.get("HAYSTACK_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NY = tz_from_name("New_York")
T0 = dt.datetime(2026, 3, 1, tzinfo=NY)
STEP = dt.timedelta(seconds=8.64)  # 10,000 samples a day


def instants(count: int, step: dt.timedelta = STEP) -> tuple[dt.datetime, ...]:
    """``count`` instants ``step`` apart from T0, in New York (stepped in UTC: adding to
    a zoned datetime steps its wall clock, which goes back and forth around DST)."""
    start = T0.astimezone(dt.UTC)
    return tuple((start + i * step).astimezone(NY) for i in range(count))


FILTERS = {
    "point": "e.tags ? 'point'",
    "point and temp and sensor": "e.tags ?& array['point', 'temp', 'sensor']",
    "equipRef->ahu": (
        "EXISTS (SELECT 1 FROM {t} q WHERE q.id = e.tags->'equipRef'->>'val' AND q.tags ? 'ahu')"
    ),
    'siteRef->geoCity == "Hugo"': (
        "EXISTS (SELECT 1 FROM {t} q WHERE q.id = e.tags->'siteRef'->>'val'"
        " AND q.tags->>'geoCity' = 'Hugo')"
    ),
    "not his": "NOT e.tags ? 'his'",
    "(ahu or vav) and not point": "(e.tags ? 'ahu' OR e.tags ? 'vav') AND NOT e.tags ? 'point'",
    'unit == "°F" and kind == "Number" and his': (
        'e.tags @> \'{{"unit": "°F", "kind": "Number"}}\' AND e.tags ? \'his\''
    ),
}


Step = Callable[[], Awaitable[object]]


def timed(
    runner: asyncio.Runner,
    cases: dict[str, tuple[Step | None, Step]],
    rounds: int = 9,
) -> dict[str, float]:
    """Median seconds of each case's step, rounds interleaved; each case's setup (not
    timed) runs before its step."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for setup, step in cases.values():  # warm up
        if setup is not None:
            runner.run(setup())
        runner.run(step())
    for _ in range(rounds):
        for name, (setup, step) in cases.items():
            if setup is not None:
                runner.run(setup())
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            runner.run(step())
            samples[name].append(time.perf_counter() - start)
            gc.enable()
    return {name: statistics.median(v) for name, v in samples.items()}


X = "\u00d7"  # the multiplication sign


def row(name: str, ours: float, floor: float, target: float | None, note: str = "") -> str:
    ratio = ours / floor
    mark = "" if target is None else (" ✓" if ratio <= target else " ✗")
    aim = "" if target is None else f"≤ {target}{X}"
    cells = [name, f"{ours * 1e3:.1f}", f"{floor * 1e3:.1f}", f"{ratio:.2f}{X}{mark}", aim, note]
    return "| " + " | ".join(cells) + " |"


async def _exec(conn: psycopg.AsyncConnection[Any], query: Any, params: Any = None) -> None:
    await conn.execute(query, params)


class Theirs:
    """haystack-py's PostgreSQL store (asyncpg) in a schema of its own, when importable."""

    def __init__(self, adapter: Any, hs: dict[str, Any], records: list[Any]) -> None:
        self.adapter, self.hs, self.records = adapter, hs, records

    @classmethod
    async def open(cls, raw: bytes, schema: str) -> Theirs | None:
        try:
            import hs_py
            from hs_py.encoding import json as hs_json
            from hs_py.kinds import Number as HsNumber
            from hs_py.kinds import Ref as HsRef
            from hs_py.storage.timescale import TimescaleAdapter, create_timescale_pool
        except ImportError:
            return None
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as c:
            await c.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        # asyncpg sends query parameters it does not know as settings of the session.
        pool = await create_timescale_pool(f"{PG_URL}?search_path={schema}", min_size=1, max_size=2)
        adapter = TimescaleAdapter(pool)
        await adapter.start()
        hs = {"parse": hs_py.parse, "Number": HsNumber, "Ref": HsRef}
        return cls(adapter, hs, list(hs_json.decode_grid(raw)))

    async def clear(self, table: str) -> None:
        async with self.adapter._pool.acquire() as c:
            await c.execute(f"TRUNCATE {table}")

    async def query(self, text: str) -> list[Any]:
        self.adapter._read_cache.clear()  # measure the query, not its cache
        return await self.adapter.read_by_filter(self.hs["parse"](text))  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; ``--big`` (or ``HAYSTACK_BENCH_BIG=1``) adds the 10-million-
    sample read."""
    if argv is None:
        argv = ["--big"] if os.environ.get("HAYSTACK_BENCH_BIG") == "1" else []
    alpha = BUILDINGS / "alpha.json"
    if not alpha.exists():
        print(f"pg bench: no {alpha} (set HAYSTACK_BUILDINGS); skipped")
        return 0
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        print(f"pg bench: PostgreSQL is not reachable at {PG_URL}; skipped")
        return 0
    raw = alpha.read_bytes()
    records = list(hjson.decode_grid(raw).rows)
    plain_rows = orjson.loads(raw)["rows"]
    schema = "hs_bench_" + secrets.token_hex(4)
    floor_schema = schema + "_floor"
    runner = asyncio.Runner()
    store = PgStore(PG_URL, schema=schema, max_size=2)
    runner.run(store.open())
    conn = runner.run(psycopg.AsyncConnection.connect(PG_URL, autocommit=True))
    theirs = runner.run(Theirs.open(raw, schema + "_hs_py"))
    n = sql.Identifier
    try:
        runner.run(_exec(conn, "SET jit = off"))
        runner.run(_exec(conn, sql.SQL("CREATE SCHEMA {}").format(n(floor_schema))))
        fe = n(floor_schema, "entities")
        runner.run(
            _exec(
                conn,
                sql.SQL(
                    "CREATE TABLE {} (id text PRIMARY KEY, seq bigserial, tags jsonb NOT NULL)"
                ).format(fe),
            )
        )
        runner.run(_exec(conn, sql.SQL("CREATE INDEX ON {} USING gin (tags)").format(fe)))
        runner.run(_exec(conn, sql.SQL("CREATE INDEX ON {} (seq)").format(fe)))
        fh = n(floor_schema, "his")
        runner.run(
            _exec(
                conn,
                sql.SQL(
                    "CREATE TABLE {} (ts timestamptz NOT NULL, val float8 NOT NULL,"
                    " pid int NOT NULL,"
                    " PRIMARY KEY (pid, ts) WITH (fillfactor = 100)) PARTITION BY RANGE (ts)"
                ).format(fh),
            )
        )
        runner.run(
            _exec(
                conn,
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF {}"
                    " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
                ).format(n(floor_schema, "his_2026"), fh),
            )
        )
        lines = [
            "| operation | ours (ms) | floor (ms) | ours / floor | target | note |",
            "|---|---:|---:|---:|---:|---|",
        ]

        def add(name: str, got: dict[str, float], target: float | None, note: str = "") -> None:
            if "hs_py" in got:
                mine = f"haystack-py: {got['hs_py'] / got['floor']:.2f}{X}"
                note = f"{note}; {mine}" if note else mine
            lines.append(row(name, got["ours"], got["floor"], target, note))

        # -- load ------------------------------------------------------------------------
        async def clear_ours() -> None:
            await conn.execute(sql.SQL("TRUNCATE {}").format(n(schema, "entities")))

        async def clear_floor() -> None:
            await conn.execute(sql.SQL("TRUNCATE {}").format(fe))

        async def load_ours() -> None:
            await store.put_entities(records)

        async def load_floor() -> None:
            data = [(r["id"]["val"], orjson.dumps(r).decode()) for r in plain_rows]
            async with (
                conn.transaction(),
                conn.cursor().copy(sql.SQL("COPY {} (id, tags) FROM STDIN").format(fe)) as cp,
            ):
                for item in data:
                    await cp.write_row(item)

        cases = {"ours": (clear_ours, load_ours), "floor": (clear_floor, load_floor)}
        if theirs is not None:
            them = theirs

            async def clear_theirs() -> None:
                await them.clear("hs_entities")

            async def load_theirs() -> None:
                await them.adapter.load_entities(them.records)

            cases["hs_py"] = (clear_theirs, load_theirs)
        # 15 rounds: a load takes a tenth of a second, and on a shared machine the
        # medians of 7 were seen to move by a third from run to run.
        got = timed(runner, cases, 15)
        add("load Alpha, 2,032 entities", got, 1.3)

        # -- hisWrite --------------------------------------------------------------------
        pid_point = "bench-point"
        runner.run(store.put_entities([{"id": records[0]["id"].__class__(pid_point)}]))
        times = instants(100_000)
        values = tuple(Number(float(i % 1000), "kW") for i in range(100_000))
        chunk = HisChunk(times, values)

        async def clear_his_ours() -> None:
            for table in ("his", "his_points"):
                await conn.execute(sql.SQL("TRUNCATE {}").format(n(schema, table)))

        async def clear_his_floor() -> None:
            await conn.execute(sql.SQL("TRUNCATE {}").format(fh))

        async def write_ours() -> None:
            await store.his_write({pid_point: chunk})

        async def write_floor() -> None:
            async with (
                conn.transaction(),
                conn.cursor().copy(
                    sql.SQL("COPY {} (ts, val, pid) FROM STDIN WITH (FORMAT BINARY)").format(fh)
                ) as cp,
            ):
                cp.set_types(["timestamptz", "float8", "int4"])
                for ts, v in zip(chunk.ts, chunk.val, strict=True):
                    await cp.write_row((ts, v.val, 1))

        cases = {"ours": (clear_his_ours, write_ours), "floor": (clear_his_floor, write_floor)}
        if theirs is not None:
            them = theirs
            ref = them.hs["Ref"](pid_point)
            items = [
                {"ts": t, "val": them.hs["Number"](v.val, "kW")}
                for t, v in zip(chunk.ts, chunk.val, strict=True)
            ]

            async def clear_his_theirs() -> None:
                await them.clear("hs_history")

            async def write_theirs() -> None:
                await them.adapter.his_write(ref, items)

            cases["hs_py"] = (clear_his_theirs, write_theirs)
        got = timed(runner, cases, 5)
        add("hisWrite 100,000 samples", got, 1.5)

        # -- hisRead ---------------------------------------------------------------------
        day = T0 + dt.timedelta(days=3)
        end = day + dt.timedelta(days=1)

        async def read_ours() -> object:
            return await store.his_read([pid_point], day, end, tz=NY)

        async def read_floor() -> object:
            await conn.execute("SET TimeZone = 'America/New_York'")
            cur = conn.cursor(binary=True)
            await cur.execute(
                sql.SQL(
                    "SELECT ts, val FROM {} WHERE pid = 1 AND ts >= %s AND ts < %s ORDER BY ts"
                ).format(fh),
                [day, end],
            )
            rows = await cur.fetchall()
            return HisChunk(tuple(r[0] for r in rows), tuple(Number(r[1], "kW") for r in rows))

        cases = {"ours": (None, read_ours), "floor": (None, read_floor)}
        if theirs is not None:
            them = theirs
            span = f"{day.date().isoformat()},{end.date().isoformat()}"

            async def read_theirs() -> object:
                # Its range is a day in UTC: as many samples, five hours later.
                return await them.adapter.his_read(ref, span)

            cases["hs_py"] = (None, read_theirs)
        got = timed(runner, cases, 15)
        add("hisRead one day (10,000 of 100,000)", got, 1.3)

        # -- filters ---------------------------------------------------------------------
        for text, where in FILTERS.items():
            flt = parse(text)
            hand = sql.SQL(
                "SELECT '[' || coalesce(string_agg(e.tags::text, ',' ORDER BY e.seq), '') || ']'"
                " FROM {} e WHERE " + where.replace("{t}", "{}")
            ).format(*([n(schema, "entities")] * (1 + where.count("{t}"))))

            async def ours(flt: Any = flt) -> object:
                return await store.query(flt)

            async def floor(hand: Any = hand) -> object:
                cur = await conn.execute(hand)
                found = await cur.fetchone()
                return decode_many(found[0] if found else "[]")

            async def floor_sql(hand: Any = hand) -> object:
                cur = await conn.execute(hand)
                return await cur.fetchone()

            count = len(runner.run(ours()))
            assert count == len(runner.run(floor())), text  # type: ignore[arg-type]
            cases = {"ours": (None, ours), "floor": (None, floor), "sql": (None, floor_sql)}
            note = ""
            if theirs is not None:
                them = theirs

                async def query_theirs(text: str = text, them: Theirs = them) -> object:
                    return await them.query(text)

                cases["hs_py"] = (None, query_theirs)
                note = f" ({len(runner.run(query_theirs()))} rows)"  # type: ignore[arg-type]
            got = timed(runner, cases, 9)
            add(
                f"`{text}` ({count} rows)",
                got,
                1.5,
                f"the query alone: {got['sql'] * 1e3:.1f} ms",
            )
            if note:
                lines[-1] = lines[-1][:-2] + note + " |"

        # -- size ------------------------------------------------------------------------
        async def size() -> tuple[int, int]:
            cur = await conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0),"
                " coalesce(sum(c.reltuples), 0) FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
                " WHERE s.nspname = %s AND c.relname LIKE 'his\\_%%' AND c.relkind = 'r'",
                [schema],
            )
            found = await cur.fetchone()
            assert found is not None
            return int(found[0]), int(found[1])

        runner.run(clear_his_ours())
        ids = [f"m{i}" for i in range(100)]
        runner.run(store.put_entities([{"id": records[0]["id"].__class__(i)} for i in ids]))
        for i in ids:  # 10,000 samples a point, a million in all
            runner.run(store.his_write({i: HisChunk(times[:10_000], values[:10_000])}))
        runner.run(conn.execute(sql.SQL("VACUUM ANALYZE {}").format(n(schema, "his"))))
        total, _ = runner.run(size())
        lines.append(
            f"\nTable size: {total / 1e6:.1f} MB per million Number samples, with the"
            " primary-key index (aim: ≤ 60 MB)."
        )
        if theirs is not None:
            lines.append(runner.run(their_size(theirs, ids, times[:10_000])))
        if "--big" in argv:
            lines.append(big(runner, store, conn, schema))
        print("\n".join(lines))
    finally:
        runner.run(store.close())
        if theirs is not None:
            runner.run(theirs.adapter.close())
        for s in (schema, floor_schema, schema + "_hs_py"):
            runner.run(_exec(conn, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(n(s))))
        runner.run(conn.close())
        runner.close()
    return 0


async def their_size(theirs: Theirs, ids: list[str], times: tuple[dt.datetime, ...]) -> str:
    """haystack-py's table size per million samples: the same million, put in by SQL
    (its hisWrite is an ``executemany`` of upserts, minutes for a million rows)."""
    async with theirs.adapter._pool.acquire() as c:
        await c.execute("TRUNCATE hs_history")
        await c.execute(
            "INSERT INTO hs_history (entity_id, ts, val, unit)"
            " SELECT id, t, (n % 1000)::float8, 'kW'"
            " FROM unnest($1::text[]) id, unnest($2::timestamptz[]) WITH ORDINALITY u(t, n)",
            ids,
            list(times),
        )
        await c.execute("VACUUM ANALYZE hs_history")
        total = await c.fetchval("SELECT pg_total_relation_size('hs_history')")
    return f"haystack-py's table: {total / 1e6:.1f} MB per million samples, with its index."


def big(
    runner: asyncio.Runner, store: PgStore, conn: psycopg.AsyncConnection[Any], schema: str
) -> str:
    """A one-day hisRead of one point at 10 million samples over 1,000 points, next to the
    same read when the store holds 100,000 (10 points)."""
    from projecthaystack.kinds import Ref

    n = sql.Identifier
    ids = [f"b{i}" for i in range(1000)]
    runner.run(store.put_entities([{"id": Ref(i)} for i in ids]))
    step = STEP * 10  # 10,000 samples over ten days a point, all in March (UTC)
    times = instants(10_000, step)
    vals = tuple(Number(float(i), "kW") for i in range(10_000))
    day = T0 + dt.timedelta(days=3)
    end = day + dt.timedelta(days=1)

    async def read() -> object:
        return await store.his_read(["b0"], day, end, tz=NY)

    for i in ids[:10]:
        runner.run(store.his_write({i: HisChunk(times, vals)}))
    runner.run(_exec(conn, sql.SQL("VACUUM ANALYZE {}").format(n(schema, "his"))))
    small = timed(runner, {"read": (None, read)}, 15)["read"]
    # The 990 other points: the chunks the store would write, made in SQL at once.
    runner.run(
        _exec(
            conn,
            sql.SQL("INSERT INTO {} (id, unit) SELECT id, 'kW' FROM unnest(%s::text[]) id").format(
                n(schema, "his_points")
            ),
            [ids[10:]],
        )
    )
    runner.run(
        _exec(
            conn,
            sql.SQL(
                "INSERT INTO {his} (pid, t_lo, ts, num)"
                " SELECT p.pid, c.ts[1], c.ts, c.num FROM {points} p CROSS JOIN LATERAL ("
                "  SELECT array_agg(%(t0)s::timestamptz + i * %(step)s::interval ORDER BY i) ts,"
                "   array_agg(i::float8 ORDER BY i) num"
                "  FROM generate_series(0, %(count)s - 1) i GROUP BY i / %(size)s) c"
                " WHERE p.id = ANY(%(ids)s)"
            ).format(his=n(schema, "his"), points=n(schema, "his_points")),
            {
                "t0": times[0],
                "step": step,
                "count": len(times),
                "size": CHUNK_SAMPLES,
                "ids": ids[10:],
            },
        )
    )
    runner.run(_exec(conn, sql.SQL("VACUUM ANALYZE {}").format(n(schema, "his"))))
    large = timed(runner, {"read": (None, read)}, 15)["read"]
    got = runner.run(read())
    return (
        f"\nOne-day hisRead of one point ({len(got[0][0])} samples):"  # type: ignore[index]
        f" {small * 1e3:.1f} ms at 100,000 samples in the store,"
        f" {large * 1e3:.1f} ms at 10,000,000 over 1,000 points ({large / small:.2f}{X})."
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
