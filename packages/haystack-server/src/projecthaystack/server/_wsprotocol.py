"""uvicorn's wsproto WebSocket protocol, with what a compressed message may inflate to
bounded step by step.

uvicorn (``ws_per_message_deflate``, on by default) agrees to per-message deflate and
refuses a message over ``ws_max_size`` with close code 1009, but it counts a message
only after wsproto has inflated what arrived in one read: up to 256 KiB of input, which
a compression bomb inflates to a quarter of a gigabyte.  This protocol hands wsproto the
input 8 KiB at a time instead, so no step inflates to more than about 8 MiB (deflate
inflates at most about 1,000 to 1) before the size is checked; the connection is then
closed with 1009 as before.

``haystack-server serve`` runs uvicorn with it (``ws=`` :data:`WS_PROTOCOL`, and
``ws_max_size`` from :attr:`ServerLimits.max_body`), and so does
:func:`projecthaystack.server.testing.serve`.
"""

from __future__ import annotations

from typing import Final

from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

__all__ = ["WS_PROTOCOL", "BoundedWSProtocol"]

WS_PROTOCOL: Final = "projecthaystack.server._wsprotocol:BoundedWSProtocol"
"""The protocol as uvicorn's ``ws`` setting names it (a string, so that worker
processes import it themselves)."""

_STEP: Final = 8 * 1024


class BoundedWSProtocol(WSProtocol):
    """uvicorn's wsproto protocol, fed at most 8 KiB of input at a time."""

    def data_received(self, data: bytes) -> None:
        if len(data) <= _STEP:
            super().data_received(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), _STEP):
            super().data_received(bytes(view[start : start + _STEP]))
            if self.transport.is_closing():  # refused (1009) or broken: drop the rest
                return
