"""MkDocs hooks of the documentation site (named under ``hooks`` in ``mkdocs.yml``).

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
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPORT = "benchmarks/results.json"
FOLDER = "benchmarks/charts"
MARKER = "<!-- benchmark charts -->"


def _charts_module() -> ModuleType:
    # Loaded by path: hooks are loaded by file, with tools/docs not on sys.path.
    path = Path(__file__).with_name("charts.py")
    spec = importlib.util.spec_from_file_location("projecthaystack_docs_charts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_figures: list[tuple[str, str, str]] = []  # (bench, title, site path) in report order


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add one SVG per benchmark table of the committed report."""
    _figures.clear()
    report = json.loads((Path(config.docs_dir) / REPORT).read_text(encoding="utf-8"))
    for name, (chart, svg) in _charts_module().render(report).items():
        uri = f"{FOLDER}/{name}"
        files.append(File.generated(config, uri, content=svg))
        _figures.append((chart.bench, chart.title, uri))
    return files


def on_page_markdown(markdown: str, page: Page, **kwargs: Any) -> str:
    """Put the charts where a page asks for them."""
    if MARKER not in markdown:
        return markdown
    here = posixpath.dirname(page.file.src_uri)
    blocks = []
    for bench, title, uri in _figures:
        src = posixpath.relpath(uri, here or ".")
        blocks.append(f"### {bench}: {title}\n\n![{bench}: {title}]({src})\n")
    return markdown.replace(MARKER, "\n".join(blocks))
