"""The Redis store: the server's storage protocol on plain Redis data structures."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from projecthaystack.codecs import json as hjson
from projecthaystack.filter import Filter, FilterError, IsSpec, compile_filter
from projecthaystack.kinds import FrozenDict, Ref, Remove
from projecthaystack.server import (
    PROTOCOL_VERSION,
    Changes,
    HisChunk,
    PriorityLevel,
    SchemaError,
    Session,
    StoreInfo,
    UnknownEntityError,
    UnknownUserError,
    User,
    UserChanges,
    UserExistsError,
    Watch,
    WatchLimitError,
    WatchSub,
    apply_point_write,
)
from projecthaystack.server.storeforms import (
    decode_levels,
    decode_session,
    decode_user,
    encode_levels,
    encode_session,
    encode_user,
    entity_id,
    ts_key,
)
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from . import _his, _lua
from ._errors import RedisStoreError, StoreUnavailableError
from ._keys import KeySpace
from ._query import index_batch, index_suffixes, plan
from ._url import Node, redact, scrub, show_node, split_nodes

__all__ = ["LAYOUT", "RedisStore", "open_store"]

LAYOUT = 1
"""The version of the key layout this code writes (:attr:`StoreInfo.schema`); keys
written in another layout make :meth:`RedisStore.open` raise :class:`SchemaError`
rather than misread them."""

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.ClusterDownError,
    rx.ClusterError,
    rx.TryAgainError,
    rx.MasterDownError,
    rx.ReadOnlyError,
    OSError,
)
_SETTLING = ("OOM", "LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS")
"""Prefixes of Redis's error replies that say "not now" rather than "never"."""
_JSON = msgspec.json.Encoder()
_DECODE_CACHE = 100_000  # decoded entities kept, keyed by their stored bytes
_FEED_BATCH = 10_000  # feed entries read at most per call (the cursor then moves on)
_SCHEMES = {
    "redis": ("redis", False),
    "rediss": ("rediss", False),
    "unix": ("unix", False),
    "redis+cluster": ("redis", True),
    "rediss+cluster": ("rediss", True),
}


def _ms(t: dt.datetime) -> int:
    return ts_key(t) // 1000


def _merge(entity: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(entity)
    for name, val in changes.items():
        if name == "id":
            continue
        if val is Remove:
            merged.pop(name, None)
        else:
            merged[name] = val
    return merged


@contextlib.contextmanager
def _mapped() -> Any:
    """Redis's connection troubles as :class:`StoreUnavailableError`."""
    try:
        yield
    except rx.ResponseError as exc:
        # A redirection the client did not follow (MOVED, ASK: a slot changed hands in a
        # failover), a script the promoted replica has not loaded yet (NOSCRIPT): the
        # cluster is settling, and the same request succeeds in a moment.
        if isinstance(exc, (rx.MovedError, rx.AskError, rx.NoScriptError)) or str(exc).startswith(
            _SETTLING
        ):
            raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        raise
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
    except rx.RedisClusterException as exc:
        # A cluster client that lost its nodes in a failover: no node reachable to
        # rediscover the cluster from, or the slot not covered yet.  The class is also
        # the client's own refusals (keys of several slots), which stay errors.
        if isinstance(exc, rx.SlotNotCoveredError) or "cannot be connected" in str(exc):
            raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        raise


def _split(url: str) -> SplitResult:
    """``urlsplit``, its refusals as :class:`RedisStoreError` without the password."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise RedisStoreError(f"bad Redis URL {redact(url)!r}: {scrub(str(exc), url)}") from None


class RedisStore:
    """A :class:`~projecthaystack.server.Store` on Redis (6.2+) or Valkey, single node or
    cluster, RESP2 or RESP3.  Every worker opening the same URL and prefix shares one
    store.

    ``url``: ``redis://[user:pass@]host:port/db``, ``rediss://`` (TLS), ``unix://path``,
    or ``redis+cluster://[user:pass@]host:port[,host:port...]`` (one or more nodes of a
    cluster, up to 64, ``[ipv6]:port`` in brackets: a worker starts from whichever
    answers, and discovers the others; ``rediss+cluster://`` over TLS); ``prefix`` puts every key
    under ``{prefix}:``; ``feed_maxlen`` bounds the change feed stream (approximately);
    ``protocol`` is the RESP version spoken, 2 or 3.  Extra keyword arguments go to
    redis-py's client.

    A command that cannot reach Redis is tried twice more within about 0.3 s, then
    raises :class:`~projecthaystack.server.StoreUnavailableError` (a 503
    that tells the client to retry): a request does not wait out a restart or a
    failover, whatever redis-py's own default (``retry=`` sets another policy).

    >>> store = RedisStore("redis://127.0.0.1:6379/0", prefix="demo")
    >>> store.keys.entities
    '{demo}:e'
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "haystack",
        cluster: bool | None = None,
        feed_maxlen: int = 100_000,
        protocol: int = 2,
        **client_options: Any,
    ) -> None:
        parts = _split(url)
        if parts.scheme not in _SCHEMES:
            raise RedisStoreError(
                f"not a Redis URL: {redact(url)!r}"
                " (use redis://, rediss://, unix:// or redis+cluster://)"
            )
        real, is_cluster = _SCHEMES[parts.scheme]
        self.url = urlunsplit(parts._replace(scheme=real))
        self.cluster = is_cluster if cluster is None else cluster
        hosts = parts.netloc.rpartition("@")[2]
        self.startup_nodes: tuple[Node, ...] = ()
        """The ``(host, port)`` of each node the cluster URL lists (empty for one node)."""
        if self.cluster:
            if real == "unix":
                raise RedisStoreError("a cluster is reached over TCP, not a Unix socket")
            try:
                self.startup_nodes = split_nodes(hosts)
            except ValueError as exc:
                raise RedisStoreError(f"bad cluster URL {redact(url)!r}: {exc}") from None
        elif "," in hosts:
            raise RedisStoreError(
                f"bad Redis URL {redact(url)!r}: several nodes need a cluster URL"
                " (redis+cluster://h1:7000,h2:7000)"
            )
        try:
            self.keys = KeySpace(prefix)
        except ValueError as exc:
            raise RedisStoreError(str(exc)) from None
        if feed_maxlen < 1:
            raise RedisStoreError("feed_maxlen must be positive")
        self.feed_maxlen = feed_maxlen
        if protocol not in (2, 3):
            raise RedisStoreError(f"protocol must be 2 or 3 (RESP2, RESP3), not {protocol!r}")
        self.protocol = protocol
        self._options = client_options
        self._redis: Any = None
        self._scripts: dict[str, AsyncScript] = {}
        self._decoded: dict[bytes, FrozenDict] = {}
        self._his_meta: dict[str, _his.Meta] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, load the scripts and check (or write) the layout version."""
        options = {
            "decode_responses": False,
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
            **self._options,
            "protocol": self.protocol,
        }
        if self.cluster:
            self._redis = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in self.startup_nodes],
                **{**options, **self._url_options()},
            )
        else:
            self._redis = Redis.from_url(self.url, **options)
        for name in dir(_lua):
            if name.isupper():
                self._scripts[name] = self._redis.register_script(getattr(_lua, name))
        k = self.keys
        with _mapped():
            await self._redis.hsetnx(k.meta, "layout", str(LAYOUT))
            await self._redis.hset(k.meta, "feedlen", str(self.feed_maxlen))
            layout = await self._redis.hget(k.meta, "layout")
            if not await self._redis.exists(k.feed):
                # The feed always holds an entry, so every cursor names one.
                await self._redis.xadd(k.feed, {"ids": "[]"})
        if layout != str(LAYOUT).encode():
            await self.close()
            raise SchemaError(
                f"keys under {k.base!r} use layout {layout!r}; this version reads {LAYOUT}"
            )

    def _url_options(self) -> dict[str, Any]:
        """The client options a cluster URL gives besides its nodes (user, password,
        TLS, query parameters), as redis-py's ``from_url`` reads them: the same for every
        node, and ahead of keyword arguments."""
        first = show_node(self.startup_nodes[0])
        parts = urlsplit(self.url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        one_node = urlunsplit(parts._replace(netloc=userinfo + at + first))
        got: dict[str, Any] = dict(parse_url(one_node))
        got.pop("host", None)
        got.pop("port", None)
        if got.pop("connection_class", None) is SSLConnection:
            got["ssl"] = True
        return got

    async def info(self) -> StoreInfo:
        """Protocol and layout versions, and where the store is (without a password)."""
        parts = urlsplit(self.url)
        if self.cluster:
            nodes = ",".join(show_node(n) for n in self.startup_nodes)
            where = f"{parts.scheme}+cluster://{nodes}"
        else:
            where = f"{parts.scheme}://{parts.hostname or ''}"
            where += f":{parts.port}" if parts.port else ""
        return StoreInfo(PROTOCOL_VERSION, LAYOUT, f"{where}{parts.path} {self.keys.base}", True)

    async def close(self) -> None:
        """Close the connections."""
        if self._redis is not None:
            redis, self._redis = self._redis, None
            with contextlib.suppress(*_UNAVAILABLE):
                await redis.aclose()

    @property
    def redis(self) -> Any:
        """The redis-py client (``Redis`` or ``RedisCluster``) once opened."""
        if self._redis is None:
            raise RuntimeError("the store is not open: await store.open() first")
        return self._redis

    async def _run(self, script: str, args: Sequence[Any], key: str | None = None) -> Any:
        with _mapped():
            return await self._scripts[script](
                keys=[key or self.keys.entities], args=[self.keys.base, *args], client=self.redis
            )

    async def _fields(self, id: str, *hashes: str) -> list[bytes | None]:
        """One entity's fields in the hashes named (``e``, ``v``, ``p``: entity, version,
        priority array), read together by a script: a script is routed, and redirected
        in a failover, like any command, which a MULTI pipeline on a cluster is not."""
        got = await self._run("READ", [id, *hashes])
        return [b or None for b in got]

    async def drop(self) -> int:
        """Delete every key of this store (``SCAN`` + ``UNLINK`` on its prefix only);
        how many there were.  For tests and decommissioning."""
        gone = 0
        with _mapped():
            if self.cluster:
                nodes = self.redis.get_primaries()
                match = self.keys.pattern()
                batches = [
                    [k async for k in self.redis.scan_iter(match=match, target_nodes=n)]
                    for n in nodes
                ]
            else:
                batches = [[k async for k in self.redis.scan_iter(match=self.keys.pattern())]]
            for batch in batches:
                for i in range(0, len(batch), 500):
                    gone += await self.redis.unlink(*batch[i : i + 500])
        return gone

    # -- entities ------------------------------------------------------------------------
    def _decode(self, blob: bytes) -> FrozenDict:
        rec = self._decoded.get(blob)
        if rec is None:
            rec = hjson.decode_value(blob)
            if len(self._decoded) >= _DECODE_CACHE:
                self._decoded.clear()
            self._decoded[blob] = rec
        return rec

    async def get_entities(self, ids: Sequence[str]) -> list[FrozenDict | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        if not ids:
            return []
        with _mapped():
            blobs = await self.redis.hmget(self.keys.entities, list(ids))
        return [None if b is None else self._decode(b) for b in blobs]

    async def query(self, flt: Filter, *, limit: int | None = None) -> list[FrozenDict]:
        """The entities matching ``flt``, oldest first: set operations in Redis narrow
        the candidates (or answer exactly); what no index answers is tested here on the
        candidates only.  A spec name (``IsSpec``) raises ``FilterError``: the server
        rewrites those into tags first."""
        if limit is not None and limit <= 0:
            return []
        if _has_spec(flt):
            raise FilterError(f"filter {str(flt)!r} names a spec: rewrite it into tags first")
        p = await plan(flt, self._leaf_ids)
        want = -1 if not p.exact or limit is None else limit
        dirty, _, blobs = await self._run("QUERY", [_JSON.encode(p.steps), want])
        records = [self._decode(b) for b in blobs]
        residual = flt if dirty else p.residual
        if residual is None:
            return records if limit is None else records[:limit]
        test = compile_filter(residual, resolver=await self._resolver(records, residual))
        out: list[FrozenDict] = []
        for rec in records:
            if test(rec):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    async def _leaf_ids(self, leaf: Filter) -> list[str]:
        """The ids matching the end of a path that no index answers."""
        return [r["id"].id for r in await self.query(leaf)]

    async def _resolver(self, records: list[FrozenDict], flt: Filter) -> Any:
        """A resolver over the entities that ``flt``'s paths reach from ``records``,
        fetched a level at a time (only when a residual test follows paths: a path
        through a tag some entity holds as a Dict)."""
        paths = [p.names for p in flt.paths() if len(p.names) > 1]
        if not paths:
            return None
        known: dict[str, FrozenDict] = {}
        frontier: list[Mapping[str, Any]] = list(records)
        for depth in range(max(len(n) for n in paths) - 1):
            names = {n[depth] for n in paths if len(n) > depth + 1}
            wanted: set[str] = set()
            nested: list[Mapping[str, Any]] = []
            for rec in frontier:
                for name in names:
                    val = rec.get(name)
                    if isinstance(val, Mapping):
                        nested.append(val)  # a path walks into a Dict in place
                    else:
                        _collect_refs(val, wanted)
            order = sorted(wanted - known.keys())
            got = await self.get_entities(order)
            known.update({i: r for i, r in zip(order, got, strict=True) if r is not None})
            frontier = [*known.values(), *nested]
        return lambda ref: known.get(ref.id)

    async def count_entities(self) -> int:
        """How many entities there are."""
        with _mapped():
            return int(await self.redis.zcard(self.keys.order))

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id with their indexes, all in one script
        (all or none); an id given twice: the last record wins, in the first one's place.

        The batch travels as four arguments however many entities it has (the ids, the
        texts end to end with their ends in a JSON head), with the index sets it fills
        grouped here: redis-py packs every argument in Python, and the script then
        writes each set once rather than once per entity."""
        batch = {entity_id(rec): rec for rec in records}  # a later record keeps its place
        if not batch:
            return
        ids = list(batch)
        texts = [hjson.encode_value_bytes(rec) for rec in batch.values()]
        suffixes, sets = index_batch(ids, list(batch.values()))
        m_texts = [_JSON.encode(s) for s in suffixes]
        ends = [list(accumulate(map(len, texts))), list(accumulate(map(len, m_texts))), sets]
        args = [_JSON.encode(ids), _JSON.encode(ends), b"".join(texts), b"".join(m_texts)]
        await self._run("PUT", args)

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> FrozenDict | None:
        """Merge ``changes`` (``Remove`` deletes a tag); written only if nobody changed
        the entity since it was read, else read again."""
        for _ in range(50):
            blob, version = await self._fields(id, "e", "v")
            if blob is None or version is None:
                return None
            merged = _merge(self._decode(blob), changes)
            new = hjson.encode_value_bytes(merged)
            args = [id, version, new, _JSON.encode(index_suffixes(merged))]
            done = await self._run("UPDATE", args)
            if done == 1:
                return self._decode(new)
            if done == -1:
                return None
        raise StoreUnavailableError(f"entity {id!r} changes too often to update")

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities with their history and priority arrays."""
        if not ids:
            return 0
        for i in ids:
            self._his_meta.pop(i, None)
        return int(await self._run("DELETE", list(ids)))

    # -- the change feed -------------------------------------------------------------------
    async def _feed(self, cursor: str) -> Changes:
        got = await self._run("FEED", [cursor, _FEED_BATCH])
        ids: set[str] = set()
        for blob in got[2:]:
            ids.update(msgspec.json.decode(blob))
        return Changes(got[0].decode(), frozenset(ids), bool(got[1]))

    async def changes_since(self, cursor: str | None) -> Changes:
        """The ids changed after ``cursor`` (a position in the feed stream); with
        ``None``, the position of now.  ``reset`` when the stream was trimmed past it."""
        return await self._feed(cursor or "")

    async def wait_changes(self, cursor: str, timeout: float) -> Changes:
        """Block on the feed stream (``XREAD BLOCK``) until a change after ``cursor``,
        from any process, or ``timeout`` seconds."""
        changes = await self._feed(cursor)
        if changes.ids or changes.reset or timeout <= 0:
            return changes
        with _mapped():
            await self.redis.xread(
                {self.keys.feed: changes.cursor}, count=1, block=max(1, int(timeout * 1000))
            )
        return await self._feed(changes.cursor)

    # -- history -------------------------------------------------------------------------
    async def his_write(self, batch: Mapping[str, HisChunk]) -> int:
        """Samples for many points in one script: all are written or none
        (:class:`UnknownEntityError` when a point does not exist)."""
        for _ in range(5):
            args: list[Any] = []
            total = 0
            for id, chunk in batch.items():
                if not len(chunk):
                    continue
                meta = self._his_meta.get(id) or _his.Meta.first(chunk)
                chunks, odd = _his.pack(meta, chunk)
                args += (id, meta.text, len(chunks))
                for day, data in chunks.items():
                    args += (day, bytes(data))
                args.append(len(odd))
                for item in odd:
                    args += item
                total += len(chunk)
            if not args:
                return 0
            res = await self._run("HIS_WRITE", args)
            if res[0] == 1:
                for id, chunk in batch.items():
                    if len(chunk) and id not in self._his_meta:
                        self._his_meta[id] = _his.Meta.first(chunk)
                return total
            if res[0] == 0:
                raise UnknownEntityError(i.decode() for i in res[1:])
            # Another worker gave a point its unit first: pack again with that one.
            self._his_meta[res[1].decode()] = _his.Meta.parse(res[2].decode())
        raise StoreUnavailableError("history meta keeps changing")

    async def his_read(
        self,
        ids: Sequence[str],
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        tz: dt.tzinfo,
        limit: int | None = None,
    ) -> list[Sequence[HisChunk]]:
        """Each point's samples with ``start <= ts < end`` in ``tz``, in one script that
        reads only the days the range touches."""
        if not ids:
            return []
        lo = None if start is None else ts_key(start)
        hi = None if end is None else ts_key(end)
        first = "-inf" if lo is None else lo // _his.DAY_US
        last = "+inf" if hi is None else (hi - 1) // _his.DAY_US
        got = await self._run("HIS_READ", [first, last, *ids])
        left = limit
        out: list[Sequence[HisChunk]] = []
        for id, (meta_text, days, chunks, odd_lists) in zip(ids, got, strict=True):
            if not meta_text or (left is not None and left <= 0):
                out.append([])
                continue
            meta = _his.Meta.parse(meta_text.decode())
            rewrite: list[Any] = []
            parts: list[HisChunk] = []
            for day, data, pairs in zip(days, chunks, odd_lists, strict=True):
                clean, changed = _his.tidy(data)
                if changed:
                    dropped = sorted(set(_his.odd_times(data)) - set(_his.odd_times(clean)))
                    rewrite += (day, len(data), clean, len(dropped), *dropped)
                odd = {int(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}
                part = _his.unpack(meta, clean, lo, hi, tz, odd, left)
                if len(part):
                    parts.append(part)
                    if left is not None:
                        left -= len(part)
                if left is not None and left <= 0:
                    break
            if rewrite:
                # Tidy the chunks for the next reader, unless someone appended meanwhile.
                await self._run("HIS_COMPACT", [id, *rewrite])
            out.append(parts)
        return out

    # -- priority arrays -----------------------------------------------------------------
    async def point_write(
        self,
        id: str,
        level: int | None,
        entry: PriorityLevel | None,
        *,
        now: dt.datetime,
    ) -> dict[int, PriorityLevel] | None:
        """Expire, apply the level, store the array and merge the tags it yields, as one
        decision: read, decide with :func:`apply_point_write`, and write only if neither
        the point nor its array changed meanwhile (else again)."""
        for _ in range(100):
            blob, version, raw = await self._fields(id, "e", "v", "p")
            if blob is None or version is None:
                return None
            entity = self._decode(blob)
            levels = decode_levels(raw) if raw else {}
            decided = apply_point_write(entity, levels, level, entry, now)
            stored = encode_levels(decided.levels) if decided.levels else ""
            new_blob, suffixes = b"", b"[]"
            if decided.changes:
                merged = _merge(entity, decided.changes)
                new_blob = hjson.encode_value_bytes(merged)
                suffixes = _JSON.encode(index_suffixes(merged))
            args = [id, version, raw or b"", stored, new_blob, suffixes]
            done = await self._run("POINT_WRITE", args)
            if done == 1:
                return decided.levels
            if done == -1:
                return None
        raise StoreUnavailableError(f"point {id!r} is written too often to decide")

    # -- watches -------------------------------------------------------------------------
    @staticmethod
    def _watch(header: list[Any]) -> Watch:
        wid, dis, owner, lease, expires, size = header
        return Watch(
            wid.decode() if isinstance(wid, bytes) else wid,
            dis.decode(),
            owner.decode(),
            dt.timedelta(seconds=float(lease)),
            dt.datetime.fromtimestamp(int(expires) / 1000, dt.UTC),
            int(size),
        )

    async def watch_sub(
        self,
        watch_id: str | None,
        ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        dis: str,
        lease: dt.timedelta,
        now: dt.datetime,
        max_watches: int,
        max_ids: int,
    ) -> WatchSub | None:
        """Open a watch or add to one, caps checked and applied in one script."""
        args = [
            watch_id or "",
            "w-" + secrets.token_hex(12),
            user,
            "1" if any_owner else "0",
            dis,
            int(lease.total_seconds() * 1000),
            _ms(now),
            max_watches,
            max_ids,
            *ids,
        ]
        got = await self._run("WATCH_SUB", args)
        if got[0] == 0:
            return None
        if got[0] == -1:
            limit = got[1].decode()
            raise WatchLimitError(limit, max_watches if limit == "watches" else max_ids)
        recs = [None if not b else self._decode(b) for b in got[2]]
        return WatchSub(self._watch(got[1]), recs)

    async def watch_unsub(
        self,
        watch_id: str,
        ids: Sequence[str],
        *,
        close: bool,
        user: str,
        any_owner: bool,
        now: dt.datetime,
    ) -> bool:
        """Unsubscribe ids or close the watch; the owner is checked inside the script."""
        args = [watch_id, "1" if close else "0", user, "1" if any_owner else "0", _ms(now)]
        return bool(await self._run("WATCH_UNSUB", [*args, *ids]))

    async def watch_poll(
        self,
        watch_ids: Sequence[str],
        *,
        user: str,
        any_owner: bool,
        refresh: bool,
        now: dt.datetime,
    ) -> list[list[str] | None]:
        """Each watch's ids changed since its last poll, read from the change feed."""
        if not watch_ids:
            return []
        args = [user, "1" if any_owner else "0", "1" if refresh else "0", _ms(now)]
        got = await self._run("WATCH_POLL", [*args, *watch_ids])
        # An unknown watch is Lua's false: nil in RESP2, nil or False in RESP3.
        return [[i.decode() for i in ids] if isinstance(ids, list) else None for ids in got]

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        with _mapped():
            blob = await self.redis.hget(self.keys.users, username)
        return None if blob is None else decode_user(blob)

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        with _mapped():
            raw = await self.redis.hgetall(self.keys.users)
        return sorted((decode_user(b) for b in raw.values()), key=lambda u: u.username)

    async def create_user(self, user: User) -> None:
        """Add a user if the name is free (``HSETNX``)."""
        with _mapped():
            added = await self.redis.hsetnx(self.keys.users, user.username, encode_user(user))
        if not added:
            raise UserExistsError(f"user {user.username!r} exists")

    async def update_user(self, username: str, changes: UserChanges) -> User:
        """Apply ``changes``, ending the user's sessions in the same step when they revoke."""
        for _ in range(50):
            with _mapped():
                blob = await self.redis.hget(self.keys.users, username)
            if blob is None:
                raise UnknownUserError(f"no user {username!r}")
            user = changes.apply(decode_user(blob))
            args = [username, blob, encode_user(user), "1" if changes.revokes else "0"]
            done = await self._run("USER_UPDATE", args)
            if done == 1:
                return user
            if done == -1:
                raise UnknownUserError(f"no user {username!r}")
        raise StoreUnavailableError(f"user {username!r} changes too often to update")

    async def delete_user(self, username: str) -> bool:
        """Remove a user and every session of theirs."""
        return bool(await self._run("USER_DELETE", [username]))

    # -- sessions ------------------------------------------------------------------------
    async def put_session(self, session: Session) -> None:
        """Keep a new session under its token hash; its key expires on its own."""
        ttl = max(1, _ms(session.expires) - _ms(_now())) + 60_000
        args = [session.token_hash, encode_session(session), session.username, ttl]
        await self._run("SESSION_PUT", args)

    async def authenticate(self, token_hash: str, now: dt.datetime) -> tuple[Session, User] | None:
        """The live session of a token hash with its user, in one script; expiry is
        judged by ``now`` exactly (the key's TTL only sweeps)."""
        got = await self._run("AUTHENTICATE", [token_hash])
        if not got:
            return None
        session = decode_session(token_hash, got[0])
        if session.expires <= now:
            return None
        return session, decode_user(got[1])

    async def delete_session(self, token_hash: str) -> None:
        """Revoke one session."""
        await self._run("SESSION_DELETE", [token_hash])

    # -- handshakes and throttling ---------------------------------------------------------
    async def claim_handshake(self, key: str, expires: dt.datetime, now: dt.datetime) -> bool:
        """Record a completed handshake once (a replay gets ``False``)."""
        return bool(await self._run("CLAIM", [key, _ms(expires), _ms(now)]))

    async def throttle(
        self,
        limits: Mapping[str, int],
        window: dt.timedelta,
        now: dt.datetime,
        *,
        record: bool = True,
    ) -> bool:
        """Judge and count a login attempt under every key, in one script."""
        args: list[Any] = [int(window.total_seconds() * 1000), _ms(now), "1" if record else "0"]
        for key, cap in limits.items():
            args += (key, cap)
        return bool(await self._run("THROTTLE", args))

    async def forgive(self, *, refund: Sequence[str] = (), clear: Sequence[str] = ()) -> None:
        """Take one attempt off each ``refund`` key and all off each ``clear`` key."""
        if refund or clear:
            await self._run("FORGIVE", [len(refund), *refund, *clear])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _has_spec(node: Filter) -> bool:
    if isinstance(node, IsSpec):
        return True
    return any(_has_spec(op) for op in getattr(node, "operands", ()))


def _collect_refs(val: Any, into: set[str]) -> None:
    if type(val) is Ref:
        into.add(val.id)
    elif type(val) is list:
        for item in val:
            if type(item) is Ref:
                into.add(item.id)


_OURS = {"prefix", "feed_maxlen", "protocol"}


def open_store(url: str, **options: Any) -> RedisStore:
    """A :class:`RedisStore` for ``url`` (not yet opened): the ``projecthaystack.stores``
    entry point.  ``prefix``, ``feed_maxlen`` and ``protocol`` may be given in the query
    string (``redis://host:6379/0?prefix=hs&protocol=3``); other query parameters go to
    redis-py.

    >>> open_store("redis+cluster://127.0.0.1:7000?prefix=site-a").keys.base
    '{site-a}:'
    >>> open_store("redis+cluster://10.0.0.5:7000,10.0.0.6:7000/?prefix=hs").startup_nodes
    (('10.0.0.5', 7000), ('10.0.0.6', 7000))
    """
    parts = _split(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    rest = [(k, v) for k, v in query if k not in _OURS]
    kwargs: dict[str, Any] = dict(options)
    if "prefix" in ours:
        kwargs.setdefault("prefix", ours["prefix"])
    for name in ("feed_maxlen", "protocol"):
        if name in ours:
            try:
                kwargs.setdefault(name, int(ours[name]))
            except ValueError:
                raise RedisStoreError(f"{name} is not a number: {ours[name]!r}") from None
    return RedisStore(urlunsplit(parts._replace(query=urlencode(rest))), **kwargs)
