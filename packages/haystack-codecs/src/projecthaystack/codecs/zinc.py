"""Zinc, the Haystack grid text format (``text/zinc``).

>>> from projecthaystack.codecs import zinc
>>> grid = zinc.decode_grid('ver:"3.0"\\ndis,area\\n"HQ",4500ft²\\n')
>>> zinc.encode_value(grid[0]["area"])
'4500ft²'
"""

from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION

# One implementation runs, picked by HAYSTACK_IMPL (see _impl): the types and the
# documentation are the pure-Python modules', which the compiled ones are built from.
if TYPE_CHECKING or IMPLEMENTATION == "python":
    from ._zinc_read import decode_grid as decode_grid
    from ._zinc_read import decode_value as decode_value
    from ._zinc_read import read_value as read_value
    from ._zinc_write import encode_grid as encode_grid
    from ._zinc_write import encode_grid_bytes as encode_grid_bytes
    from ._zinc_write import encode_value as encode_value
else:
    from ._compiled._zinc_read import decode_grid as decode_grid
    from ._compiled._zinc_read import decode_value as decode_value
    from ._compiled._zinc_read import read_value as read_value
    from ._compiled._zinc_write import encode_grid as encode_grid
    from ._compiled._zinc_write import encode_grid_bytes as encode_grid_bytes
    from ._compiled._zinc_write import encode_value as encode_value

__all__ = [
    "decode_grid",
    "decode_value",
    "encode_grid",
    "encode_grid_bytes",
    "encode_value",
    "read_value",
]

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
