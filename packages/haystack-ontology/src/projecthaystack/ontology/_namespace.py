"""The namespace: effective defs by symbol, and the questions the ontology answers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from projecthaystack.filter import Filter, select
from projecthaystack.kinds import FrozenDict, Grid, Marker, Ref, Symbol

from ._errors import NamespaceError
from ._libs import Lib, load_lib
from ._normalize import KIND_TYPES, normalize

__all__ = ["Namespace", "Reflection"]

Resolver = Callable[[Ref], Mapping[str, Any] | None]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _syms(value: Any) -> tuple[str, ...]:
    if isinstance(value, Symbol):
        return (value.val,)
    if isinstance(value, list | tuple):
        return tuple(v.val for v in value if isinstance(v, Symbol))
    return ()


def _refs(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Ref)]
    return []


class Reflection:
    """The defs a dict implements (see :meth:`Namespace.reflect`)."""

    __slots__ = ("_all", "_ns", "declared", "record")

    def __init__(self, ns: Namespace, record: Mapping[str, Any], declared: tuple[str, ...]) -> None:
        self._ns = ns
        self.record = record
        self.declared = declared
        """The defs found from the dict's own tags and conjuncts (steps 1 and 2)."""
        found: dict[str, None] = {}
        for sym in declared:
            found.update(dict.fromkeys(ns.inheritance(sym)))
        self._all = tuple(found)

    @property
    def defs(self) -> tuple[str, ...]:
        """Every def implemented, inheritance included (step 3), as symbol names."""
        return self._all

    def fits(self, symbol: str) -> bool:
        """Whether the dict implements ``symbol`` (directly or by inheritance)."""
        return symbol in self._all

    def entity_types(self) -> tuple[str, ...]:
        """The most specific entity defs the dict implements (``ahu`` rather than ``equip``)."""
        ns = self._ns
        entities = [s for s in self.declared if ns.fits(s, "entity") and s != "entity"]
        return tuple(s for s in entities if not any(o != s and ns.fits(o, s) for o in entities))

    def __repr__(self) -> str:
        return f"<Reflection {list(self.declared)!r}>"


class Namespace:
    """A set of libs compiled to effective defs, with taxonomy, reflection and queries.

    Build one from lib sources (``Namespace.load(paths)``), from :class:`Lib` objects, or
    from already-normalized defs such as a server's ``defs`` response
    (``Namespace.from_defs(grid)``).
    """

    def __init__(self, defs: Mapping[str, FrozenDict]) -> None:
        self._defs = dict(defs)
        self._supers: dict[str, tuple[str, ...]] = {
            sym: _syms(d.get("is")) for sym, d in self._defs.items()
        }
        subs: dict[str, list[str]] = {}
        for sym, sups in self._supers.items():
            for sup in sups:
                subs.setdefault(sup, []).append(sym)
        self._subs = {k: tuple(sorted(v)) for k, v in subs.items()}
        self._conjuncts: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for sym in self._defs:
            if "-" in sym and ":" not in sym:
                parts = tuple(sym.split("-"))
                self._conjuncts.setdefault(parts[0], []).append((sym, parts))
        self._inheritance: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def from_libs(cls, libs: Iterable[Lib]) -> Namespace:
        """Normalize the libs; ``NamespaceError`` lists every problem found."""
        return cls(normalize(libs))

    @classmethod
    def load(cls, *sources: str | Path) -> Namespace:
        """Load libs from directories, lib zips or Trio files, and normalize them.

        A directory that holds no Trio files of its own but subdirectories that do is
        taken as a folder of libs (like the standard ``defs/`` folder).
        """
        libs: list[Lib] = []
        for source in sources:
            path = Path(source)
            if path.is_dir() and not any(path.glob("*.trio")):
                libs.extend(load_lib(p) for p in sorted(path.iterdir()) if p.is_dir())
            else:
                libs.append(load_lib(path))
        return cls.from_libs(libs)

    @classmethod
    def from_defs(cls, defs: Grid | Iterable[Mapping[str, Any]]) -> Namespace:
        """A namespace from effective defs as a server's ``defs`` op returns them."""
        out: dict[str, FrozenDict] = {}
        rows = defs.rows if isinstance(defs, Grid) else defs
        for row in rows:
            sym = row.get("def")
            if not isinstance(sym, Symbol):
                raise NamespaceError([f"a def row has no 'def' symbol: {dict(row)!r:.80}"])
            out[sym.val] = row if isinstance(row, FrozenDict) else FrozenDict(row)
        return cls(out)

    # ------------------------------------------------------------------ defs

    def __contains__(self, symbol: object) -> bool:
        return _name(symbol) in self._defs if isinstance(symbol, str | Symbol) else False

    def __getitem__(self, symbol: str | Symbol) -> FrozenDict:
        return self._defs[_name(symbol)]

    def __len__(self) -> int:
        return len(self._defs)

    def get(self, symbol: str | Symbol) -> FrozenDict | None:
        """The effective def, or ``None``."""
        return self._defs.get(_name(symbol))

    def symbols(self) -> list[str]:
        """Every def's symbol, sorted."""
        return sorted(self._defs)

    def defs(self) -> list[FrozenDict]:
        """Every effective def, sorted by symbol."""
        return [self._defs[s] for s in self.symbols()]

    def libs(self) -> list[FrozenDict]:
        """The lib defs (``lib:ph``, ...), sorted."""
        return [self._defs[s] for s in self.symbols() if s.startswith("lib:")]

    # ------------------------------------------------------------------ taxonomy

    def supertypes(self, symbol: str | Symbol) -> tuple[str, ...]:
        """The direct supertypes (the normalized ``is``)."""
        return self._supers.get(_name(symbol), ())

    def subtypes(self, symbol: str | Symbol) -> tuple[str, ...]:
        """The direct subtypes, sorted."""
        return self._subs.get(_name(symbol), ())

    def all_subtypes(self, symbol: str | Symbol) -> list[str]:
        """Every subtype, transitively, sorted."""
        out: set[str] = set()
        todo = list(self.subtypes(symbol))
        while todo:
            s = todo.pop()
            if s not in out:
                out.add(s)
                todo.extend(self._subs.get(s, ()))
        return sorted(out)

    def inheritance(self, symbol: str | Symbol) -> tuple[str, ...]:
        """The def and all its supertypes, nearest first."""
        sym = _name(symbol)
        hit = self._inheritance.get(sym)
        if hit is None:
            seen: dict[str, None] = {}
            todo = [sym]
            while todo:
                s = todo.pop(0)
                if s not in seen:
                    seen[s] = None
                    todo.extend(self._supers.get(s, ()))
            hit = self._inheritance[sym] = tuple(seen)
        return hit

    def fits(self, symbol: str | Symbol, base: str | Symbol) -> bool:
        """Whether ``symbol`` is ``base`` or one of its subtypes.

        >>> ns.fits("ahu", "equip"), ns.fits("water", "fluid"), ns.fits("site", "equip")
        (True, True, False)
        """
        return _name(base) in self.inheritance(symbol)

    def is_marker(self, symbol: str | Symbol) -> bool:
        """Whether the def is a marker."""
        return self.fits(symbol, "marker")

    def kind(self, symbol: str | Symbol) -> str | None:
        """The value kind of a tag def (``marker``, ``str``, ``ref``, ...), if any."""
        for s in self.inheritance(symbol):
            if s in KIND_TYPES:
                return s
        return None

    # ------------------------------------------------------------------ associations

    def associations(self, symbol: str | Symbol, association: str | Symbol) -> list[str]:
        """The symbols a def is associated with by ``association`` (``is``, ``tagOn``, ...).

        Associations computed from a reciprocal (``tags`` from ``tagOn``) are computed.

        >>> "tz" in ns.associations("site", "tags")
        True
        """
        sym, assoc = _name(symbol), _name(association)
        adef = self._defs.get(assoc)
        if adef is not None and adef.get("computedFromReciprocal") is Marker:
            recip = _syms(adef.get("reciprocalOf"))
            if recip:
                r = recip[0]
                return sorted(s for s, d in self._defs.items() if sym in _syms(d.get(r)))
        d = self._defs.get(sym)
        return list(_syms(d.get(assoc))) if d is not None else []

    def tags_on(self, symbol: str | Symbol) -> list[str]:
        """The tag defs meant for an entity type, inherited ones included (``tagOn``)."""
        types = set(self.inheritance(symbol))
        return sorted(s for s, d in self._defs.items() if types.intersection(_syms(d.get("tagOn"))))

    def choices(self, symbol: str | Symbol) -> list[str]:
        """The choices that apply to an entity type (``pointFunction`` for ``point``)."""
        return [s for s in self.tags_on(symbol) if self.fits(s, "choice") and s != "choice"]

    def choice_options(self, choice: str | Symbol) -> list[str]:
        """The options of a choice: the subtypes of its ``of``, else its own subtypes.

        >>> ns.choice_options("pointFunction")[:3]
        ['cmd', 'sensor', 'sp']
        """
        d = self[choice]
        of = _syms(d.get("of"))
        if of:
            return self.all_subtypes(of[0])
        return list(self.subtypes(choice))

    # ------------------------------------------------------------------ reflection

    def reflect(self, record: Mapping[str, Any]) -> Reflection:
        """The defs a dict implements: its tags' defs, the conjuncts all of whose tags it
        has, and (in ``Reflection.defs``) everything those inherit.

        >>> r = ns.reflect({"id": Ref("hwp"), "hot": Marker, "water": Marker,
        ...                 "plant": Marker, "equip": Marker})
        >>> "hot-water-plant" in r.declared, r.fits("entity"), r.entity_types()
        (True, True, ('hot-water-plant',))
        """
        found: list[str] = []
        for tag, value in record.items():
            if value is None:
                continue
            d = self._defs.get(tag)
            if d is not None and "-" not in tag:
                found.append(tag)
            for sym, parts in self._conjuncts.get(tag, ()):
                if all(record.get(p) is not None for p in parts):
                    found.append(sym)
        return Reflection(self, record, tuple(dict.fromkeys(found)))

    def fits_record(self, record: Mapping[str, Any], symbol: str | Symbol) -> bool:
        """Whether a dict implements the def (by reflection)."""
        return self.reflect(record).fits(_name(symbol))

    def implement(self, symbol: str | Symbol) -> FrozenDict:
        """The tags a dict needs to implement the def: its own tag or conjunct tags, and
        every ``mandatory`` supertype.

        >>> sorted(ns.implement("rtu"))
        ['ahu', 'equip', 'rtu']
        """
        sym = _name(symbol)
        if ":" in sym:
            raise NamespaceError([f"^{sym} is a feature key; keys are never implemented"])
        tags = dict.fromkeys(sym.split("-"), Marker)
        for s in self.inheritance(sym)[1:]:
            d = self._defs.get(s)
            if d is not None and d.get("mandatory") is Marker:
                tags.update(dict.fromkeys(s.split("-"), Marker))
        return FrozenDict(tags)

    def protos(self, parent: Mapping[str, Any]) -> list[FrozenDict]:
        """The child prototypes of an entity (its defs' ``children``), with the parent's
        ``childrenFlatten`` terms copied into each child.

        >>> children = ns.protos({"hot": Marker, "water": Marker, "pipe": Marker, "equip": Marker})
        >>> sorted(children[0])
        ['equip', 'hot', 'motor', 'pump', 'water']
        """
        reflection = self.reflect(parent)
        children: list[Mapping[str, Any]] = []
        flatten: list[str] = []
        for sym in reflection.entity_types():
            d = self._defs[sym]
            children.extend(c for c in d.get("children", []) if isinstance(c, Mapping))
            flatten.extend(_syms(d.get("childrenFlatten")))
        extra: dict[str, Any] = {}
        for base in dict.fromkeys(flatten):
            for sym in reflection.declared:
                if sym != base and self.fits(sym, base):
                    extra.update(self.implement(sym))
        out: list[FrozenDict] = []
        seen: set[frozenset[str]] = set()
        for child in children:
            merged = {**extra, **child}
            key = frozenset(merged)
            if key not in seen:
                seen.add(key)
                out.append(FrozenDict(merged))
        return out

    # ------------------------------------------------------------------ relationships

    def related(
        self,
        record: Mapping[str, Any],
        relationship: str,
        term: str | None = None,
        ref: Ref | None = None,
        *,
        resolver: Resolver | None = None,
    ) -> bool:
        """The Relationships chapter's ``relationship-term? @ref`` query on one record.

        Does the record implement a def whose ``relationship`` tag (``containedBy``,
        ``inputs``, ...) fits ``term``, with a tag value equal to ``ref``?  Transitive
        relationships follow refs through ``resolver``; a reciprocal (``outputs`` for
        ``inputs``) is checked from the other end.

        >>> plant = {"id": Ref("hwp"), "hot": Marker, "water": Marker, "plant": Marker,
        ...          "equip": Marker}
        >>> ahu = {"id": Ref("ahu"), "ahu": Marker, "equip": Marker, "hotWaterRef": Ref("hwp")}
        >>> by_id = {Ref("hwp"): plant, Ref("ahu"): ahu}
        >>> ns.related(ahu, "inputs", "water", Ref("hwp"))
        True
        >>> ns.related(plant, "outputs", "hot-water", Ref("ahu"), resolver=by_id.get)
        True
        """
        if self._related(record, relationship, term, ref, resolver, set()):
            return True
        rdef = self._defs.get(relationship)
        recip = _syms(rdef.get("reciprocalOf")) if rdef is not None else ()
        if recip and ref is not None and resolver is not None:
            other = resolver(ref)
            own = record.get("id")
            if other is not None and isinstance(own, Ref):
                return self._related(other, recip[0], term, own, resolver, set())
        return False

    def _related(
        self,
        record: Mapping[str, Any],
        relationship: str,
        term: str | None,
        ref: Ref | None,
        resolver: Resolver | None,
        visited: set[str],
    ) -> bool:
        rdef = self._defs.get(relationship)
        transitive = rdef is not None and rdef.get("transitive") is Marker
        for sym in self.reflect(record).declared:
            values = _syms(self._defs[sym].get(relationship))
            if not values:
                continue
            if term is not None and not any(self.fits(v, term) for v in values):
                continue
            targets = _refs(record.get(sym))
            if ref is None and (targets or record.get(sym) is not None):
                return True
            if ref is not None and ref in targets:
                return True
            if transitive and resolver is not None and ref is not None:
                for target in targets:
                    if target.id in visited:
                        continue
                    visited.add(target.id)
                    nxt = resolver(target)
                    if nxt is not None and self._related(
                        nxt, relationship, term, ref, resolver, visited
                    ):
                        return True
        return False

    # ------------------------------------------------------------------ filters and ops

    def fits_spec(self, record: Mapping[str, Any], name: str, lib: str | None) -> bool:
        """Filter support: whether a record fits a spec name (``Meter``, ``ElecMeter``).

        The name maps to the def of the same name with a lower-case first letter, or to
        the conjunct of its words (``ElecMeter`` → ``elec-meter``).
        """
        sym = self.spec_symbol(name)
        if sym is None:
            return False
        if lib is not None and not lib.startswith("ph"):
            owner = self._defs[sym].get("lib")
            if not (isinstance(owner, Symbol) and owner.val == f"lib:{lib}"):
                return False
        return self.fits_record(record, sym)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the namespace is immutable and long-lived
    def spec_symbol(self, name: str) -> str | None:
        """The def a spec name stands for, if any."""
        camel = name[:1].lower() + name[1:]
        if camel in self._defs:
            return camel
        conjunct = "-".join(w[:1].lower() + w[1:] for w in _CAMEL.split(name))
        return conjunct if conjunct in self._defs else None

    def select_defs(self, query: Filter | str, limit: int | None = None) -> list[FrozenDict]:
        """The effective defs that match a filter (what the ``defs`` op answers)."""
        return select(query, self.defs(), namespace=self, limit=limit)

    def defs_grid(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``defs`` op's response."""
        rows = self.defs() if query is None else self.select_defs(query)
        return _grid(rows, limit)

    def libs_grid(self, query: Filter | str | None = None, limit: int | None = None) -> Grid:
        """The ``libs`` op's response."""
        rows = self.libs() if query is None else select(query, self.libs(), namespace=self)
        return _grid(rows, limit)

    def ops_grid(self) -> Grid:
        """The ``ops`` op's response: every ``op:`` def."""
        return _grid([d for d in self.defs() if self.fits(d["def"].val, "op")], None)

    def filetypes_grid(self) -> Grid:
        """The ``filetypes`` op's response: every ``filetype:`` def."""
        return _grid([d for d in self.defs() if self.fits(d["def"].val, "filetype")], None)

    def __repr__(self) -> str:
        return f"<Namespace {len(self._defs)} defs, libs {[d['def'].val for d in self.libs()]}>"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def _grid(rows: Sequence[FrozenDict], limit: int | None) -> Grid:
    picked = list(rows if limit is None else rows[: max(limit, 0)])
    if not picked:
        return Grid(["def"], [])
    return Grid.from_rows(picked)


def _name(symbol: str | Symbol | object) -> str:
    if isinstance(symbol, Symbol):
        return symbol.val
    if isinstance(symbol, str):
        return symbol
    raise TypeError(f"a def is named by a str or Symbol, not {type(symbol).__name__}")
