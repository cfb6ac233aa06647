"""The bench report: what the benchmarks printed, as data (``run.py --json``)."""

from __future__ import annotations

from typing import Any


def tables(text: str) -> list[dict[str, Any]]:
    """Every Markdown table in ``text``, with the last heading line (``#``) above it."""
    found: list[dict[str, Any]] = []
    heading, current = "", None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            heading, current = line.lstrip("#").strip(), None
        elif line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split(" | ")]
            if current is None:
                current = {"title": heading, "columns": cells, "rows": []}
                found.append(current)
            elif not set(line) <= set("|-: "):  # not the |---|---:| line
                current["rows"].append(cells)
        else:
            current = None
    return found
