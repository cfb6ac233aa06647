"""Benchmark charts for the documentation, drawn from what the benchmarks wrote.

``python3 tools/dev.py bench --json docs/benchmarks/results.json`` records every table the
benchmarks print. This module draws one SVG chart per table: a bar per operation and
per ratio column (ours, haystack-py), the floor at 1 and each target as a mark. The
documentation build calls :func:`render` (see ``tools/docs/hooks.py``); from the shell,

    python tools/docs/charts.py docs/benchmarks/results.json OUTDIR

writes the same SVG files, byte for byte the same for the same report.
"""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

X = "\u00d7"  # the multiplication sign the benchmarks print
RATIO = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*[\u00d7x](?![a-z])")
TARGET = re.compile(r"≤\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*[\u00d7x]")


@dataclass
class Chart:
    """One table of a report, as the bars of one chart."""

    bench: str
    title: str
    labels: list[str]
    series: dict[str, list[float | None]] = field(default_factory=dict)
    targets: list[float | None] = field(default_factory=list)
    floor: str = "the floor"
    notes: list[str] = field(default_factory=list)
    """Why a target is not met: the floor of the approach, measured in the same run."""

    @property
    def slug(self) -> str:
        """A file name for the chart, from its benchmark and title."""
        words = re.sub(r"[^a-z0-9]+", "-", f"{self.bench} {self.title}".lower()).strip("-")
        return words[:80].rstrip("-")


def ratio(cell: str) -> float | None:
    """The ratio a cell starts with (``"2.28\u00d7 ✗"`` is 2.28), or None.

    >>> ratio("2.28\u00d7 ✗"), ratio("1.70x"), ratio("3.8 µs"), ratio("n/a")
    (2.28, 1.7, None, None)
    """
    match = RATIO.match(cell)
    return float(match.group(1).replace(",", "")) if match else None


def _series_name(column: str) -> str:
    # "ours / floor" and "haystack-py / floor" are named by what is divided.
    return column.split(" / ")[0].strip() or column


def charts(report: dict[str, Any]) -> list[Chart]:
    """The charts of a report written by ``tools/bench/run.py --json``.

    A table gets a chart when some column holds ratios (cells like ``1.25x``); the first
    column names the operations and a column headed ``target`` gives the marks.
    """
    out: list[Chart] = []
    for bench, tables in report["benches"].items():
        for table in tables:
            columns: list[str] = table["columns"]
            rows: list[list[str]] = [r for r in table["rows"] if len(r) == len(columns)]
            if not rows:
                continue
            chart = Chart(bench, table["title"], [r[0] for r in rows])
            chart.notes = list(table.get("notes", []))
            for i, column in enumerate(columns[1:], start=1):
                if column == "target":
                    found = [TARGET.search(r[i]) for r in rows]
                    chart.targets = [float(m.group(1)) if m else None for m in found]
                    continue
                values = [ratio(r[i]) for r in rows]
                if any(v is not None for v in values):
                    chart.series[_series_name(column)] = values
                if " / " in column:
                    chart.floor = column.split(" / ", 1)[1].strip()
            if chart.series:
                out.append(chart)
    return out


def _wrap(label: str, width: int = 42) -> str:
    label = label.replace("`", "")
    words, lines, line = label.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def draw(chart: Chart, caption: str) -> bytes:
    """One chart as SVG bytes, the same bytes for the same input."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plt.rcParams["svg.hashsalt"] = "projecthaystack-docs"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, no glyph paths
    plt.rcParams["font.size"] = 9
    n, names = len(chart.labels), list(chart.series)
    height = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.42 * n * max(1, len(names) * 0.7)))
    colors = ["#3f51b5", "#ff9800", "#009688", "#9c27b0"]
    for k, name in enumerate(names):
        ys = [i + (k - (len(names) - 1) / 2) * height for i in range(n)]
        vals = chart.series[name]
        bars = ax.barh(
            [y for y, v in zip(ys, vals, strict=True) if v is not None],
            [v for v in vals if v is not None],
            height=height * 0.9,
            color=colors[k % len(colors)],
            label=name,
        )
        ax.bar_label(bars, fmt=f"%.2f{X}", padding=2, fontsize=8)
    for i, target in enumerate(chart.targets):
        if target is not None:
            ax.plot([target, target], [i - 0.45, i + 0.45], color="#d32f2f", lw=2)
    if any(t is not None for t in chart.targets):
        ax.plot([], [], color="#d32f2f", lw=2, label="target")
    ax.axvline(1.0, color="#616161", lw=1, ls="--", label=f"{chart.floor} = 1{X}")
    ax.set_yticks(range(n), [_wrap(label) for label in chart.labels])
    ax.invert_yaxis()
    biggest = max(v for vals in chart.series.values() for v in vals if v is not None)
    if biggest > 20:
        ax.set_xscale("log")
    ax.set_xlim(right=biggest * (1.6 if biggest > 20 else 1.15))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{X}"))
    ax.set_xlabel(f"time as a multiple of {chart.floor} (shorter is faster)\n{caption}")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def caption(report: dict[str, Any]) -> str:
    """Where the figures come from: the date, Python and machine of the run."""
    other = report.get("haystack_py")
    beside = f", haystack-py {other}" if other else ""
    return f"one run on {report['date']}, Python {report['python']}, {report['machine']}{beside}"


def render(report: dict[str, Any]) -> dict[str, tuple[Chart, bytes]]:
    """Every chart of a report by file name (``<slug>.svg``), with its SVG bytes."""
    text = caption(report)
    return {f"{c.slug}.svg": (c, draw(c, text)) for c in charts(report)}


def main(argv: list[str]) -> int:
    """Write the charts of the report ``argv[0]`` into the folder ``argv[1]``."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, (_, svg) in render(report).items():
        (out / name).write_bytes(svg)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
