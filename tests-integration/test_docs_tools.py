"""The tools behind the documentation site: the bench report, charts, diagrams, docstrings.

The charts and the griffe extension need the docs environment's libraries (matplotlib,
griffe), so those checks run there, through ``tools/dev.py``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks" / "results.json"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _in_docs_env(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dev.py"), "hatch", "run", "docs:python", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_bench_tables_become_data() -> None:
    run = _load(ROOT / "tools" / "bench" / "_report.py", "docs_test_bench_report")
    text = (
        "Python 3.13.0\n\n### Codecs on Alpha\n\n"
        "| operation | ours / floor | target |\n|---|---:|---:|\n"
        "| Zinc decode | 2.49\u00d7 \u2713 | \u2264 3.0\u00d7 |\n| Zinc encode | 5.13\u00d7 | |\n"
        "\nA note.\n| other | table |\n|---|---|\n| a | b |\n"
        "\nNot met, a: the floor of this approach is 1.9\u00d7.\n\n## Next\n\nNot met, none.\n"
    )
    assert run.tables(text) == [
        {
            "title": "Codecs on Alpha",
            "columns": ["operation", "ours / floor", "target"],
            "rows": [
                ["Zinc decode", "2.49\u00d7 \u2713", "\u2264 3.0\u00d7"],
                ["Zinc encode", "5.13\u00d7", ""],
            ],
            "notes": [],
        },
        {
            "title": "Codecs on Alpha",
            "columns": ["other", "table"],
            "rows": [["a", "b"]],
            "notes": ["Not met, a: the floor of this approach is 1.9\u00d7."],
        },
    ]


def test_the_committed_report_has_every_benchmark() -> None:
    report = json.loads(REPORT.read_text(encoding="utf-8"))
    assert {"codecs", "filter", "server", "client"} <= set(report["benches"])
    for tables in report["benches"].values():
        assert tables
        assert all(table["rows"] for table in tables)


def test_each_speed_target_the_report_misses_comes_with_its_floor() -> None:
    # Issue 18's rule: a target not met is followed by the measured floor of the approach
    # taken ("Not met, ..."), which the report keeps as the table's notes.
    report = json.loads(REPORT.read_text(encoding="utf-8"))
    for bench in ("codecs", "server"):
        for table in report["benches"][bench]:
            missed = [row[0] for row in table["rows"] if any("\u2717" in c for c in row)]
            assert len(table["notes"]) >= len(missed), (bench, table["title"], missed)
            assert all(note.startswith("Not met") for note in table["notes"])


def test_charts_are_drawn_from_the_report_the_same_every_time(tmp_path: Path) -> None:
    for out in ("a", "b"):
        done = _in_docs_env("tools/docs/charts.py", str(REPORT), str(tmp_path / out))
        assert done.returncode == 0, done.stderr
    first = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert first == sorted(p.name for p in (tmp_path / "b").iterdir())
    report = json.loads(REPORT.read_text(encoding="utf-8"))
    # One chart per table that holds ratios (a table of CPU-seconds has none).
    charts = _load(ROOT / "tools" / "docs" / "charts.py", "docs_test_charts")
    assert len(first) == len(charts.charts(report)) >= len(report["benches"])
    for name in first:
        svg = (tmp_path / "a" / name).read_bytes()
        assert svg == (tmp_path / "b" / name).read_bytes(), name
        ET.fromstring(svg)  # well-formed
    # Each chart shows the figures the report holds.
    codecs = (tmp_path / "a" / "codecs-codecs-on-alpha.svg").read_text(encoding="utf-8")
    zinc = next(r for r in report["benches"]["codecs"][0]["rows"] if r[0] == "Zinc decode")
    assert f"{float(zinc[3].split()[0].rstrip(chr(0xD7))):.2f}\u00d7" in codecs


def test_doctests_of_the_docs_tools() -> None:
    done = _in_docs_env("-m", "doctest", "tools/docs/charts.py", "tools/docs/griffe_markdown.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_diagrams_are_well_formed_svg_with_their_text() -> None:
    diagrams = _load(ROOT / "tools" / "docs" / "diagrams.py", "docs_test_diagrams")
    for name, diagram in diagrams.DIAGRAMS.items():
        svg = diagrams.render(name)
        assert svg == diagrams.render(name)
        root = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        assert root.find(f"{ns}title").text == diagram.title
        texts = {t.text for t in root.iter(f"{ns}text")}
        if isinstance(diagram, diagrams.Flow):
            assert {box.lines[0] for box in diagram.boxes.values()} <= texts
        else:
            assert set(diagram.participants) <= texts
    layers = diagrams.DIAGRAMS["layers"]
    assert {b.lines[0] for b in layers.boxes.values()} == {
        p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists()
    }


def test_every_public_module_has_an_api_page() -> None:
    """Each package and each public module (no leading underscore) is rendered somewhere."""
    rendered = {
        line.removeprefix("::: ").strip()
        for page in (ROOT / "docs" / "reference").glob("*.md")
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("::: ")
    }
    public = set()
    for src in (ROOT / "packages").glob("*/src"):
        for init in src.rglob("__init__.py"):
            package = init.parent
            parts = package.relative_to(src).parts
            if any(part.startswith("_") for part in parts):
                continue  # a private package (the compiled codecs' home, say)
            name = ".".join(parts)
            public.add(name)
            public.update(
                f"{name}.{module.stem}"
                for module in package.glob("*.py")
                if not module.stem.startswith("_")
            )
    assert public - rendered == set()
