"""``haystack-server``: serve a store over HTTP, or run the demo.

haystack-server serve --demo                 # a generated building on 127.0.0.1:8080
haystack-server serve --load site.zinc --store memory:
haystack-server demo                         # serve the demo and query it with the client

Operator mistakes (no admin, a short password, a store that cannot open, a file in an
unknown format) end the command with one line on stderr and a non-zero status, never a
traceback; so does a worker that cannot start, whatever ``--workers`` says.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

# Only what the argument parser needs loads with the command: ``--help`` and a usage
# error must not pay for Starlette, anyio, uvicorn, the codecs or the stores.  The rest
# is imported where it is used.
from ._config import (
    ADMIN_PASSWORD_ENV,
    ADMIN_USER_ENV,
    MAX_PASSWORD,
    MIN_PASSWORD,
    ServerConfig,
    ServerLimits,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ._app import HaystackServer, StartupHook
    from ._store import Store

__all__ = ["app_from_env", "main"]

_OPTIONS_ENV = "HAYSTACK_SERVER_OPTIONS"
_SECRET_ENV = "HAYSTACK_SECRET"
_FORMATS = {".zinc": "zinc", ".json": "json", ".trio": "trio"}
_CLIENT_HINT = (
    "the demo needs haystack-client (ours, not the unrelated PyPI project of that name); "
    "from a clone of the repository: pip install -e packages/haystack-client"
)


def _one_line(exc: BaseException) -> str:
    """An exception as one line for an operator: our own errors say enough; others
    carry their type."""
    from projecthaystack.kinds import HaystackError

    from ._errors import StartupError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, StartupError | HaystackError | OSError | ValueError):
        return text
    return f"{type(exc).__name__}: {text}"


def _redact(url: str) -> str:
    """A store URL without its password, for messages.

    Works on the network location as text, so that a URL naming several hosts
    (``redis+cluster://u:pw@h1:7000,h2:7001``), which has no single port, keeps its
    scheme, user and hosts.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1]
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}")
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else item
        for item in parts.query.split("&")
        if item
        for key in (item.partition("=")[0],)
    )
    return urlunsplit(parts._replace(query=query))


def _show(text: str | None) -> None:
    """Progress of a long load on a terminal (one line, rewritten); none when piped."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\rhaystack-server: {text}\x1b[K" if text else "\n")
        sys.stderr.flush()


def _load_files(paths: Sequence[str], progress: bool = False) -> list[dict[str, Any]]:
    from projecthaystack.codecs import codec_for_name
    from projecthaystack.kinds import HaystackError

    from ._errors import StartupError

    records: list[dict[str, Any]] = []
    for path in paths:
        if progress:
            size = Path(path).stat().st_size if Path(path).exists() else 0
            _show(f"--load {path}: reading and decoding {size / 2**20:,.1f} MiB")
        suffix = Path(path).suffix.lower()
        if suffix not in _FORMATS:
            raise StartupError(
                f"--load {path}: unknown file format {suffix or '(no extension)'!r}; "
                "use .zinc, .json (Haystack 4 JSON) or .trio"
            )
        try:
            grid = codec_for_name(_FORMATS[suffix]).decode(Path(path).read_bytes())
        except OSError as exc:
            raise StartupError(f"--load {path}: {exc.strerror or exc}") from None
        except HaystackError as exc:
            raise StartupError(f"--load {path}: {_one_line(exc)}") from None
        records.extend(dict(r) for r in grid)
        if progress:
            _show(f"--load {path}: {len(grid):,} entities")
    if progress and paths:
        _show(None)
    return records


def _hooks(opts: dict[str, Any], progress: bool = False) -> list[StartupHook]:
    """What fills the store at startup: ``--load`` files and the demo building
    (``progress`` on a terminal: the command's own check, not every worker's)."""
    from ._demo import demo_building

    hooks: list[StartupHook] = []
    if opts["load"]:
        records = _load_files(opts["load"], progress)

        async def load(store: Store) -> None:
            await store.put_entities(records)

        hooks.append(load)
    demo = opts["demo"]
    if demo:
        building = demo_building(
            demo["seed"],
            sites=demo["sites"],
            ahus=demo["ahus"],
            vavs=demo["vavs"],
            days=demo["days"],
        )
        hooks.append(building.load)
    return hooks


def _config(opts: dict[str, Any]) -> ServerConfig:
    secret = os.environ.get(_SECRET_ENV)
    return ServerConfig(
        prefix=opts["prefix"],
        secret=secret.encode() if secret else None,
        allow_plaintext=opts["allow_plaintext"],
        debug=opts["debug"],
        server_name=opts["server_name"],
        trusted_proxies=tuple(opts["trusted_proxies"]),
        limits=ServerLimits(max_body=opts.get("max_body") or ServerLimits().max_body),
        access_log=bool(opts.get("access_log")),
    )


def app_from_env() -> Starlette:
    """The app described by the environment the ``serve`` command prepared (one per
    worker process)."""
    from projecthaystack.kinds import HaystackError

    from ._demo import DEMO_ACTIONS
    from ._errors import StartupError
    from ._factory import create_app
    from ._opapi import Action
    from ._stores import open_store

    opts = json.loads(os.environ[_OPTIONS_ENV])
    namespace = None
    if opts["defs"]:
        from projecthaystack.ontology import Namespace

        try:
            namespace = Namespace.load(*opts["defs"])
        except (HaystackError, OSError, ValueError) as exc:
            raise StartupError(f"--defs: {_one_line(exc)}") from None
    actions: dict[str, Action] = dict(DEMO_ACTIONS) if opts["demo"] else {}
    return create_app(
        open_store(opts["store"]),
        config=_config(opts),
        namespace=namespace,
        actions=actions,
        on_startup=_hooks(opts) if opts["run_hooks"] else (),
    )


def _announcement(url: str, count: int) -> list[str]:
    return [
        f"haystack-server: the Haystack API is at {url}/",
        f"haystack-server: {count} entities in the store",
    ]


class _Announced:
    """The CLI's app: the lifespan runs here so that a startup failure is one line
    (Starlette would hand uvicorn a traceback), and a successful one says where the API
    is and how many entities the store holds."""

    def __init__(self, app: Starlette, url: str | None) -> None:
        self.app = app
        self.url = url
        self.server: HaystackServer = app.state.haystack

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.server.start()
                    count = await self.server.store.count_entities()
                except Exception as exc:  # every startup failure: one line, no traceback
                    line = f"haystack-server: cannot start: {_one_line(exc)}"
                    await send({"type": "lifespan.startup.failed", "message": line})
                    return
                if self.url is not None:
                    print("\n".join(_announcement(self.url, count)), flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.server.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _api_url(args: argparse.Namespace, port: int) -> str:
    scheme = "https" if args.certfile else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    return f"{scheme}://{host}:{port}{args.prefix.rstrip('/')}"


def _add_serve_options(p: argparse.ArgumentParser, *, port_help: str) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help=port_help)
    p.add_argument("--prefix", default="/api", help="URL prefix of the ops (default /api)")
    p.add_argument(
        "--store",
        default="memory:",
        metavar="URL",
        help="the store, by URL scheme among the installed store packages: memory: "
        "(default), postgresql://... (haystack-store-pg), redis://... (haystack-store-redis)",
    )
    p.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="FILE",
        help="load entities from a .zinc, .json (Haystack 4) or .trio file (repeatable)",
    )
    p.add_argument(
        "--defs",
        action="append",
        default=[],
        metavar="DIR",
        help="a def lib directory or zip for defs/libs (repeatable)",
    )
    p.add_argument("--demo", action="store_true", help="serve a generated demo building")
    demo = p.add_argument_group("the demo building (with --demo)")
    demo.add_argument(
        "--demo-seed", type=int, default=1, metavar="N", help="seed: the same one, the same data"
    )
    demo.add_argument("--demo-sites", type=int, default=2, metavar="N", help="sites, 1 to 5")
    demo.add_argument("--demo-ahus", type=int, default=2, metavar="N", help="AHUs per site")
    demo.add_argument("--demo-vavs", type=int, default=5, metavar="N", help="VAVs per AHU")
    demo.add_argument(
        "--demo-days", type=int, default=7, metavar="N", help="days of history up to today"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (needs a shared store; a worker that cannot start stops all)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="an address or network (10.0.0.0/8) of a reverse proxy whose X-Forwarded-For "
        "and Forwarded headers are believed (repeatable); by default none is",
    )
    p.add_argument("--certfile", help="TLS certificate (PEM)")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (mTLS)")
    p.add_argument(
        "--allow-plaintext", action="store_true", help="accept PLAINTEXT/Basic logins over TLS"
    )
    p.add_argument("--server-name", default="haystack-server", help="serverName in the about op")
    p.add_argument(
        "--max-body",
        type=int,
        metavar="BYTES",
        help="largest request body, and WebSocket message once inflated (default 16 MiB)",
    )
    p.add_argument(
        "--ws-compression",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="per-message deflate on the WebSocket when the client offers it (default on)",
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        help="one log line per HTTP request (projecthaystack.server.access)",
    )
    p.add_argument("--debug", action="store_true", help="stack traces in error grids")
    p.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    from ._errors import StartupError

    if args.workers < 1:
        raise StartupError("--workers must be at least 1")
    if args.workers > 1 and args.store.lower().startswith("memory"):
        raise StartupError(
            "several workers need a shared store (--store postgresql://... or redis://...)"
        )
    if bool(args.certfile) != bool(args.keyfile):
        raise StartupError("--certfile and --keyfile go together")
    if args.client_ca and not args.certfile:
        raise StartupError("--client-ca needs --certfile and --keyfile")
    if args.max_body is not None and args.max_body < 1024:
        raise StartupError("--max-body must be at least 1024 bytes")
    if args.demo and not 1 <= args.demo_sites <= 5:
        raise StartupError("--demo-sites must be 1 to 5")
    opts = {
        "prefix": args.prefix,
        "store": args.store,
        "load": [str(Path(p).resolve()) for p in args.load],
        "defs": [str(Path(p).resolve()) for p in args.defs],
        "allow_plaintext": args.allow_plaintext,
        "debug": args.debug,
        "server_name": args.server_name,
        "trusted_proxies": list(args.trusted_proxy),
        "max_body": args.max_body,
        "access_log": args.access_log,
        "run_hooks": True,
        "demo": {
            "seed": args.demo_seed,
            "sites": args.demo_sites,
            "ahus": args.demo_ahus,
            "vavs": args.demo_vavs,
            "days": args.demo_days,
        }
        if args.demo
        else None,
    }
    # One secret for every worker: fake SCRAM salts must not differ between them.
    os.environ.setdefault(_SECRET_ENV, secrets.token_hex(32))
    _set_options(opts)
    _config(opts)  # refuses bad values (a trusted proxy that is no address) here, once
    return opts


def _set_options(opts: dict[str, Any]) -> None:
    os.environ[_OPTIONS_ENV] = json.dumps(opts)


def _uvicorn_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from ._tls import tls_protocols
    from ._wsprotocol import WS_PROTOCOL

    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so any local client
    # could pick the address the login throttle counts: the app decides instead
    # (ServerConfig.trusted_proxies).
    kwargs: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "ws": WS_PROTOCOL,  # wsproto's, with inflation bounded step by step
        "ws_max_size": args.max_body or ServerLimits().max_body,
        "ws_per_message_deflate": args.ws_compression,
        "proxy_headers": False,
        "lifespan": "on",
    }
    if args.certfile:
        kwargs.update(ssl_certfile=args.certfile, ssl_keyfile=args.keyfile)
        if args.client_ca:
            import ssl

            kwargs.update(ssl_ca_certs=args.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
            kwargs.update(tls_protocols())
    return kwargs


async def _preflight(opts: dict[str, Any], fill: bool) -> int:
    """What a worker does at startup, done first by the command on a store instance of
    its own, so that a mistake is one line before any worker starts: open the store,
    make sure there is an admin, and (``fill``) load it; the entity count."""
    from ._errors import StartupError
    from ._stores import open_store
    from ._users import ensure_admin

    store = open_store(opts["store"])
    try:
        await store.open()
    except Exception as exc:
        raise StartupError(
            f"the store {_redact(opts['store'])} cannot be opened: {_one_line(exc)}"
        ) from None
    try:
        await ensure_admin(store, None, ServerConfig().scram_hash)
        for hook in _hooks(opts, progress=True) if fill else ():
            await hook(store)
        return await store.count_entities()
    finally:
        await store.close()


def _worker(kwargs: dict[str, Any], sock: socket.socket, started: Any) -> None:
    """One worker process: uvicorn on the shared socket; ``started`` is set once it
    serves, so that the parent can tell a failed start from a later death."""
    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    server = uvicorn.Server(uvicorn.Config(**kwargs))

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            started.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:
        sys.exit(exc.code if isinstance(exc.code, int) and exc.code else 3)
    except Exception as exc:
        print(f"haystack-server: a worker cannot start: {_one_line(exc)}", file=sys.stderr)
        sys.exit(3)
    if not server.started:
        sys.exit(3)


def _supervise(
    kwargs: dict[str, Any], sock: socket.socket, workers: int, announce: Sequence[str]
) -> int:
    """Run ``workers`` processes on one socket until Ctrl-C or SIGTERM; print
    ``announce`` once all serve; restart one that dies after it started; stop them all
    (status 1) when one cannot start before any has; once one serves, start another in
    place of one that could not (after 1, 2, 4 ... 30 s): the store was away for a
    moment, and the instance goes on serving meanwhile."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def spawn() -> tuple[Any, Any]:
        started = ctx.Event()
        proc = ctx.Process(target=_worker, args=(kwargs, sock, started), daemon=False)
        proc.start()
        return proc, started

    running = [spawn() for _ in range(workers)]
    status = 0
    pending = list(announce)
    serving = False  # whether any worker ever started
    failures = 0  # workers in a row that could not start while others serve
    retry_at = 0.0
    try:
        while not stop.wait(0.2):
            if any(started.is_set() for _, started in running):
                serving = True
            if all(started.is_set() for _, started in running):
                failures = 0
                if pending:
                    print("\n".join(pending), flush=True)
                    pending = []
            for i, (proc, started) in enumerate(running):
                if proc.is_alive():
                    continue
                if started.is_set():
                    print(
                        f"haystack-server: worker {proc.pid} died; starting another",
                        file=sys.stderr,
                    )
                    running[i] = spawn()
                    continue
                if not serving:
                    # No worker ever started: the configuration or the store is wrong.
                    print(
                        f"haystack-server: a worker could not start (exit status "
                        f"{proc.exitcode}); stopping the server",
                        file=sys.stderr,
                    )
                    status = 1
                    stop.set()
                    break
                # Its siblings serve, so the store was reachable: a moment's outage (a
                # database restart, a failover) must not stop the whole instance.
                if retry_at == 0.0:
                    delay = min(30.0, 2.0**failures)
                    retry_at = time.monotonic() + delay
                    print(
                        f"haystack-server: a worker could not start (exit status "
                        f"{proc.exitcode}) while the others serve; starting another in "
                        f"{delay:g} s",
                        file=sys.stderr,
                    )
                if time.monotonic() >= retry_at:
                    failures += 1
                    retry_at = 0.0
                    running[i] = spawn()
    finally:
        for proc, _ in running:
            if proc.is_alive():
                proc.terminate()
        for proc, _ in running:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return status


def _serve(args: argparse.Namespace) -> int:
    import anyio
    import uvicorn

    if args.demo and not os.environ.get(ADMIN_PASSWORD_ENV):
        # A demo must start with no setup: make the admin and say who it is.
        os.environ[ADMIN_PASSWORD_ENV] = secrets.token_urlsafe(12)
        user = os.environ.setdefault(ADMIN_USER_ENV, "admin")
        print(f"demo admin: user {user}  password {os.environ[ADMIN_PASSWORD_ENV]}")
    opts = _prepare(args)
    kwargs = _uvicorn_kwargs(args)
    url = _api_url(args, args.port)
    if args.workers == 1:
        app = app_from_env()  # a file that cannot be read fails here, before the store
        anyio.run(_preflight, opts, False)
        server = uvicorn.Server(uvicorn.Config(_Announced(app, url), **kwargs))
        server.run()
        return 0 if server.started else 1
    # Several workers: check and fill the shared store once, here; the workers serve.
    count = anyio.run(_preflight, opts, True)
    opts["run_hooks"] = False
    _set_options(opts)
    announce = _announcement(url, count)
    config = uvicorn.Config("projecthaystack.server._cli:_worker_app", factory=True, **kwargs)
    sock = config.bind_socket()
    kwargs.update(app="projecthaystack.server._cli:_worker_app", factory=True)
    try:
        return _supervise(kwargs, sock, args.workers, announce)
    finally:
        sock.close()


def _worker_app() -> _Announced:
    """A worker's app (``--workers`` > 1): the parent has announced the API already."""
    return _Announced(app_from_env(), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo(args: argparse.Namespace) -> int:
    """Serve the demo building, query it with the client, print what came back."""
    import uvicorn

    try:
        from projecthaystack.client import Client
    except ImportError:
        print(f"haystack-server: {_CLIENT_HINT}", file=sys.stderr)
        return 2
    password = os.environ.get(ADMIN_PASSWORD_ENV) or secrets.token_urlsafe(12)
    os.environ[ADMIN_USER_ENV] = user = os.environ.get(ADMIN_USER_ENV, "admin")
    os.environ[ADMIN_PASSWORD_ENV] = password
    args.demo = True
    args.workers = 1
    args.port = args.port or _free_port()
    _prepare(args)
    kwargs = _uvicorn_kwargs(args)
    kwargs["log_level"] = "warning"
    config = uvicorn.Config(_Announced(app_from_env(), None), **kwargs)
    config.configure_logging()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            print("haystack-server: the demo server did not start", file=sys.stderr)
            return 1
        time.sleep(0.05)
    url = _api_url(args, args.port)
    print(f"Haystack demo server at {url}")
    print(f"  user: {user}   password: {password}\n")
    try:
        with Client(url, user, password) as client:
            about = client.about()[0]
            product = f"{about['productName']} {about['productVersion']}"
            print(f"about: {product}, Haystack {about['haystackVersion']}")
            sites = client.read("site")
            print(f"\nread 'site': {len(sites)} sites")
            for s in sites:
                place = f"{s['geoCity']}, {s['geoState']}"
                print(f"  {s['id']}  {s['dis']:<18} {place}  tz={s['tz']}  area={s['area']}")
            equips = client.nav(sites[0]["id"])
            print(f"\nnav {sites[0]['id']}: {len(equips)} equips")
            for e in list(equips)[:4]:
                print(f"  {e['id']}  {e['dis']}")
            points = client.read("point and discharge and air and temp and sensor", limit=1)
            point = points[0]
            his = client.his_read(point["id"], "yesterday")
            vals = [r["val"].val for r in his]
            span = f", min {min(vals)} max {max(vals)} {point['unit']}" if vals else ""
            print(f"\nhisRead {point['id']} yesterday: {len(his)} samples{span}")
            for row in list(his)[:3]:
                print(f"  {row['ts'].isoformat()}  {row['val']}")
            count = len(client.read("point"))
            print(f"\n{count} points in all. Query it yourself with the command-line client:")
            print(f"  haystack --url {url} --user {user} --password {password} read 'ahu'")
            print("  (from a clone of the repository: python3 tools/dev.py hatch run haystack ...)")
    except Exception as exc:  # the demo reports what failed instead of a traceback
        print(f"the demo query failed: {_one_line(exc)}", file=sys.stderr)
        server.should_exit = True
        thread.join(10)
        return 1
    if args.once:
        server.should_exit = True
        thread.join(10)
        return 0
    print("\nServing until Ctrl-C.")
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        server.should_exit = True
        thread.join(10)
    return 0


_SERVE_EPILOG = f"""\
environment:
  {ADMIN_USER_ENV}      the first admin's name (default admin), created when the
                           store has no such user
  {ADMIN_PASSWORD_ENV}  the first admin's password: {MIN_PASSWORD} to {MAX_PASSWORD} characters;
                           without an admin in the store the server refuses to start
                           (--demo makes one up and prints it)
  {_SECRET_ENV}          the secret behind unknown users' fake SCRAM salts; give
                           every worker and host the same one (default: made up per run)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haystack-server", description="A Project Haystack server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the Haystack HTTP API, the WebSocket and the user API.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_serve_options(serve, port_help="port (default 8080)")
    demo = sub.add_parser(
        "demo",
        help="serve the demo building and query it with the client",
        description="Serve the demo building on a free port of 127.0.0.1 (or --port), query "
        "it with haystack-client and print what came back; then serve until Ctrl-C.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_serve_options(demo, port_help="port (default: a free one, printed at startup)")
    demo.set_defaults(port=0)
    demo.add_argument("--once", action="store_true", help="stop after the queries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``haystack-server`` command."""
    args = _parser().parse_args(argv)
    from projecthaystack.kinds import HaystackError

    try:
        if args.command == "serve":
            return _serve(args)
        return _demo(args)
    except (HaystackError, ValueError, LookupError, OSError) as exc:
        print(f"haystack-server: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the server has stopped; nothing more to say
        return 130
