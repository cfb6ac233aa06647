"""The deployment guide's configurations, as the rig runs them.

``docs/deployment.md`` shows an operator the HAProxy configuration, the mTLS frontend and
the systemd unit.  The rig does not keep copies of its own: it reads those blocks from
the guide and changes only what a machine of its own must (addresses, ports, paths,
certificates of its own making), each change by an exact match that must be found, so
that a guide edited without the rig, or a rig edited without the guide, fails at once
instead of drifting apart.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "GUIDE",
    "GuideError",
    "guide_block",
    "haproxy_from_guide",
    "mtls_frontend_from_guide",
    "nginx_from_guide",
    "serve_args_from_guide",
]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
"""The deployment guide."""


class GuideError(RuntimeError):
    """The guide's block is not what the rig expects (it changed without the rig)."""


def guide_block(first_line: str, *, fence: str = "text", text: str | None = None) -> str:
    """The fenced block of the guide (``fence`` its language) whose first line is
    ``first_line``, without the fences."""
    source = GUIDE.read_text() if text is None else text
    blocks = re.findall(rf"^```{re.escape(fence)}\n(.*?)^```$", source, re.M | re.S)
    found = [b for b in blocks if b.splitlines() and b.splitlines()[0].strip() == first_line]
    if len(found) != 1:
        raise GuideError(
            f"{GUIDE.name}: expected one ```{fence} block starting {first_line!r}, "
            f"found {len(found)}"
        )
    return str(found[0])


def _swap(text: str, old: str, new: str, what: str) -> str:
    count = text.count(old)
    if count != 1:
        raise GuideError(
            f"{GUIDE.name}, {what}: expected {old.strip()!r} once, found it {count} times"
        )
    return text.replace(old, new)


def haproxy_from_guide(
    *,
    port: int,
    tls_port: int,
    pem: Path,
    servers: Sequence[int],
    socket_path: Path,
    error_dir: Path,
    text: str | None = None,
) -> str:
    """The guide's HAProxy configuration on this machine: the stats socket, the error
    files and the certificate are the rig's own; the TLS listener is on
    ``127.0.0.1:tls_port``; a plain listener on ``127.0.0.1:port`` is added for the load
    (TLS would make the load driver pay for encryption on the same cores); the servers
    are the instances' ports; and each answer says which instance gave it (for the rig's
    spread, not needed in production)."""
    cfg = guide_block("global", text=text)
    what = "the HAProxy configuration"
    cfg = _swap(
        cfg,
        "stats socket /run/haproxy/admin.sock ",
        f"stats socket {socket_path} ",
        what,
    )
    for status in (502, 503, 504):
        cfg = _swap(
            cfg,
            f"errorfile {status} /etc/haproxy/haystack/{status}.http",
            f"errorfile {status} {error_dir / f'{status}.http'}",
            what,
        )
    cfg = _swap(
        cfg,
        "    bind 10.0.0.2:443 ssl crt /etc/haproxy/haystack.pem\n",
        f"    bind 127.0.0.1:{tls_port} ssl crt {pem}\n    bind 127.0.0.1:{port}\n",
        what,
    )
    head, sep, _ = cfg.partition("    server s1 10.0.0.11:8080 check\n")
    if not sep:
        raise GuideError(f"{GUIDE.name}, {what}: the backend's first server line is not there")
    lines = [f"    server s{i + 1} 127.0.0.1:{p} check\n" for i, p in enumerate(servers)]
    instance = "    http-response set-header X-Haystack-Instance %[srv_name]\n"
    return head + instance + "".join(lines)


def mtls_frontend_from_guide(*, port: int, pem: Path, ca: Path, text: str | None = None) -> str:
    """The guide's mTLS frontend on ``127.0.0.1:port`` with the rig's certificate and
    client CA (HAProxy checks it; the rig's servers do not trust the header)."""
    block = guide_block("frontend haystack_mtls", text=text)
    return _swap(
        block,
        "bind 10.0.0.2:443 ssl crt /etc/haproxy/haystack.pem ca-file /etc/haproxy/clients-ca.pem",
        f"bind 127.0.0.1:{port} ssl crt {pem} ca-file {ca}",
        "the mTLS frontend",
    )


def nginx_from_guide(
    *, port: int, pem: Path, servers: Sequence[int], text: str | None = None
) -> str:
    """The guide's nginx block on ``127.0.0.1:port`` (TLS, ``pem`` holding certificate
    and key) in front of the instances on ``servers`` (ports of 127.0.0.1)."""
    block = guide_block(
        "# /etc/nginx/conf.d/haystack.conf (inside nginx.conf's http block)",
        fence="nginx",
        text=text,
    )
    what = "the nginx configuration"
    block = _swap(block, "listen 10.0.0.2:443 ssl;", f"listen 127.0.0.1:{port} ssl;", what)
    block = _swap(
        block, "ssl_certificate /etc/nginx/haystack.pem;", f"ssl_certificate {pem};", what
    )
    block = _swap(
        block, "ssl_certificate_key /etc/nginx/haystack.key;", f"ssl_certificate_key {pem};", what
    )
    shown = re.findall(r"^    server 10\.0\.0\.\d+:8080 (.*)$", block, re.M)
    if len(shown) != 3 or len(set(shown)) != 1:
        raise GuideError(f"{GUIDE.name}, {what}: expected three alike upstream server lines")
    lines = "".join(f"    server 127.0.0.1:{p} {shown[0]}\n" for p in servers)
    head, sep, rest = block.partition("    server 10.0.0.11:8080")
    if not sep:
        raise GuideError(f"{GUIDE.name}, {what}: no upstream server 10.0.0.11:8080")
    tail = rest.split("    keepalive ", 1)
    return head + lines + "    keepalive " + tail[1]


def serve_args_from_guide(
    command: Sequence[str],
    replace: Mapping[str, str],
    env: Mapping[str, str],
    text: str | None = None,
) -> list[str]:
    """The systemd unit's ``ExecStart`` as a command: ``command`` for its
    ``haystack-server``, ``${VAR}`` from ``env``, and the values of the options in
    ``replace`` (``--host``, ``--port``, ...) replaced; each must be in the unit."""
    unit = guide_block("# /etc/systemd/system/haystack.service", fence="ini", text=text)
    joined = unit.replace("\\\n", " ")
    lines = [ln for ln in joined.splitlines() if ln.startswith("ExecStart=")]
    if len(lines) != 1:
        raise GuideError(f"{GUIDE.name}: the systemd unit has {len(lines)} ExecStart lines")
    words = shlex.split(lines[0].removeprefix("ExecStart="))
    if not words or not words[0].endswith("/haystack-server"):
        raise GuideError(f"{GUIDE.name}: the unit does not run haystack-server: {words[:1]}")

    def expand(word: str) -> str:
        def var(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise GuideError(f"{GUIDE.name}: the unit uses ${{{m.group(1)}}}, not set")
            return env[m.group(1)]

        return re.sub(r"\$\{(\w+)\}", var, word)

    args = [*command, *(expand(w) for w in words[1:])]
    for option, value in replace.items():
        if option not in args:
            raise GuideError(f"{GUIDE.name}: the unit's ExecStart has no {option}")
        args[args.index(option) + 1] = value
    return args
