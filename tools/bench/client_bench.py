"""Client CPU per request: a read of 881 Alpha rows, against the codec's decode alone.

Our server runs in its own process (see server_bench); this process measures its own
CPU time (``time.process_time``) while the client reads, and compares it with decoding
the same response bytes with the codec alone: the rest is the client's overhead
(request building, auth header, httpx, error checks).  haystack-py's async client reads
from the same server, measured the same way, when it is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import time
from collections.abc import Callable

import server_bench as sb

READS = 40
ROUNDS = 7


def _cpu_ms_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1000 / n


def main() -> None:
    """Run the comparison and print a table."""
    if not sb.ALPHA.exists():
        print("client bench: no Alpha building (set HAYSTACK_BUILDINGS); skipped")
        return
    import httpx

    from projecthaystack.client import Client
    from projecthaystack.codecs import codec_for_name

    server = sb.Server("ours")
    try:
        results: dict[str, list[float]] = {}
        for fmt in ("json", "zinc"):
            codec = codec_for_name(fmt)
            with httpx.Client(headers=server.headers) as http:
                mime = codec.mime
                body = http.get(
                    f"{server.url}/read",
                    params={"filter": sb.READ_FILTER},
                    headers={"Accept": mime},
                ).content
            with Client(server.url, sb.USER, sb.PASSWORD, fmt=fmt) as client:
                assert len(client.read(sb.READ_FILTER)) == 881
                for _ in range(ROUNDS):
                    results.setdefault(f"{fmt} decode", []).append(
                        _cpu_ms_per_call(lambda c=codec, b=body: c.decode(b), READS)
                    )
                    results.setdefault(f"{fmt} client", []).append(
                        _cpu_ms_per_call(lambda c=client: c.read(sb.READ_FILTER), READS)
                    )
        if importlib.util.find_spec("hs_py") is not None:
            from hs_py import Client as HsClient

            async def hspy() -> None:
                async with HsClient(server.url, sb.USER, sb.PASSWORD) as c:
                    assert len(await c.read(sb.READ_FILTER)) == 881
                    for _ in range(ROUNDS):
                        start = time.process_time()
                        for _ in range(READS):
                            await c.read(sb.READ_FILTER)
                        results.setdefault("haystack-py client", []).append(
                            (time.process_time() - start) * 1000 / READS
                        )

            asyncio.run(hspy())
    finally:
        server.stop()
    x = "\u00d7"
    med = {k: statistics.median(v) for k, v in results.items()}
    print("\n## Client CPU per read of 881 Alpha rows (client process only)\n")
    print("| wire | codec decode (ms) | client read (ms) | client / decode | target |")
    print("|---|---:|---:|---:|---:|")
    for fmt in ("json", "zinc"):
        d, c = med[f"{fmt} decode"], med[f"{fmt} client"]
        print(f"| {fmt} | {d:.2f} | {c:.2f} | {c / d:.2f}{x} | ≤ 1.3{x} |")
    if "haystack-py client" in med:
        h = med["haystack-py client"]
        ratio = h / med["json decode"]
        print(f"| haystack-py client (json) | | {h:.2f} | {ratio:.2f}{x} of our decode | |")


if __name__ == "__main__":
    main()
