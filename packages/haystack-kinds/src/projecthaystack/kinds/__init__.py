"""Project Haystack value types.

Haystack kinds map onto Python like this: Str → ``str``, Bool → ``bool``, Null → ``None``,
List → ``list``, Dict → ``dict``, Date/Time/DateTime → ``datetime.date`` / ``time`` /
``datetime`` (timezone-aware, see :func:`tz_from_name`), and small immutable types for
the rest: :data:`Marker`, :data:`NA`, :data:`Remove`, :class:`Number`, :class:`Ref`,
:class:`Symbol`, :class:`Uri`, :class:`Coord`, :class:`XStr`, plus :class:`Grid`.

>>> from projecthaystack.kinds import Grid, Marker, Number, Ref
>>> site = {"id": Ref("s1", "HQ"), "site": Marker, "area": Number(4500, "ft²")}
>>> Grid.from_rows([site]).col_names
('id', 'site', 'area')
"""

from .__about__ import __version__ as __version__
from ._convert import to_python as to_python
from ._errors import DecodeError as DecodeError
from ._errors import EncodeError as EncodeError
from ._errors import HaystackError as HaystackError
from ._errors import InvalidValueError as InvalidValueError
from ._format import format_float as format_float
from ._format import format_number as format_number
from ._grid import Col as Col
from ._grid import FrozenDict as FrozenDict
from ._grid import Grid as Grid
from ._grid import GridBuilder as GridBuilder
from ._kind import kind_of as kind_of
from ._scalars import NA as NA
from ._scalars import Coord as Coord
from ._scalars import Marker as Marker
from ._scalars import MarkerType as MarkerType
from ._scalars import NAType as NAType
from ._scalars import Number as Number
from ._scalars import Ref as Ref
from ._scalars import Remove as Remove
from ._scalars import RemoveType as RemoveType
from ._scalars import Symbol as Symbol
from ._scalars import Uri as Uri
from ._scalars import XStr as XStr
from ._scalars import is_tag_name as is_tag_name
from ._tz import UTC as UTC
from ._tz import haystack_tz_names as haystack_tz_names
from ._tz import tz_from_name as tz_from_name
from ._tz import tz_name as tz_name

__all__ = [
    "NA",
    "UTC",
    "Col",
    "Coord",
    "DecodeError",
    "EncodeError",
    "FrozenDict",
    "Grid",
    "GridBuilder",
    "HaystackError",
    "InvalidValueError",
    "Marker",
    "MarkerType",
    "NAType",
    "Number",
    "Ref",
    "Remove",
    "RemoveType",
    "Symbol",
    "Uri",
    "XStr",
    "format_float",
    "format_number",
    "haystack_tz_names",
    "is_tag_name",
    "kind_of",
    "to_python",
    "tz_from_name",
    "tz_name",
]

# Show the public module in tracebacks and reprs rather than the private one.
for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and isinstance(_obj, type | type(kind_of)):
        _obj.__module__ = __name__
del _name, _obj
