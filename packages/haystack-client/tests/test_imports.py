"""What ``import projecthaystack.client`` loads, and what waits for first use.

Every CLI call and every script pays the import, so the transport (httpx, httpcore and
the ssl module), anyio, the WebSocket stack (httpx-ws, wsproto), OpenTelemetry and
cryptography load only when something uses them.  Each check runs in a fresh interpreter
and looks at ``sys.modules``: no timing, which a shared machine cannot hold steady (the
figure is in ``tools/bench/client_bench.py``).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from projecthaystack.client import Client

# Top-level modules (and two stdlib ones) that a bare import must not load.
HEAVY = (
    "anyio",
    "click",
    "cryptography",
    "email.utils",
    "h11",
    "httpcore",
    "httpx",
    "httpx_ws",
    "opentelemetry",
    "pygments",
    "rich",
    "ssl",
    "wsproto",
)


def loaded_after(code: str) -> set[str]:
    """The names of ``HEAVY`` in ``sys.modules`` after ``code`` ran in a new interpreter."""
    script = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_importing_the_client_loads_no_transport() -> None:
    assert loaded_after("import projecthaystack.client") == set()


def test_every_public_name_but_the_websocket_client_is_there_without_the_transport() -> None:
    code = (
        "import projecthaystack.client as c\n"
        "names = [n for n in c.__all__ if n not in ('AsyncWebSocketClient', 'WatchUpdate')]\n"
        "assert all(getattr(c, n).__module__ == 'projecthaystack.client' for n in names\n"
        "           if isinstance(getattr(c, n), type))\n"
        "assert 'projecthaystack.client._ws' not in sys.modules\n"
    )
    assert loaded_after(code) == set()


def test_cli_help_loads_no_transport() -> None:
    code = (
        "import contextlib, io\n"
        "from projecthaystack.client._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, "
        "contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert 'usage:' in out.getvalue()\n"
    )
    assert loaded_after(code) == set()


def test_the_websocket_client_loads_its_stack_when_named() -> None:
    code = (
        "from projecthaystack.client import AsyncWebSocketClient, WatchUpdate\n"
        "import projecthaystack.client as c\n"
        "assert AsyncWebSocketClient.__module__ == 'projecthaystack.client'\n"
        "assert WatchUpdate.__module__ == 'projecthaystack.client'\n"
        "assert 'AsyncWebSocketClient' in dir(c) and c.AsyncWebSocketClient is AsyncWebSocketClient\n"
    )
    loaded = loaded_after(code)
    assert {"anyio", "httpx"} <= loaded
    # httpx-ws itself waits for the first connection.
    assert not {"httpx_ws", "opentelemetry", "cryptography"} & loaded


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import projecthaystack.client as c

    with pytest.raises(AttributeError, match="Nope"):
        c.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from projecthaystack.client import Nope")


def test_the_transport_loads_with_the_first_request(server: Any) -> None:
    code = (
        "from projecthaystack.client import Client\n"
        f"c = Client({server.url!r}, 'user', 'pencil', timeout=10)\n"
        "assert c.about()[0]['whoami'] == 'user'\n"
        "c.close()\n"
    )
    loaded = loaded_after(code)
    assert {"httpx", "httpcore", "ssl"} <= loaded
    # No tracer provider was set up, no WebSocket opened, no certificate read.
    assert not {"opentelemetry", "httpx_ws", "wsproto", "cryptography"} & loaded


def test_an_http_failure_is_still_translated(free_port: int) -> None:
    # httpx's errors are looked up only once a request failed: still a not-sent error.
    from projecthaystack.client import RequestNotSentError

    with (
        Client(f"http://127.0.0.1:{free_port}/api", timeout=5) as c,
        pytest.raises(RequestNotSentError, match="not sent: ConnectError"),
    ):
        c.about()
