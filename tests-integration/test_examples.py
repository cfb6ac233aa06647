"""The examples in the READMEs and the docs are tests: they cannot rot.

The convention, the same for every page:

- Every fenced block tagged ``python`` in ``README.md`` (the root's and each
  ``packages/*/README.md``) and in ``docs/**/*.md`` runs. The blocks of one file run in
  order in one fresh namespace, so a later block may use names from an earlier one.
- A block whose first line starts with ``>>>`` runs as a doctest (``ELLIPSIS`` on), in
  that same namespace.
- A file containing the line ``<!-- examples: server -->`` gets a live demo server: the
  demo building of haystack-server on a free 127.0.0.1 port, user ``admin``, password
  ``correct-horse-battery``, prefix ``/api``; the text ``http://localhost:8080`` in its
  blocks is replaced by the live base URL, so examples read
  ``Client("http://localhost:8080/api", "admin", "correct-horse-battery")``.
- A block that truly cannot run is preceded (as the last non-blank line before its
  fence) by ``<!-- no-test: reason -->``; the reason is required.
- A file whose blocks name ``HAYSTACK_DEFS`` (or ``HAYSTACK_BUILDINGS``) gets that variable set
  to the standard defs (or the example buildings): where it points, else ``../shared``
  beside the checkout. Without them the file is skipped outside CI (the message names
  the variable to set) and fails under ``CI=true``.

Blocks run with a temporary directory as the working directory. Each file is one test;
its failure names the file, the line of the failing block and the exception.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import inspect
import os
import re
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

SERVER_MARK = "<!-- examples: server -->"
SERVER_USER = "admin"
SERVER_PASSWORD = "correct-horse-battery"
SERVER_PREFIX = "/api"
PLACEHOLDER_URL = "http://localhost:8080"

# Data that is not ours to ship: the variable, what it is, where it usually is.
DATA_VARIABLES = {
    "HAYSTACK_DEFS": ("the standard Haystack defs", SHARED / "reference" / "defs"),
    "HAYSTACK_BUILDINGS": ("the example buildings", SHARED / "data" / "buildings"),
}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_NO_TEST = re.compile(r"^\s*<!--\s*no-test\b(?P<rest>.*?)-->\s*$")
# Tags that look like Python but would be silently skipped: name them so they are fixed.
_LOOKALIKES = {"py", "python3", "pycon", "ipython", "python-repl", "py3"}


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block: the line of its first code line (1-based)."""

    line: int
    code: str
    skip: str | None = None


@dataclass
class Page:
    """What a Markdown file asks of the harness."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    server: bool = False
    problems: list[str] = field(default_factory=list)


class ExampleError(AssertionError):
    """An example failed; the message names the file, the block's line and the error."""


def example_files(root: Path = ROOT) -> list[Path]:
    """The files whose examples run: the root README, each package's, every docs page."""
    files = [root / "README.md", *sorted((root / "packages").glob("*/README.md"))]
    files += sorted((root / "docs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def parse_page(path: Path) -> Page:
    """The python blocks of a Markdown file, its markers, and any misuse of them."""
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = _rel(path)
    pending: tuple[int, str | None] | None = None  # a no-test marker: its line, its reason
    i = 0
    while i < len(lines):
        text = lines[i]
        opening = _FENCE.match(text)
        if opening is None:
            marker = _NO_TEST.match(text)
            if marker is not None:
                if pending is not None:
                    page.problems.append(
                        f"{rel}:{pending[0]}: no-test marker not followed by a python block"
                    )
                rest = marker["rest"].strip()
                reason = rest[1:].strip() if rest.startswith(":") else ""
                if not reason:
                    page.problems.append(
                        f"{rel}:{i + 1}: a no-test marker needs a reason: "
                        "<!-- no-test: why this block cannot run -->"
                    )
                pending = (i + 1, reason or None)
            elif text.strip() == SERVER_MARK:
                page.server = True
            elif text.strip() and pending is not None:
                page.problems.append(
                    f"{rel}:{pending[0]}: no-test marker not followed by a python block"
                )
                pending = None
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        tag = opening["info"].split()[0] if opening["info"] else ""
        body: list[str] = []
        i += 1
        start = i + 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip())) :])
            i += 1
        else:
            page.problems.append(f"{rel}:{start - 1}: a code fence is never closed")
        i += 1
        if tag == "python":
            skip = pending[1] if pending is not None else None
            page.blocks.append(Block(start, "\n".join(body) + "\n", skip))
        else:
            if tag.lower() in _LOOKALIKES:
                page.problems.append(
                    f"{rel}:{start - 1}: a block tagged {tag!r} never runs: tag it "
                    "'python' (it then runs) or 'text' (a sample of output)"
                )
            if pending is not None:
                page.problems.append(
                    f"{rel}:{pending[0]}: no-test marker not followed by a python block"
                )
        pending = None
    if pending is not None:
        page.problems.append(f"{rel}:{pending[0]}: no-test marker not followed by a python block")
    return page


def _failure(path: Path, block: Block, exc: BaseException) -> ExampleError:
    # The example's own lines and the last few frames say what went wrong; the harness's
    # frames and the library internals in between only bury it.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    kept = [f for f in frames if f.filename == str(path)]
    kept += [f for f in frames[-3:] if f not in kept]
    summary = f"{type(exc).__name__}: {exc}"
    trace = "".join(traceback.format_list(kept))
    return ExampleError(
        f"{_rel(path)}: the python block at line {block.line} failed: {summary}\n\n{trace}{summary}"
    )


def _run_code(path: Path, block: Block, code: str, namespace: dict[str, Any]) -> None:
    # Padded to the Markdown file's line numbers: tracebacks and syntax errors point at
    # the example itself.
    source = "\n" * (block.line - 1) + code
    compiled = compile(source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:
        # Top-level await / async with / async for, as in an asyncio REPL.
        asyncio.run(eval(compiled, namespace))
    else:
        exec(compiled, namespace)


def _run_doctest(path: Path, block: Block, code: str, namespace: dict[str, Any]) -> None:
    name = f"{_rel(path)}:{block.line}"
    test = doctest.DocTestParser().get_doctest(code, namespace, name, str(path), block.line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    result = runner.run(test, out=report.append, clear_globs=False)
    # A DocTest runs in a copy of the namespace: later blocks see what this one defined.
    namespace.update(test.globs)
    if result.failed:
        raise ExampleError(
            f"{_rel(path)}: the doctest block at line {block.line} failed "
            f"({result.failed} of {result.attempted} examples):\n\n" + "".join(report)
        )


def run_page(page: Page, base_url: str | None = None) -> None:
    """Run a page's blocks in order in one fresh namespace; raise :class:`ExampleError`."""
    if page.problems:
        raise ExampleError("\n".join(page.problems))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for block in page.blocks:
        if block.skip is not None:
            continue
        code = block.code
        if base_url is not None:
            code = code.replace(PLACEHOLDER_URL, base_url)
        try:
            if code.lstrip(" ").startswith(">>>"):
                _run_doctest(page.path, block, code, namespace)
            else:
                _run_code(page.path, block, code, namespace)
        except ExampleError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _failure(page.path, block, exc) from exc


@contextlib.contextmanager
def demo_server() -> Iterator[str]:
    """haystack-server's demo building on a free 127.0.0.1 port; yields the base URL.

    The one place that starts a server here: swap it for the server package's public
    test runner when there is one.
    """
    import uvicorn

    from projecthaystack.server import MemoryStore, ServerConfig, create_app, demo_building

    app = create_app(
        MemoryStore(),
        config=ServerConfig(prefix=SERVER_PREFIX),
        admin=(SERVER_USER, SERVER_PASSWORD),
        on_startup=[demo_building().load],
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", ws="wsproto")
    server = uvicorn.Server(config)
    # uvicorn takes the bound socket: no other process can take the port in between.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server for the examples did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _provide_data(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    # The blocks that run, not the prose: a page may explain a variable without using it.
    text = "".join(block.code for block in page.blocks if block.skip is None)
    for variable, (what, default) in DATA_VARIABLES.items():
        if variable not in text:
            continue
        path = Path(os.environ.get(variable) or default)
        if not path.exists():
            message = f"{_rel(page.path)} needs {what}: set {variable} (nothing at {path})"
            if os.environ.get("CI") == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        monkeypatch.setenv(variable, str(path))


@pytest.mark.parametrize("path", example_files(), ids=_rel)
def test_examples(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = parse_page(path)
    _provide_data(page, monkeypatch)
    monkeypatch.chdir(tmp_path)
    failure = None
    try:
        if page.server:
            with demo_server() as url:
                run_page(page, url)
        else:
            run_page(page)
    except ExampleError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


# -- the harness itself ---------------------------------------------------------------------


def _page(tmp_path: Path, text: str) -> Page:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return parse_page(path)


def test_blocks_share_one_namespace_in_order(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "# t\n\n```python\nx = 40\n```\n\ntext\n\n```python\n>>> x + 2\n42\n>>> y = 'a...b'\n```\n"
        "```python\nassert y.startswith('a')\n```\n",
    )
    assert [b.line for b in page.blocks] == [4, 10, 15]
    run_page(page)


def test_a_failure_names_the_file_the_line_and_the_exception(tmp_path: Path) -> None:
    text = "intro\n\n```python\nok = 1\n```\n\n```python\nx = 1\nnot_defined\n```\n"
    page = _page(tmp_path, text)
    with pytest.raises(ExampleError) as caught:
        run_page(page)
    message = str(caught.value)
    assert "page.md: the python block at line 8 failed: NameError" in message
    assert "not_defined" in message
    assert 'page.md", line 9' in message  # the traceback points into the Markdown file


def test_a_doctest_failure_names_the_line_and_what_differs(tmp_path: Path) -> None:
    page = _page(tmp_path, "```python\n>>> 1 + 1\n3\n```\n")
    with pytest.raises(ExampleError, match=r"page.md: the doctest block at line 2 failed"):
        run_page(page)


def test_doctests_allow_ellipsis(tmp_path: Path) -> None:
    run_page(_page(tmp_path, "```python\n>>> list(range(20))\n[0, 1, ..., 19]\n```\n"))


def test_top_level_await_runs(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "```python\nimport anyio\nawait anyio.sleep(0)\nasync def f():\n    return 5\n"
        "n = await f()\n```\n```python\nassert n == 5\n```\n",
    )
    run_page(page)


def test_no_test_skips_the_next_block_and_needs_a_reason(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- no-test: serves forever -->\n\n```python\nraise SystemExit\n```\n")
    assert page.blocks[0].skip == "serves forever"
    run_page(page)
    for marker in ("<!-- no-test -->", "<!-- no-test: -->"):
        bad = _page(tmp_path, f"{marker}\n```python\nx = 1\n```\n")
        with pytest.raises(ExampleError, match=r"page.md:1: a no-test marker needs a reason"):
            run_page(bad)


def test_a_stray_no_test_marker_is_an_error(tmp_path: Path) -> None:
    for text in (
        "<!-- no-test: why -->\nsome prose\n```python\nx = 1\n```\n",
        "<!-- no-test: why -->\n```sh\nls\n```\n",
        "text\n<!-- no-test: why -->\n",
    ):
        with pytest.raises(ExampleError, match="not followed by a python block"):
            run_page(_page(tmp_path, text))


def test_lookalike_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExampleError, match="tagged 'py' never runs"):
        run_page(_page(tmp_path, "```py\nx = 1\n```\n"))


def test_other_tags_and_longer_fences(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "```sh\npython3 x.py\n```\n````python\ns = '''\n```\n'''\n````\n"
        "- item\n\n  ```python\n  indented = True\n  ```\n",
    )
    assert [b.line for b in page.blocks] == [5, 12]
    run_page(page)


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExampleError, match="never closed"):
        run_page(_page(tmp_path, "```python\nx = 1\n"))


def test_the_server_marker_serves_the_demo(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        f"{SERVER_MARK}\n\n```python\nfrom projecthaystack.client import Client\n"
        'with Client("http://localhost:8080/api", "admin", "correct-horse-battery") as c:\n'
        '    sites = c.read("site")\n'
        "assert len(sites) == 2\n```\n",
    )
    assert page.server
    with demo_server() as url:
        run_page(page, url)


def test_the_files_are_those_of_the_convention() -> None:
    names = [_rel(p) for p in example_files()]
    assert names[0] == "README.md"
    assert "packages/haystack-client/README.md" in names
    assert "docs/index.md" in names
    assert all(n.endswith(".md") for n in names)


def test_a_page_naming_haystack_defs_gets_it_or_a_skip_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prose = _page(tmp_path, "Set HAYSTACK_DEFS to use the defs.\n```python\nx = 1\n```\n")
    monkeypatch.setenv("HAYSTACK_DEFS", str(tmp_path / "nowhere"))
    _provide_data(prose, monkeypatch)  # prose alone asks for nothing
    page = _page(tmp_path, "```python\nimport os\nassert os.environ['HAYSTACK_DEFS']\n```\n")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("HAYSTACK_DEFS", str(tmp_path / "nowhere"))
    with pytest.raises(pytest.skip.Exception, match="set HAYSTACK_DEFS"):
        _provide_data(page, monkeypatch)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="set HAYSTACK_DEFS"):
        _provide_data(page, monkeypatch)
    defs = tmp_path / "defs"
    defs.mkdir()
    monkeypatch.setenv("HAYSTACK_DEFS", str(defs))
    _provide_data(page, monkeypatch)
    assert os.environ["HAYSTACK_DEFS"] == str(defs)
    run_page(page)
