"""The demo generator and the haystack-server command, run as a user would."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from projecthaystack.client import Client, RequestNotSentError
from projecthaystack.codecs import zinc
from projecthaystack.kinds import Grid, Marker, Number, Ref, tz_from_name
from projecthaystack.server import demo_building
from projecthaystack.server._cli import main
from projecthaystack.server.testing import free_port


def test_demo_is_deterministic_and_sized_by_options() -> None:
    a = demo_building(5, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    b = demo_building(5, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    assert a.records == b.records and a.history == b.history
    c = demo_building(6, sites=1, ahus=2, vavs=3, days=2, end=dt.date(2026, 3, 1))
    assert a.history != c.history
    kinds = {
        name: sum(1 for r in a.records if name in r)
        for name in ("site", "ahu", "vav", "meter", "point")
    }
    assert kinds == {"site": 1, "ahu": 2, "vav": 6, "meter": 1, "point": 2 * 6 + 6 * 4 + 2}
    # Two days at 15 minutes for each historized non-setpoint point.
    assert {len(s) for s in a.history.values()} == {2 * 96}
    ny = tz_from_name("New_York")
    first = a.history["demo.site1.ahu1.dat"][0]
    assert first[0] == dt.datetime(2026, 2, 27, tzinfo=ny)
    assert first[1].unit == "°F"
    energy = [v.val for _, v in a.history["demo.site1.meter.energy"]]
    assert energy == sorted(energy)  # totalized: never decreases


def test_demo_records_are_valid_haystack() -> None:
    b = demo_building(1, sites=5, ahus=1, vavs=1, days=0)
    grid = Grid.from_rows(b.records)
    assert zinc.decode_grid(zinc.encode_grid(grid)) == grid
    refs = {r["id"].id for r in b.records}
    for rec in b.records:
        for name in ("siteRef", "equipRef"):
            if name in rec:
                assert rec[name].id in refs
        if "point" in rec:
            assert rec["kind"] in ("Number", "Bool") and "tz" in rec
    with pytest.raises(ValueError, match="sites"):
        demo_building(sites=9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--workers", "2"], "shared store"),
        (["serve", "--certfile", "x.pem"], "go together"),
        (["serve", "--client-ca", "ca.pem"], "needs --certfile"),
    ],
)
def test_serve_refuses_bad_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAYSTACK_")}
    env.update(extra)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "projecthaystack.server", *args]


def test_demo_command_serves_and_queries() -> None:
    done = subprocess.run(
        _command("demo", "--once", "--demo-sites", "1", "--demo-days", "2"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "password:" in out
    assert "read 'site': 1 sites" in out
    assert "nav @demo.site1" in out
    assert "hisRead @demo.site1" in out and "96 samples" in out


def test_serve_loads_a_file_and_refuses_without_admin(tmp_path: Path) -> None:
    grid = Grid.from_rows(
        [{"id": Ref("x1"), "dis": "Loaded", "site": Marker, "area": Number(10, "m²")}]
    )
    path = tmp_path / "site.zinc"
    path.write_text(zinc.encode_grid(grid))
    port = free_port()
    refused = subprocess.run(
        _command("serve", "--port", str(port), "--load", str(path)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "no admin user" in refused.stderr and "Traceback" not in refused.stderr

    proc = subprocess.Popen(
        _command("serve", "--port", str(port), "--load", str(path), "--log-level", "warning"),
        env=_env(HAYSTACK_ADMIN_USER="boss", HAYSTACK_ADMIN_PASSWORD="boss-password"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        with Client(f"http://127.0.0.1:{port}/api", "boss", "boss-password") as client:
            while True:
                try:
                    sites = client.read("site")
                    break
                except RequestNotSentError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        assert [r["dis"] for r in sites] == ["Loaded"]
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- operator mistakes: one line, no traceback ------------------------------------------------

FAKE_STORE = """
import multiprocessing
import os
import time

from projecthaystack.server import MemoryStore


class FlakyStore(MemoryStore):
    async def open(self):
        mode = os.environ.get("FAKE_STORE_FAILS", "never")
        in_worker = multiprocessing.parent_process() is not None
        if mode == "always" or (mode == "in-workers" and in_worker):
            raise ConnectionRefusedError(111, "Connection refused")
        if mode == "one-worker-once" and in_worker:
            # The first worker to get here fails, once its sibling had time to start:
            # the store away for a moment while an instance starts.
            try:
                fd = os.open(os.environ["FAKE_STORE_MARK"], os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return
            os.close(fd)
            time.sleep(3)
            raise ConnectionRefusedError(111, "Connection refused")


def open_store(url):
    return FlakyStore()
"""


@pytest.fixture
def fake_store_path(tmp_path: Path) -> str:
    """A directory for PYTHONPATH whose distribution registers the ``flaky:`` store."""
    info = tmp_path / "flakystore-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flakystore\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[projecthaystack.stores]\nflaky = flaky_mod:open_store\n"
    )
    (tmp_path / "flaky_mod.py").write_text(FAKE_STORE)
    return str(tmp_path)


def _run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args),
        check=False,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command failed with exactly one line on stderr, holding every ``expected``."""
    assert done.returncode not in (0, None), done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_no_admin_is_one_line() -> None:
    _one_line(_run("serve", "--port", str(free_port())), "no admin user", "HAYSTACK_ADMIN_PASSWORD")


def test_a_short_admin_password_is_one_line() -> None:
    done = _run("serve", "--port", str(free_port()), HAYSTACK_ADMIN_PASSWORD="short")
    _one_line(done, "8 to 1024 characters")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("site.xml", "<site/>", "unknown file format '.xml'"),
        ("site", "x", "unknown file format '(no extension)'"),
        ("site.zinc", 'ver:"3.0"\nid\n@bad id\n', "site.zinc: "),
        ("missing.zinc", None, "No such file"),
    ],
)
def test_a_bad_load_file_is_one_line(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = _run("serve", "--load", str(path), HAYSTACK_ADMIN_PASSWORD="long-enough-pw")
    _one_line(done, "--load", message)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_store_that_cannot_open_stops_the_server(fake_store_path: str, workers: str) -> None:
    done = _run(
        "serve",
        "--store",
        "flaky://db.example:5432/haystack",
        "--port",
        str(free_port()),
        "--workers",
        workers,
        timeout=60,
        PYTHONPATH=fake_store_path,
        FAKE_STORE_FAILS="always",
        HAYSTACK_ADMIN_PASSWORD="long-enough-pw",
    )
    _one_line(done, "flaky://db.example:5432/haystack cannot be opened", "Connection refused")


def test_a_worker_that_cannot_start_stops_them_all(fake_store_path: str) -> None:
    # The command's own check passes; the workers then fail: the server must end.
    done = _run(
        "serve",
        "--store",
        "flaky:",
        "--port",
        str(free_port()),
        "--workers",
        "2",
        "--log-level",
        "critical",
        timeout=90,
        PYTHONPATH=fake_store_path,
        FAKE_STORE_FAILS="in-workers",
        HAYSTACK_ADMIN_PASSWORD="long-enough-pw",
    )
    assert done.returncode == 1, done
    assert "a worker could not start" in done.stderr and "Traceback" not in done.stderr


def test_a_worker_that_cannot_start_while_another_serves_is_started_again(
    fake_store_path: str, tmp_path: Path
) -> None:
    # Found by the scale-out rig: a worker that could not open the store during a
    # failover stopped its whole instance, though its sibling served.
    port = free_port()
    proc = subprocess.Popen(
        _command("serve", "--store", "flaky:", "--port", str(port), "--workers", "2"),
        env=_env(
            PYTHONPATH=fake_store_path,
            FAKE_STORE_FAILS="one-worker-once",
            FAKE_STORE_MARK=str(tmp_path / "failed-once"),
            HAYSTACK_ADMIN_PASSWORD="long-enough-pw",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # Announced once both workers serve: the one that failed was started again.
        deadline = time.monotonic() + 90
        out = ""
        while "the Haystack API is at" not in out:
            assert proc.poll() is None, f"{out}\n{proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, out
            out += proc.stdout.readline()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        assert (tmp_path / "failed-once").exists()  # one worker did fail
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "could not start (exit status 3) while the others serve; starting another" in err


def test_a_store_password_never_shows(fake_store_path: str) -> None:
    done = _run(
        "serve",
        "--store",
        "flaky://me:s3cret@db.example/haystack",
        PYTHONPATH=fake_store_path,
        FAKE_STORE_FAILS="always",
        HAYSTACK_ADMIN_PASSWORD="long-enough-pw",
    )
    line = _one_line(done, "flaky://me:***@db.example/haystack")
    assert "s3cret" not in line


def _wait_for(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)


def test_startup_says_where_the_api_is_and_ctrl_c_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "site.zinc"
    path.write_text(zinc.encode_grid(Grid.from_rows([{"id": Ref("a"), "site": Marker}])))
    port = free_port()
    proc = subprocess.Popen(
        _command("serve", "--port", str(port), "--prefix", "/hs", "--load", str(path)),
        env=_env(HAYSTACK_ADMIN_PASSWORD="long-enough-pw"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(proc, port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert f"the Haystack API is at http://127.0.0.1:{port}/hs/" in out
    assert "1 entities in the store" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert proc.returncode in (0, 130)


def test_ctrl_c_stops_several_workers_quietly(fake_store_path: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        _command("serve", "--store", "flaky:", "--port", str(port), "--workers", "2"),
        env=_env(PYTHONPATH=fake_store_path, HAYSTACK_ADMIN_PASSWORD="long-enough-pw"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "entities in the store" in line:
                announced.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Announced once every worker serves.
        assert announced.wait(90), "".join(lines)
        with httpx.Client(timeout=10) as http:
            assert http.get(f"http://127.0.0.1:{port}/api/about").status_code == 401
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"the Haystack API is at http://127.0.0.1:{port}/api/" in "".join(lines)


def test_help_names_the_environment_and_every_option() -> None:
    serve = _run("serve", "--help").stdout
    assert "HAYSTACK_ADMIN_USER" in serve and "HAYSTACK_ADMIN_PASSWORD" in serve
    assert "8 to 1024 characters" in serve
    demo = _run("demo", "--help").stdout
    assert "default: a free one" in demo and "default 8080" not in demo
    for text in (serve, demo):
        options = re.findall(r"^  (--[a-z-]+)(.*)$", text, flags=re.MULTILINE)
        demo_options = [(name, rest) for name, rest in options if name.startswith("--demo-")]
        assert len(demo_options) == 5
        # Each option's help sits on its own line or beside it: none is bare.
        for name, rest in options:
            assert rest.strip() or re.search(rf"^  {name}.*\n {{10,}}\S", text, re.MULTILINE), name


def test_demo_without_our_client_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['projecthaystack.client'] = None\n"
        "from projecthaystack.server._cli import main\n"
        "sys.exit(main(['demo', '--once']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _one_line(done, "pip install -e packages/haystack-client")
    assert "pip install haystack-client" not in line


def test_demo_stops_quietly_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        _command("demo", "--demo-sites", "1", "--demo-days", "1"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    serving = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Serving until Ctrl-C" in line:
                serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert serving.wait(120), "".join(lines)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "hisRead @demo.site1" in "".join(lines)  # an empty yesterday is no failure


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/haystack", "postgresql://app:***@db:5432/haystack"),
        (
            "redis+cluster://app:s3cret@h1:7000,h2:7001,[::1]:7002/0?prefix=hs",
            "redis+cluster://app:***@h1:7000,h2:7001,[::1]:7002/0?prefix=hs",
        ),
        ("redis://h1:6379/0?password=s3cret&prefix=hs", "redis://h1:6379/0?password=***&prefix=hs"),
        ("postgresql://db/haystack", "postgresql://db/haystack"),
        ("redis://app@h1:6379", "redis://app@h1:6379"),
    ],
)
def test_store_urls_in_messages_hide_the_password(url: str, shown: str) -> None:
    from projecthaystack.server._cli import _redact

    assert _redact(url) == shown
    assert "s3cret" not in _redact(url)
