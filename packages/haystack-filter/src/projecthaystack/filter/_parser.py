"""The filter parser: a tokenizer of one regular expression and a recursive descent."""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Final

from projecthaystack.codecs.zinc import read_value
from projecthaystack.kinds import DecodeError, InvalidValueError, Number

from ._ast import And, Cmp, Filter, Has, IsSpec, Missing, Or, Path, _flatten
from ._errors import FilterSyntaxError

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_LENGTH", "DEFAULT_MAX_PATH", "parse"]

DEFAULT_MAX_LENGTH: Final = 8192
DEFAULT_MAX_DEPTH: Final = 32
DEFAULT_MAX_PATH: Final = 16


# One alternation: names and keywords, spec names, operators, parentheses, and the
# first character of a literal (the Zinc parser reads the literal from there).
_TOKEN: Final = re.compile(
    r"[ \t\r\n]*(?:"
    r"(?P<name>[a-z][A-Za-z0-9_]*(?:\.[a-z][A-Za-z0-9_]*)*)"
    r"|(?P<spec>[A-Z][A-Za-z0-9_]*)"
    r"|(?P<op>->|==|!=|<=|>=|<|>|::|\(|\))"
    r"|(?P<lit>[\"@`^0-9-])"
    r"|(?P<end>$)"
    r")"
)
_KEYWORDS: Final = frozenset({"and", "or", "not", "true", "false"})


class _Parser:
    __slots__ = ("depth", "kind", "max_depth", "max_path", "pos", "start", "text", "tok")

    def __init__(self, text: str, max_depth: int, max_path: int) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.max_depth = max_depth
        self.max_path = max_path
        self.kind = ""
        self.tok = ""
        self.start = 0
        self.next()

    def error(self, message: str, pos: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, line=1, col=(self.start if pos is None else pos) + 1)

    def found(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.tok)

    def next(self) -> None:
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            start = _TOKEN_SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            raise self.error(f"unexpected {self.text[start]!r}", start)
        kind = m.lastgroup
        assert kind is not None
        self.kind = kind
        self.start = m.start(kind)
        self.tok = m.group(kind)
        self.pos = m.end()

    def parse(self) -> Filter:
        node = self.cond_or()
        if self.kind != "end":
            raise self.error(f"expected 'and', 'or' or the end, found {self.found()}")
        return node

    def cond_or(self) -> Filter:
        items = [self.cond_and()]
        while self.kind == "name" and self.tok == "or":
            self.next()
            items.append(self.cond_and())
        return items[0] if len(items) == 1 else Or(_flatten(Or, items))

    def cond_and(self) -> Filter:
        items = [self.term()]
        while self.kind == "name" and self.tok == "and":
            self.next()
            items.append(self.term())
        return items[0] if len(items) == 1 else And(_flatten(And, items))

    def term(self) -> Filter:
        kind, tok = self.kind, self.tok
        if kind == "op" and tok == "(":
            self.depth += 1
            if self.depth > self.max_depth:
                raise self.error(f"parentheses nested deeper than {self.max_depth}")
            self.next()
            node = self.cond_or()
            if not (self.kind == "op" and self.tok == ")"):
                raise self.error(f"expected ')', found {self.found()}")
            self.depth -= 1
            self.next()
            return node
        if kind == "name" and tok == "not":
            self.next()
            return Missing(self.path())
        if kind == "spec" or (kind == "name" and self.text.startswith("::", self.pos)):
            return self.spec()
        path = self.path()
        if self.kind == "op" and self.tok in ("==", "!=", "<", "<=", ">", ">="):
            op = self.tok
            self.next()
            return Cmp(path, op, self.literal())  # type: ignore[arg-type]
        return Has(path)

    def spec(self) -> IsSpec:
        lib = None
        if self.kind == "name":
            lib = self.tok
            self.next()
            self.next()  # the '::'
            if self.kind != "spec":
                raise self.error(f"expected a spec name after '::', found {self.found()}")
        name = self.tok
        self.next()
        return IsSpec(name, lib)

    def path(self) -> Path:
        names = [self.name()]
        while self.kind == "op" and self.tok == "->":
            if len(names) >= self.max_path:
                raise self.error(f"path longer than {self.max_path} names")
            self.next()
            names.append(self.name())
        return Path(tuple(names))

    def name(self) -> str:
        if self.kind != "name" or self.tok in _KEYWORDS or "." in self.tok:
            raise self.error(f"expected a tag name, found {self.found()}")
        tok = self.tok
        self.next()
        return tok

    def literal(self) -> Any:
        kind, tok = self.kind, self.tok
        if kind == "name" and tok in ("true", "false"):
            self.next()
            return tok == "true"
        if kind != "lit":
            raise self.error(f"expected a value, found {self.found()}")
        start = self.start
        try:
            val, self.pos = read_value(self.text, start)
        except DecodeError as exc:
            raise self.error(f"invalid value: {exc.reason}", (exc.col or 1) - 1) from None
        if isinstance(val, Number) and not math.isfinite(val.val):
            raise self.error("INF, -INF and NaN cannot be compared", start)
        self.next()
        return val


_TOKEN_SPACE: Final = re.compile(r"[ \t\r\n]*")
_WORD: Final = r"[a-z][A-Za-z0-9_]*"
_MARKERS_ONLY: Final = re.compile(rf"\s*{_WORD}(?:\s+and\s+{_WORD})*\s*", re.ASCII)


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> Filter:
    return _parse(text, DEFAULT_MAX_LENGTH, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PATH)


def _parse(text: str, max_length: int, max_depth: int, max_path: int) -> Filter:
    if not isinstance(text, str):
        raise TypeError(f"a filter is a str, not {type(text).__name__}")
    if len(text) > max_length:
        raise FilterSyntaxError(
            f"filter of {len(text)} characters is over the limit of {max_length}"
        )
    if _MARKERS_ONLY.fullmatch(text):
        # The commonest filters are markers joined by 'and': no descent needed.
        names = text.split()[::2]
        if _KEYWORDS.isdisjoint(names):
            if len(names) == 1:
                return Has(Path((names[0],)))
            return And(tuple(Has(Path((n,))) for n in names))
    try:
        return _Parser(text, max_depth, max_path).parse()
    except InvalidValueError as exc:
        raise FilterSyntaxError(str(exc), line=1, col=1) from None


def parse(
    text: str,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_path: int = DEFAULT_MAX_PATH,
) -> Filter:
    """Parse filter text into its immutable AST.

    Results for the default limits are cached (the AST is immutable, so sharing is safe).
    ``max_length`` bounds the text, ``max_depth`` the nesting of parentheses and
    ``max_path`` the names in one ``->`` path.

    >>> str(parse("point and siteRef->geoCity == \\"Hugo\\""))
    'point and siteRef->geoCity == "Hugo"'
    """
    defaults = (DEFAULT_MAX_LENGTH, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PATH)
    cacheable = isinstance(text, str) and len(text) <= max_length
    if cacheable and (max_length, max_depth, max_path) == defaults:
        return _parse_cached(text)
    return _parse(text, max_length, max_depth, max_path)
