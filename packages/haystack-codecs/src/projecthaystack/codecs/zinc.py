"""Zinc, the Haystack grid text format (``text/zinc``).

>>> from projecthaystack.codecs import zinc
>>> grid = zinc.decode_grid('ver:"3.0"\\ndis,area\\n"HQ",4500ft²\\n')
>>> zinc.encode_value(grid[0]["area"])
'4500ft²'
"""

from ._zinc import decode_grid as decode_grid
from ._zinc import decode_value as decode_value
from ._zinc import encode_grid as encode_grid
from ._zinc import encode_value as encode_value
from ._zinc import read_value as read_value

__all__ = ["decode_grid", "decode_value", "encode_grid", "encode_value", "read_value"]
