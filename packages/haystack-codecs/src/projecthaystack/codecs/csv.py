"""CSV (``text/csv``): the spec's lossy export, and a read that returns strings.

>>> from projecthaystack.codecs import csv
>>> from projecthaystack.kinds import Grid, Ref
>>> csv.encode_grid(Grid.from_rows([{"siteRef": Ref("s1", "HQ")}]))
'siteRef\\r\\n@s1 HQ\\r\\n'
"""

from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION

# One implementation runs, picked by HAYSTACK_IMPL (see _impl): the types and the
# documentation are the pure-Python modules', which the compiled ones are built from.
if TYPE_CHECKING or IMPLEMENTATION == "python":
    from ._csv import decode_grid as decode_grid
    from ._csv import encode_cell as encode_cell
    from ._csv import encode_grid as encode_grid
    from ._csv import encode_grid_bytes as encode_grid_bytes
else:
    from ._compiled._csv import decode_grid as decode_grid
    from ._compiled._csv import encode_cell as encode_cell
    from ._compiled._csv import encode_grid as encode_grid
    from ._compiled._csv import encode_grid_bytes as encode_grid_bytes

__all__ = ["decode_grid", "encode_cell", "encode_grid", "encode_grid_bytes"]

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
