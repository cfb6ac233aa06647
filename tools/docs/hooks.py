"""MkDocs hooks of the documentation site (named under ``hooks`` in ``mkdocs.yml``).

The diagrams are drawn by ``tools/docs/diagrams.py`` at build time: a page's line
``<!-- diagram: NAME -->`` becomes that picture, and an unknown name fails the build.

The benchmark charts are drawn at build time from ``docs/benchmarks/results.json``, the
report that ``python3 tools/dev.py bench --json docs/benchmarks/results.json`` writes, so
no picture is pasted by hand and every build shows the committed figures. The charts
are added to the site as generated files (nothing is written into ``docs/``), and the
line ``<!-- benchmark charts -->`` of a page becomes one figure per chart.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPORT = "benchmarks/results.json"
FOLDER = "benchmarks/charts"
MARKER = "<!-- benchmark charts -->"


DIAGRAM = re.compile(r"^<!-- diagram: ([\w-]+) -->$", re.M)
DIAGRAMS = "diagrams"


def _module(name: str) -> ModuleType:
    # Loaded by path: hooks are loaded by file, with tools/docs not on sys.path.
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"projecthaystack_docs_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_figures: list[tuple[str, str, str, list[str]]] = []  # (bench, title, site path, notes)
_titles: dict[str, str] = {}  # diagram name -> its title


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add one SVG per benchmark table of the committed report."""
    _figures.clear()
    report = json.loads((Path(config.docs_dir) / REPORT).read_text(encoding="utf-8"))
    for name, (chart, svg) in _module("charts").render(report).items():
        uri = f"{FOLDER}/{name}"
        files.append(File.generated(config, uri, content=svg))
        _figures.append((chart.bench, chart.title, uri, chart.notes))
    diagrams = _module("diagrams")
    _titles.clear()
    for name, diagram in diagrams.DIAGRAMS.items():
        svg = diagrams.render(name)
        files.append(File.generated(config, f"{DIAGRAMS}/{name}.svg", content=svg))
        _titles[name] = diagram.title
    return files


def on_page_markdown(markdown: str, page: Page, **kwargs: Any) -> str:
    """Put the diagrams and the charts where a page asks for them."""
    here = posixpath.dirname(page.file.src_uri)

    def diagram(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _titles:
            raise PluginError(f"{page.file.src_uri}: no diagram called {name!r}")
        src = posixpath.relpath(f"{DIAGRAMS}/{name}.svg", here or ".")
        return f"![{_titles[name]}]({src})"

    markdown = DIAGRAM.sub(diagram, markdown)
    if MARKER not in markdown:
        return markdown
    blocks = []
    for bench, title, uri, notes in _figures:
        src = posixpath.relpath(uri, here or ".")
        name = f"{bench}: {title}" if title else bench
        blocks.append(f"### {name}\n\n![{name}]({src})\n")
        blocks.extend(f"{note}\n" for note in notes)
    return markdown.replace(MARKER, "\n".join(blocks))
