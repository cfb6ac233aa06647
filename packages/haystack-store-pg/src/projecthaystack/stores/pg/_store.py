"""The PostgreSQL store: psycopg 3 (async) over a connection pool."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from projecthaystack.filter import Filter, compile_filter
from projecthaystack.filter import Namespace as FilterNamespace
from projecthaystack.kinds import FrozenDict, Ref, Remove

from ._errors import PgStoreError
from ._filter import compile_sql, paths_of
from ._jsonb import decode_many, decode_tags, encode_tags
from ._schema import Names, migrate

__all__ = ["PgStore", "open_store"]

DEFAULT_SCHEMA: Final = "haystack"
_OUR_PARAMS: Final = ("schema", "pool_min", "pool_max")
_SMALL_BATCH: Final = 64  # up to this many rows go in one INSERT; more through COPY

Conn = psycopg.AsyncConnection[tuple[Any, ...]]


def _entity_id(record: Mapping[str, Any]) -> str:
    ref = record.get("id")
    if type(ref) is not Ref:
        raise ValueError("an entity needs a Ref 'id' tag")
    return ref.id


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without this store's own query parameters, and those parameters.

    >>> split_url("postgresql://u@h/db?schema=site1&sslmode=disable")
    ('postgresql://u@h/db?sslmode=disable', {'schema': 'site1'})
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r} (expected postgresql://...)")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_PARAMS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _OUR_PARAMS])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), ours


async def _configure(conn: Conn) -> None:
    # Filter queries are many small plans whose cost estimates can pass jit_above_cost;
    # compiling them takes seconds, running them milliseconds.
    await conn.execute("SET jit = off")


class PgStore:
    """A :class:`~projecthaystack.server.Store` in PostgreSQL, shared by every worker.

    ``conninfo`` is a libpq URL or keyword string; the store's tables live in
    ``schema`` (created on :meth:`open`, upgraded when an older version made it).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        min_size: int = 1,
        max_size: int = 8,
    ) -> None:
        if not schema or len(schema.encode()) > 63:
            raise ValueError("schema must be a name of 1 to 63 bytes")
        self.schema = schema
        self._names = n = Names(schema)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True},
            configure=_configure,
            name=f"haystack-{schema}",
        )
        self._entities = n("entities")
        # nextval() takes the sequence's name as text: psycopg quotes it (see open()).
        self._seq: sql.Composable = sql.SQL("NULL")
        self._sql_get = sql.SQL(
            "SELECT '[' || string_agg(coalesce(e.tags::text, 'null'), ',' ORDER BY u.ord) || ']'"
            " FROM unnest(%s::text[]) WITH ORDINALITY u(id, ord)"
            " LEFT JOIN {} e ON e.id = u.id"
        ).format(self._entities)
        self._sql_upsert = sql.SQL(
            "INSERT INTO {e} (id, seq, version, tags)"
            " SELECT id, n, n, tags FROM ("
            "  SELECT id, tags, nextval({s}) AS n FROM ("
            "   SELECT u.id, u.tags FROM {src} ORDER BY u.ord) o) v"
            " ORDER BY id"  # rows locked in id order: concurrent batches cannot deadlock
            " ON CONFLICT (id) DO UPDATE SET tags = EXCLUDED.tags, version = EXCLUDED.version"
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, then create or upgrade the schema."""
        await self._pool.open(wait=True)
        async with self._pool.connection() as conn:
            await migrate(conn, self._names)
            self._seq = sql.Literal(self._names("entity_seq").as_string(conn))

    async def close(self) -> None:
        """Close every connection."""
        await self._pool.close()

    # -- entities ------------------------------------------------------------------------
    async def get_entities(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The entities with these ids, in order, ``None`` where there is none."""
        if not ids:
            return []
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._sql_get, [list(ids)])
            row = await cur.fetchone()
        return decode_many(row[0]) if row and row[0] else [None] * len(ids)

    async def query(
        self,
        flt: Filter,
        *,
        limit: int | None = None,
        namespace: FilterNamespace | None = None,
    ) -> list[dict[str, Any]]:
        """The entities matching ``flt`` in insertion order: the filter runs in SQL
        (see ``_filter``), and only spec names are tested in Python, on the rows the
        rest of the filter leaves."""
        if limit is not None and limit <= 0:
            return []
        compiled = compile_sql(flt, self._entities)
        params = dict(compiled.params)
        cut = sql.SQL("")
        if compiled.exact and limit is not None:
            params["limit"] = limit
            cut = sql.SQL(" ORDER BY e.seq LIMIT %(limit)s")
        query = sql.SQL(
            "{}SELECT '[' || coalesce(string_agg(q.tags::text, ',' ORDER BY q.seq), '') || ']'"
            " FROM (SELECT e.tags, e.seq FROM {} e WHERE {}{}) q"
        ).format(compiled.with_clause(), self._entities, compiled.where, cut)
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
            found = decode_many(row[0]) if row else []
            if compiled.exact:
                return found
            resolver = None
            if paths_of(flt):
                everything = await self._all(conn)
                resolver = lambda ref: everything.get(ref.id)  # noqa: E731
        test = compile_filter(flt, resolver=resolver, namespace=namespace)
        out = [r for r in found if test(r)]
        return out if limit is None else out[:limit]

    async def _all(self, conn: Conn) -> dict[str, FrozenDict]:
        everything = sql.SQL(
            "SELECT '[' || coalesce(string_agg(tags::text, ','), '') || ']' FROM {}"
        )
        cur = await conn.execute(everything.format(self._entities))
        row = await cur.fetchone()
        return {r["id"].id: r for r in decode_many(row[0] if row else "[]")}

    async def count_entities(self) -> int:
        """How many entities there are."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._entities))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def put_entities(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace whole entities by id, all or none."""
        batch: dict[str, str] = {}
        for record in records:
            batch[_entity_id(record)] = encode_tags(record)
        if not batch:
            return
        async with self._pool.connection() as conn, conn.transaction():
            await self._upsert(conn, batch)

    async def _upsert(self, conn: Conn, batch: Mapping[str, str]) -> None:
        if len(batch) <= _SMALL_BATCH:
            src = sql.SQL("unnest(%s::text[], %s::jsonb[]) WITH ORDINALITY u(id, tags, ord)")
            await conn.execute(
                self._sql_upsert.format(e=self._entities, s=self._seq, src=src),
                [list(batch), list(batch.values())],
            )
            return
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS haystack_stage_entities"
            " (ord bigserial, id text, tags jsonb) ON COMMIT DELETE ROWS"
        )
        async with conn.cursor().copy("COPY haystack_stage_entities (id, tags) FROM STDIN") as copy:
            for item in batch.items():
                await copy.write_row(item)
        src = sql.SQL("haystack_stage_entities u")
        await conn.execute(self._sql_upsert.format(e=self._entities, s=self._seq, src=src))

    async def update_entity(self, id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` into an entity in one statement; ``Remove`` (or ``None``)
        deletes a tag, and the ``id`` itself never changes."""
        removed = [k for k, v in changes.items() if (v is Remove or v is None) and k != "id"]
        patch = {
            k: v for k, v in changes.items() if v is not Remove and v is not None and k != "id"
        }
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "UPDATE {} SET tags = (tags - %s::text[]) || %s::jsonb,"
                    " version = nextval({}) WHERE id = %s RETURNING tags::text"
                ).format(self._entities, self._seq),
                [removed, encode_tags(patch), id],
            )
            row = await cur.fetchone()
        return None if row is None else decode_tags(row[0])

    async def delete_entities(self, ids: Sequence[str]) -> int:
        """Remove entities (with their history and priority arrays); how many were."""
        if not ids:
            return 0
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._entities), [list(ids)]
            )
            return cur.rowcount

    async def entity_versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The current version of each existing entity among ``ids``."""
        if not ids:
            return {}
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("SELECT id, version FROM {} WHERE id = ANY(%s)").format(self._entities),
                [list(ids)],
            )
            return {r[0]: r[1] for r in await cur.fetchall()}


def open_store(url: str) -> PgStore:
    """A :class:`PgStore` for ``postgresql://user@host:port/dbname?schema=name``.

    ``schema`` (default ``haystack``), ``pool_min`` and ``pool_max`` are read here; every
    other parameter goes to libpq.  The store still needs ``await store.open()``.
    """
    conninfo, ours = split_url(url)
    try:
        pool_min = int(ours.get("pool_min", "1"))
        pool_max = int(ours.get("pool_max", "8"))
    except ValueError:
        raise PgStoreError("pool_min and pool_max must be whole numbers") from None
    return PgStore(
        conninfo,
        schema=ours.get("schema", DEFAULT_SCHEMA),
        min_size=pool_min,
        max_size=max(pool_max, pool_min),
    )
