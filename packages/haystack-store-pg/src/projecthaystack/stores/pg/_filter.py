"""Filters compiled to SQL over the entities table, with Haystack's semantics.

Entities are JSONB in the Haystack JSON v4 form (see ``_jsonb``), so every kind is
recognisable in SQL: a JSON string is a Str, a JSON number a unitless Number, an object
with ``_kind`` a Number with unit, Ref, Uri, Symbol, Date, Time or DateTime, and an object
without ``_kind`` a Dict.  Each node of the grammar becomes SQL that holds exactly where
:func:`projecthaystack.filter.compile_filter` holds:

* ``name`` / ``not name``: ``tags ? name`` (the GIN index answers it);
* ``==`` on everything but DateTimes is JSONB containment of the encoded literal
  (``tags @> {"curVal": {"_kind": "number", "val": 72, "unit": "°F"}}``), which the GIN
  index answers too; a Ref or Symbol literal also matches a list holding it;
* ``!=`` is "present and not ``==``" (for Refs and Symbols: a Ref, or a Ref of a list,
  with another id);
* ``<`` ... ``>=`` hold only within one kind: Numbers of the same unit as ``float8``
  (NaN never), Strs, Uris, Refs, Symbols, Dates and Times as text in code point order
  (``COLLATE "C"``; dates and times are kept in a canonical ISO text, whose order is
  theirs), Bools as booleans, DateTimes as instants;
* ``a->b->c`` paths: each step follows a Ref (a lookup by id), goes into a Dict, or fans
  out over the Refs of a list.  For each suffix of a path, a CTE holds the ids of the
  entities the suffix matches from, so the query planner joins by hashing ids
  (``equipRef->siteRef->geoCity == "Hugo"`` costs two scans, not a lookup per row).

Spec names (``Meter``, ``ph::Meter``) never reach a store: the server rewrites them into
tags first, and a spec name here raises :class:`~projecthaystack.filter.FilterError`.
So nothing of a filter is left to test in Python.

Casts that could fail on a value of another kind (``::float8``, ``::timestamptz``,
``::boolean``) sit inside ``CASE`` branches, because PostgreSQL does not promise to
evaluate the operands of ``AND`` in order.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import sql

from projecthaystack.filter import And, Cmp, Filter, FilterError, Has, IsSpec, Missing, Or
from projecthaystack.kinds import Number, Ref, Symbol, Uri

from ._jsonb import encode_value, escape

__all__ = ["CompiledFilter", "compile_sql"]

_OPS: Final = {
    "==": sql.SQL("="),
    "!=": sql.SQL("<>"),
    "<": sql.SQL("<"),
    "<=": sql.SQL("<="),
    ">": sql.SQL(">"),
    ">=": sql.SQL(">="),
}


@dataclass
class CompiledFilter:
    """A filter as SQL: ``where`` is a boolean over the entity alias ``e`` (columns
    ``e.id``, ``e.tags``), after the ``ctes``; ``params`` fill its named placeholders."""

    where: sql.Composable
    ctes: list[sql.Composable] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def with_clause(self) -> sql.Composable:
        """``WITH ...`` for the CTEs, or nothing."""
        if not self.ctes:
            return sql.SQL("")
        return sql.SQL("WITH {} ").format(sql.SQL(", ").join(self.ctes))


class _Compiler:
    def __init__(self, entities: sql.Composable) -> None:
        self.entities = entities
        self.params: dict[str, Any] = {}
        self.ctes: list[sql.Composable] = []
        self.cte_names: dict[tuple[Filter, int], sql.Identifier] = {}
        self.aliases = 0

    # -- helpers ---------------------------------------------------------------------
    def param(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"p{len(self.params)}"
        self.params[name] = value
        holder = sql.Placeholder(name)
        if cast is None:
            return holder
        return sql.SQL("{}::{}").format(holder, sql.SQL(cast))

    def alias(self) -> sql.Identifier:
        self.aliases += 1
        return sql.Identifier(f"t{self.aliases}")

    def contains(self, x: sql.Composable, name: str, encoded: str) -> sql.Composable:
        text = '{"' + name + '":' + encoded + "}"  # tag names need no JSON escaping
        return sql.SQL("({} @> {})").format(x, self.param(text, "jsonb"))

    def has(self, x: sql.Composable, name: str) -> sql.Composable:
        return sql.SQL("({} ? {})").format(x, self.param(name))

    # -- the grammar -------------------------------------------------------------------
    def node(self, node: Filter, top: bool) -> sql.Composable:
        """SQL true exactly where ``node`` holds."""
        x = sql.SQL("e.tags")
        if type(node) is Has:
            return self.path(x, node, 0, top)
        if type(node) is Missing:
            found = self.path(x, node, 0, top)
            if len(node.path.names) > 1:
                found = sql.SQL("COALESCE({}, false)").format(found)
            return sql.SQL("(NOT {})").format(found)
        if type(node) is Cmp:
            return self.path(x, node, 0, top)
        if type(node) is And or type(node) is Or:
            joiner = sql.SQL(" AND " if type(node) is And else " OR ")
            return sql.SQL("({})").format(joiner.join([self.node(op, top) for op in node.operands]))
        if type(node) is IsSpec:
            raise FilterError(
                f"spec name {str(node)!r} in a store query: the server rewrites spec names"
                " into tags before a store sees the filter"
            )
        raise TypeError(f"not a filter node: {node!r}")

    def path(
        self, x: sql.Composable, node: Has | Missing | Cmp, at: int, top: bool
    ) -> sql.Composable:
        """SQL for the path of ``node`` from its ``at``-th name, read from the JSONB ``x``."""
        names = node.path.names
        name = names[at]
        if at == len(names) - 1:
            if type(node) is Cmp:
                return self.cmp(x, name, node, top and at == 0)
            return self.has(x, name)
        v = sql.SQL("({} -> {})").format(x, self.param(name))
        matched = self.matched_ids(node, at + 1)
        into_dict = self.path(v, node, at + 1, False)
        return sql.SQL(
            "(({v} ->> '_kind') = 'ref' AND ({v} ->> 'val') IN (SELECT id FROM {m})"
            " OR CASE jsonb_typeof({v})"
            " WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({v}) el"
            " WHERE (el ->> '_kind') = 'ref' AND (el ->> 'val') IN (SELECT id FROM {m}))"
            " WHEN 'object' THEN NOT ({v} ? '_kind') AND COALESCE({d}, false)"
            " ELSE false END)"
        ).format(v=v, m=matched, d=into_dict)

    def matched_ids(self, node: Has | Missing | Cmp, at: int) -> sql.Identifier:
        """A CTE of the ids of the entities from which the path of ``node`` matches,
        starting at its ``at``-th name."""
        key = (node, at)
        found = self.cte_names.get(key)
        if found is not None:
            return found
        t = self.alias()
        cond = self.path(sql.SQL("{}.tags").format(t), node, at, False)
        name = sql.Identifier(f"m{len(self.ctes)}")
        self.ctes.append(
            sql.SQL("{} AS (SELECT {t}.id FROM {} {t} WHERE {})").format(
                name, self.entities, cond, t=t
            )
        )
        self.cte_names[key] = name
        return name

    # -- comparisons -------------------------------------------------------------------
    def cmp(self, x: sql.Composable, name: str, node: Cmp, top: bool) -> sql.Composable:
        op, lit = node.op, node.value
        v = sql.SQL("({} -> {})").format(x, self.param(name))
        if type(lit) is Ref or type(lit) is Symbol:
            kind, val = ("ref", lit.id) if isinstance(lit, Ref) else ("symbol", lit.val)
            if op == "==":
                if top and name == "id" and kind == "ref":
                    return sql.SQL("(e.id = {})").format(self.param(val))
                one = '{"_kind":"' + kind + '","val":' + encode_value(val) + "}"
                return sql.SQL("({} OR {})").format(
                    self.contains(x, name, one), self.contains(x, name, "[" + one + "]")
                )
            k, s = self.param(kind), self.param(escape(val))
            return sql.SQL(
                "CASE jsonb_typeof({v})"
                " WHEN 'object' THEN ({v} ->> '_kind') = {k}"
                " AND ({v} ->> 'val') COLLATE \"C\" {op} {s}"
                " WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({v}) el"
                " WHERE (el ->> '_kind') = {k} AND (el ->> 'val') COLLATE \"C\" {op} {s})"
                " ELSE false END"
            ).format(v=v, k=k, s=s, op=_OPS[op])
        if type(lit) is dt.datetime:
            test = sql.SQL(
                "CASE WHEN ({v} ->> '_kind') = 'dateTime'"
                " THEN ({v} ->> 'val')::timestamptz {op} {p} ELSE false END"
            )
            if op == "!=":
                same = test.format(v=v, op=_OPS["=="], p=self.param(lit))
                return sql.SQL("({} AND NOT {})").format(self.has(x, name), same)
            return test.format(v=v, op=_OPS[op], p=self.param(lit))
        if op == "==":
            return self.contains(x, name, encode_value(lit))
        if op == "!=":
            return sql.SQL("({} AND NOT {})").format(
                self.has(x, name), self.contains(x, name, encode_value(lit))
            )
        return self.order(v, op, lit)

    def order(self, v: sql.Composable, op: str, lit: Any) -> sql.Composable:
        """``v op lit`` for ``<``, ``<=``, ``>``, ``>=``: only within the literal's kind."""
        o = _OPS[op]
        if type(lit) is Number:
            p = self.param(lit.val)
            if lit.unit is None:
                return sql.SQL(
                    "CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::float8 {o} {p}"
                    " WHEN ({v} ->> '_kind') = 'number' AND NOT ({v} ? 'unit')"
                    " AND ({v} ->> 'val') <> 'NaN' THEN ({v} ->> 'val')::float8 {o} {p}"
                    " ELSE false END"
                ).format(v=v, o=o, p=p)
            return sql.SQL(
                "CASE WHEN ({v} ->> '_kind') = 'number' AND ({v} ->> 'unit') = {u}"
                " AND ({v} ->> 'val') <> 'NaN' THEN ({v} ->> 'val')::float8 {o} {p}"
                " ELSE false END"
            ).format(v=v, o=o, p=p, u=self.param(lit.unit))
        if type(lit) is bool:
            return sql.SQL(
                "CASE WHEN jsonb_typeof({v}) = 'boolean' THEN ({v})::boolean {o} {p} ELSE false END"
            ).format(v=v, o=o, p=self.param(lit))
        if type(lit) is str:
            return sql.SQL(
                "(jsonb_typeof({v}) = 'string' AND ({v} #>> '{{}}') COLLATE \"C\" {o} {p})"
            ).format(v=v, o=o, p=self.param(escape(lit)))
        kind, text = _text_kind(lit)
        return sql.SQL(
            "(({v} ->> '_kind') = {k} AND ({v} ->> 'val') COLLATE \"C\" {o} {p})"
        ).format(v=v, o=o, k=self.param(kind), p=self.param(text))  # escaped already


def _text_kind(lit: Any) -> tuple[str, str]:
    """The ``_kind`` and ``val`` text of a Uri, Date or Time literal, exactly as the
    entities' encoder writes them (so that equal values have equal text)."""
    if type(lit) not in (Uri, dt.date, dt.time):  # pragma: no cover - Cmp checks kinds
        raise TypeError(f"a filter cannot compare with {type(lit).__name__}")
    obj = json.loads(encode_value(lit))
    return obj["_kind"], obj["val"]


def compile_sql(flt: Filter, entities: sql.Composable) -> CompiledFilter:
    """Compile ``flt`` to SQL over the table ``entities`` (aliased ``e``).

    >>> from psycopg import sql
    >>> from projecthaystack.filter import parse
    >>> c = compile_sql(parse("point and curVal > 70°F"), sql.Identifier("entities"))
    >>> sorted(c.params)
    ['p0', 'p1', 'p2', 'p3']
    """
    comp = _Compiler(entities)
    where = comp.node(flt, True)
    return CompiledFilter(where, comp.ctes, comp.params)
