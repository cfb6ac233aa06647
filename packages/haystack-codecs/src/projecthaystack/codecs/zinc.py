"""Zinc, the Haystack grid text format (``text/zinc``).

>>> from projecthaystack.codecs import zinc
>>> grid = zinc.decode_grid('ver:"3.0"\\ndis,area\\n"HQ",4500ft²\\n')
>>> zinc.encode_value(grid[0]["area"])
'4500ft²'
"""

from ._impl import use_compiled as _use_compiled
from ._zinc_read import decode_grid as decode_grid
from ._zinc_read import decode_value as decode_value
from ._zinc_read import read_value as read_value
from ._zinc_write import encode_grid as encode_grid
from ._zinc_write import encode_grid_bytes as encode_grid_bytes
from ._zinc_write import encode_value as encode_value

__all__ = [
    "decode_grid",
    "decode_value",
    "encode_grid",
    "encode_grid_bytes",
    "encode_value",
    "read_value",
]

# The compiled twins of these functions when they run (HAYSTACK_IMPL, see _impl);
# the imports above are what the types and the documentation describe.
_use_compiled(globals(), __all__)

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
