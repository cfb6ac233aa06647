"""What the WebSocket client adds to httpx-ws: per-message deflate (RFC 7692, which
httpx-ws does not negotiate) and a bound on the size of every message it receives.

The bound counts what a message becomes once inflated, so a compression bomb (a few
kilobytes that inflate to gigabytes) ends the connection with close code 1009 (message
too big) instead of exhausting memory.  Inflating is done a kilobyte of input at a time,
so no single step can produce more than about a megabyte past the bound (deflate
inflates at most about 1,000 to 1).

Everything here uses only public names of wsproto and httpx-ws: wsproto's
``PerMessageDeflate`` does the (de)compression and is wrapped by an ``Extension`` that
counts; httpx-ws builds its session through ``session_class``.
"""

from __future__ import annotations

from typing import Any, Final

import wsproto
from httpx_ws import AsyncWebSocketSession
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["DEFLATE", "READ_SIZE", "BoundedMessages", "offer", "session_class"]

DEFLATE: Final = "permessage-deflate"
# Bytes asked of the socket per read (httpx-ws calls this max_message_size_bytes, but it
# is a read size, not a bound on messages: ours is enforced by BoundedMessages).
READ_SIZE: Final = 64 * 1024
# Compressed input is inflated this much at a time, so that one step stays small.
_STEP: Final = 1024


class BoundedMessages(Extension):
    """An extension that bounds the size of each received message after inflation,
    and inflates it with ``deflate`` (a negotiated ``PerMessageDeflate``) if given.

    Always enabled: without ``deflate`` it claims no reserved bit and only counts.
    """

    def __init__(self, max_size: int, deflate: PerMessageDeflate | None = None) -> None:
        self.name = DEFLATE if deflate is not None else "x-message-limit"
        self.max_size = max_size
        self.deflate = deflate
        self._size = 0

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool | str:
        return self.deflate.offer() if self.deflate is not None else False

    def finalize(self, offer: str) -> None:
        if self.deflate is not None:
            self.deflate.finalize(offer)

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if self.deflate is not None:
            return self.deflate.frame_inbound_header(proto, opcode, rsv, payload_length)
        return RsvBits(False, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self.deflate is None:
            return self._count(data)
        out = bytearray()
        for start in range(0, len(data), _STEP):
            piece = self.deflate.frame_inbound_payload_data(proto, data[start : start + _STEP])
            if isinstance(piece, CloseReason):
                return piece
            counted = self._count(piece)
            if isinstance(counted, CloseReason):
                return counted
            out += counted
        return bytes(out)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        result = None
        if self.deflate is not None:
            result = self.deflate.frame_inbound_complete(proto, fin)
            if isinstance(result, bytes) and isinstance(self._count(result), CloseReason):
                return CloseReason.MESSAGE_TOO_BIG
        if fin:
            self._size = 0
        return result

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if self.deflate is not None:
            return self.deflate.frame_outbound(proto, opcode, rsv, data, fin)
        return rsv, data

    def _count(self, data: bytes) -> bytes | CloseReason:
        self._size += len(data)
        if self._size > self.max_size:
            return CloseReason.MESSAGE_TOO_BIG
        return data


def offer() -> str:
    """The ``Sec-WebSocket-Extensions`` value that offers per-message deflate."""
    return f"{DEFLATE}; {PerMessageDeflate().offer()}"


def negotiated(header: str | None, max_size: int) -> BoundedMessages:
    """The extension for a connection, from the server's ``Sec-WebSocket-Extensions``
    answer: inflating when it accepted deflate, counting either way."""
    for item in (header or "").split(","):
        if item.split(";", 1)[0].strip().lower() == DEFLATE:
            deflate = PerMessageDeflate()
            deflate.finalize(item.strip())
            return BoundedMessages(max_size, deflate)
    return BoundedMessages(max_size)


class _Session(AsyncWebSocketSession):
    """httpx-ws's session, speaking through the extensions the handshake agreed on."""

    max_size: int = 64 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        header = self.response.headers.get("sec-websocket-extensions") if self.response else None
        self.extension = negotiated(header, self.max_size)
        # Made before any byte is read (the reading task starts when the session is
        # entered), so every frame goes through the extension.
        self.connection = wsproto.connection.Connection(
            wsproto.ConnectionType.CLIENT, extensions=[self.extension]
        )

    @property
    def compressed(self) -> bool:
        """Whether the server agreed to per-message deflate."""
        return self.extension.deflate is not None


def session_class(max_size: int) -> type[_Session]:
    """A session class bounding received messages to ``max_size`` bytes."""
    return type("HaystackWebSocketSession", (_Session,), {"max_size": max_size})
