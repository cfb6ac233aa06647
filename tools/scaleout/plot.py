"""Draw the scale-out rig's figure from its JSON results (matplotlib).

    python3 tools/dev.py hatch run scaleout:plot dist/scaleout/results.json docs/img/scaleout.png

Three panels: requests per second for 1, 2, 3 instances; CPU per request of each party
(servers, store, HAProxy, load driver), stacked; and p50/p99 latency per op on the most
instances; one series per store.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["draw", "main"]

_OPS = ("read", "nav", "hisRead", "hisWrite", "pointWrite", "pointArray", "watchPoll")
_PARTIES = (("servers", 1.0), ("store", 0.7), ("balancer", 0.45), ("driver", 0.25))
_PARTY_NAMES = {
    "servers": "servers",
    "store": "store",
    "balancer": "HAProxy",
    "driver": "load driver",
}
_COLOURS = {"postgresql": "#336791", "redis-cluster": "#d82c20", "redis": "#a41e11"}


def draw(report: dict[str, Any], dest: Path) -> None:
    """Write the figure for ``report`` (the rig's ``results.json``) to ``dest``."""
    # matplotlib is imported here, and only by this script: the rig itself needs none.
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    stores = [s for s in report["stores"] if s.get("steps")]
    fig, (ax_rps, ax_cpu, ax_lat) = plt.subplots(1, 3, figsize=(15, 4.4))
    width = 0.8 / max(1, len(stores))
    for n, store in enumerate(stores):
        colour = _COLOURS.get(store["store"], f"C{n}")
        steps = store["steps"]
        xs = [s["instances"] for s in steps]
        ax_rps.plot(xs, [s["rps"] for s in steps], "o-", color=colour, label=store["store"])
        ax_rps.plot(
            xs,
            [s["requests_per_core_s"] for s in steps],
            "s--",
            color=colour,
            alpha=0.6,
            label=f"{store['store']}: per core used (all parties)",
        )
        # CPU per request, stacked by party, one bar per store beside the other.
        bottom = [0.0] * len(steps)
        for party, alpha in _PARTIES:
            values = [s["cpu_ms_per_request"][party] for s in steps]
            ax_cpu.bar(
                [x + (n - (len(stores) - 1) / 2) * width for x in xs],
                values,
                width,
                bottom=bottom,
                color=colour,
                alpha=alpha,
                edgecolor="white",
                label=f"{store['store']}: {_PARTY_NAMES[party]}",
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        last = steps[-1]
        pos = [i + (n - (len(stores) - 1) / 2) * width for i in range(len(_OPS))]
        ax_lat.bar(
            pos,
            [last["ops"][op]["p99_ms"] for op in _OPS],
            width,
            color=colour,
            alpha=0.35,
            label=f"{store['store']} p99",
        )
        ax_lat.bar(
            pos,
            [last["ops"][op]["p50_ms"] for op in _OPS],
            width,
            color=colour,
            label=f"{store['store']} p50 ({last['instances']} instances)",
        )
    machine = report["machine"]
    config = report["config"]
    ax_rps.set(
        title="Throughput",
        xlabel="instances behind HAProxy",
        ylabel="requests per second",
        ylim=(0, None),
    )
    ax_cpu.set(
        title="CPU per request (servers, store, HAProxy, driver)",
        xlabel="instances behind HAProxy",
        ylabel="CPU milliseconds",
        ylim=(0, None),
    )
    ax_lat.set(title="Latency per op", ylabel="milliseconds")
    ax_lat.set_xticks(range(len(_OPS)))
    ax_lat.set_xticklabels(_OPS, rotation=30, ha="right")
    for ax in (ax_rps, ax_cpu):
        ax.set_xticks(sorted({s["instances"] for st in stores for s in st["steps"]}))
    top = max((s["steps"][-1]["ops"][op]["p99_ms"] for s in stores for op in _OPS), default=1.0)
    ax_lat.set_ylim(0, top * 1.45)  # room for the legend above the bars
    tallest = max(
        (s["cpu_ms_per_request"]["all"] for st in stores for s in st["steps"]), default=1.0
    )
    ax_cpu.set_ylim(0, tallest * 1.55)  # room for the legend above the bars
    for ax in (ax_rps, ax_cpu, ax_lat):
        ax.grid(alpha=0.3)
        where = "upper left" if ax is not ax_rps else "best"
        ax.legend(fontsize=7 if ax is ax_cpu else 8, loc=where, ncol=1 if ax is ax_rps else 2)
    got = [s["cores"]["rig"] for st in stores for s in st["steps"]]
    fig.suptitle(
        f"{config['clients']} clients, {config['workers']} workers per instance, "
        f"everything on one machine of {machine['cores']} cores (load driver included), "
        f"shared with other work: the rig got {min(got, default=0):g} to "
        f"{max(got, default=0):g} cores",
        fontsize=10,
    )
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """``plot.py RESULTS.json OUT.png``."""
    p = argparse.ArgumentParser(prog="scaleout-plot", description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="the rig's results.json")
    p.add_argument("out", type=Path, help="the PNG to write")
    args = p.parse_args(argv)
    draw(json.loads(args.results.read_text()), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
