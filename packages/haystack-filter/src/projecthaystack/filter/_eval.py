"""Evaluating filters: predicates, one-off matches and selections over records or grids."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from projecthaystack.kinds import Grid, Ref

from ._ast import Filter
from ._compile import Namespace, Predicate, Resolver, Selector, compiled
from ._parser import parse

__all__ = ["compile_filter", "index_by_id", "matches", "select"]

R = TypeVar("R", bound=Mapping[str, Any])


def _compiled(
    node: Filter | str, resolver: Resolver | None, namespace: Namespace | None
) -> tuple[Predicate, Selector]:
    if isinstance(node, str):
        node = parse(node)
    return compiled(node, resolver, namespace)


def compile_filter(
    node: Filter | str,
    *,
    resolver: Resolver | None = None,
    namespace: Namespace | None = None,
) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for the filter, compiled to Python once and cached.

    ``resolver`` looks up the target of a Ref for ``->`` paths (without one, paths through
    Refs match nothing; paths into nested dicts still work); ``namespace`` answers spec
    names.

    >>> from projecthaystack.kinds import Marker, Number
    >>> hot = compile_filter("point and curVal > 75°F")
    >>> hot({"point": Marker, "curVal": Number(80, "°F")})
    True
    >>> hot({"point": Marker, "curVal": Number(80)})
    False
    """
    return _compiled(node, resolver, namespace)[0]


def matches(
    node: Filter | str,
    record: Mapping[str, Any],
    *,
    resolver: Resolver | None = None,
    namespace: Namespace | None = None,
) -> bool:
    """Whether one record matches the filter.

    >>> from projecthaystack.kinds import Marker
    >>> matches("site and not equip", {"site": Marker})
    True
    """
    return _compiled(node, resolver, namespace)[0](record)


def index_by_id(records: Iterable[Mapping[str, Any]]) -> Resolver:
    """A resolver over the records themselves, by their ``id`` tag."""
    by_id = {rec["id"].id: rec for rec in records if type(rec.get("id")) is Ref}
    return lambda ref: by_id.get(ref.id)


@overload
def select(
    node: Filter | str,
    records: Grid,
    *,
    resolver: Resolver | None = ...,
    namespace: Namespace | None = ...,
    limit: int | None = ...,
) -> Grid: ...
@overload
def select(
    node: Filter | str,
    records: Sequence[R],
    *,
    resolver: Resolver | None = ...,
    namespace: Namespace | None = ...,
    limit: int | None = ...,
) -> list[R]: ...
def select(
    node: Filter | str,
    records: Grid | Sequence[R],
    *,
    resolver: Resolver | None = None,
    namespace: Namespace | None = None,
    limit: int | None = None,
) -> Grid | list[R]:
    """The records that match, in order: a list from a list, a grid from a grid.

    Paths through Refs are resolved within ``records`` unless a ``resolver`` is given.

    >>> from projecthaystack.kinds import Marker, Ref
    >>> recs = [{"id": Ref("s"), "site": Marker, "geoCity": "Hugo"},
    ...         {"id": Ref("e"), "equip": Marker, "siteRef": Ref("s")}]
    >>> [r["id"] for r in select('equip and siteRef->geoCity == "Hugo"', recs)]
    [Ref(id='e')]
    """
    rows: Sequence[Any] = records.rows if isinstance(records, Grid) else records
    if isinstance(node, str):
        node = parse(node)
    if resolver is None and any(len(p.names) > 1 for p in node.paths()):
        resolver = index_by_id(rows)
    picked = _compiled(node, resolver, namespace)[1](rows)
    if limit is not None:
        picked = picked[: max(limit, 0)]
    if isinstance(records, Grid):
        return Grid.unchecked(records.meta, records.cols, tuple(picked))
    return picked
