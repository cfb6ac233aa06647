"""The scale-out rig's short form (``tools/scaleout``, ``--short``): two
``haystack-server serve --workers 2`` instances behind HAProxy on one store, ten clients
under load, then a ``kill -9`` of one instance during the load; nothing acknowledged may
be lost, no batch half written, every watch sees every change, sessions are one across
instances.  Once on a PostgreSQL cluster and once on a Redis Cluster, each started by the
rig itself in a temporary directory on free ports (never the shared servers).

It needs ``haproxy``, ``redis-server``/``redis-cli`` and PostgreSQL's server programs
(``apt-get install haproxy redis-server postgresql``; as root also the ``postgres`` OS
user, which that package makes).  Outside CI a missing one skips these tests with that
message; under ``CI=true`` it fails them.

About a minute per store: it runs on Python 3.11 only (CI has two cores and tests three
Pythons; the rig tests servers and stores, not the interpreter), unless
``HAYSTACK_SCALEOUT=1`` asks for it on the Python at hand.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module", autouse=True)
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


@pytest.mark.parametrize("store", ["postgresql", "redis-cluster"])
def test_short_rig_keeps_everything_through_a_kill(store: str, tmp_path: Path) -> None:
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
        "faults: everything works again afterwards, without restarting the servers",
        "faults: the balancer sends requests to s2 again once it is back",
    ):
        assert needed in names, needed
    assert all(c["ok"] for c in result["checks"]), shown
    # The load really ran through both instances, and the kill really happened.
    (step,) = result["steps"]
    assert set(step["instances_answering"]) == {"s1", "s2"}
    assert step["ok"] == step["requests"] > 0
    (event,) = result["fault"]["events"]
    assert event["what"] == "kill -9 of instance s2"
    assert result["logins"]["clients"] == 10
