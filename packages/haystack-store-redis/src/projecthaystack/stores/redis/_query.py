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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from projecthaystack.filter import And, Cmp, Filter, Has, IsSpec, Missing, Or, Path
from projecthaystack.kinds import Coord, MarkerType, NAType, Number, Ref, Symbol, Uri, XStr

from ._keys import encode_part

__all__ = ["Plan", "index_batch", "index_suffixes", "plan"]

Step = list[Any]
LeafIds = Callable[[Filter], Awaitable[list[str]]]


_SCALARS = frozenset(
    {MarkerType, NAType, str, bool, int, float, Number, Uri, Symbol, Coord, XStr}
    | {dt.date, dt.time, dt.datetime}
)
_NONE = type(None)
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


_REF, _REFS, _DICT = range(3)
_Key = tuple[tuple[str, ...], tuple[type, ...]]  # tag names, their values' types
_Known = dict[str, dict[str, str]]  # "r:" prefix -> Ref id -> its set's suffix


class _Shape:
    """What entities with the same tag names, in the same order, holding values of the
    same types, share: their ``t:`` sets, and where their Refs and Dicts are."""

    __slots__ = ("odd", "tags")

    def __init__(self, names: tuple[str, ...], types: tuple[type, ...]) -> None:
        self.tags: list[str] = []
        self.odd: list[tuple[int, int, str]] = []  # (position, what, "r:" prefix or "d:" set)
        for pos, (name, t) in enumerate(zip(names, types, strict=True)):
            if name == "id":
                continue  # every entity has an id: the universe answers ``id``
            tag, ref = _NAMES.get(name) or _name_parts(name)
            self.tags.append(tag)
            if t in _SCALARS:
                continue  # most tags: no Ref and no Dict inside (skips an ABC check)
            if t is Ref or t is list:
                self.odd.append((pos, _REF if t is Ref else _REFS, ref))
            elif issubclass(t, Mapping):
                self.odd.append((pos, _DICT, "d:" + tag[2:]))


_SHAPES: dict[_Key, _Shape] = {}
_SHAPES_KEPT = 10_000  # tag names are client input: the cache is bounded


def _shape_of(record: Mapping[str, Any]) -> tuple[Mapping[str, Any], _Shape]:
    """``record`` without its null tags (a null tag is no tag), and its shape."""
    types = tuple(map(type, record.values()))
    if _NONE in types:
        record = {k: v for k, v in record.items() if v is not None}
        types = tuple(map(type, record.values()))
    key = (tuple(record), types)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _SHAPES_KEPT:
            _SHAPES.clear()
        shape = _SHAPES[key] = _Shape(*key)
    return record, shape


def _suffixes(record: Mapping[str, Any], shape: _Shape, known: _Known) -> list[str]:
    """The sets of ``record`` (of ``shape``): the shape's ``t:`` sets, then the ``r:``
    and ``d:`` sets of its values.  ``known`` keeps each Ref's suffix for the next
    entity that holds it."""
    own = list(shape.tags)
    if not shape.odd:
        return own
    values = tuple(record.values())
    for pos, what, part in shape.odd:
        if what == _DICT:
            own.append(part)
            continue
        val, seen = values[pos], known.setdefault(part, {})
        start = len(own)
        for ref in (val,) if what == _REF else val:
            if type(ref) is Ref:
                suffix = seen.get(ref.id) or seen.setdefault(ref.id, part + encode_part(ref.id))
                if what == _REF or suffix not in own[start:]:  # a Ref listed twice: once
                    own.append(suffix)
    return own


def index_suffixes(record: Mapping[str, Any]) -> list[str]:
    """The index sets (as key suffixes) an entity belongs to: a ``t:`` set per tag, then
    an ``r:`` set per Ref it holds and a ``d:`` set per Dict.

    >>> index_suffixes({"id": Ref("p"), "siteRef": Ref("s:1"), "a": {}})
    ['t:siteRef', 't:a', 'r:siteRef:s%3A1', 'd:a']
    """
    return _suffixes(*_shape_of(record), {})


def index_batch(
    ids: Sequence[str], records: Sequence[Mapping[str, Any]]
) -> tuple[list[list[str]], dict[str, list[str]]]:
    """Each entity's index suffixes (as :func:`index_suffixes`), and every set the batch
    fills with the ids that go in it; ``ids`` are distinct.

    Entities of one shape share the work: a building has a few hundred shapes for
    thousands of entities, so each entity costs a dictionary look-up plus its Refs,
    not a step per tag, and each Ref target's set is named once per batch.

    >>> batch = [{"dis": "A"}, {"dis": "B", "x": None, "siteRef": Ref("s")}]
    >>> suffixes, sets = index_batch(["a", "b"], batch)
    >>> suffixes
    [['t:dis'], ['t:dis', 't:siteRef', 'r:siteRef:s']]
    >>> sets
    {'r:siteRef:s': ['b'], 't:dis': ['a', 'b'], 't:siteRef': ['b']}
    """
    known: _Known = {}
    by_shape: dict[_Shape, list[str]] = {}
    suffixes: list[list[str]] = []
    sets: dict[str, list[str]] = {}
    for id, given in zip(ids, records, strict=True):
        record, shape = _shape_of(given)
        own = _suffixes(record, shape, known)
        suffixes.append(own)
        members = by_shape.get(shape)
        if members is None:
            by_shape[shape] = [id]
        else:
            members.append(id)
        for k in own[len(shape.tags) :]:  # the shape's t: sets are filled below, at once
            got = sets.get(k)
            if got is None:
                sets[k] = [id]
            else:
                got.append(id)
    for shape, members in by_shape.items():
        for k in shape.tags:
            got = sets.get(k)
            if got is None:
                sets[k] = list(members)
            else:
                got.extend(members)
    return suffixes, sets


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
