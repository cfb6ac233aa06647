"""What ``haystack-server --help`` and ``import projecthaystack.server`` load, and what
waits for first use.

The command's argument parsing (``--help``, a usage error) loads neither the web stack
(Starlette, anyio, uvicorn) nor multiprocessing, importlib.metadata, OpenTelemetry or
the codecs; a bare import of the package loads none of its modules but the version.
Each check runs in a fresh interpreter and looks at ``sys.modules``: no timing, which a
shared machine cannot hold steady (the figure is in ``tools/bench/server_inproc.py``).
"""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import projecthaystack.server as server

# Modules the parser of the command must not load.
HEAVY = (
    "anyio",
    "cryptography",
    "importlib.metadata",
    "msgspec",
    "multiprocessing",
    "opentelemetry",
    "projecthaystack.codecs",
    "projecthaystack.filter",
    "projecthaystack.kinds",
    "starlette",
    "uvicorn",
)


def _heavy_in(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def loaded_after(code: str) -> set[str]:
    """The names of ``HEAVY`` that ``code`` loaded in a new interpreter: those in
    ``sys.modules`` after it, less those the bare interpreter has already (a coverage
    run's start-up hook loads multiprocessing, say)."""
    return _heavy_in(code) - _heavy_in("pass")


def test_the_command_help_loads_nothing_heavy() -> None:
    code = (
        "import contextlib, io\n"
        "from projecthaystack.server._cli import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['demo', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out, "
        "contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "    assert 'usage:' in out.getvalue(), argv\n"
        "    assert 'HAYSTACK_ADMIN_PASSWORD' in out.getvalue() or argv == ['--help']\n"
    )
    assert loaded_after(code) == set()


def test_a_usage_error_loads_nothing_heavy() -> None:
    code = (
        "import contextlib, io\n"
        "from projecthaystack.server._cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        "    try:\n"
        "        main(['serve', '--port', 'eighty'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 2, exc.code\n"
        "assert 'invalid int value' in err.getvalue()\n"
    )
    assert loaded_after(code) == set()


def test_importing_the_package_loads_none_of_its_modules() -> None:
    code = (
        "import projecthaystack.server as s\n"
        "ours = sorted(m for m in sys.modules if m.startswith('projecthaystack.server.'))\n"
        "assert ours == ['projecthaystack.server.__about__'], ours\n"
        "assert s.__version__\n"
    )
    assert loaded_after(code) == set()


def test_config_alone_loads_no_web_stack() -> None:
    code = (
        "from projecthaystack.server import MIN_PASSWORD, ServerConfig\n"
        "assert ServerConfig().limits.max_body > 0 and MIN_PASSWORD == 8\n"
        "assert ServerConfig.__module__ == 'projecthaystack.server'\n"
    )
    assert loaded_after(code) == set()


def test_creating_an_app_loads_the_web_stack_but_not_opentelemetry() -> None:
    code = (
        "from projecthaystack.server import MemoryStore, create_app\n"
        "app = create_app(MemoryStore())\n"
        "assert app.state.haystack.ops['read']\n"
    )
    loaded = loaded_after(code)
    assert {"starlette", "anyio", "projecthaystack.codecs"} <= loaded
    # Not set up (no provider given, no API imported), OpenTelemetry is not even loaded.
    assert "opentelemetry" not in loaded


def test_every_public_name_resolves_with_the_package_as_its_home() -> None:
    for name in server.__all__:
        value = getattr(server, name)
        if not isinstance(value, type | types.FunctionType):
            continue  # constants, and StartupHook (a type alias)
        if name == "parse_range":  # re-exported from the codecs: keeps its own home
            assert value.__module__.startswith("projecthaystack.codecs")
        else:
            assert value.__module__ == "projecthaystack.server", name
    assert set(server.__all__) <= set(dir(server))
    from projecthaystack.server._memory import MemoryStore

    assert server.MemoryStore is MemoryStore


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        server.NoSuchThing  # noqa: B018 - the lookup is the test
