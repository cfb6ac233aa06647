"""Evaluation: a filter is compiled once into Python source for a predicate and a selector,
so that matching a record costs what the equivalent hand-written ``if`` would."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, overload

from projecthaystack.kinds import Grid, HaystackError, Number, Ref, Symbol, Uri

from ._ast import And, Cmp, Filter, Has, IsSpec, Missing, Or, Path
from ._parser import parse

__all__ = [
    "FilterError",
    "Namespace",
    "Resolver",
    "compile_filter",
    "matches",
    "select",
]

Resolver = Callable[[Ref], Mapping[str, Any] | None]
"""Looks up the record a Ref points at, or ``None``."""

R = TypeVar("R", bound=Mapping[str, Any])


class Namespace(Protocol):
    """What evaluating a spec name (``Meter``, ``ph::Meter``) needs: the ontology's
    :class:`~projecthaystack.ontology.Namespace` is one."""

    def fits_spec(self, record: Mapping[str, Any], name: str, lib: str | None) -> bool:
        """Whether ``record`` fits the named spec."""
        ...


class FilterError(HaystackError, ValueError):
    """A filter that parses but cannot be evaluated as asked (a spec name with no
    namespace to resolve it)."""


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


class _Codegen:
    """Turns a filter into one Python expression over a record ``d``.

    Paths of several names become helper functions: ``match`` walks them every time;
    ``select``, which sees one snapshot of the records, memoises a path's verdict per
    Ref in its first name (most records share their equipRef's and siteRef's answers).
    """

    def __init__(self) -> None:
        self.consts: list[Any] = []
        self.temps = 0
        self.helpers: list[str] = []
        self.memos: list[str] = []

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"_k[{len(self.consts) - 1}]"

    def temp(self) -> str:
        self.temps += 1
        return f"_v{self.temps}"

    def expr(self, node: Filter, memo: bool) -> str:
        if type(node) is Has:
            return self.has(node.path, memo)
        if type(node) is Missing:
            return f"not {self.has(node.path, memo)}"
        if type(node) is Cmp:
            return self.cmp(node, memo)
        if type(node) is And:
            return "(" + " and ".join(self.expr(op, memo) for op in node.operands) + ")"
        if type(node) is Or:
            return "(" + " or ".join(self.expr(op, memo) for op in node.operands) + ")"
        if type(node) is IsSpec:
            return f"_ns.fits_spec(d, {node.name!r}, {node.lib!r})"
        raise TypeError(f"not a filter node: {node!r}")

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

    def has(self, path: Path, memo: bool) -> str:
        if len(path.names) == 1:
            return f"(d.get({path.names[0]!r}) is not None)"
        return self.path(path.names, "bool", memo)

    def cmp(self, node: Cmp, memo: bool) -> str:
        names = node.path.names
        v = self.temp()
        if len(names) == 1:
            return "(" + self.test(f"({v} := d.get({names[0]!r}))", v, node) + ")"
        fn = f"_t{v}"
        body = f"any({self.test(v, v, node)} for {v} in vals)"
        self.helpers.append(f"def {fn}(vals):\n    return {body}")
        return self.path(names, fn, memo)

    def test(self, first: str, v: str, node: Cmp) -> str:
        """A test of the value ``v`` (bound by the expression ``first``) against ``node``."""
        op, lit = node.op, node.value
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


_GLOBALS: dict[str, Any] = {
    "_walk": _walk,
    "_ref_test": _ref_test,
    "_symbol_test": _symbol_test,
    "_Number": Number,
    "_Ref": Ref,
    "_plain": (int, float),
}


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


_GLOBALS["_path_memo"] = _path_memo


def _indent(code: str, by: str) -> str:
    return "".join(by + line + "\n" for line in code.splitlines())


@functools.lru_cache(maxsize=512)
def _factory(node: Filter) -> Callable[[Any, Any], tuple[Any, Any]]:
    gen = _Codegen()
    match_expr = gen.expr(node, memo=False)
    select_expr = gen.expr(node, memo=True)
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
    return lambda res, ns: make(consts, res, ns)


def _needs_namespace(node: Filter) -> bool:
    if type(node) is IsSpec:
        return True
    if type(node) in (And, Or):
        return any(_needs_namespace(op) for op in node.operands)  # type: ignore[attr-defined]
    return False


def _compiled(
    node: Filter | str, resolver: Resolver | None, namespace: Namespace | None
) -> tuple[Callable[[Mapping[str, Any]], bool], Callable[[Iterable[Any]], list[Any]]]:
    if isinstance(node, str):
        node = parse(node)
    if namespace is None and _needs_namespace(node):
        raise FilterError(f"filter {str(node)!r} names a spec: evaluating it needs a namespace")
    return _factory(node)(resolver, namespace)


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
