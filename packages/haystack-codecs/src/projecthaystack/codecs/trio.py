"""Trio, the hand-authoring record format (``text/trio``).

>>> from projecthaystack.codecs import trio
>>> trio.decode_dicts("id:@s1\\nsite\\n")[0]["site"]
Marker
"""

from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION

# One implementation runs, picked by HAYSTACK_IMPL (see _impl): the types and the
# documentation are the pure-Python modules', which the compiled ones are built from.
if TYPE_CHECKING or IMPLEMENTATION == "python":
    from ._trio import decode_dicts as decode_dicts
    from ._trio import decode_grid as decode_grid
    from ._trio import encode_dicts as encode_dicts
    from ._trio import encode_grid as encode_grid
    from ._trio import encode_grid_bytes as encode_grid_bytes
else:
    from ._compiled._trio import decode_dicts as decode_dicts
    from ._compiled._trio import decode_grid as decode_grid
    from ._compiled._trio import encode_dicts as encode_dicts
    from ._compiled._trio import encode_grid as encode_grid
    from ._compiled._trio import encode_grid_bytes as encode_grid_bytes

__all__ = ["decode_dicts", "decode_grid", "encode_dicts", "encode_grid", "encode_grid_bytes"]

# Show the public module in tracebacks, reprs and help() rather than the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
