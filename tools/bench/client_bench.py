"""The client's import time, and its CPU per request.

Import: ``python -c "import projecthaystack.client"`` in fresh processes, against the
bare interpreter (``python -c "pass"``, the floor) and against phable and haystack-py
(``hs_py``) where they are installed, all interleaved round by round; what a module
adds is its process's CPU time less the floor's.  Bytecode is compiled once, in a
temporary directory, as an installed package has it.  Every CLI call pays this, so the
CLI's ``--help`` is timed too.

Requests: a read of 881 Alpha rows, against the codec's decode alone.  Our server runs
in its own process (see server_bench); this process measures its own CPU time
(``time.process_time``) while the client reads, and compares it with decoding the same
response bytes with the codec alone: the rest is the client's overhead (request
building, auth header, httpx, error checks).  haystack-py's async client reads from the
same server, measured the same way, when it is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import server_bench as sb

READS = 40
ROUNDS = 7
IMPORT_ROUNDS = 21
IMPORT_TARGET_MS = 100.0
PHABLE_MS = 113.0  # phable's import when the target was set (issue 18): the ratio target


def _import_commands() -> dict[str, str]:
    """The code each process runs, by the name it is reported under."""
    commands = {
        "python (bare interpreter)": "pass",
        "import projecthaystack.client": "import projecthaystack.client",
        # What the console script runs (projecthaystack.client._cli:main).
        "haystack --help": (
            "import contextlib\n"
            "from projecthaystack.client._cli import main\n"
            "with contextlib.suppress(SystemExit):\n"
            "    main(['--help'])"
        ),
    }
    for module in ("phable", "hs_py"):
        if importlib.util.find_spec(module) is not None:
            commands[f"import {module}"] = f"import {module}"
    return commands


def _child_cpu_ms(code: str, env: dict[str, str]) -> float:
    """CPU time (user + system) of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def import_times() -> None:
    """Time the imports in fresh processes and print a table (import = process - floor)."""
    commands = _import_commands()
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for code in commands.values():  # compile the bytecode, warm the file cache
            _child_cpu_ms(code, env)
        for _ in range(IMPORT_ROUNDS):
            for name, code in commands.items():
                samples[name].append(_child_cpu_ms(code, env))
    med = {name: statistics.median(v) for name, v in samples.items()}
    floor = med.pop("python (bare interpreter)")
    # The yardstick: phable where installed (the target was set against its 113 ms).
    base_name = "import phable" if "import phable" in med else "import projecthaystack.client"
    base = med[base_name] - floor
    base_label = base_name.removeprefix("import ")
    x = "\u00d7"
    print("\n## Import time, CPU-ms per fresh process, less the bare interpreter\n")
    print(f"Bare interpreter: {floor:.1f} ms; medians of {IMPORT_ROUNDS} interleaved rounds.\n")
    print(f"| what | process (ms) | import (ms) | import / {base_label} | target |")
    print("|---|---:|---:|---:|---:|")
    for name, total in med.items():
        cost = total - floor
        target = ""
        if name == "import projecthaystack.client":
            target = f"≤ {IMPORT_TARGET_MS:.0f} ms"
            if base_name == "import phable":
                target += f" (≤ {IMPORT_TARGET_MS / PHABLE_MS:.2f}{x})"
        print(f"| {name} | {total:.1f} | {cost:.1f} | {cost / base:.2f}{x} | {target} |")


def _cpu_ms_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1000 / n


def main() -> None:
    """Run the comparisons and print their tables."""
    import_times()
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
