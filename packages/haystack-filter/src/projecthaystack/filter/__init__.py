"""Project Haystack filters: the whole grammar of the Filters chapter, an immutable AST
that prints back to canonical text, compiled evaluation, and a visitor for pushing
filters down into stores.

>>> from projecthaystack.filter import parse, select
>>> from projecthaystack.kinds import Marker, Number, Ref
>>> f = parse("point and curVal >= 70°F")
>>> f.matches({"point": Marker, "curVal": Number(72, "°F")})
True
>>> f.matches({"point": Marker, "curVal": Number(72)})   # no unit conversion, ever
False
"""

from .__about__ import __version__ as __version__
from ._ast import And as And
from ._ast import Cmp as Cmp
from ._ast import CmpOp as CmpOp
from ._ast import Filter as Filter
from ._ast import FilterVisitor as FilterVisitor
from ._ast import Has as Has
from ._ast import IsSpec as IsSpec
from ._ast import LiteralValue as LiteralValue
from ._ast import Missing as Missing
from ._ast import Or as Or
from ._ast import Path as Path
from ._ast import format_literal as format_literal
from ._ast import tag as tag
from ._compile import Namespace as Namespace
from ._compile import Resolver as Resolver
from ._errors import FilterError as FilterError
from ._errors import FilterSyntaxError as FilterSyntaxError
from ._eval import compile_filter as compile_filter
from ._eval import index_by_id as index_by_id
from ._eval import matches as matches
from ._eval import select as select
from ._parser import DEFAULT_MAX_DEPTH as DEFAULT_MAX_DEPTH
from ._parser import DEFAULT_MAX_LENGTH as DEFAULT_MAX_LENGTH
from ._parser import DEFAULT_MAX_PATH as DEFAULT_MAX_PATH
from ._parser import parse as parse

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MAX_PATH",
    "And",
    "Cmp",
    "CmpOp",
    "Filter",
    "FilterError",
    "FilterSyntaxError",
    "FilterVisitor",
    "Has",
    "IsSpec",
    "LiteralValue",
    "Missing",
    "Namespace",
    "Or",
    "Path",
    "Resolver",
    "compile_filter",
    "format_literal",
    "index_by_id",
    "matches",
    "parse",
    "select",
    "tag",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type | type(parse)):
        _obj.__module__ = __name__
del _name, _obj
