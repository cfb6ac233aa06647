"""The filter AST: immutable nodes that print back to the canonical filter text."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

import msgspec

from projecthaystack.codecs.zinc import encode_value
from projecthaystack.kinds import InvalidValueError, Number, Ref, Symbol, Uri, is_tag_name

from ._compile import Codegen, Namespace, Resolver, compiled

__all__ = [
    "And",
    "Cmp",
    "CmpOp",
    "Filter",
    "FilterVisitor",
    "Has",
    "IsSpec",
    "LiteralValue",
    "Missing",
    "Or",
    "Path",
    "tag",
]

CmpOp = Literal["==", "!=", "<", "<=", ">", ">="]
LiteralValue = bool | str | Number | Ref | Uri | Symbol | _dt.date | _dt.time | _dt.datetime
"""The kinds a filter may compare against."""

T = TypeVar("T")

_LITERAL_TYPES = (bool, str, Number, Ref, Uri, Symbol, _dt.date, _dt.time)
_GOOD_NAMES: set[str] = set()  # names already checked, so parsing skips the regex


class Filter(msgspec.Struct, frozen=True):
    """Base of every filter node.  Nodes are immutable, hashable and compare by value.

    ``&``, ``|`` combine filters; ``str(f)`` is the canonical filter text.

    >>> from projecthaystack.filter import parse
    >>> f = parse("(site or equip)  and not ahu")
    >>> str(f)
    '(site or equip) and not ahu'
    >>> f == parse(str(f))
    True
    """

    def accept(self, visitor: FilterVisitor[T]) -> T:
        """Dispatch to the visitor method for this node type."""
        raise NotImplementedError

    def __and__(self, other: Filter | _PathBuilder) -> And:
        return And(_flatten(And, (self, _as_filter(other))))

    def __or__(self, other: Filter | _PathBuilder) -> Or:
        return Or(_flatten(Or, (self, _as_filter(other))))

    def matches(
        self,
        record: Mapping[str, Any],
        resolver: Resolver | None = None,
        namespace: Namespace | None = None,
    ) -> bool:
        """Whether one record matches.  ``resolver`` looks up the targets of ``->`` paths."""
        return compiled(self, resolver, namespace)[0](record)

    def compile(
        self, resolver: Resolver | None = None, namespace: Namespace | None = None
    ) -> Callable[[Mapping[str, Any]], bool]:
        """A Python predicate for this filter, compiled once (see :func:`compile_filter`)."""
        return compiled(self, resolver, namespace)[0]

    def paths(self) -> Iterable[Path]:
        """Every path the filter reads, in order."""
        return ()

    def _emit(self, gen: Codegen, memo: bool) -> str:
        """This node as a Python expression over a record ``d`` (see ``_compile``)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self._text(0)

    def _text(self, parent: int) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"parse({str(self)!r})"


def _flatten(cls: type[And | Or], items: Iterable[Filter]) -> tuple[Filter, ...]:
    out: list[Filter] = []
    for item in items:
        if not isinstance(item, Filter):
            raise TypeError(f"cannot combine a filter with {type(item).__name__}")
        if isinstance(item, And | Or) and type(item) is cls:
            out.extend(item.operands)
        else:
            out.append(item)
    return tuple(out)


class Path(msgspec.Struct, frozen=True):
    """A tag name, or names joined by ``->`` that follow refs or nested dicts.

    >>> str(Path(("equipRef", "siteRef", "geoCity")))
    'equipRef->siteRef->geoCity'
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if type(self.names) is not tuple or not self.names:
            raise InvalidValueError("a path is a tuple of one or more names")
        if not _GOOD_NAMES.issuperset(self.names):
            for name in self.names:
                if not isinstance(name, str) or not is_tag_name(name):
                    raise InvalidValueError(f"invalid tag name {name!r} in a filter path")
                if len(_GOOD_NAMES) < 100_000:
                    _GOOD_NAMES.add(name)

    def __str__(self) -> str:
        return "->".join(self.names)


class Has(Filter, frozen=True):
    """Records that have the path (its value is not null)."""

    path: Path

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_has(self)

    def paths(self) -> Iterable[Path]:
        return (self.path,)

    def __invert__(self) -> Missing:
        return Missing(self.path)

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.has(self.path.names, memo)

    def _text(self, parent: int) -> str:
        return str(self.path)


class Missing(Filter, frozen=True):
    """Records that do not have the path (``not path``)."""

    path: Path

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_missing(self)

    def paths(self) -> Iterable[Path]:
        return (self.path,)

    def __invert__(self) -> Has:
        return Has(self.path)

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.missing(self.path.names, memo)

    def _text(self, parent: int) -> str:
        return "not " + str(self.path)


def format_literal(value: Any) -> str:
    """A literal as filter text: Zinc, except ``true``/``false`` and Refs without dis."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Ref):
        return "@" + value.id
    return encode_value(value)


class Cmp(Filter, frozen=True):
    """``path op value``: equality is exact (Numbers need equal units), and the ordering
    operators hold only between values of one kind."""

    path: Path
    op: CmpOp
    value: LiteralValue

    def __post_init__(self) -> None:
        if self.op not in ("==", "!=", "<", "<=", ">", ">="):
            raise InvalidValueError(f"unknown comparison {self.op!r}")
        if not isinstance(self.value, _LITERAL_TYPES):
            raise InvalidValueError(f"a filter cannot compare with {type(self.value).__name__}")
        if isinstance(self.value, Number) and self.value.val != self.value.val:
            raise InvalidValueError("a filter cannot compare with NaN")

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_cmp(self)

    def paths(self) -> Iterable[Path]:
        return (self.path,)

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.cmp(self.path.names, self.op, self.value, memo)

    def _text(self, parent: int) -> str:
        return f"{self.path} {self.op} {format_literal(self.value)}"


class IsSpec(Filter, frozen=True):
    """Records that fit a spec name such as ``Meter`` or ``ph::Meter`` (needs a namespace)."""

    name: str
    lib: str | None = None

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_spec(self)

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.spec(self.name, self.lib)

    def _text(self, parent: int) -> str:
        return f"{self.lib}::{self.name}" if self.lib else self.name


class And(Filter, frozen=True):
    """Every operand matches."""

    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise InvalidValueError("'and' needs two or more operands")

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_and(self)

    def paths(self) -> Iterable[Path]:
        return [p for op in self.operands for p in op.paths()]

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.all([op._emit(gen, memo) for op in self.operands])

    def _text(self, parent: int) -> str:
        text = " and ".join(op._text(2) for op in self.operands)
        return f"({text})" if parent > 2 else text


class Or(Filter, frozen=True):
    """At least one operand matches."""

    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise InvalidValueError("'or' needs two or more operands")

    def accept(self, visitor: FilterVisitor[T]) -> T:
        return visitor.visit_or(self)

    def paths(self) -> Iterable[Path]:
        return [p for op in self.operands for p in op.paths()]

    def _emit(self, gen: Codegen, memo: bool) -> str:
        return gen.any([op._emit(gen, memo) for op in self.operands])

    def _text(self, parent: int) -> str:
        text = " or ".join(op._text(1) for op in self.operands)
        return f"({text})" if parent >= 1 else text


class FilterVisitor(Generic[T]):
    """Walks a filter; subclass it to translate filters (to SQL, to Redis queries, ...).

    Each ``visit_*`` method receives its node; combine the operands' results in
    ``visit_and``/``visit_or`` by calling ``operand.accept(self)``.

    >>> from projecthaystack.filter import parse
    >>> class Tags(FilterVisitor[set[str]]):
    ...     def visit_has(self, node): return {str(node.path)}
    ...     def visit_missing(self, node): return set()
    ...     def visit_cmp(self, node): return {str(node.path)}
    ...     def visit_spec(self, node): return set()
    ...     def visit_and(self, node): return set().union(*(o.accept(self) for o in node.operands))
    ...     visit_or = visit_and
    >>> sorted(parse("point and (temp or curVal > 5)").accept(Tags()))
    ['curVal', 'point', 'temp']
    """

    def visit_has(self, node: Has) -> T:
        """A ``path`` node."""
        raise NotImplementedError

    def visit_missing(self, node: Missing) -> T:
        """A ``not path`` node."""
        raise NotImplementedError

    def visit_cmp(self, node: Cmp) -> T:
        """A ``path op value`` node."""
        raise NotImplementedError

    def visit_spec(self, node: IsSpec) -> T:
        """A spec-name node."""
        raise NotImplementedError

    def visit_and(self, node: And) -> T:
        """An ``and`` of two or more operands."""
        raise NotImplementedError

    def visit_or(self, node: Or) -> T:
        """An ``or`` of two or more operands."""
        raise NotImplementedError


class _PathBuilder:
    """What :func:`tag` returns: comparison operators make :class:`Cmp` nodes."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def has(self) -> Has:
        """The records that have this path."""
        return Has(self.path)

    def missing(self) -> Missing:
        """The records that lack this path."""
        return Missing(self.path)

    def __invert__(self) -> Missing:
        return Missing(self.path)

    def __and__(self, other: Filter | _PathBuilder) -> And:
        return Has(self.path) & _as_filter(other)

    def __or__(self, other: Filter | _PathBuilder) -> Or:
        return Has(self.path) | _as_filter(other)

    def __rand__(self, other: Filter) -> And:
        return _as_filter(other) & Has(self.path)

    def __ror__(self, other: Filter) -> Or:
        return _as_filter(other) | Has(self.path)

    def __eq__(self, value: object) -> Cmp:  # type: ignore[override]
        return Cmp(self.path, "==", _literal(value))

    def __ne__(self, value: object) -> Cmp:  # type: ignore[override]
        return Cmp(self.path, "!=", _literal(value))

    def __lt__(self, value: object) -> Cmp:
        return Cmp(self.path, "<", _literal(value))

    def __le__(self, value: object) -> Cmp:
        return Cmp(self.path, "<=", _literal(value))

    def __gt__(self, value: object) -> Cmp:
        return Cmp(self.path, ">", _literal(value))

    def __ge__(self, value: object) -> Cmp:
        return Cmp(self.path, ">=", _literal(value))

    __hash__ = None  # type: ignore[assignment]


def _as_filter(item: Filter | _PathBuilder) -> Filter:
    return Has(item.path) if isinstance(item, _PathBuilder) else item


def _literal(value: object) -> LiteralValue:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Number(float(value))
    return value  # type: ignore[return-value]  # Cmp checks the kind


def tag(*names: str) -> Any:
    """Start a filter in Python: a tag, or a ``->`` path of several.

    Comparisons make comparison nodes, ``~`` a ``not``, ``&``/``|`` combine; a bare
    ``tag(...)`` inside ``&``/``|`` means "has".

    >>> from projecthaystack.kinds import Number
    >>> f = tag("point") & tag("temp") & (tag("curVal") > Number(75, "°F"))
    >>> str(f)
    'point and temp and curVal > 75°F'
    >>> str(tag("equipRef", "siteRef", "geoCity") == "Hugo")
    'equipRef->siteRef->geoCity == "Hugo"'
    >>> str(~tag("ahu") | tag("vav").has())
    'not ahu or vav'
    """
    return _PathBuilder(Path(tuple(names)))
