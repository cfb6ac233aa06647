"""The bench report: what the benchmarks printed, as data (``run.py --json``)."""

from __future__ import annotations

from typing import Any


def tables(text: str) -> list[dict[str, Any]]:
    """Every Markdown table in ``text``, with the last heading line (``#``) above it and,
    as ``notes``, the paragraphs after it that say why a target is not met (``Not met``):
    the floor of the approach taken, measured in the same run.

    >>> t = tables("## Codecs\\n\\n| op | ratio |\\n|---|---:|\\n| decode | 2.1x |\\n\\n"
    ...            "Not met, decode: the floor is 1.9x.\\n")
    >>> t[0]["title"], t[0]["rows"], t[0]["notes"]
    ('Codecs', [['decode', '2.1x']], ['Not met, decode: the floor is 1.9x.'])
    """
    found: list[dict[str, Any]] = []
    heading, current, last = "", None, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            heading, current, last = line.lstrip("#").strip(), None, None
        elif line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split(" | ")]
            if current is None:
                current = last = {"title": heading, "columns": cells, "rows": [], "notes": []}
                found.append(current)
            elif not set(line) <= set("|-: "):  # not the |---|---:| line
                current["rows"].append(cells)
        else:
            current = None
            if line.startswith("Not met") and last is not None:
                last["notes"].append(line)
    return found
