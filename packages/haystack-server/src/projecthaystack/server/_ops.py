"""The standard ops: what each op of the Ops chapter does (the extension API, ``Op`` and
its friends, is in ``_opapi``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from projecthaystack.codecs import CODECS, parse_range, zinc
from projecthaystack.filter import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LENGTH,
    Filter,
    FilterError,
    FilterSyntaxError,
    parse,
    select,
)
from projecthaystack.kinds import (
    NA,
    Col,
    FrozenDict,
    Grid,
    HaystackError,
    Marker,
    Number,
    Ref,
    Symbol,
    Uri,
    tz_from_name,
    tz_name,
)

from .__about__ import __version__
from ._errors import OpError
from ._his import check_samples, check_value, chunk_of
from ._opapi import Op, OpContext
from ._specs import SpecRewriter
from ._store import PRIORITY_LEVELS, HisChunk, PriorityLevel, Role
from .storeforms import token_hash

__all__ = ["STANDARD_OPS"]


# -- helpers ------------------------------------------------------------------------------


def _first(req: Grid) -> Mapping[str, Any]:
    return req[0] if len(req) else {}


def _ref(value: Any, what: str) -> Ref:
    if type(value) is Ref:
        return value
    if isinstance(value, str) and value:
        # Lenient: some clients send ids as Str (or "@id" Str) where a Ref belongs.
        return Ref(value[1:] if value.startswith("@") else value)
    raise OpError(f"{what} must be a Ref")


def _ids(ctx: OpContext, req: Grid, what: str = "id") -> list[Ref]:
    if len(req) > ctx.config.limits.max_ids:
        raise OpError(f"{len(req)} ids is over the limit of {ctx.config.limits.max_ids}")
    return [_ref(row.get(what), f"row {i} '{what}'") for i, row in enumerate(req)]


def _number(value: Any, what: str) -> float:
    if not isinstance(value, Number):
        raise OpError(f"{what} must be a Number")
    return value.val


def _duration(value: Number, what: str) -> dt.timedelta:
    scale = {
        None: 1.0,
        "s": 1.0,
        "sec": 1.0,
        "ms": 0.001,
        "min": 60.0,
        "h": 3600.0,
        "hr": 3600.0,
        "day": 86400.0,
        "d": 86400.0,
    }.get(value.unit)
    if scale is None:
        raise OpError(f"{what} has unit {value.unit!r}; expected a duration (s, min, h, day)")
    seconds = value.val * scale
    if not 0 < seconds < 10 * 365 * 86400:
        raise OpError(f"{what} {value} is out of range")
    return dt.timedelta(seconds=seconds)


def _filter(ctx: OpContext, text: Any) -> Filter:
    if not isinstance(text, str):
        raise OpError("'filter' must be a Str")
    limits = ctx.config.limits
    try:
        if (
            len(text) <= min(limits.max_filter_length, DEFAULT_MAX_LENGTH)
            and limits.max_filter_depth == DEFAULT_MAX_DEPTH
        ):
            # Within both the server's limits and the filter package's defaults: the
            # same answer as below, from the parse cache (which serves the defaults).
            return parse(text)
        return parse(text, max_length=limits.max_filter_length, max_depth=limits.max_filter_depth)
    except FilterSyntaxError as exc:
        raise OpError(f"invalid filter: {exc}") from None


def _limit(row: Mapping[str, Any], cap: int) -> tuple[int, bool]:
    """The row limit asked for (capped), and whether the cap rather than the client set it."""
    if row.get("limit") is None:
        return cap, True
    asked = _number(row["limit"], "'limit'")
    if asked != asked or asked < 0:
        raise OpError("'limit' must be a non-negative Number")
    return (int(asked), False) if asked <= cap else (cap, True)


def _rows_grid(
    rows: Sequence[Mapping[str, Any] | None], meta: Mapping[str, Any] | None = None
) -> Grid:
    """A grid of entities, a row of nulls for each ``None``, and an ``id`` column always."""
    if rows and None not in rows:
        # Stored entities are checked FrozenDicts (from_rows makes sure): the grid can
        # trust them as they are.
        grid = Grid.from_rows(rows, meta)  # type: ignore[arg-type]
        if grid.has_col("id"):
            return grid
    names: dict[str, None] = {"id": None}
    for row in rows:
        if row is not None:
            names.update(dict.fromkeys(row))
    return Grid(list(names), [r if r is not None else {} for r in rows], meta)


def _incomplete(limit: int) -> dict[str, Any]:
    return {
        "incomplete": {
            "dis": f"result cut off at the server's limit of {limit}",
            "limit": Number(limit),
        }
    }


def _point_tz(point: Mapping[str, Any]) -> ZoneInfo:
    name = point.get("tz")
    if not isinstance(name, str):
        raise OpError(f"@{point['id'].id} has no 'tz' tag")
    try:
        return tz_from_name(name)
    except (HaystackError, ValueError, KeyError):
        raise OpError(f"@{point['id'].id} has an unknown timezone {name!r}") from None


async def _entities(
    ctx: OpContext, refs: Sequence[Ref], marker: str | None = None
) -> list[dict[str, Any]]:
    """The entities of ``refs`` in one store call; an error for any missing one, or
    one without ``marker``."""
    found = await ctx.store.get_entities([r.id for r in refs])
    for ref, rec in zip(refs, found, strict=True):
        if rec is None:
            raise OpError(f"unknown id @{ref.id}")
        if marker is not None and marker not in rec:
            raise OpError(f"@{ref.id} is not a '{marker}' entity")
    return [rec for rec in found if rec is not None]


async def _entity(ctx: OpContext, ref: Ref, marker: str | None = None) -> dict[str, Any]:
    (rec,) = await _entities(ctx, [ref], marker)
    return rec


# -- about, close, defs ------------------------------------------------------------------


_ABOUT_COLS: tuple[Col, ...] = tuple(
    Col(name)
    for name in (
        "haystackVersion",
        "tz",
        "serverName",
        "serverTime",
        "serverBootTime",
        "productName",
        "productVersion",
        "productUri",
        "moduleName",
        "moduleVersion",
        "vendorName",
        "vendorUri",
        "whoami",
        "userRole",
    )
)


_PROJECT_URI = Uri("https://project-haystack.org/")


async def about(ctx: OpContext, req: Grid) -> Grid:
    """The server's identity (the ``about`` op)."""
    row = FrozenDict(
        zip(
            (c.name for c in _ABOUT_COLS),
            (
                "4.0",
                tz_name(dt.UTC),
                ctx.config.server_name,
                ctx.now.replace(microsecond=0),
                ctx.boot_time.replace(microsecond=0),
                "haystack-server",
                __version__,
                _PROJECT_URI,
                "projecthaystack.server",
                __version__,
                "projecthaystack",
                _PROJECT_URI,
                ctx.user.username,
                ctx.user.role.label,
            ),
            strict=True,
        )
    )
    # Known columns and a row of nothing but non-null values: the grid takes them as
    # they are (about is the op clients call most, to keep a session alive).
    return Grid.unchecked(Grid.empty().meta, _ABOUT_COLS, (row,))


async def close(ctx: OpContext, req: Grid) -> Grid:
    """Revoke the caller's token (the ``close`` op)."""
    if ctx.token is not None:
        await ctx.store.delete_session(token_hash(ctx.token))
    return Grid.empty()


def _op_defs(ctx: OpContext) -> list[dict[str, Any]]:
    return [
        {"def": Symbol(f"op:{op.name}"), "is": Symbol("op"), "doc": op.doc}
        | ({"noSideEffects": Marker} if op.no_side_effects else {})
        for op in ctx.ops.values()
    ]


_FILETYPE_DEFS: tuple[dict[str, Any], ...] = tuple(
    {
        "def": Symbol(f"filetype:{c.name}"),
        "is": Symbol("filetype"),
        "mime": c.mime,
        "fileExt": c.file_ext,
    }
    for c in CODECS
)


async def ops_op(ctx: OpContext, req: Grid) -> Grid:
    """The ops this server answers (the ``ops`` op)."""
    return Grid.from_rows(_op_defs(ctx))


async def filetypes(ctx: OpContext, req: Grid) -> Grid:
    """The formats this server reads and writes (the ``filetypes`` op)."""
    return Grid.from_rows(_FILETYPE_DEFS)


async def formats(ctx: OpContext, req: Grid) -> Grid:
    """Haystack 3's ``formats`` op (``filetypes`` replaced it), still called by clients."""
    return Grid.from_rows([{"mime": c.mime, "receive": Marker, "send": Marker} for c in CODECS])


async def defs(ctx: OpContext, req: Grid) -> Grid:
    """The namespace's defs, by filter (the ``defs`` op)."""
    return _defs_like(ctx, req, libs=False)


async def libs(ctx: OpContext, req: Grid) -> Grid:
    """The namespace's libs, by filter (the ``libs`` op)."""
    return _defs_like(ctx, req, libs=True)


def _defs_like(ctx: OpContext, req: Grid, *, libs: bool) -> Grid:
    row = _first(req)
    limit, _ = _limit(row, ctx.config.limits.max_read)
    flt = _filter(ctx, row["filter"]) if row.get("filter") is not None else None
    ns = ctx.namespace
    try:
        if ns is not None:
            return ns.libs_grid(flt, limit) if libs else ns.defs_grid(flt, limit)
        if libs:
            rows: list[dict[str, Any]] = [
                {
                    "def": Symbol("lib:hayserver"),
                    "is": Symbol("lib"),
                    "doc": "The ops and filetypes of this server (no def namespace loaded)",
                    "version": __version__,
                }
            ]
        else:
            rows = _op_defs(ctx) + list(_FILETYPE_DEFS)
        picked = rows if flt is None else select(flt, rows)
        return Grid.from_rows(picked[:limit]) if picked else Grid(["def"], [])
    except FilterError as exc:
        raise OpError(str(exc)) from None


# -- read, nav -----------------------------------------------------------------------------


_REWRITERS: weakref.WeakKeyDictionary[Any, SpecRewriter] = weakref.WeakKeyDictionary()
_NO_NAMESPACE = SpecRewriter(None)


def _specs(ctx: OpContext) -> SpecRewriter:
    """The spec-name rewriter of the context's namespace (made once per namespace)."""
    ns = ctx.namespace
    if ns is None:
        return _NO_NAMESPACE
    found = _REWRITERS.get(ns)
    if found is None:
        found = _REWRITERS[ns] = SpecRewriter(ns)
    return found


async def read(ctx: OpContext, req: Grid) -> Grid:
    """Entities by filter (with ``limit``) or by ids (the ``read`` op)."""
    row = _first(req)
    if "filter" in row:
        flt = _filter(ctx, row["filter"])
        cap = ctx.config.limits.max_read
        limit, capped = _limit(row, cap)
        try:
            # Spec names become plain tags here, so the store gets a filter it can
            # push down whole.
            plain = _specs(ctx).rewrite(flt)
            found = await ctx.store.query(plain, limit=limit + 1 if capped else limit)
        except (FilterError, ValueError) as exc:
            raise OpError(str(exc)) from None
        meta = None
        if capped and len(found) > limit:
            found, meta = found[:limit], _incomplete(limit)
        return _rows_grid(found, meta) if found else Grid(["id"], [], meta)
    if not req.has_col("id"):
        raise OpError("read needs a 'filter' or an 'id' column")
    refs = _ids(ctx, req)
    return _rows_grid(await ctx.store.get_entities([r.id for r in refs]))


async def nav(ctx: OpContext, req: Grid) -> Grid:
    """Sites, then a site's equips, then an equip's points (the ``nav`` op)."""
    row = _first(req)
    # pyhaystack names the parameter ``nav_id``.
    nav_id = row.get("navId", row.get("nav_id"))
    if nav_id is None:
        found = await ctx.store.query(parse("site"))
        child = True
    else:
        ref = _ref(nav_id, "'navId'")
        parent = await _entity(ctx, ref)
        if "site" in parent:
            found = await ctx.store.query(parse(f"equip and siteRef == @{ref.id} and not equipRef"))
            child = True
        elif "equip" in parent:
            found = await ctx.store.query(parse(f"(point or equip) and equipRef == @{ref.id}"))
            child = False
        else:
            found, child = [], False
    rows = [r | {"navId": r["id"]} if child or "equip" in r else r for r in found]
    return _rows_grid(rows) if rows else Grid(["id", "navId"], [])


# -- history -----------------------------------------------------------------------------


def _his_span(text: str, tz: ZoneInfo, now: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    """The span of a hisRead range; every way the text can fail is an error grid."""
    try:
        return parse_range(text, tz, now)
    except (HaystackError, ValueError) as exc:
        # parse_range's errors (DecodeError) already quote the range and say what is wrong.
        raise OpError(str(exc)) from None


async def his_read(ctx: OpContext, req: Grid) -> Grid:
    """Samples of one point, or of many joined on ``ts`` (the ``hisRead`` op)."""
    if "range" in req.meta:
        return await _his_read_batch(ctx, req)
    if len(req) != 1:
        raise OpError(
            "hisRead needs one row with 'id' and 'range' (or 'range' in the grid meta for a batch)"
        )
    row = req[0]
    point = await _entity(ctx, _ref(row.get("id"), "'id'"), "his")
    tz = _point_tz(point)
    text = row.get("range")
    if not isinstance(text, str):
        raise OpError("'range' must be a Str")
    start, end = _his_span(text, tz, ctx.now)
    cap = ctx.config.limits.max_his_read
    (chunks,) = await ctx.store.his_read([point["id"].id], start, end, tz=tz, limit=cap + 1)
    samples = _his_rows(chunks)
    meta: dict[str, Any] = {
        "id": point["id"],
        "hisStart": start,
        "hisEnd": end or ctx.now.astimezone(tz),
    }
    if len(samples) > cap:
        samples = samples[:cap]
        meta |= _incomplete(cap)
    # Stored samples were checked on the way in (DateTime ts, non-null val): skip the
    # per-row checks of Grid() on what can be millions of rows.
    return Grid.unchecked(Grid.empty(meta).meta, _HIS_COLS, samples)


_HIS_COLS = (Col("ts"), Col("val"))

# The rows built for a chunk, while the chunk lives: a store that hands out the same
# (immutable) chunk for data that has not changed gets the same rows, which encoders
# then write again cheaply.  Nothing of this is part of the store protocol.
_ROWS: weakref.WeakKeyDictionary[HisChunk, tuple[FrozenDict, ...]] = weakref.WeakKeyDictionary()


def _chunk_rows(chunk: HisChunk) -> tuple[FrozenDict, ...]:
    rows = _ROWS.get(chunk)
    if rows is None:
        rows = tuple(FrozenDict(ts=t, val=v) for t, v in zip(chunk.ts, chunk.val, strict=True))
        _ROWS[chunk] = rows
    return rows


def _his_rows(chunks: Sequence[HisChunk]) -> tuple[FrozenDict, ...]:
    if len(chunks) == 1:
        return _chunk_rows(chunks[0])
    return tuple(row for chunk in chunks for row in _chunk_rows(chunk))


async def _his_read_batch(ctx: OpContext, req: Grid) -> Grid:
    refs = _ids(ctx, req)
    if not refs:
        raise OpError("a batch hisRead needs at least one id")
    points = await _entities(ctx, refs, "his")
    if req.meta.get("tz") is not None:
        tz_text = req.meta["tz"]
        if not isinstance(tz_text, str):
            raise OpError("'tz' must be a Str")
        try:
            tz = tz_from_name(tz_text)
        except (HaystackError, ValueError, KeyError):
            raise OpError(f"unknown timezone {tz_text!r}") from None
    else:
        zones = {_point_tz(p).key for p in points}
        if len(zones) > 1:
            raise OpError("a batch hisRead needs points in one timezone, or 'tz' in the grid meta")
        tz = _point_tz(points[0])
    text = req.meta["range"]
    if not isinstance(text, str):
        raise OpError("'range' must be a Str")
    start, end = _his_span(text, tz, ctx.now)
    cap = ctx.config.limits.max_his_read
    found = await ctx.store.his_read([p["id"].id for p in points], start, end, tz=tz, limit=cap + 1)
    joined: dict[dt.datetime, dict[str, Any]] = {}
    total = 0
    for i, chunks in enumerate(found):
        name = f"v{i}"
        for chunk in chunks:
            total += len(chunk)
            for ts, val in zip(chunk.ts, chunk.val, strict=True):
                joined.setdefault(ts, {})[name] = val
    meta: dict[str, Any] = {"hisStart": start, "hisEnd": end or ctx.now.astimezone(tz)}
    if total > cap:
        meta |= _incomplete(cap)
    cols = [Col("ts")] + [Col(f"v{i}", {"id": p["id"]}) for i, p in enumerate(points)]
    rows = [{"ts": ts} | vals for ts, vals in sorted(joined.items())]
    return Grid(cols, rows, meta)


async def his_write(ctx: OpContext, req: Grid) -> Grid:
    """Write samples to one point, or to many from columns (the ``hisWrite`` op).

    Every sample is checked before any is written: one bad sample rejects the request
    and nothing is stored."""
    if len(req) > ctx.config.limits.max_rows:
        raise OpError(f"{len(req)} rows is over the limit of {ctx.config.limits.max_rows}")
    if "id" in req.meta:
        columns = [(_ref(req.meta["id"], "meta 'id'"), "val")]
    else:
        columns = [
            (_ref(col.meta.get("id"), f"column {col.name!r} meta 'id'"), col.name)
            for col in req.cols
            if col.name != "ts"
        ]
        if not columns:
            raise OpError("hisWrite needs 'id' in the grid meta, or value columns with an 'id'")
        if len(columns) > ctx.config.limits.max_ids:
            raise OpError(f"{len(columns)} points is over the limit of {ctx.config.limits.max_ids}")
    if not req.has_col("ts"):
        raise OpError("hisWrite needs a 'ts' column")
    points = await _entities(ctx, [ref for ref, _ in columns], "his")
    stamps = [row.get("ts") for row in req]
    # Per point, its samples: a later one at the same instant (in the grid, or in
    # another column for the same point) wins, as it would in the store.
    plan: dict[str, tuple[list[Any], list[Any]]] = {}
    for point, (_, col) in zip(points, columns, strict=True):
        tz = _point_tz(point)
        vals = [row.get(col) for row in req]
        ts: list[Any] = stamps
        if col != "val" and None in vals:  # a batch's missing samples
            kept = [i for i, v in enumerate(vals) if v is not None]
            ts, vals = [stamps[i] for i in kept], [vals[i] for i in kept]
        check_samples(point, tz, ts, vals)
        pid = point["id"].id
        found = plan.get(pid)
        plan[pid] = (ts, vals) if found is None else (found[0] + ts, found[1] + vals)
    batch: dict[str, HisChunk] = {pid: chunk_of(ts, vals) for pid, (ts, vals) in plan.items()}
    # One call, all or nothing across the points.
    await ctx.store.his_write(batch)
    return Grid.empty()


# -- pointWrite ----------------------------------------------------------------------------

_LEVEL_DIS = {1: "emergency", 8: "manual", 17: "default"}


async def point_write(ctx: OpContext, req: Grid) -> Grid:
    """Read a writable point's priority array, or write one level (``pointWrite``)."""
    if len(req) != 1:
        raise OpError("pointWrite needs exactly one row")
    row = req[0]
    point = await _entity(ctx, _ref(row.get("id"), "'id'"), "writable")
    pid = point["id"].id
    if row.get("level") is None:
        # A look at the array is a write of nothing: expired levels go, and the
        # point's writeVal follows, in the same store call.
        levels = await ctx.store.point_write(pid, None, None, now=ctx.now)
        if levels is None:
            raise OpError(f"unknown id @{pid}")
        return Grid(
            ["level", "levelDis", "val", "who", "expires"],
            [
                {
                    "level": Number(n),
                    "levelDis": f"{n} ({_LEVEL_DIS[n]})" if n in _LEVEL_DIS else str(n),
                    "val": levels[n].val if n in levels else None,
                    "who": levels[n].who if n in levels else None,
                    "expires": levels[n].expires if n in levels else None,
                }
                for n in range(1, PRIORITY_LEVELS + 1)
            ],
        )
    ctx.require(Role.OPERATOR, "writing a point")
    level_f = _number(row["level"], "'level'")
    if level_f != int(level_f) or not 1 <= level_f <= PRIORITY_LEVELS:
        raise OpError(f"'level' must be an integer from 1 to {PRIORITY_LEVELS}")
    level = int(level_f)
    val = row.get("val")
    if val is not None:
        check_value(point, val)
    who = row.get("who")
    if who is not None and not isinstance(who, str):
        raise OpError("'who' must be a Str")
    expires = None
    if row.get("duration") is not None:
        if level != 8:
            raise OpError("'duration' applies only to level 8")
        if not isinstance(row["duration"], Number):
            raise OpError("'duration' must be a Number")
        expires = ctx.now + _duration(row["duration"], "'duration'")
    entry = None if val is None else PriorityLevel(val, (who or ctx.user.username)[:256], expires)
    if await ctx.store.point_write(pid, level, entry, now=ctx.now) is None:
        raise OpError(f"unknown id @{pid}")
    return Grid.empty()


# -- watches -------------------------------------------------------------------------------


def _lease(ctx: OpContext, value: Any) -> dt.timedelta:
    if value is None:
        return ctx.config.watch_lease
    if isinstance(value, str) and len(value) <= 32:
        # rusty-haystack's client sends the lease as a Str ("60sec").
        with contextlib.suppress(HaystackError):
            value = zinc.decode_value(value)
    if not isinstance(value, Number):
        raise OpError("'lease' must be a Number with a duration unit")
    asked = _duration(value, "'lease'")
    return min(max(asked, ctx.config.min_watch_lease), ctx.config.max_watch_lease)


def _lease_number(lease: dt.timedelta) -> Number:
    seconds = lease.total_seconds()
    if seconds % 60 == 0:
        return Number(seconds / 60, "min")
    return Number(seconds, "s")


def _watch_id(req: Grid) -> str:
    wid = req.meta.get("watchId")
    if not isinstance(wid, str) or not wid:
        raise OpError("'watchId' (a Str) is required in the grid meta")
    return wid


def _any_owner(ctx: OpContext) -> bool:
    return ctx.user.role >= Role.ADMIN  # admins may use anyone's watch


async def watch_sub(ctx: OpContext, req: Grid) -> Grid:
    """Open a watch or add ids to one (the ``watchSub`` op): one store call, which
    checks the caps and answers the records."""
    refs = _ids(ctx, req)
    lease = _lease(ctx, req.meta.get("lease"))
    limits = ctx.config.limits
    wid = None if req.meta.get("watchId") is None else _watch_id(req)
    dis = req.meta.get("watchDis")
    sub = await ctx.store.watch_sub(
        wid,
        [r.id for r in refs],
        user=ctx.user.username,
        any_owner=_any_owner(ctx),
        dis=dis[:256] if isinstance(dis, str) else "watch",
        lease=lease,
        now=ctx.now,
        max_watches=limits.max_watches_per_user,
        max_ids=limits.max_ids,
    )
    if sub is None:
        raise OpError(f"unknown or expired watch {wid!r}")
    meta = {"watchId": sub.watch.id, "lease": _lease_number(sub.watch.lease)}
    return _rows_grid(sub.entities, meta)


async def watch_unsub(ctx: OpContext, req: Grid) -> Grid:
    """Remove ids from a watch, or close it (the ``watchUnsub`` op)."""
    wid = _watch_id(req)
    close = "close" in req.meta
    ids = [] if close else [r.id for r in _ids(ctx, req)]
    done = await ctx.store.watch_unsub(
        wid, ids, close=close, user=ctx.user.username, any_owner=_any_owner(ctx), now=ctx.now
    )
    if not done:
        raise OpError(f"unknown or expired watch {wid!r}")
    return Grid.empty()


async def watch_poll(ctx: OpContext, req: Grid) -> Grid:
    """What changed in a watch since the last poll, or everything (``watchPoll``)."""
    wid = _watch_id(req)
    (changed,) = await ctx.store.watch_poll(
        [wid],
        user=ctx.user.username,
        any_owner=_any_owner(ctx),
        refresh="refresh" in req.meta,
        now=ctx.now,
    )
    if changed is None:
        raise OpError(f"unknown or expired watch {wid!r}")
    refresh = "refresh" in req.meta
    found = await ctx.store.get_entities(changed) if changed else []
    recs = changed_rows(changed, found, gone=not refresh)
    return _rows_grid(recs, {"watchId": wid}) if recs else Grid(["id"], [], {"watchId": wid})


def changed_rows(
    ids: Sequence[str], found: Sequence[Mapping[str, Any] | None], *, gone: bool = True
) -> list[Mapping[str, Any]]:
    """The rows a watch reports for ``ids``: each entity's record, and (with ``gone``) for
    one deleted since, a row of its ``id`` and a ``removed`` marker, so that a client
    knows to drop it.  A refresh leaves deleted ones out instead, as the spec says."""
    rows: list[Mapping[str, Any]] = []
    for id, rec in zip(ids, found, strict=True):
        if rec is not None:
            rows.append(rec)
        elif gone:
            rows.append({"id": Ref(id), "removed": Marker})
    return rows


# -- invokeAction -------------------------------------------------------------------------


async def invoke_action(ctx: OpContext, req: Grid) -> Grid:
    """Run a registered action on an entity (the ``invokeAction`` op)."""
    row: Mapping[str, Any] = _first(req)
    where: Mapping[str, Any] = req.meta
    if "id" not in where and "action" not in where and "id" in row and "action" in row:
        # rusty-haystack's client puts id and action in the row instead of the meta.
        where, row = row, {k: v for k, v in row.items() if k not in ("id", "action")}
    target = await _entity(ctx, _ref(where.get("id"), "meta 'id'"))
    name = where.get("action")
    if not isinstance(name, str):
        raise OpError("'action' (a Str) is required in the grid meta")
    action = ctx.actions.get(name)
    if action is None:
        raise OpError(f"unknown action {name!r}")
    args = {k: v for k, v in row.items() if v is not NA}
    result = await action(ctx, target, args)
    return result if result is not None else Grid.empty()


STANDARD_OPS: tuple[Op, ...] = (
    Op("about", about, True, doc="Summary information for server"),
    Op("close", close, doc="Close the current session and revoke its token"),
    Op("defs", defs, True, doc="Query the definitions in the server namespace"),
    Op("libs", libs, True, doc="Query the libs in the server namespace"),
    Op("ops", ops_op, True, doc="Operations supported by the server"),
    Op("filetypes", filetypes, True, doc="File types supported by the server"),
    Op("read", read, True, doc="Read entities by filter or by id"),
    Op("nav", nav, True, doc="Navigate sites, equips and points"),
    Op("hisRead", his_read, True, doc="Read time series data"),
    Op("hisWrite", his_write, role=Role.OPERATOR, doc="Write time series data"),
    Op("pointWrite", point_write, doc="Read or write a point's priority array"),
    Op("watchSub", watch_sub, role=Role.OPERATOR, doc="Subscribe to entities"),
    Op("watchUnsub", watch_unsub, role=Role.OPERATOR, doc="Unsubscribe from entities"),
    Op("watchPoll", watch_poll, role=Role.OPERATOR, doc="Poll a watch for changes"),
    Op("invokeAction", invoke_action, role=Role.OPERATOR, doc="Invoke an action on an entity"),
    Op("formats", formats, True, doc="Haystack 3 name of filetypes: the MIME types served"),
)
"""The standard ops, in the order of the Ops chapter, and Haystack 3's ``formats``."""
