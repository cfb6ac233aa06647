"""Trio, the hand-authoring record format (``text/trio``).

>>> from projecthaystack.codecs import trio
>>> trio.decode_dicts("id:@s1\\nsite\\n")[0]["site"]
Marker
"""

from ._trio import decode_dicts as decode_dicts
from ._trio import decode_grid as decode_grid
from ._trio import encode_dicts as encode_dicts
from ._trio import encode_grid as encode_grid

__all__ = ["decode_dicts", "decode_grid", "encode_dicts", "encode_grid"]
