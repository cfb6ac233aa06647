"""Per-message deflate on the WebSocket, both ways, and the bound on what a message may
inflate to: a compression bomb gets close code 1009, not the server's memory."""

from __future__ import annotations

import base64
import itertools
import os
import socket
import tracemalloc
import zlib
from typing import Any

import pytest

from projecthaystack.client import AsyncWebSocketClient, ResponseError
from projecthaystack.kinds import Ref
from projecthaystack.server import ServerConfig, ServerLimits

from .conftest import PASSWORDS, Live

pytestmark = pytest.mark.anyio


def ws_client(live: Live, **kwargs: Any) -> AsyncWebSocketClient:
    return AsyncWebSocketClient(live.url, "viewer", PASSWORDS["viewer"], timeout=20, **kwargs)


async def test_compression_is_on_by_default(live: Live) -> None:
    async with ws_client(live) as ws:
        assert ws.compressed
        assert [r["id"].id for r in await ws.read("site")] == ["s1", "s2"]
        assert len(await ws.read_ids([Ref("t1")])) == 1


async def test_compression_can_be_refused_by_either_side(make_live: Any) -> None:
    live = make_live()
    async with ws_client(live, compression=False) as ws:
        assert not ws.compressed
        assert len(await ws.read("site")) == 2
    plain = make_live(uvicorn={"ws_per_message_deflate": False})
    async with ws_client(plain) as ws:
        assert not ws.compressed
        assert len(await ws.read("site")) == 2


async def test_a_message_over_the_clients_limit_is_a_clear_error(live: Live) -> None:
    async with ws_client(live, max_message_size=1500) as ws:
        with pytest.raises(ResponseError, match=r"over the limit of 1500 bytes.*1009"):
            await ws.read("id")  # 2.3 kB once inflated
        # The client reconnects; a small answer fits.
        assert len(await ws.read("site")) == 2


# -- a compression bomb sent to the server, over a raw socket -------------------------------


def _handshake(url: str, token: str) -> tuple[socket.socket, str]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /api/ws HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            f"Authorization: BEARER authToken={token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection during the handshake"
        head += chunk
    return sock, head.decode("latin-1")


def _bomb(inflated: int) -> bytes:
    """One masked, compressed text frame of ``inflated`` bytes of spaces."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b" " * (1 << 20)
    body = b"".join(comp.compress(block) for _ in range(inflated >> 20))
    body += comp.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]  # RFC 7692: the 00 00 ff ff tail is left off
    mask = os.urandom(4)
    masked = bytes(b ^ m for b, m in zip(body, itertools.cycle(mask), strict=False))
    head = bytes([0xC1])  # FIN, RSV1 (compressed), text
    size = len(body)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + masked


def _close_code(sock: socket.socket) -> int:
    data = b""
    while True:
        while len(data) < 2:
            chunk = sock.recv(65536)
            assert chunk, "the connection ended without a close frame"
            data += chunk
        opcode, size = data[0] & 0x0F, data[1] & 0x7F
        start = 2 + {126: 2, 127: 8}.get(size, 0)
        while len(data) < start:
            data += sock.recv(65536)
        if size >= 126:
            size = int.from_bytes(data[2:start], "big")
        while len(data) < start + size:
            data += sock.recv(65536)
        if opcode == 0x8:
            return int.from_bytes(data[start : start + 2], "big")
        data = data[start + size :]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_compression_bomb_is_refused_with_1009(make_live: Any) -> None:
    limit = 1 << 20
    live = make_live(ServerConfig(limits=ServerLimits(max_body=limit)))
    token = live.token("viewer")
    sock, head = _handshake(live.url, token)
    with sock:
        assert head.startswith("HTTP/1.1 101")
        assert "permessage-deflate" in head.lower()
        frame = _bomb(256 << 20)  # 256 MiB of spaces, about 250 KiB on the wire
        tracemalloc.start()
        try:
            sock.sendall(frame)
            code = _close_code(sock)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert code == 1009
    # Inflated step by step and refused past 1 MiB: nowhere near the 256 MiB it holds.
    assert peak < 48 << 20, f"peak {peak >> 20} MiB"
    # The server is fine: a client still gets its answers.
    async with ws_client(live) as ws:
        assert len(await ws.read("site")) == 2
