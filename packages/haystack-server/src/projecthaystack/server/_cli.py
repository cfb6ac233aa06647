"""``haystack-server``: serve a store over HTTP, or run the demo.

haystack-server serve --demo                 # a generated building on 127.0.0.1:8080
haystack-server serve --load site.zinc --store memory:
haystack-server demo                         # serve the demo and query it with the client
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from ._config import ServerConfig
from ._demo import DEMO_ACTIONS, demo_building
from ._errors import StartupError
from ._factory import create_app
from ._memory import MemoryStore
from ._store import Store

__all__ = ["app_from_env", "main", "open_store"]

_OPTIONS_ENV = "HAYSTACK_SERVER_OPTIONS"


def open_store(url: str) -> Store:
    """The store a URL names: ``memory:``, ``postgresql://...``, ``redis://...``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryStore()
    module = {"postgresql": "pg", "postgres": "pg", "redis": "redis", "rediss": "redis"}.get(scheme)
    if module is None:
        raise StartupError(
            f"unknown store URL {url!r}: use memory:, postgresql://... or redis://..."
        )
    import importlib

    try:
        mod = importlib.import_module(f"projecthaystack.stores.{module}")
    except ImportError:
        raise StartupError(
            f"the {scheme} store needs: pip install haystack-store-{module}"
        ) from None
    factory = getattr(mod, "open_store", None)
    if factory is None:
        raise StartupError(f"haystack-store-{module} does not provide a store yet")
    store: Store = factory(url)
    return store


def _load_files(paths: Sequence[str]) -> list[dict[str, Any]]:
    from projecthaystack.codecs import codec_for_name

    records: list[dict[str, Any]] = []
    for path in paths:
        ext = Path(path).suffix.lstrip(".").lower()
        codec = codec_for_name({"zinc": "zinc", "json": "json", "trio": "trio"}.get(ext, ""))
        records.extend(dict(r) for r in codec.decode(Path(path).read_bytes()))
    return records


def app_from_env() -> Starlette:
    """The app described by the environment the ``serve`` command prepared (one per
    worker process)."""
    opts = json.loads(os.environ[_OPTIONS_ENV])
    secret = os.environ.get("HAYSTACK_SECRET")
    config = ServerConfig(
        prefix=opts["prefix"],
        secret=secret.encode() if secret else None,
        allow_plaintext=opts["allow_plaintext"],
        debug=opts["debug"],
        server_name=opts["server_name"],
    )
    namespace = None
    if opts["defs"]:
        from projecthaystack.ontology import Namespace

        namespace = Namespace.load(*opts["defs"])
    hooks = []
    if opts["load"]:
        records = _load_files(opts["load"])

        async def load(store: Store) -> None:
            await store.put_entities(records)

        hooks.append(load)
    actions = {}
    if opts["demo"]:
        demo = opts["demo"]
        building = demo_building(
            demo["seed"],
            sites=demo["sites"],
            ahus=demo["ahus"],
            vavs=demo["vavs"],
            days=demo["days"],
        )
        hooks.append(building.load)
        actions = dict(DEMO_ACTIONS)
    return create_app(
        open_store(opts["store"]),
        config=config,
        namespace=namespace,
        actions=actions,
        on_startup=hooks,
    )


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--prefix", default="/api", help="URL prefix of the ops (default /api)")
    p.add_argument(
        "--store", default="memory:", help="memory: (default), postgresql://..., redis://..."
    )
    p.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="FILE",
        help="load entities from a Zinc, JSON or Trio file (repeatable)",
    )
    p.add_argument(
        "--defs",
        action="append",
        default=[],
        metavar="DIR",
        help="a def lib directory or zip for defs/libs (repeatable)",
    )
    p.add_argument("--demo", action="store_true", help="serve a generated demo building")
    p.add_argument("--demo-seed", type=int, default=1)
    p.add_argument("--demo-sites", type=int, default=2)
    p.add_argument("--demo-ahus", type=int, default=2)
    p.add_argument("--demo-vavs", type=int, default=5)
    p.add_argument("--demo-days", type=int, default=7)
    p.add_argument("--workers", type=int, default=1, help="worker processes (needs a shared store)")
    p.add_argument("--certfile", help="TLS certificate (PEM)")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (mTLS)")
    p.add_argument(
        "--allow-plaintext", action="store_true", help="accept PLAINTEXT/Basic logins over TLS"
    )
    p.add_argument("--server-name", default="haystack-server")
    p.add_argument("--debug", action="store_true", help="stack traces in error grids")
    p.add_argument("--log-level", default="info")


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers > 1 and args.store.startswith("memory"):
        raise StartupError(
            "several workers need a shared store (--store postgresql://... or redis://...)"
        )
    if bool(args.certfile) != bool(args.keyfile):
        raise StartupError("--certfile and --keyfile go together")
    if args.client_ca and not args.certfile:
        raise StartupError("--client-ca needs --certfile and --keyfile")
    opts = {
        "prefix": args.prefix,
        "store": args.store,
        "load": [str(Path(p).resolve()) for p in args.load],
        "defs": [str(Path(p).resolve()) for p in args.defs],
        "allow_plaintext": args.allow_plaintext,
        "debug": args.debug,
        "server_name": args.server_name,
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
    os.environ[_OPTIONS_ENV] = json.dumps(opts)
    # One secret for every worker: fake SCRAM salts must not differ between them.
    os.environ.setdefault("HAYSTACK_SECRET", secrets.token_hex(32))
    return opts


def _uvicorn_config(args: argparse.Namespace) -> Any:
    import uvicorn

    from ._tls import tls_protocols

    kwargs: dict[str, Any] = {"ws": "wsproto"}
    if args.certfile:
        kwargs.update(ssl_certfile=args.certfile, ssl_keyfile=args.keyfile)
        if args.client_ca:
            import ssl

            kwargs.update(ssl_ca_certs=args.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
            kwargs.update(tls_protocols())
    return uvicorn.Config(
        "projecthaystack.server._cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        **kwargs,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.demo and not os.environ.get("HAYSTACK_ADMIN_PASSWORD"):
        # A demo must start with no setup: make the admin and say who it is.
        os.environ["HAYSTACK_ADMIN_PASSWORD"] = secrets.token_urlsafe(12)
        user = os.environ.setdefault("HAYSTACK_ADMIN_USER", "admin")
        print(f"demo admin: user {user}  password {os.environ['HAYSTACK_ADMIN_PASSWORD']}")
    _prepare(args)
    config = _uvicorn_config(args)
    if args.workers > 1:
        sock = config.bind_socket()
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return 0
    uvicorn.Server(config).run()
    return 0


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
        print("haystack-server demo needs the client: pip install haystack-client", file=sys.stderr)
        return 2
    password = os.environ.get("HAYSTACK_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    os.environ["HAYSTACK_ADMIN_USER"] = user = os.environ.get("HAYSTACK_ADMIN_USER", "admin")
    os.environ["HAYSTACK_ADMIN_PASSWORD"] = password
    args.demo = True
    args.port = args.port or _free_port()
    _prepare(args)
    config = _uvicorn_config(args)
    config.log_level = "warning"
    config.configure_logging()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            print("the demo server did not start", file=sys.stderr)
            return 1
        time.sleep(0.05)
    url = f"http://{args.host}:{args.port}{args.prefix}"
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
            print(
                f"\nhisRead {point['id']} yesterday: {len(his)} samples, "
                f"min {min(vals)} max {max(vals)} {point['unit']}"
            )
            for row in list(his)[:3]:
                print(f"  {row['ts'].isoformat()}  {row['val']}")
            count = len(client.read("point"))
            print(f"\n{count} points in all. Query it yourself with the command-line client:")
            print(f"  haystack --url {url} --user {user} --password {password} read 'ahu'")
            print("  (from a clone of the repository: python3 tools/dev.py hatch run haystack ...)")
    except Exception as exc:  # the demo reports what failed instead of a traceback
        print(f"the demo query failed: {type(exc).__name__}: {exc}", file=sys.stderr)
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
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``haystack-server`` command."""
    parser = argparse.ArgumentParser(
        prog="haystack-server", description="A Project Haystack server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    _add_serve_options(serve)
    demo = sub.add_parser("demo", help="serve the demo building and query it with the client")
    _add_serve_options(demo)
    demo.set_defaults(port=0)
    demo.add_argument("--once", action="store_true", help="stop after the queries")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _demo(args)
    except (StartupError, ValueError, OSError) as exc:
        print(f"haystack-server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
