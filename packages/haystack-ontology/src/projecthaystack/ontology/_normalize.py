"""Normalization: the Normalization chapter's pipeline from declared libs to effective defs.

Scan and parse happen in :mod:`._libs`; this module resolves, taxonifies, applies defx,
normalizes tags, inherits and validates, collecting every problem before it gives up.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any, Final

from projecthaystack.kinds import (
    Coord,
    FrozenDict,
    Grid,
    Marker,
    MarkerType,
    Number,
    Ref,
    Symbol,
    Uri,
    XStr,
)

from ._errors import NamespaceError
from ._libs import Lib

__all__ = ["normalize"]

ROOTS: Final = frozenset({"marker", "val", "feature"})
# The kind defs and the Python types their values take.
KIND_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "marker": (MarkerType,),
    "bool": (bool,),
    "number": (Number,),
    "str": (str,),
    "uri": (Uri,),
    "ref": (Ref,),
    "symbol": (Symbol,),
    "date": (_dt.date,),
    "time": (_dt.time,),
    "dateTime": (_dt.datetime,),
    "coord": (Coord,),
    "xstr": (XStr,),
    "list": (list, tuple),
    "dict": (dict,),
    "grid": (Grid,),
}
# Lib meta tags the Namespaces chapter says every lib declares ("depends" except ph's).
LIB_REQUIRED: Final = ("doc", "version", "baseUri")


def _symbols(value: Any) -> list[str]:
    """The symbol names in a tag value: one symbol, or a list of them."""
    if isinstance(value, Symbol):
        return [value.val]
    if isinstance(value, list | tuple):
        return [v.val for v in value if isinstance(v, Symbol)]
    return []


class _Pipeline:
    def __init__(self, libs: list[Lib]) -> None:
        self.libs = libs
        self.problems: list[str] = []
        self.declared: dict[str, tuple[FrozenDict, Lib]] = {}
        self.supers: dict[str, list[str]] = {}
        self.effective: dict[str, dict[str, Any]] = {}
        self.inherited: set[str] = set()

    def problem(self, text: str) -> None:
        self.problems.append(text)

    # ------------------------------------------------------------------ 1. parse

    def parse(self) -> None:
        seen_libs: dict[str, Lib] = {}
        for lib in self.libs:
            if lib.name in seen_libs:
                self.problem(f"lib {lib.name} is loaded twice")
                continue
            seen_libs[lib.name] = lib
            for d in (lib.meta, *lib.defs):
                sym = d["def"].val
                if sym in self.declared:
                    other = self.declared[sym][1].name
                    self.problem(f"^{sym} is defined in both {other} and {lib.name}")
                else:
                    self.declared[sym] = (d, lib)
        for lib in seen_libs.values():
            for dep in lib.depends:
                if dep not in seen_libs:
                    self.problem(f"{lib.name} depends on {dep}, which is not loaded")
            if lib.name != "lib:ph" and "lib:ph" not in lib.depends:
                self.problem(f"{lib.name} must depend on lib:ph")

    # ------------------------------------------------------------------ 2. resolve

    def resolve(self) -> None:
        by_lib: dict[str, set[str]] = {}
        for sym, (_, lib) in self.declared.items():
            by_lib.setdefault(lib.name, set()).add(sym)
        lib_syms = {lib.name for lib in self.libs}
        for lib in self.libs:
            scope = set(by_lib.get(lib.name, ())) | lib_syms
            for dep in lib.depends:  # not transitive: only what each depend itself declares
                scope |= by_lib.get(dep, set())
            for d in (lib.meta, *lib.defs, *lib.defxs):
                owner = (d.get("def") or d["defx"]).val
                for tag, value in d.items():
                    if tag not in scope:
                        self.problem(f"^{owner} in {lib.name}: tag '{tag}' has no def in scope")
                    for sym in _symbols(value):
                        if sym not in scope:
                            self.problem(f"^{owner} in {lib.name}: ^{sym} has no def in scope")

    # ------------------------------------------------------------------ 3. taxonify

    def taxonify(self) -> None:
        for sym, (d, _) in self.declared.items():
            declared_is = d.get("is")
            if ":" in sym:
                if declared_is is not None:
                    self.problem(f"^{sym} is a feature key and must not declare 'is'")
                feature = sym.split(":", 1)[0]
                if feature in self.declared:
                    self.supers[sym] = [feature]
                else:
                    self.problem(f"^{sym}: feature ^{feature} has no def")
                    self.supers[sym] = []
            elif sym in ROOTS:
                self.supers[sym] = _symbols(declared_is)
            elif declared_is is None:
                self.problem(f"^{sym} has no 'is' tag")
                self.supers[sym] = []
            else:
                self.supers[sym] = [s for s in _symbols(declared_is) if s in self.declared]
        # Cycles: depth-first search with colours, reporting each cycle once.
        state: dict[str, int] = {}
        for start in self.supers:
            if state.get(start):
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                sym, i = stack.pop()
                if i == 0:
                    state[sym] = 1
                    path.append(sym)
                sups = self.supers.get(sym, [])
                if i < len(sups):
                    stack.append((sym, i + 1))
                    nxt = sups[i]
                    if state.get(nxt) == 1:
                        cycle = [*path[path.index(nxt) :], nxt]
                        self.problem("cyclic 'is': " + " -> ".join(f"^{s}" for s in cycle))
                        self.supers[sym] = [s for s in sups if s != nxt]
                    elif not state.get(nxt):
                        stack.append((nxt, 0))
                else:
                    state[sym] = 2
                    path.pop()

    def fits(self, sym: str, base: str) -> bool:
        seen: set[str] = set()
        todo = [sym]
        while todo:
            s = todo.pop()
            if s == base:
                return True
            if s not in seen:
                seen.add(s)
                todo.extend(self.supers.get(s, ()))
        return False

    def marked(self, tag: str, marker: str) -> bool:
        d = self.effective.get(tag)
        return d is not None and d.get(marker) is Marker

    # ------------------------------------------------------------------ 4. defx

    def defx(self) -> None:
        self.effective = {sym: dict(d) for sym, (d, _) in self.declared.items()}
        for lib in self.libs:
            for dx in lib.defxs:
                target = dx["defx"].val
                eff = self.effective.get(target)
                if eff is None:
                    self.problem(f"defx ^{target} in {lib.name}: no such def")
                    continue
                for tag, value in dx.items():
                    if tag == "defx":
                        continue
                    if tag in eff:
                        if self.marked(tag, "accumulate"):
                            eff[tag] = _union(eff[tag], value)
                        else:
                            self.problem(f"defx ^{target} in {lib.name}: redefines tag '{tag}'")
                        continue
                    eff[tag] = value

    # ------------------------------------------------------------------ 5. normalize tags

    def normalize_tags(self) -> None:
        list_tags = {s for s in self.declared if self.fits(s, "list")}
        for sym, eff in self.effective.items():
            d, lib = self.declared[sym]
            if "lib" in d:
                self.problem(f"^{sym} must not declare 'lib' (it is implied)")
            eff["lib"] = Symbol(lib.name)
            for tag, value in list(eff.items()):
                if tag in list_tags and not isinstance(value, list):
                    eff[tag] = [value]
            if self.supers.get(sym):
                eff["is"] = [Symbol(s) for s in self.supers[sym]]

    # ------------------------------------------------------------------ 6. inherit

    def inherit(self) -> None:
        not_inherited = {s for s in self.effective if self.marked(s, "notInherited")}
        accumulate = {s for s in self.effective if self.marked(s, "accumulate")}
        declared_tags = {sym: set(eff) for sym, eff in self.effective.items()}

        # "Aggregated together ... and deduplicated": a declared list may repeat itself.
        for eff in self.effective.values():
            for tag in accumulate.intersection(eff):
                eff[tag] = _union([], eff[tag])

        def run(sym: str) -> None:
            if sym in self.inherited:
                return
            self.inherited.add(sym)
            eff = self.effective[sym]
            own = declared_tags[sym]
            for sup in self.supers.get(sym, ()):
                run(sup)
                for tag, value in self.effective[sup].items():
                    if tag in not_inherited:
                        continue
                    if tag in accumulate and tag in eff:
                        eff[tag] = _union(eff[tag], value)
                    elif tag not in eff and tag not in own:
                        eff[tag] = value

        for sym in self.effective:
            run(sym)

    # ------------------------------------------------------------------ 7. validate

    def validate(self) -> None:
        kind_of = {
            s: k for s in self.effective for k in KIND_TYPES if self.fits(s, k) and s != k
        } | {k: k for k in KIND_TYPES if k in self.effective}
        computed = {s for s in self.effective if self.marked(s, "computedFromReciprocal")}
        relationship_tags = {
            s for s in self.effective if self.fits(s, "relationship") and s != "relationship"
        }
        for sym, eff in self.effective.items():
            d = self.declared[sym][0]
            if sym == "index":
                self.problem("^index is reserved for documentation")
            if sym.startswith("lib:"):
                for tag in LIB_REQUIRED:
                    if tag not in d:
                        self.problem(f"lib ^{sym} must declare '{tag}'")
            if "-" in sym and ":" not in sym:
                for part in sym.split("-"):
                    if part not in self.effective:
                        self.problem(f"conjunct ^{sym}: ^{part} has no def")
                    elif not self.fits(part, "marker"):
                        self.problem(f"conjunct ^{sym}: ^{part} is not a marker")
            if "tagOn" in d and ("-" in sym or ":" in sym):
                self.problem(f"^{sym}: 'tagOn' is only for tag defs, not conjuncts or keys")
            if self.fits(sym, "choice") and "of" in eff:
                for of in _symbols(eff["of"]):
                    if of in self.effective and not self.fits(of, "marker"):
                        self.problem(f"choice ^{sym}: 'of' ^{of} is not a marker")
            for tag, value in d.items():
                if tag in computed:
                    self.problem(f"^{sym} declares '{tag}', which is computed from its reciprocal")
                if tag in relationship_tags and not self.fits(sym, "ref"):
                    self.problem(f"^{sym} uses relationship '{tag}' but is not a ref")
                kind = kind_of.get(tag)
                if kind is None or tag in ("def", "defx"):
                    continue
                expected = KIND_TYPES[kind]
                normalized = eff.get(tag, value)
                if not isinstance(normalized, expected) and not (
                    kind == "ref" and isinstance(normalized, Symbol)
                ):
                    self.problem(f"^{sym}: '{tag}' should be a {kind}, not {type(value).__name__}")

    def run(self) -> dict[str, FrozenDict]:
        self.parse()
        self.resolve()
        self.taxonify()
        self.defx()
        self.normalize_tags()
        self.inherit()
        self.validate()
        if self.problems:
            raise NamespaceError(self.problems)
        return {sym: _freeze(eff) for sym, eff in self.effective.items()}


def _union(a: Any, b: Any) -> list[Any]:
    out = list(a) if isinstance(a, list | tuple) else [a]
    for item in b if isinstance(b, list | tuple) else [b]:
        if item not in out:
            out.append(item)
    return out


def _freeze(d: dict[str, Any]) -> FrozenDict:
    return FrozenDict((k, v) for k, v in d.items() if v is not None)


def normalize(libs: Iterable[Lib]) -> dict[str, FrozenDict]:
    """Effective defs by symbol, from declared libs; ``NamespaceError`` lists every problem."""
    return _Pipeline(list(libs)).run()
