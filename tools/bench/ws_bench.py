"""Bytes on the wire over the WebSocket, with and without per-message deflate.

Our server serves the demo building on 127.0.0.1; the WebSocket client talks to it
through a TCP relay in this process that counts the bytes each way.  Each message is
measured on a fresh connection (after an ``about`` that warms it up), so what deflate
learned from earlier messages does not flatter it; the same bytes are sent with and
without compression.  The numbers are counts, not times: they do not depend on the
machine.

    python3 tools/dev.py bench ws
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import random
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

ADMIN = ("admin", "correct-horse-battery")
SAMPLES = 10_000


class Relay:
    """A TCP relay on 127.0.0.1 to ``port`` that counts the bytes in each direction."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.up = 0  # client to server
        self.down = 0  # server to client
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    setattr(self, way, getattr(self, way) + len(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


@contextlib.contextmanager
def _server() -> Iterator[str]:
    from projecthaystack.server import MemoryStore, create_app, demo_building
    from projecthaystack.server.testing import serve

    building = demo_building(sites=2, ahus=2, vavs=5, days=1)
    app = create_app(MemoryStore(), admin=ADMIN, on_startup=[building.load])
    with serve(app) as url:
        yield url


async def _measure(
    relay: Relay, url: str, compression: bool, op: Callable[[Any], Awaitable[object]]
) -> tuple[int, int]:
    from projecthaystack.client import AsyncWebSocketClient

    async with AsyncWebSocketClient(url, *ADMIN, compression=compression) as ws:
        assert ws.compressed == compression
        await ws.about()
        relay.reset()
        await op(ws)
        return relay.up, relay.down


def main() -> None:
    """Measure and print a table."""
    from projecthaystack.client import Client
    from projecthaystack.kinds import Number, Ref, tz_from_name

    with _server() as url:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        relay = Relay(port)
        relayed = f"http://127.0.0.1:{relay.port}/api"
        with Client(url, *ADMIN) as c:
            points = [r["id"] for r in c.read("point")]
            his = next(r for r in c.read('point and his and kind=="Number" and unit'))
            tz = tz_from_name(his["tz"])
            # Steps in UTC: wall-clock steps would fold over a DST change.
            utc = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            stamps = [(utc + dt.timedelta(minutes=15 * i)).astimezone(tz) for i in range(SAMPLES)]
            # A daily swing plus noise, to two decimals: as compressible as real readings.
            rng = random.Random(1)
            swing = [60 + 8 * math.sin(i * math.tau / 96) for i in range(SAMPLES)]
            values = [Number(round(v + rng.gauss(0, 1), 2), his["unit"]) for v in swing]
            c.his_write(his["id"], zip(stamps, values, strict=True))
        start, end = stamps[0], stamps[-1] + dt.timedelta(minutes=1)
        point: Ref = his["id"]

        async def poll(ws: Any) -> None:
            wid = (await ws.watch_sub(points[:1], dis="bench")).meta["watchId"]
            await ws.watch_sub(points, watch_id=wid)
            relay.reset()
            assert len(await ws.watch_poll(wid, refresh=True)) == len(points)

        async def his_read(ws: Any) -> None:
            assert len(await ws.his_read(point, (start, end))) == SAMPLES

        cases: list[tuple[str, Callable[[Any], Awaitable[object]]]] = [
            (f"watchPoll (refresh) of {len(points)} points", poll),
            (f"hisRead of {SAMPLES:,} samples", his_read),
        ]
        rows = []
        for name, op in cases:
            plain = asyncio.run(_measure(relay, relayed, False, op))
            packed = asyncio.run(_measure(relay, relayed, True, op))
            rows.append((name, plain, packed))
        relay.close()

    x = "\u00d7"
    print("\nWebSocket bytes on the wire (server to client / client to server), one message")
    print("| message | plain | deflate | deflate / plain |")
    print("|---|---:|---:|---:|")
    for name, (p_up, p_down), (d_up, d_down) in rows:
        print(
            f"| {name} | {p_down:,} / {p_up:,} | {d_down:,} / {d_up:,} | "
            f"{d_down / p_down:.2f}{x} / {d_up / p_up:.2f}{x} |"
        )


if __name__ == "__main__":
    main()
