"""Haystack JSON: version 4 (``application/json``, the default) and version 3
(``application/vnd.haystack+json;version=3``), chosen with ``version=``.

>>> from projecthaystack.codecs import json
>>> json.decode_value('{"_kind": "marker"}')
Marker
"""

from ._impl import use_compiled as _use_compiled
from ._json import decode_grid as decode_grid
from ._json import decode_value as decode_value
from ._json import encode_grid as encode_grid
from ._json import encode_grid_bytes as encode_grid_bytes
from ._json import encode_value as encode_value
from ._json import encode_value_bytes as encode_value_bytes

__all__ = [
    "decode_grid",
    "decode_value",
    "encode_grid",
    "encode_grid_bytes",
    "encode_value",
    "encode_value_bytes",
]

# The compiled twins of these functions when they run (HAYSTACK_IMPL, see _impl);
# the imports above are what the types and the documentation describe.
_use_compiled(globals(), __all__)

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
