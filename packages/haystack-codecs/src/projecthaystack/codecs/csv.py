"""CSV (``text/csv``): the spec's lossy export, and a read that returns strings.

>>> from projecthaystack.codecs import csv
>>> from projecthaystack.kinds import Grid, Ref
>>> csv.encode_grid(Grid.from_rows([{"siteRef": Ref("s1", "HQ")}]))
'siteRef\\r\\n@s1 HQ\\r\\n'
"""

from ._csv import decode_grid as decode_grid
from ._csv import encode_cell as encode_cell
from ._csv import encode_grid as encode_grid

__all__ = ["decode_grid", "encode_cell", "encode_grid"]
