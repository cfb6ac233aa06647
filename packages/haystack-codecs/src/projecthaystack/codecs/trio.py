"""Trio, the hand-authoring record format (``text/trio``).

>>> from projecthaystack.codecs import trio
>>> trio.decode_dicts("id:@s1\\nsite\\n")[0]["site"]
Marker
"""

from ._impl import use_compiled as _use_compiled
from ._trio import decode_dicts as decode_dicts
from ._trio import decode_grid as decode_grid
from ._trio import encode_dicts as encode_dicts
from ._trio import encode_grid as encode_grid
from ._trio import encode_grid_bytes as encode_grid_bytes

__all__ = ["decode_dicts", "decode_grid", "encode_dicts", "encode_grid", "encode_grid_bytes"]

# The compiled twins of these functions when they run (HAYSTACK_IMPL, see _impl);
# the imports above are what the types and the documentation describe.
_use_compiled(globals(), __all__)

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
