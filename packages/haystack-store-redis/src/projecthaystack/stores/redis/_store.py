"""The Redis store: the server's storage protocol on plain Redis data structures."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from projecthaystack.codecs import json as hjson
from projecthaystack.filter import Filter, compile_filter
from projecthaystack.filter import Namespace as FilterNamespace
from projecthaystack.kinds import FrozenDict, Ref, Remove
from projecthaystack.server import PriorityLevel, Session, User, Watch
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from . import _his, _lua
from ._errors import RedisStoreError, StoreUnavailableError
from ._keys import KeySpace
from ._query import index_suffixes, plan

__all__ = ["LAYOUT", "RedisStore", "open_store"]

LAYOUT = "1"
"""The version of the key layout this code writes; a store written by another refuses
to open rather than misread it."""

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
_JSON = msgspec.json.Encoder()
_DECODE_CACHE = 100_000  # decoded entities kept, keyed by their stored bytes
_SCHEMES = {
    "redis": ("redis", False),
    "rediss": ("rediss", False),
    "unix": ("unix", False),
    "redis+cluster": ("redis", True),
    "rediss+cluster": ("rediss", True),
}


def _ms(t: dt.datetime) -> int:
    return _his.us_of(t) // 1000


def _entity_id(record: Mapping[str, Any]) -> str:
    ref = record.get("id")
    if type(ref) is not Ref:
        raise ValueError("an entity needs a Ref 'id' tag")
    return ref.id


@contextlib.contextmanager
def _mapped() -> Any:
    """Redis's connection troubles as :class:`StoreUnavailableError`."""
    try:
        yield
    except rx.ResponseError as exc:
        if str(exc).startswith(("OOM", "LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN")):
            raise StoreUnavailableError(str(exc)) from exc
        raise
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc


class RedisStore:
    """A :class:`~projecthaystack.server.Store` on Redis (6.2+) or Valkey, single node or
    cluster, RESP2 or RESP3.  Every worker opening the same URL and prefix shares one
    store.

    ``url``: ``redis://[user:pass@]host:port/db``, ``rediss://`` (TLS), ``unix://path``,
    or ``redis+cluster://host:port`` (any node of a cluster); ``prefix`` puts every key
    under ``{prefix}:``; ``feed_maxlen`` bounds the change feed stream (approximately).
    Extra keyword arguments go to redis-py's client.

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
        **client_options: Any,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise RedisStoreError(
                f"not a Redis URL: {url!r} (use redis://, rediss://, unix:// or redis+cluster://)"
            )
        real, is_cluster = _SCHEMES[scheme]
        self.url = urlunsplit(urlsplit(url)._replace(scheme=real))
        self.cluster = is_cluster if cluster is None else cluster
        try:
            self.keys = KeySpace(prefix)
        except ValueError as exc:
            raise RedisStoreError(str(exc)) from None
        if feed_maxlen < 1:
            raise RedisStoreError("feed_maxlen must be positive")
        self.feed_maxlen = feed_maxlen
        self._options = client_options
        self._redis: Any = None
        self._scripts: dict[str, AsyncScript] = {}
        self._decoded: dict[bytes, FrozenDict] = {}
        self._his_meta: dict[str, _his.Meta] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, load the scripts and check (or write) the layout version."""
        options = {"decode_responses": False, **self._options}
        if self.cluster:
            self._redis = RedisCluster.from_url(self.url, **options)
        else:
            self._redis = Redis.from_url(self.url, **options)
        for name in dir(_lua):
            if name.isupper():
                self._scripts[name] = self._redis.register_script(getattr(_lua, name))
        k = self.keys
        with _mapped():
            await self._redis.hsetnx(k.meta, "layout", LAYOUT)
            await self._redis.hset(k.meta, "feedlen", str(self.feed_maxlen))
            layout = await self._redis.hget(k.meta, "layout")
        if layout != LAYOUT.encode():
            await self.close()
            raise RedisStoreError(
                f"keys under {k.base!r} use layout {layout!r}; this version reads {LAYOUT!r}"
            )

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

    async def get_entities(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        if not ids:
            return []
        with _mapped():
            blobs = await self.redis.hmget(self.keys.entities, list(ids))
        return [None if b is None else self._decode(b) for b in blobs]

    async def query(
        self,
        flt: Filter,
        *,
        limit: int | None = None,
        namespace: FilterNamespace | None = None,
    ) -> list[dict[str, Any]]:
        """The entities matching ``flt`` in insertion order: set operations in Redis
        narrow the candidates (or answer exactly); the rest is tested here."""
        if limit is not None and limit <= 0:
            return []

        async def leaf_ids(leaf: Filter) -> list[str]:
            return [r["id"].id for r in await self.query(leaf, namespace=namespace)]

        p = await plan(flt, leaf_ids)
        want = -1 if not p.exact or limit is None else limit
        dirty, _, blobs = await self._run("QUERY", [_JSON.encode(p.steps), want])
        records: list[dict[str, Any]] = [self._decode(b) for b in blobs]
        residual = flt if dirty else p.residual
        if residual is None:
            return records if limit is None else records[:limit]
        test = compile_filter(
            residual, resolver=await self._resolver(records, residual), namespace=namespace
        )
        out: list[dict[str, Any]] = []
        for rec in records:
            if test(rec):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    async def _resolver(self, records: list[dict[str, Any]], flt: Filter) -> Any:
        """A resolver over the entities that ``flt``'s paths reach from ``records``,
        fetched a level at a time (only when a residual test follows paths)."""
        paths = [p.names for p in flt.paths() if len(p.names) > 1]
        if not paths:
            return None
        known: dict[str, FrozenDict] = {}
        frontier: list[Mapping[str, Any]] = list(records)
        for depth in range(max(len(n) for n in paths) - 1):
            names = {n[depth] for n in paths if len(n) > depth + 1}
            wanted: set[str] = set()
            for rec in frontier:
                for name in names:
                    _collect_refs(rec.get(name), wanted)
            wanted -= known.keys()
            got = await self.get_entities(sorted(wanted))
            found = {i: r for i, r in zip(sorted(wanted), got, strict=True) if r is not None}
            known.update(cast(dict[str, FrozenDict], found))
            frontier = list(known.values())
        return lambda ref: known.get(ref.id)

    async def count_entities(self) -> int:
        """How many entities there are."""
        with _mapped():
            return int(await self.redis.zcard(self.keys.order))

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id, with their indexes, in one step."""
        args: list[Any] = []
        for rec in records:
            id = _entity_id(rec)
            args += (id, hjson.encode_value_bytes(rec), _JSON.encode(index_suffixes(rec)))
        for i in range(0, len(args), 3 * 2000):
            # Batches of 2,000 keep one script from stalling Redis for long.
            await self._run("PUT", args[i : i + 3 * 2000])

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` (``Remove`` deletes a tag); applied only if nobody changed
        the entity since it was read, else read again and retried."""
        for _ in range(50):
            with _mapped():
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.hget(self.keys.entities, id)
                    pipe.hget(self.keys.versions, id)
                    blob, version = await pipe.execute()
            if blob is None or version is None:
                return None
            merged = dict(self._decode(blob))
            for name, val in changes.items():
                if name == "id":
                    continue
                if val is Remove:
                    merged.pop(name, None)
                else:
                    merged[name] = val
            new = hjson.encode_value_bytes(merged)
            done = await self._run(
                "UPDATE", [id, version, new, _JSON.encode(index_suffixes(merged))]
            )
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

    async def entity_versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The current version of each existing entity among ``ids``."""
        if not ids:
            return {}
        with _mapped():
            got = await self.redis.hmget(self.keys.versions, list(ids))
        return {i: int(v) for i, v in zip(ids, got, strict=True) if v is not None}

    # -- history -------------------------------------------------------------------------
    async def his_write(self, id: str, samples: Sequence[tuple[dt.datetime, Any]]) -> int:
        """Add samples; a sample at an existing time replaces it."""
        return await self.his_write_many({id: samples})

    async def his_write_many(self, batch: Mapping[str, Sequence[tuple[dt.datetime, Any]]]) -> int:
        """Samples for many points in one atomic step: all are written or none."""
        for _ in range(5):
            args: list[Any] = []
            total = 0
            for id, samples in batch.items():
                if not samples:
                    continue
                meta = self._his_meta.get(id) or _his.Meta.first(samples)
                chunks, odd = _his.pack(meta, samples)
                args += (id, meta.text, len(chunks))
                for day, data in chunks.items():
                    args += (day, bytes(data))
                args.append(len(odd))
                for us, js in odd:
                    args += (us, js)
                total += len(samples)
            if not args:
                return 0
            res = await self._run("HIS_WRITE", args)
            if res[0] == 1:
                for id, samples in batch.items():
                    if samples and id not in self._his_meta:
                        self._his_meta[id] = _his.Meta.first(samples)
                return total
            # Another worker gave a point its zone and unit first: pack again with those.
            self._his_meta[res[1].decode()] = _his.Meta.parse(res[2].decode())
        raise StoreUnavailableError("history meta keeps changing")

    async def his_read(
        self,
        id: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        limit: int | None = None,
        tz: dt.tzinfo | None = None,
    ) -> list[FrozenDict]:
        """Samples with ``start <= ts < end``, oldest first, reading only the days the
        range touches."""
        lo = None if start is None else _his.us_of(start)
        hi = None if end is None else _his.us_of(end)
        first = "-inf" if lo is None else lo // _his.DAY_US
        last = "+inf" if hi is None else (hi - 1) // _his.DAY_US
        meta_text, periods, chunks = await self._run("HIS_READ", [id, first, last])
        if meta_text is None:
            return []
        meta = _his.Meta.parse(meta_text.decode())
        self._his_meta.setdefault(id, meta)
        tidy: list[bytes] = []
        rewrite: list[Any] = []
        odd_needed: list[int] = []
        for period, data in zip(periods, chunks, strict=True):
            clean, changed = _his.tidy(data)
            tidy.append(clean)
            odd_needed += _his.odd_times(clean)
            if changed:
                dropped = sorted(set(_his.odd_times(data)) - set(_his.odd_times(clean)))
                rewrite += (period, len(data), clean, len(dropped), *dropped)
        if rewrite:
            # Tidy the chunks for the next reader, unless someone appended meanwhile.
            await self._run("HIS_COMPACT", [id, *rewrite])
        odd: dict[int, FrozenDict] = {}
        if odd_needed:
            with _mapped():
                got = await self.redis.hmget(self.keys.his_odd(id), odd_needed)
            odd = {t: hjson.decode_value(js) for t, js in zip(odd_needed, got, strict=True)}
        rows: list[FrozenDict] = []
        for data in tidy:
            rows += _his.unpack(meta, data, lo, hi, tz, odd)
            if limit is not None and len(rows) >= limit:
                return rows[: max(limit, 0)]
        return rows if limit is None else rows[: max(limit, 0)]

    # -- priority arrays -----------------------------------------------------------------
    @staticmethod
    def _levels(raw: Mapping[bytes, bytes]) -> dict[int, PriorityLevel]:
        out = {}
        for level, blob in raw.items():
            val, who, expires = msgspec.json.decode(blob)
            out[int(level)] = PriorityLevel(
                hjson.decode_value(val),
                who,
                None if expires is None else dt.datetime.fromisoformat(expires),
            )
        return dict(sorted(out.items()))

    async def get_priority(self, id: str) -> dict[int, PriorityLevel]:
        """The set levels of a point's priority array."""
        with _mapped():
            return self._levels(await self.redis.hgetall(self.keys.priority(id)))

    async def set_priority(
        self, id: str, level: int, value: PriorityLevel | None
    ) -> dict[int, PriorityLevel]:
        """Set or release one level; the array afterwards (one transaction)."""
        key = self.keys.priority(id)
        with _mapped():
            async with self.redis.pipeline(transaction=True) as pipe:
                if value is None:
                    pipe.hdel(key, str(level))
                else:
                    blob = _JSON.encode(
                        [
                            hjson.encode_value(value.val),
                            value.who,
                            None if value.expires is None else value.expires.isoformat(),
                        ]
                    )
                    pipe.hset(key, str(level), blob)
                pipe.hgetall(key)
                *_, raw = await pipe.execute()
        return self._levels(raw)

    # -- watches -------------------------------------------------------------------------
    async def watch_open(
        self, dis: str, owner: str, lease: dt.timedelta, now: dt.datetime
    ) -> Watch:
        """A new, empty watch."""
        wid = "w-" + secrets.token_hex(12)
        lease_ms = int(lease.total_seconds() * 1000)
        await self._run("WATCH_OPEN", [wid, dis, owner, lease_ms, _ms(now)])
        return Watch(wid, dis, owner, lease, now + lease)

    async def watch_get(self, watch_id: str, now: dt.datetime) -> Watch | None:
        """The live watch, or ``None`` (an expired one is removed)."""
        got = await self._run("WATCH_GET", [watch_id, _ms(now)])
        if not got:
            return None
        dis, owner, lease, expires, pairs = got
        ids = {pairs[i].decode(): int(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        return Watch(
            watch_id,
            dis.decode(),
            owner.decode(),
            dt.timedelta(milliseconds=int(lease)),
            dt.datetime.fromtimestamp(int(expires) / 1000, dt.UTC),
            ids,
        )

    async def watch_add(
        self, watch_id: str, ids: Sequence[str], lease: dt.timedelta | None, now: dt.datetime
    ) -> Watch | None:
        """Subscribe ids at their current versions and renew the lease."""
        lease_ms = 0 if lease is None else int(lease.total_seconds() * 1000)
        if not await self._run("WATCH_ADD", [watch_id, lease_ms, _ms(now), *ids]):
            return None
        return await self.watch_get(watch_id, now)

    async def watch_remove(self, watch_id: str, ids: Sequence[str]) -> None:
        """Unsubscribe ids."""
        if ids:
            with _mapped():
                await self.redis.hdel(self.keys.watch_ids(watch_id), *ids)

    async def watch_close(self, watch_id: str) -> None:
        """Close the watch."""
        await self._run("WATCH_CLOSE", [watch_id])

    async def watch_poll(self, watch_id: str, refresh: bool, now: dt.datetime) -> list[str] | None:
        """Changed ids since the last poll (every live one on ``refresh``)."""
        got = await self._run("WATCH_POLL", [watch_id, "1" if refresh else "0", _ms(now)])
        if got is None:
            return None
        return [i.decode() for i in got]

    async def watch_count(self, owner: str, now: dt.datetime) -> int:
        """How many live watches ``owner`` has."""
        return int(await self._run("WATCH_COUNT", [owner, _ms(now)]))

    async def wait_for_change(self, timeout: float) -> None:
        """Block on the change feed (a Redis stream) until an entity changes anywhere or
        ``timeout`` seconds pass."""
        ms = max(1, int(timeout * 1000))
        with _mapped():
            await self.redis.xread({self.keys.feed: "$"}, count=1, block=ms)

    # -- users ---------------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or ``None``."""
        with _mapped():
            blob = await self.redis.hget(self.keys.users, username)
        return None if blob is None else User.from_dict(msgspec.json.decode(blob))

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        with _mapped():
            raw = await self.redis.hgetall(self.keys.users)
        users = [User.from_dict(msgspec.json.decode(b)) for b in raw.values()]
        return sorted(users, key=lambda u: u.username)

    async def put_user(self, user: User) -> None:
        """Create or replace a user."""
        with _mapped():
            await self.redis.hset(self.keys.users, user.username, _JSON.encode(user.to_dict()))

    async def delete_user(self, username: str) -> bool:
        """Remove a user."""
        with _mapped():
            return bool(await self.redis.hdel(self.keys.users, username))

    # -- sessions and handshakes ---------------------------------------------------------
    @staticmethod
    def _token_hash(token: str) -> str:
        # Only a hash of a bearer token is kept: a dump of Redis yields no usable token.
        return hashlib.sha256(token.encode()).hexdigest()

    async def put_session(self, session: Session) -> None:
        """Keep a new session under its token's hash."""
        h = self._token_hash(session.token)
        exp = _ms(session.expires)
        blob = _JSON.encode([session.username, exp])
        with _mapped():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.session(h), blob, px=max(1, exp - _ms(_now())) + 60_000)
                pipe.zadd(self.keys.sessions_of(session.username), {h: exp})
                await pipe.execute()

    async def get_session(self, token: str, now: dt.datetime) -> Session | None:
        """The live session of a token (expiry decided by ``now``, exactly)."""
        with _mapped():
            blob = await self.redis.get(self.keys.session(self._token_hash(token)))
        if blob is None:
            return None
        username, exp = msgspec.json.decode(blob)
        if exp <= _ms(now):
            return None
        return Session(token, username, dt.datetime.fromtimestamp(exp / 1000, dt.UTC))

    async def delete_session(self, token: str) -> None:
        """Revoke one token."""
        with _mapped():
            await self.redis.unlink(self.keys.session(self._token_hash(token)))

    async def delete_sessions_of(self, username: str) -> int:
        """Revoke every token of a user."""
        key = self.keys.sessions_of(username)
        with _mapped():
            hashes = await self.redis.zrange(key, 0, -1)
            if not hashes:
                return 0
            gone = await self.redis.unlink(*[self.keys.session(h.decode()) for h in hashes])
            await self.redis.unlink(key)
        return int(gone)

    async def put_handshake(
        self,
        token: str,
        state: Mapping[str, Any],
        *,
        client: str,
        ttl: dt.timedelta,
        per_client: int,
        total: int,
        now: dt.datetime,
    ) -> bool:
        """Keep a handshake's state within the per-client and total caps (one script)."""
        ttl_ms = int(ttl.total_seconds() * 1000)
        args = [token, _JSON.encode(dict(state)), client, ttl_ms, per_client, total, _ms(now)]
        return bool(await self._run("HANDSHAKE_PUT", args))

    async def pop_handshake(self, token: str, now: dt.datetime) -> dict[str, Any] | None:
        """Take a live handshake's state, once."""
        got = await self._run("HANDSHAKE_POP", [token, _ms(now)])
        if not got:
            return None
        return dict(msgspec.json.decode(got))

    # -- throttling ----------------------------------------------------------------------
    async def add_failure(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """Count a failure; the failures within ``window``."""
        window_ms = int(window.total_seconds() * 1000)
        return int(await self._run("FAILURE_ADD", [key, window_ms, _ms(now)]))

    async def count_failures(self, key: str, window: dt.timedelta, now: dt.datetime) -> int:
        """The failures within ``window``."""
        low = _ms(now) - int(window.total_seconds() * 1000)
        with _mapped():
            return int(await self.redis.zcount(self.keys.failures(key), f"({low}", "+inf"))

    async def clear_failures(self, key: str) -> None:
        """Forget the failures under ``key``."""
        with _mapped():
            await self.redis.unlink(self.keys.failures(key))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _collect_refs(val: Any, into: set[str]) -> None:
    if type(val) is Ref:
        into.add(val.id)
    elif type(val) is list:
        for item in val:
            if type(item) is Ref:
                into.add(item.id)


_OURS = {"prefix", "feed_maxlen"}


def open_store(url: str, **options: Any) -> RedisStore:
    """A :class:`RedisStore` for ``url`` (not yet opened): the ``projecthaystack.stores``
    entry point.  ``prefix`` and ``feed_maxlen`` may be given in the query string
    (``redis://host:6379/0?prefix=hs``); other query parameters go to redis-py.

    >>> open_store("redis+cluster://127.0.0.1:7000?prefix=site-a").keys.base
    '{site-a}:'
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    rest = [(k, v) for k, v in query if k not in _OURS]
    kwargs: dict[str, Any] = dict(options)
    if "prefix" in ours:
        kwargs.setdefault("prefix", ours["prefix"])
    if "feed_maxlen" in ours:
        try:
            kwargs.setdefault("feed_maxlen", int(ours["feed_maxlen"]))
        except ValueError:
            raise RedisStoreError(f"feed_maxlen is not a number: {ours['feed_maxlen']!r}") from None
    return RedisStore(urlunsplit(parts._replace(query=urlencode(rest))), **kwargs)
