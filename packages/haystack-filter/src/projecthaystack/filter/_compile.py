"""Evaluation: a filter is compiled once into Python source for a predicate and a selector,
so that matching a record costs what the equivalent hand-written ``if`` would.

This module knows filters only through the nodes' ``_emit`` methods (each node tells a
:class:`Codegen` what it is), so that the AST can use it without the two importing each
other.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from projecthaystack.kinds import Number, Ref, Symbol, Uri

from ._errors import FilterError

__all__ = ["Codegen", "Namespace", "Resolver", "compiled"]

Resolver = Callable[[Ref], Mapping[str, Any] | None]
"""Looks up the record a Ref points at, or ``None``."""

Predicate = Callable[[Mapping[str, Any]], bool]
Selector = Callable[[Iterable[Any]], list[Any]]


class Namespace(Protocol):
    """What evaluating a spec name (``Meter``, ``ph::Meter``) needs: the ontology's
    :class:`~projecthaystack.ontology.Namespace` is one."""

    def fits_spec(self, record: Mapping[str, Any], name: str, lib: str | None) -> bool:
        """Whether ``record`` fits the named spec."""
        ...


class Emits(Hashable, Protocol):
    """A filter node as the code generator sees it."""

    def _emit(self, gen: Codegen, memo: bool) -> str: ...


_NOTHING: tuple[Any, ...] = ()


def _walk(
    record: Mapping[str, Any], names: tuple[str, ...], resolver: Resolver | None
) -> Sequence[Any]:
    """The values at the end of a ``->`` path: through nested dicts, Refs and lists of Refs."""
    rec = record
    for i, name in enumerate(names[:-1]):
        val = rec.get(name)
        if type(val) is Ref:
            if resolver is None or (target := resolver(val)) is None:
                return _NOTHING
            rec = target
        elif isinstance(val, Mapping):
            rec = val
        elif type(val) is list:
            return _fan_out(val, names[i + 1 :], resolver)
        else:
            return _NOTHING
    val = rec.get(names[-1])
    return _NOTHING if val is None else (val,)


def _fan_out(items: list[Any], rest: tuple[str, ...], resolver: Resolver | None) -> list[Any]:
    """A path through a list of Refs: the end values of every Ref's path (the spec's Ref Lists)."""
    out: list[Any] = []
    if resolver is None:
        return out
    for item in items:
        if type(item) is Ref and (target := resolver(item)) is not None:
            out.extend(_walk(target, rest, resolver))
    return out


def _ref_test(value: Any, op: Callable[[str, str], bool], ref_id: str) -> bool:
    """A Ref literal against a Ref, or against any Ref of a list (the spec's Ref Lists)."""
    if type(value) is Ref:
        return op(value.id, ref_id)
    if type(value) is list:
        return any(type(v) is Ref and op(v.id, ref_id) for v in value)
    return False


def _symbol_test(value: Any, op: Callable[[str, str], bool], name: str) -> bool:
    """A Symbol literal against a Symbol, or any Symbol of a list (defs' ``is``, ``tagOn``)."""
    if type(value) is Symbol:
        return op(value.val, name)
    if type(value) is list:
        return any(type(v) is Symbol and op(v.val, name) for v in value)
    return False


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Codegen:
    """Turns a filter into one Python expression over a record ``d``.

    The nodes call one method each (``has``, ``missing``, ``cmp``, ``spec``, ``all``,
    ``any``).  Paths of several names become helper functions: ``match`` walks them every
    time; ``select``, which sees one snapshot of the records, memoises a path's verdict
    per Ref in its first name (most records share their equipRef's and siteRef's answer).
    """

    def __init__(self) -> None:
        self.consts: list[Any] = []
        self.temps = 0
        self.helpers: list[str] = []
        self.memos: list[str] = []
        self.needs_namespace = False

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"_k[{len(self.consts) - 1}]"

    def temp(self) -> str:
        self.temps += 1
        return f"_v{self.temps}"

    # -- what the nodes call

    def has(self, names: tuple[str, ...], memo: bool) -> str:
        if len(names) == 1:
            return f"(d.get({names[0]!r}) is not None)"
        return self.path(names, "bool", memo)

    def missing(self, names: tuple[str, ...], memo: bool) -> str:
        return f"not {self.has(names, memo)}"

    def cmp(self, names: tuple[str, ...], op: str, lit: Any, memo: bool) -> str:
        v = self.temp()
        if len(names) == 1:
            return "(" + self.test(f"({v} := d.get({names[0]!r}))", v, op, lit) + ")"
        fn = f"_t{v}"
        body = f"any({self.test(v, v, op, lit)} for {v} in vals)"
        self.helpers.append(f"def {fn}(vals):\n    return {body}")
        return self.path(names, fn, memo)

    def spec(self, name: str, lib: str | None) -> str:
        self.needs_namespace = True
        return f"_ns.fits_spec(d, {name!r}, {lib!r})"

    def all(self, exprs: list[str]) -> str:
        return "(" + " and ".join(exprs) + ")"

    def any(self, exprs: list[str]) -> str:
        return "(" + " or ".join(exprs) + ")"

    # -- the pieces

    def path(self, names: tuple[str, ...], test: str, memo: bool) -> str:
        if not memo:
            return f"{test}(_walk(d, {names!r}, _res))"
        name = f"_m{len(self.memos)}"
        self.memos.append(name)
        r, h = self.temp(), self.temp()
        # A hit costs two lookups inline; a miss (or a first name that is no Ref) the call.
        return (
            f"(False if ({r} := d.get({names[0]!r})) is None"
            f" else {h} if type({r}) is _Ref and ({h} := {name}.get({r}.id)) is not None"
            f" else _path_memo(d, {names!r}, {names[1:]!r}, _res, {name}, {test}))"
        )

    def test(self, first: str, v: str, op: str, lit: Any) -> str:
        """A test of the value ``v`` (bound by the expression ``first``) against ``lit``."""
        py = op  # the filter operators are spelled as Python's
        if type(lit) is Ref:
            return f"_ref_test({first}, {self.const(_OPERATORS[op])}, {self.const(lit.id)})"
        if type(lit) is Symbol:
            return f"_symbol_test({first}, {self.const(_OPERATORS[op])}, {self.const(lit.val)})"
        if op == "!=":
            eq = self.equal(v, lit)
            return f"{first} is not None and not ({eq})"
        if op == "==":
            # Bind the value first, then test it.
            return f"({first} is not None and {self.equal(v, lit)})"
        return f"({first} is not None and {self.order(v, py, lit)})"

    def equal(self, v: str, lit: Any) -> str:
        if type(lit) is bool:
            return f"{v} is {lit!r}"
        if type(lit) is Number:
            val, unit = self.const(lit.val), self.const(lit.unit)
            plain = f" or (type({v}) in _plain and {unit} is None and {v} == {val})"
            return f"((type({v}) is _Number and {v}.unit == {unit} and {v}.val == {val}){plain})"
        if type(lit) is str:
            return f"(type({v}) is str and {v} == {self.const(lit)})"
        # Uri, Symbol, date, time, dateTime: exact type, then equality.
        return f"(type({v}) is {self.const(type(lit))} and {v} == {self.const(lit)})"

    def order(self, v: str, py: str, lit: Any) -> str:
        if type(lit) is Number:
            val, unit = self.const(lit.val), self.const(lit.unit)
            return (
                f"((type({v}) is _Number and {v}.unit == {unit} and {v}.val {py} {val})"
                f" or (type({v}) in _plain and {unit} is None and {v} {py} {val}))"
            )
        if type(lit) in (Uri, Symbol):
            return f"(type({v}) is {self.const(type(lit))} and {v}.val {py} {self.const(lit.val)})"
        return f"(type({v}) is {self.const(type(lit))} and {v} {py} {self.const(lit)})"


def _path_memo(
    d: Mapping[str, Any],
    names: tuple[str, ...],
    rest: tuple[str, ...],
    res: Resolver | None,
    memo: dict[str, bool],
    test: Callable[[Sequence[Any]], bool],
) -> bool:
    first = d.get(names[0])
    if type(first) is not Ref:
        if first is None or not isinstance(first, Mapping | list):
            return False  # nothing to follow: no value at the end of the path
        return test(_walk(d, names, res))
    key = first.id
    hit = memo.get(key)
    if hit is None:
        target = res(first) if res is not None else None
        hit = memo[key] = target is not None and test(_walk(target, rest, res))
    return hit


_GLOBALS: dict[str, Any] = {
    "_walk": _walk,
    "_ref_test": _ref_test,
    "_symbol_test": _symbol_test,
    "_path_memo": _path_memo,
    "_Number": Number,
    "_Ref": Ref,
    "_plain": (int, float),
}


def _indent(code: str, by: str) -> str:
    return "".join(by + line + "\n" for line in code.splitlines())


Factory = Callable[[Resolver | None, Namespace | None], tuple[Predicate, Selector]]


@functools.lru_cache(maxsize=512)
def _factory(node: Emits) -> tuple[Factory, bool]:
    gen = Codegen()
    match_expr = node._emit(gen, False)
    select_expr = node._emit(gen, True)
    memos = "".join(f"        {m} = {{}}\n" for m in gen.memos)
    src = (
        "def _make(_k, _res, _ns):\n"
        + "".join(_indent(h, "    ") for h in gen.helpers)
        + f"    def match(d):\n        return {match_expr}\n"
        + "    def select(ds):\n"
        + memos
        + f"        return [d for d in ds if {select_expr}]\n"
        + "    return match, select\n"
    )
    scope = dict(_GLOBALS)
    # Generated from a checked AST: names are valid tag names, literals go in as constants.
    exec(compile(src, f"<filter {str(node)[:60]!r}>", "exec"), scope)
    make = scope["_make"]
    consts = tuple(gen.consts)
    return (lambda res, ns: make(consts, res, ns)), gen.needs_namespace


def compiled(
    node: Emits, resolver: Resolver | None, namespace: Namespace | None
) -> tuple[Predicate, Selector]:
    """The predicate and the selector of a filter node, compiled once and cached."""
    make, needs_namespace = _factory(node)
    if namespace is None and needs_namespace:
        raise FilterError(f"filter {str(node)!r} names a spec: evaluating it needs a namespace")
    return make(resolver, namespace)
