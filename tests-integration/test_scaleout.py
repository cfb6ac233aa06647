"""The scale-out rig's short form (``tools/scaleout``, ``--short``): two
``haystack-server serve --workers 2`` instances behind HAProxy on one store, ten clients
under load, then a ``kill -9`` of one instance and a store fault (PostgreSQL restarted,
the Redis master crashed and its replica promoted) during the load; nothing acknowledged
may be lost, no batch half written, the store's gap is answered with 503 error grids and
everything recovers, every watch sees every change, sessions are one across instances.
Once on a PostgreSQL cluster and once on a Redis Cluster, each started by the rig itself
in a temporary directory on free ports (never the shared servers).

The rig runs the deployment guide's own HAProxy configuration and systemd command line
(``docs/deployment.md``, read by ``tools/scaleout/_guide.py``); the tests at the end
check that reading, and the unit with ``systemd-analyze verify``.

It needs ``haproxy``, ``redis-server``/``redis-cli`` and PostgreSQL's server programs
(``apt-get install haproxy redis-server postgresql``; as root also the ``postgres`` OS
user, which that package makes).  Outside CI a missing one skips these tests with that
message; under ``CI=true`` it fails them.

About a minute and a half per store: it runs on Python 3.11 only (CI has two cores and tests three
Pythons; the rig tests servers and stores, not the interpreter), unless
``HAYSTACK_SCALEOUT=1`` asks for it on the Python at hand.
"""

from __future__ import annotations

import glob
import grp
import importlib
import json
import os
import pwd
import secrets
import shutil
import ssl
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from projecthaystack.client import Client

ROOT = Path(__file__).resolve().parents[1]


def _missing() -> str | None:
    for tool, package in (
        ("haproxy", "haproxy"),
        ("redis-server", "redis-server"),
        ("redis-cli", "redis-server"),
    ):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed: apt-get install {package}"
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres") and shutil.which("postgres") is None:
        return "PostgreSQL's server programs are not installed: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs the postgres OS user: apt-get install postgresql"
    return None


def _program(name: str, package: str) -> str:
    """The path of an installed program the test needs; outside CI a skip saying what to
    install, under ``CI=true`` (where .ci/run installs it) a failure."""
    sbin = Path("/usr/sbin", name)
    found = shutil.which(name) or (str(sbin) if sbin.exists() else None)
    if found is None:
        why = f"{name} is not installed: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def _prerequisites() -> None:
    if sys.version_info[:2] != (3, 11) and os.environ.get("HAYSTACK_SCALEOUT") != "1":
        pytest.skip(
            "the scale-out rig runs on Python 3.11 only (it tests servers and stores, not "
            "the interpreter, and takes a minute per store); set HAYSTACK_SCALEOUT=1 to run it here"
        )
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(f"{missing}; install or start it to run the rig")


@pytest.mark.usefixtures("_prerequisites")
@pytest.mark.parametrize("store", ["postgresql", "redis-cluster"])
def test_short_rig_keeps_everything_through_faults(store: str, tmp_path: Path) -> None:
    # --out: the test's own directory, so that a developer's dist/scaleout is left alone.
    rig = [sys.executable, "-m", "tools.scaleout", "--short"]
    done = subprocess.run(
        [*rig, "--stores", store, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report_md = tmp_path / "results.md"
    shown = report_md.read_text() if report_md.exists() else ""
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{shown}"
    report = json.loads((tmp_path / "results.json").read_text())
    (result,) = report["stores"]
    assert result["ok"] is True
    names = {c["name"] for c in result["checks"]}
    for needed in (
        "hisWrite: nothing lost, no batch half written",
        "pointWrite: array and writeVal",
        "watches: every change seen, from any instance",
        "a login finished on any instance works on all",
        "close ends the session on every instance at once",
        "disabling the user ends the session on every instance at once",
        "a password change ends the session on every instance at once",
        "faults: every failure is a 503 error grid during a store gap, or answered on "
        "its one repeat",
        "faults: while the store was away, clients got 503 error grids",
        "faults: everything works again afterwards, without restarting the servers",
        "faults: the balancer sends requests to s2 again once it is back",
        "every instance still runs after the load and the faults",
        "TLS at the balancer: a login and an op",
        "mTLS at the balancer: the CA's client certificates only",
    ):
        assert needed in names, needed
    assert all(c["ok"] for c in result["checks"]), shown
    # The load really ran through both instances, and the kill really happened.
    (step,) = result["steps"]
    assert set(step["instances_answering"]) == {"s1", "s2"}
    assert step["ok"] == step["requests"] > 0
    kill, store_fault = result["fault"]["events"]
    assert kill["what"] == "kill -9 of instance s2"
    assert ("PostgreSQL restarted" if store == "postgresql" else "Redis master") in store_fault[
        "what"
    ]
    assert sum(sum(n.values()) for n in result["fault"]["errors_by_fault"].values()) > 0
    assert result["logins"]["clients"] == 10


# -- the guide's configurations, as the rig reads them ---------------------------------------


@pytest.fixture
def guide(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("tools.scaleout._guide")


def test_the_rig_runs_the_guides_haproxy_configuration(guide: Any, tmp_path: Path) -> None:
    cfg = guide.haproxy_from_guide(
        port=8001,
        tls_port=8443,
        pem=tmp_path / "h.pem",
        servers=[9001, 9002],
        socket_path=tmp_path / "s.sock",
        error_dir=tmp_path,
    )
    text = guide.GUIDE.read_text()
    shown = guide.guide_block("global")
    # Everything the guide shows is run, but for the lines that name its hosts and paths.
    for line in shown.splitlines():
        if not any(x in line for x in ("10.0.0.", "/etc/haproxy/", "/run/haproxy/")):
            assert line in cfg.splitlines(), line
    assert "    bind 127.0.0.1:8443 ssl crt " + str(tmp_path / "h.pem") in cfg
    assert "    bind 127.0.0.1:8001" in cfg
    assert cfg.endswith("    server s1 127.0.0.1:9001 check\n    server s2 127.0.0.1:9002 check\n")
    assert f"errorfile 503 {tmp_path / '503.http'}" in cfg
    # A guide edited without the rig fails, rather than leaving the rig on other text.
    edited = text.replace("stats socket /run/haproxy/admin.sock", "stats socket /run/x.sock")
    with pytest.raises(guide.GuideError, match="stats socket"):
        guide.haproxy_from_guide(
            port=1,
            tls_port=2,
            pem=tmp_path,
            servers=[3],
            socket_path=tmp_path,
            error_dir=tmp_path,
            text=edited,
        )
    moved = text.replace("ca-file /etc/haproxy/", "ca-file /x/")
    with pytest.raises(guide.GuideError, match="mTLS"):
        guide.mtls_frontend_from_guide(port=1, pem=tmp_path, ca=tmp_path, text=moved)


def test_the_rig_runs_the_guides_systemd_command(guide: Any) -> None:
    args = guide.serve_args_from_guide(
        ["haystack-server"],
        {"--host": "127.0.0.1", "--port": "9001", "--trusted-proxy": "127.0.0.1"},
        {"HAYSTACK_STORE": "memory:"},
    )
    assert args[:2] == ["haystack-server", "serve"]
    assert args[args.index("--store") + 1] == "memory:"
    assert args[args.index("--port") + 1] == "9001"
    with pytest.raises(guide.GuideError, match="HAYSTACK_STORE"):
        guide.serve_args_from_guide(["haystack-server"], {}, {})
    with pytest.raises(guide.GuideError, match="--max-body"):
        guide.serve_args_from_guide(
            ["haystack-server"], {"--max-body": "1"}, {"HAYSTACK_STORE": "memory:"}
        )


def test_the_guides_systemd_unit_verifies(guide: Any, tmp_path: Path) -> None:
    analyze = _program("systemd-analyze", "systemd")
    server = shutil.which("haystack-server") or str(Path(sys.executable).parent / "haystack-server")
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    unit = guide.guide_block("# /etc/systemd/system/haystack.service", fence="ini")
    # The guide's own text, on a program and a user that exist here.
    unit = unit.replace("/opt/haystack/venv/bin/haystack-server", server)
    unit = unit.replace("User=haystack", f"User={user}").replace("Group=haystack", f"Group={group}")
    path = tmp_path / "haystack.service"
    path.write_text(unit)
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "haystack.service" not in done.stderr, done.stderr  # no warning about the unit


def test_the_guides_nginx_configuration_balances_and_skips_a_dead_instance(
    guide: Any, tmp_path: Path
) -> None:
    nginx = _program("nginx", "nginx-light")
    fleet = importlib.import_module("tools.scaleout._fleet")
    procs = importlib.import_module("tools.scaleout._procs")
    _, pem, _ = fleet.make_certificates(tmp_path)
    ca = tmp_path / "ca.pem"
    live, dead, front = procs.free_ports(3)
    password = secrets.token_urlsafe(12)
    server = procs.Proc(
        "server",
        [
            *fleet.server_command(),
            "serve",
            "--port",
            str(live),
            "--trusted-proxy",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        tmp_path / "server.log",
        env={**os.environ, "HAYSTACK_ADMIN_USER": "admin", "HAYSTACK_ADMIN_PASSWORD": password},
    )
    block = guide.nginx_from_guide(port=front, pem=pem, servers=[dead, live])
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp_path / 'nginx.pid'};\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n    client_body_temp_path {tmp_path / 'body'};\n"
        f"    proxy_temp_path {tmp_path / 'proxy'};\n{block}}}\n"
    )
    log = tmp_path / "nginx.log"
    checked = subprocess.run(
        [nginx, "-t", "-q", "-e", str(log), "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr + (log.read_text() if log.exists() else "")
    front_proc = procs.Proc(
        "nginx", [nginx, "-e", str(log), "-p", str(tmp_path), "-c", str(conf)], log
    )
    trust = ssl.create_default_context(cafile=str(ca))
    try:
        server.start()
        front_proc.start()

        def serving() -> bool:
            try:
                return httpx.get(f"https://127.0.0.1:{front}/", verify=trust, timeout=2).is_success
            except httpx.TransportError:
                return False

        procs.wait_for(serving, "haystack-server behind nginx", 60, 0.2)
        api = f"https://127.0.0.1:{front}/api"
        with (
            httpx.Client(verify=trust, timeout=20) as http,
            Client(api, "admin", password, http=http) as client,
        ):
            # Round robin over a dead instance and a live one: the connections the dead
            # one refuses go to the live one, so every request is answered.
            names = {client.about()[0]["serverName"] for _ in range(6)}
            sites = client.read("site")
        assert len(names) == 1
        assert len(sites) == 0  # an empty store: answered, not an error
    finally:
        front_proc.stop()
        server.stop()


def test_the_guides_mtls_frontend_logs_a_certificate_in_and_drops_a_forged_header(
    guide: Any, tmp_path: Path
) -> None:
    _program("haproxy", "haproxy")  # the fleet starts it by name
    fleet = importlib.import_module("tools.scaleout._fleet")
    procs = importlib.import_module("tools.scaleout._procs")
    # The guide's own app factory, as the module uvicorn is told to serve.
    text = guide.GUIDE.read_text()
    (tmp_path / "guide_app.py").write_text(
        guide.guide_block("import os", fence="python", text=text)
    )
    (port,) = procs.free_ports(1)
    password = secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "HAYSTACK_STORE": "memory:",
        "HAYSTACK_SECRET": secrets.token_hex(32),
        "HAYSTACK_TRUSTED_PROXIES": "127.0.0.1",
        "HAYSTACK_ADMIN_USER": "admin",
        "HAYSTACK_ADMIN_PASSWORD": password,
        "PYTHONPATH": str(tmp_path),
    }
    app = procs.Proc(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "--no-proxy-headers",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "guide_app:build_app",
        ],
        tmp_path / "uvicorn.log",
        env=env,
    )
    balancer = fleet.Balancer(tmp_path, [port])
    try:
        app.start()

        def serving() -> bool:
            if not app.alive():
                raise RuntimeError(app.tail())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).is_success
            except httpx.TransportError:
                return False

        procs.wait_for(serving, "the guide's app under uvicorn", 60, 0.2)
        balancer.start()
        about = balancer.mtls_url + "/about"
        headers = {"Accept": "text/zinc"}
        with_cert = ssl.create_default_context(cafile=str(balancer.ca))
        with_cert.load_cert_chain(str(balancer.client_pem))
        with httpx.Client(verify=with_cert, timeout=20) as http:
            answered = http.get(about, headers=headers)
            # The user API answers admins only: the certificate named admin is admin.
            users = http.get(balancer.mtls_url + "/admin/users")
        assert answered.status_code == 200, answered.text
        assert users.status_code == 200, users.text
        assert "admin" in {u["username"] for u in users.json()}
        # The same certificate, sent as the header by a client that has none: HAProxy
        # removes it, so the server sees no certificate and asks for a login.
        pem = balancer.client_pem.read_text().split("-----BEGIN PRIVATE KEY-----")[0]
        forged = {**headers, "X-Client-Cert": urllib.parse.quote(pem)}
        trust = ssl.create_default_context(cafile=str(balancer.ca))
        with httpx.Client(verify=trust, timeout=20) as http:
            refused = http.get(about, headers=forged)
            # ... while the server itself, asked directly, would believe the header:
            # which is why the guide says to let only the balancer reach it.
            direct = httpx.get(f"http://127.0.0.1:{port}/api/about", headers=forged, timeout=20)
        assert refused.status_code == 401, refused.text
        assert direct.status_code == 200, direct.text
    finally:
        balancer.stop()
        app.stop()
