"""Filter pushdown: a filter becomes a plan of set operations that Redis runs, plus what
is left for Python to test on the (narrowed) candidates.

Indexes (see ``_keys``): a set per tag name (``t:``), a set per Ref-valued tag and target
(``r:``, which also answers ``siteRef == @s``), and a set of the entities holding a tag
as a Dict (``d:``).  A plan is a list of steps for the ``QUERY`` script's stack:

``["k", suffix]``     push an index set
``["u"]``             push every entity
``["ids", id...]``    push these ids
``["and", n]``        intersect the top n
``["or", n]``         unite the top n
``["not"]``           every entity not in the top set
``["via", name]``     the entities whose tag ``name`` refers to a member of the top set

A path ``equipRef->siteRef->geoCity == "Oakland"`` runs from its end: the entities that
match ``geoCity == "Oakland"`` (found first), then those whose ``siteRef`` refers to one,
then those whose ``equipRef`` refers to one of those.  Only the end of a path that no
index answers is tested in Python, on the entities holding that tag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from projecthaystack.filter import And, Cmp, Filter, Has, IsSpec, Missing, Or, Path
from projecthaystack.kinds import Coord, MarkerType, NAType, Number, Ref, Symbol, Uri, XStr

from ._keys import encode_part

__all__ = ["Plan", "index_suffixes", "plan"]

Step = list[Any]
LeafIds = Callable[[Filter], Awaitable[list[str]]]


_SCALARS = frozenset(
    {MarkerType, NAType, str, bool, int, float, Number, Uri, Symbol, Coord, XStr}
    | {dt.date, dt.time, dt.datetime}
)
_NAMES: dict[str, tuple[str, str]] = {}  # tag name -> its "t:" suffix and "r:" prefix
_NAMES_KEPT = 10_000  # names are client input: the cache is bounded


def _name_parts(name: str) -> tuple[str, str]:
    parts = _NAMES.get(name)
    if parts is None:
        if len(_NAMES) >= _NAMES_KEPT:
            _NAMES.clear()
        n = encode_part(name)
        parts = _NAMES[name] = ("t:" + n, "r:" + n + ":")
    return parts


def index_suffixes(record: Mapping[str, Any]) -> list[str]:
    """The index sets (as key suffixes) an entity belongs to.

    >>> index_suffixes({"id": Ref("p"), "siteRef": Ref("s:1"), "a": {}})
    ['t:siteRef', 'r:siteRef:s%3A1', 't:a', 'd:a']
    """
    out: list[str] = []
    for name, val in record.items():
        if val is None or name == "id":
            continue  # every entity has an id: the universe answers ``id``
        tag, ref = _NAMES.get(name) or _name_parts(name)
        out.append(tag)
        t = type(val)
        if t in _SCALARS:
            continue  # most tags: no Ref and no Dict inside (skips an ABC isinstance)
        if t is Ref:
            out.append(ref + encode_part(val.id))
        elif t is list:
            seen = set()
            for item in val:
                if type(item) is Ref and item.id not in seen:
                    seen.add(item.id)
                    out.append(ref + encode_part(item.id))
        elif isinstance(val, Mapping):
            out.append("d:" + tag[2:])
    return out


@dataclass
class Plan:
    """Steps for Redis; ``exact`` when the result needs no test in Python, else
    ``residual`` is the test for each candidate."""

    steps: list[Step]
    exact: bool
    residual: Filter | None


async def plan(node: Filter, leaf_ids: LeafIds) -> Plan:
    """The plan for ``node``.  ``leaf_ids`` finds the ids matching a one-tag filter
    that no index answers (the end of a path), by testing its candidates in Python."""
    steps: list[Step] = []
    exact, residual = await _emit(node, steps, leaf_ids)
    return Plan(steps, exact, residual)


async def _emit(node: Filter, steps: list[Step], leaf_ids: LeafIds) -> tuple[bool, Filter | None]:
    """Append the steps for ``node``; whether they are exact, and what is left to test."""
    if isinstance(node, Has):
        if len(node.path.names) == 1:
            _has(node.path.names[0], steps)
            return True, None
        await _path(node.path, Has(Path(node.path.names[-1:])), steps, leaf_ids)
        return True, None
    if isinstance(node, Missing):
        await _emit(Has(node.path), steps, leaf_ids)
        steps.append(["not"])
        return True, None
    if isinstance(node, Cmp):
        names = node.path.names
        leaf = Cmp(Path(names[-1:]), node.op, node.value)
        if len(names) > 1:
            await _path(node.path, leaf, steps, leaf_ids)
            return True, None
        if _exact_cmp(leaf, steps):
            return True, None
        _has(names[0], steps)
        return False, node
    if isinstance(node, And | Or):
        results = [await _emit(op, steps, leaf_ids) for op in node.operands]
        steps.append(["and" if isinstance(node, And) else "or", len(node.operands)])
        if all(ok for ok, _ in results):
            return True, None
        if isinstance(node, Or):
            return False, node
        rest = [r for ok, r in results if not ok and r is not None]
        return False, rest[0] if len(rest) == 1 else And(tuple(rest))
    if isinstance(node, IsSpec):
        steps.append(["u"])
        return False, node
    raise TypeError(f"not a filter node: {node!r}")


def _has(name: str, steps: list[Step]) -> None:
    steps.append(["u"] if name == "id" else ["k", "t:" + encode_part(name)])


def _exact_cmp(node: Cmp, steps: list[Step]) -> bool:
    """Steps for a one-tag comparison that an index answers exactly; False if none does."""
    name = node.path.names[0]
    if node.op != "==" or type(node.value) is not Ref:
        return False
    if name == "id":
        steps.append(["ids", node.value.id])
        steps.append(["u"])
        steps.append(["and", 2])
    else:
        steps.append(["k", f"r:{encode_part(name)}:{encode_part(node.value.id)}"])
    return True


async def _path(path: Path, leaf: Filter, steps: list[Step], leaf_ids: LeafIds) -> None:
    """Steps for the entities whose path ``path`` ends in a value matching ``leaf``."""
    if isinstance(leaf, Has):
        _has(path.names[-1], steps)
    elif not (isinstance(leaf, Cmp) and _exact_cmp(leaf, steps)):
        steps.append(["ids", *await leaf_ids(leaf)])
    for name in reversed(path.names[:-1]):
        steps.append(["via", encode_part(name)])
