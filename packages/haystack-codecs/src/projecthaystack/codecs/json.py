"""Haystack JSON: version 4 (``application/json``, the default) and version 3
(``application/vnd.haystack+json;version=3``), chosen with ``version=``.

>>> from projecthaystack.codecs import json
>>> json.decode_value('{"_kind": "marker"}')
Marker
"""

from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION

# One implementation runs, picked by HAYSTACK_IMPL (see _impl): the types and the
# documentation are the pure-Python modules', which the compiled ones are built from.
if TYPE_CHECKING or IMPLEMENTATION == "python":
    from ._json import decode_grid as decode_grid
    from ._json import decode_value as decode_value
    from ._json import encode_grid as encode_grid
    from ._json import encode_grid_bytes as encode_grid_bytes
    from ._json import encode_value as encode_value
    from ._json import encode_value_bytes as encode_value_bytes
else:
    from ._compiled._json import decode_grid as decode_grid
    from ._compiled._json import decode_value as decode_value
    from ._compiled._json import encode_grid as encode_grid
    from ._compiled._json import encode_grid_bytes as encode_grid_bytes
    from ._compiled._json import encode_value as encode_value
    from ._compiled._json import encode_value_bytes as encode_value_bytes

__all__ = [
    "decode_grid",
    "decode_value",
    "encode_grid",
    "encode_grid_bytes",
    "encode_value",
    "encode_value_bytes",
]

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
