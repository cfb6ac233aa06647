"""The documentation site, built as CI builds it and looked at in a real browser.

The site is built in strict mode (``python3 tools/dev.py docs``), served on 127.0.0.1, and
opened in Debian's headless Chromium, driven over the DevTools protocol through a pipe
(``--remote-debugging-pipe``: no port, no extra library). On the home page and on an API
page the test checks what a reader sees, then types into the search box and waits for
the results. Every wait is bounded.

Outside CI the test skips when ``chromium`` is missing (``apt-get install chromium``);
under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60.0  # seconds any one step may take on a loaded 2-core machine

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (.ci/run installs it: apt-get install chromium)")
        pytest.skip("needs Debian's chromium for the docs browser test: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built in strict mode into a fresh folder."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dev.py"), "docs", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"strict docs build failed:\n{done.stdout}\n{done.stderr}"
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    """The built site served over HTTP on 127.0.0.1, as a reader's browser gets it."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


class Browser:
    """Headless Chromium spoken to over the DevTools protocol on a pair of pipes.

    Chromium reads NUL-terminated JSON commands on its fd 3 and answers on its fd 4.
    """

    def __init__(self, exe: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, to_chrome_r, 3),
            (os.POSIX_SPAWN_DUP2, from_chrome_w, 4),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        argv = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.pid = os.posix_spawn(exe, argv, dict(os.environ), file_actions=actions)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.exceptions: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self._from_chrome, 65536):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    self.exceptions.append(json.dumps(details.get("exception", details))[:500])
                elif "id" in message:
                    self._replies.put(message)

    def send(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (bounded)."""
        self._next += 1
        command: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session and self.session:
            command["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + WAIT
        while True:
            try:
                reply = self._replies.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"chromium did not answer {method} in {WAIT:.0f} s") from None
            if reply["id"] == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def open_tab(self) -> None:
        """A fresh tab, attached, with page events and exceptions reported."""
        target = self.send("Target.createTarget", session=False, url="about:blank")
        attached = self.send(
            "Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll until ``expression`` is truthy; fail with ``what`` after :data:`WAIT`."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {WAIT:.0f} s waiting for {what}")

    def goto(self, url: str) -> None:
        """Load ``url`` and wait until the document is complete."""
        self.send("Page.navigate", url=url)
        self.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
            f"{url} to load",
        )

    def close(self) -> None:
        """End the browser (it is ours: started above, stopped by its pid)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self._to_chrome)
        self._reader.join(10)
        os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless Chromium with a fresh profile, and a tab open."""
    b = Browser(_chromium(), tmp_path / "profile")
    try:
        b.open_tab()
        yield b
    finally:
        b.close()


def _search(browser: Browser, query: str) -> list[str]:
    """Type ``query`` into the site's search box; the links of the results."""
    browser.wait_for("document.querySelector('input.md-search__input') !== null", "search box")
    browser.evaluate("document.querySelector('input.md-search__input').focus()")
    browser.send("Input.insertText", text=query)
    return list(
        browser.wait_for(
            "(() => { const links = [...document.querySelectorAll("
            "'.md-search-result__item a.md-search-result__link')].map(a => a.href);"
            " return links.length ? links : null; })()",
            f"search results for {query!r}",
        )
    )


def test_home_page_renders_and_search_finds_the_api(browser: Browser, base_url: str) -> None:
    browser.goto(base_url + "/")
    assert browser.evaluate("document.title").startswith("projecthaystack")
    assert browser.evaluate("document.querySelector('article h1').firstChild.textContent") == (
        "projecthaystack"
    )
    nav = browser.evaluate(
        "[...document.querySelectorAll('.md-nav__link')].map(a => a.textContent.trim())"
    )
    for entry in ("Getting started", "The client", "Benchmarks", "projecthaystack.kinds"):
        assert entry in nav
    # The theme's own scripts ran: the search box got its handlers and a results list.
    assert browser.evaluate("document.querySelector('.md-search-result__list') !== null")

    links = _search(browser, "GridBuilder")
    assert any("/reference/kinds/" in link for link in links), links
    assert browser.exceptions == []


def test_api_page_renders_and_search_works(browser: Browser, base_url: str) -> None:
    browser.goto(base_url + "/reference/client/")
    heading = browser.evaluate(
        "document.getElementById('projecthaystack.client.Client')?.textContent ?? null"
    )
    assert heading is not None
    assert "Client" in heading
    # Rendered from the docstrings: signatures and the doctest examples as code.
    assert browser.evaluate("document.querySelectorAll('.doc-signature').length") > 5
    assert browser.evaluate("document.querySelectorAll('.doc-contents .highlight').length") > 0

    links = _search(browser, "his_frame")
    assert any("/reference/client/" in link for link in links), links
    assert browser.exceptions == []
