"""Spec names in filters (``ahu``'s subtypes, ``ph::Meter``) rewritten into plain tags
before a store sees the filter, so every store can push the whole filter down.

A record fits a spec when, by the ontology's reflection, it declares a def that is the
spec's def or one of its subtypes: a tag def by having the tag, a conjunct
(``hot-water``) by having every one of its tags.  So ``Ahu`` becomes ``ahu or rtu or
doas or ...`` and ``Meter`` an ``or`` that includes ``elec and meter`` and the like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projecthaystack.filter import And, Filter, Has, IsSpec, Missing, Or, Path
from projecthaystack.kinds import Symbol

if TYPE_CHECKING:
    from projecthaystack.ontology import Namespace

__all__ = ["NOTHING", "SpecRewriter"]

_ID = Path(("id",))
NOTHING: Filter = And((Has(_ID), Missing(_ID)))
"""A filter no record matches: what a spec name no def answers becomes."""


class SpecRewriter:
    """Rewrites the spec names of filters through one (immutable) namespace.

    >>> from projecthaystack.filter import parse
    >>> from projecthaystack.ontology import Namespace
    >>> ns = Namespace.from_defs([
    ...     {"def": Symbol("equip")}, {"def": Symbol("ahu"), "is": Symbol("equip")},
    ...     {"def": Symbol("elec-meter"), "is": Symbol("equip")}])
    >>> str(SpecRewriter(ns).rewrite(parse("Equip and siteRef")))
    '(equip or ahu or elec and meter) and siteRef'
    """

    def __init__(self, namespace: Namespace | None) -> None:
        self._ns = namespace
        self._memo: dict[tuple[str, str | None], Filter] = {}

    def rewrite(self, flt: Filter) -> Filter:
        """``flt`` with every spec name replaced by plain tag terms; ``ValueError`` if
        it has one and there is no namespace to answer it."""
        if isinstance(flt, IsSpec):
            return self._spec(flt)
        if isinstance(flt, And | Or):
            operands = tuple(self.rewrite(op) for op in flt.operands)
            if operands == flt.operands:
                return flt
            return And(operands) if isinstance(flt, And) else Or(operands)
        return flt

    def _spec(self, node: IsSpec) -> Filter:
        ns = self._ns
        if ns is None:
            raise ValueError(
                f"filter term {node.lib + '::' if node.lib else ''}{node.name} names a spec: "
                "answering it needs a def namespace, and this server has none loaded"
            )
        key = (node.name, node.lib)
        found = self._memo.get(key)
        if found is None:
            found = self._terms(ns, node)
            if len(self._memo) < 4096:  # spec names are the client's to choose
                self._memo[key] = found
        return found

    @staticmethod
    def _terms(ns: Namespace, node: IsSpec) -> Filter:
        sym = ns.spec_symbol(node.name)
        if sym is None:
            return NOTHING
        if node.lib is not None and not node.lib.startswith("ph"):
            found = ns.get(sym)
            owner = found.get("lib") if found is not None else None
            if not (isinstance(owner, Symbol) and owner.val == f"lib:{node.lib}"):
                return NOTHING
        terms: list[Filter] = []
        for d in [sym, *ns.all_subtypes(sym)]:
            if ":" in d:
                continue  # a feature key: no record declares one
            tags = d.split("-")
            if len(tags) == 1:
                terms.append(Has(Path((d,))))
            else:
                terms.append(And(tuple(Has(Path((t,))) for t in tags)))
        if not terms:
            return NOTHING
        return terms[0] if len(terms) == 1 else Or(tuple(terms))
