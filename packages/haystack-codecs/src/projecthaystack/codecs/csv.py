"""CSV (``text/csv``): the spec's lossy export, and a read that returns strings.

>>> from projecthaystack.codecs import csv
>>> from projecthaystack.kinds import Grid, Ref
>>> csv.encode_grid(Grid.from_rows([{"siteRef": Ref("s1", "HQ")}]))
'siteRef\\r\\n@s1 HQ\\r\\n'
"""

from ._csv import decode_grid as decode_grid
from ._csv import encode_cell as encode_cell
from ._csv import encode_grid as encode_grid
from ._csv import encode_grid_bytes as encode_grid_bytes
from ._impl import use_compiled as _use_compiled

__all__ = ["decode_grid", "encode_cell", "encode_grid", "encode_grid_bytes"]

# The compiled twins of these functions when they run (HAYSTACK_IMPL, see _impl);
# the imports above are what the types and the documentation describe.
_use_compiled(globals(), __all__)

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
