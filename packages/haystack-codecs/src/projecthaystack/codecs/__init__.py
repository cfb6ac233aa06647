"""Project Haystack wire formats.

Each format is a module with the same verbs: ``decode_grid`` and ``encode_grid``, plus
the value or record forms its format has.  Decoders take ``bytes`` or ``str`` and raise
:class:`~projecthaystack.kinds.DecodeError` (a ``ValueError``) that says where.

- :mod:`projecthaystack.codecs.zinc`: Zinc 3.0 (and the 2.0 grids the spec still shows)
- :mod:`projecthaystack.codecs.json`: JSON v4 (Hayson) and v3
- :mod:`projecthaystack.codecs.trio`: Trio records
- :mod:`projecthaystack.codecs.csv`: CSV export, and a read that returns strings

The same code runs compiled with mypyc where it was built (a wheel built with a C
compiler, or ``python3 tools/dev.py compile`` in a clone), else as pure Python;
``HAYSTACK_IMPL=python`` or ``compiled`` picks one, and ``IMPLEMENTATION`` says which
runs.

>>> from projecthaystack.codecs import codec_for_mime
>>> grid = codec_for_mime("text/zinc").decode(b'ver:"3.0"\\nsite\\nM\\n')
>>> codec_for_mime("application/json").encode(grid)
b'{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"site"}],"rows":[{"site":{"_kind":"marker"}}]}'
"""

from . import csv as csv
from . import json as json
from . import trio as trio
from . import zinc as zinc
from .__about__ import __version__ as __version__
from ._errors import UnknownFormatError as UnknownFormatError
from ._impl import IMPLEMENTATION as IMPLEMENTATION
from ._limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._limits import Limits as Limits
from ._range import parse_datetime as parse_datetime
from ._range import parse_range as parse_range
from ._registry import CODECS as CODECS
from ._registry import Codec as Codec
from ._registry import codec_for_mime as codec_for_mime
from ._registry import codec_for_name as codec_for_name
from ._registry import negotiate as negotiate

__all__ = [
    "CODECS",
    "DEFAULT_LIMITS",
    "IMPLEMENTATION",
    "Codec",
    "Limits",
    "UnknownFormatError",
    "codec_for_mime",
    "codec_for_name",
    "csv",
    "json",
    "negotiate",
    "parse_datetime",
    "parse_range",
    "trio",
    "zinc",
]

for _name in (
    "Codec",
    "Limits",
    "UnknownFormatError",
    "codec_for_mime",
    "codec_for_name",
    "negotiate",
    "parse_datetime",
    "parse_range",
):
    globals()[_name].__module__ = __name__
del _name
