"""The WebSocket client's extension: per-message deflate both ways, and a bound on what a
received message inflates to (a compression bomb is refused with 1009 after a few
megabytes, not after it has filled memory).  Frames are fed to wsproto directly; the
same against haystack-server over a socket is in the server's tests."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
import wsproto
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage
from wsproto.extensions import PerMessageDeflate

from projecthaystack.client._wsext import BoundedMessages, negotiated, offer


def _pair(max_size: int, accepted: str | None) -> tuple[Connection, Connection]:
    server_ext = PerMessageDeflate()
    if accepted is not None:
        server_ext.finalize(accepted)
    server = Connection(ConnectionType.SERVER, extensions=[server_ext] if accepted else [])
    client = Connection(ConnectionType.CLIENT, extensions=[negotiated(accepted, max_size)])
    return server, client


def _received(conn: Connection, data: bytes) -> list[wsproto.events.Event]:
    conn.receive_data(data)
    return list(conn.events())


def test_the_offer_names_deflate() -> None:
    assert offer().startswith("permessage-deflate; ")
    assert negotiated("permessage-deflate; server_max_window_bits=15", 100).deflate is not None
    assert negotiated("x-other, permessage-deflate", 100).deflate is not None
    assert negotiated(None, 100).deflate is None
    assert negotiated("x-other", 100).deflate is None


@pytest.mark.parametrize("accepted", ["permessage-deflate", None])
def test_messages_both_ways(accepted: str | None) -> None:
    server, client = _pair(1 << 20, accepted)
    text = '{"id": 1, "grid": ' + '"row", ' * 2000 + "}"
    wire = server.send(TextMessage(data=text))
    if accepted:
        assert len(wire) < len(text) // 10  # compressed
        assert wire[0] & 0x40  # RSV1: a compressed frame
    assert [e.data for e in _received(client, wire) if isinstance(e, TextMessage)] == [text]
    # The client's messages are compressed too, and the server reads them.
    back = client.send(TextMessage(data=text))
    assert (len(back) < len(text) // 10) == bool(accepted)
    got = "".join(e.data for e in _received(server, back) if isinstance(e, TextMessage))
    assert got == text


@pytest.mark.parametrize("accepted", ["permessage-deflate", None])
def test_a_message_over_the_limit_is_refused_with_1009(accepted: str | None) -> None:
    server, client = _pair(1000, accepted)
    events = _received(client, server.send(TextMessage(data="x" * 1001)))
    assert [e.code for e in events if isinstance(e, CloseConnection)] == [1009]
    server, client = _pair(1000, accepted)
    events = _received(client, server.send(TextMessage(data="x" * 1000)))
    assert [len(e.data) for e in events if isinstance(e, TextMessage)] == [1000]


def _bomb_frame(inflated: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b" " * (1 << 20)
    body = b"".join(comp.compress(block) for _ in range(inflated >> 20))
    body = (body + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(body) >= 1 << 16
    return bytes([0xC1, 127]) + len(body).to_bytes(8, "big") + body  # unmasked: a server's


def test_a_compression_bomb_stops_early() -> None:
    client = Connection(
        ConnectionType.CLIENT,
        extensions=[BoundedMessages(1 << 20, negotiated("permessage-deflate", 1).deflate)],
    )
    frame = _bomb_frame(256 << 20)
    tracemalloc.start()
    try:
        events = _received(client, frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.code for e in events if isinstance(e, CloseConnection)] == [1009]
    assert peak < 16 << 20, f"peak {peak >> 20} MiB"  # not the 256 MiB the frame holds
