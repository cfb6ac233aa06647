"""Benchmarks, reported as ratios measured in one run (never lone absolute times).

    python3 tools/dev.py bench            # every benchmark
    python3 tools/dev.py bench codecs     # one of them

Each benchmark times our operation and its floor (``orjson`` on the same building) with
the same method in the same process, interleaved, and prints the median of each and
their ratio; where haystack-py (``hs_py``) is importable it is timed the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client_bench
import codecs_bench
import filter_bench
import server_bench

BENCHES = {
    "codecs": codecs_bench.main,
    "filter": filter_bench.main,
    "server": server_bench.main,
    "client": client_bench.main,
}


def main(argv: list[str]) -> int:
    """Run the named benchmarks, or all of them."""
    names = argv or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; have {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        BENCHES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
