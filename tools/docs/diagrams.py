"""The documentation's diagrams, drawn as SVG by code.

Each diagram is data (boxes on a grid and the arrows between them, or the messages of
an exchange) and :func:`render` turns it into a self-contained SVG: no JavaScript, no
network, the same bytes on every build. ``tools/docs/hooks.py`` adds them to the site
and replaces a page's ``<!-- diagram: NAME -->`` line with the picture; from the shell,

    python tools/docs/diagrams.py OUTDIR

writes them all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

FONT = "font-family='-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif'"
INK, MUTED, ACCENT, FILL = "#263238", "#607d8b", "#3f51b5", "#e8eaf6"
ARROW = (
    "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
    f"markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{INK}'/>"
    "</marker></defs>"
)


@dataclass(frozen=True)
class Box:
    """A node: its lines of text (the first in bold) and its cell on the grid."""

    lines: tuple[str, ...]
    col: float
    row: float
    store: bool = False  # drawn as a cylinder


@dataclass
class Flow:
    """Boxes on a grid and arrows between them (``(from, to, label)``)."""

    title: str
    boxes: dict[str, Box]
    arrows: list[tuple[str, str, str]] = field(default_factory=list)
    cell: tuple[int, int] = (200, 96)
    size: tuple[int, int] = (168, 52)


@dataclass
class Exchange:
    """A sequence diagram: participants and the messages between them, in order.

    A message is ``(from, to, text)``; ``from == to`` makes a note on that lifeline.
    """

    title: str
    participants: list[str]
    messages: list[tuple[str, str, str]]
    gap: int = 250


def _text(
    x: float,
    y: float,
    line: str,
    *,
    bold: bool = False,
    size: int = 12,
    anchor: str = "middle",
    fill: str = INK,
) -> str:
    weight = " font-weight='600'" if bold else ""
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}'{weight} fill='{fill}' "
        f"text-anchor='{anchor}'>{escape(line)}</text>"
    )


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img' {FONT}>"
        f"<title>{escape(title)}</title>{ARROW}{''.join(body)}</svg>\n"
    )


Rect = tuple[float, float, float, float]  # centre x, centre y, half width, half height


def _edge(a: Rect, b: Rect) -> tuple[float, float, float, float]:
    """From the border of box ``a`` to the border of box ``b``: x1, y1, x2, y2."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    dx, dy = bx - ax, by - ay

    def exit_point(
        x: float, y: float, w: float, h: float, sx: float, sy: float
    ) -> tuple[float, float]:
        scale = min(w / abs(sx) if sx else float("inf"), h / abs(sy) if sy else float("inf"))
        return x + sx * scale, y + sy * scale

    return (*exit_point(ax, ay, aw, ah, dx, dy), *exit_point(bx, by, bw, bh, -dx, -dy))


def render_flow(flow: Flow) -> str:
    """A :class:`Flow` as SVG."""
    cw, ch = flow.cell
    w, h = flow.size
    cols = max(b.col for b in flow.boxes.values()) + 1
    rows = max(b.row for b in flow.boxes.values()) + 1
    centre = {
        name: (24 + cw * (b.col + 0.5), 24 + ch * (b.row + 0.5)) for name, b in flow.boxes.items()
    }
    body: list[str] = []
    for src, dst, label in flow.arrows:
        (ax, ay), (bx, by) = centre[src], centre[dst]
        x1, y1, x2, y2 = _edge((ax, ay, w / 2 + 2, h / 2 + 2), (bx, by, w / 2 + 4, h / 2 + 4))
        body.append(
            f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{INK}' "
            "stroke-width='1.3' marker-end='url(#arrow)'/>"
        )
        if label:
            body.append(
                _text((x1 + x2) / 2 + 6, (y1 + y2) / 2, label, size=10, anchor="start", fill=MUTED)
            )
    for name, box in flow.boxes.items():
        x, y = centre[name]
        left, top = x - w / 2, y - h / 2
        if box.store:
            body.append(
                f"<path d='M{left},{top + 8} a{w / 2},8 0 0,0 {w},0 a{w / 2},8 0 0,0 {-w},0 "
                f"v{h - 16} a{w / 2},8 0 0,0 {w},0 v{-(h - 16)}' fill='{FILL}' stroke='{ACCENT}' "
                "stroke-width='1.5'/>"
            )
        else:
            body.append(
                f"<rect x='{left}' y='{top}' width='{w}' height='{h}' rx='6' fill='{FILL}' "
                f"stroke='{ACCENT}' stroke-width='1.5'/>"
            )
        first = y - (len(box.lines) - 1) * 8 + (9 if box.store else 4)
        for i, line in enumerate(box.lines):
            body.append(_text(x, first + 16 * i, line, bold=i == 0, size=12 if i == 0 else 10))
    return _svg(48 + cw * cols, 48 + ch * rows, flow.title, body)


def render_exchange(ex: Exchange) -> str:
    """An :class:`Exchange` as SVG."""
    xs = {p: 140 + ex.gap * i for i, p in enumerate(ex.participants)}
    step, top = 44, 64
    height = top + step * (len(ex.messages) + 1) + 40
    width = 280 + ex.gap * (len(ex.participants) - 1)
    body: list[str] = []
    for p, x in xs.items():
        for y in (12, height - 44):
            body.append(
                f"<rect x='{x - 70}' y='{y}' width='140' height='32' rx='6' fill='{FILL}' "
                f"stroke='{ACCENT}' stroke-width='1.5'/>"
            )
            body.append(_text(x, y + 21, p, bold=True))
        body.append(
            f"<line x1='{x}' y1='44' x2='{x}' y2='{height - 44}' stroke='{MUTED}' "
            "stroke-dasharray='4 4'/>"
        )
    for i, (src, dst, text) in enumerate(ex.messages):
        y = top + step * (i + 1)
        lines = text.split("\n")
        if src == dst:
            x = xs[src]
            bw = 12 + 6.2 * max(len(line) for line in lines)
            bh = 6 + 14 * len(lines)
            body.append(
                f"<rect x='{x - bw / 2:.1f}' y='{y - bh + 6}' width='{bw:.1f}' height='{bh}' "
                "fill='#fff8e1' stroke='#ffb300'/>"
            )
            for k, line in enumerate(lines):
                body.append(_text(x, y - bh + 20 + 14 * k, line, size=11))
            continue
        x1, x2 = xs[src], xs[dst]
        dash = " stroke-dasharray='6 3'" if x2 < x1 else ""
        body.append(
            f"<line x1='{x1}' y1='{y}' x2='{x2 - 3 if x2 > x1 else x2 + 3}' y2='{y}' "
            f"stroke='{INK}' stroke-width='1.3'{dash} marker-end='url(#arrow)'/>"
        )
        for k, line in enumerate(reversed(lines)):
            body.append(_text((x1 + x2) / 2, y - 6 - 13 * k, line, size=11))
    return _svg(width, height, ex.title, body)


DIAGRAMS: dict[str, Flow | Exchange] = {
    "layers": Flow(
        "The packages and what each depends on",
        {
            "pg": Box(("haystack-store-pg", "PostgreSQL"), 0.5, 0),
            "redis": Box(("haystack-store-redis", "Redis, Valkey, Cluster"), 1.5, 0),
            "server": Box(("haystack-server", "ASGI app, Store, MemoryStore"), 1, 1),
            "client": Box(("haystack-client", "Client, AsyncClient, CLI"), 3, 1),
            "ontology": Box(("haystack-ontology", "defs, taxonomy, RDF"), 0.5, 2),
            "auth": Box(("haystack-auth", "SCRAM, tokens, mTLS"), 2.5, 2.5),
            "filter": Box(("haystack-filter", "filters"), 1, 3),
            "codecs": Box(("haystack-codecs", "Zinc, JSON, Trio, CSV"), 1, 4),
            "kinds": Box(("haystack-kinds", "value types, Grid, timezones"), 2, 5),
        },
        [
            ("pg", "server", ""),
            ("redis", "server", ""),
            ("server", "ontology", ""),
            ("server", "auth", ""),
            ("client", "filter", ""),
            ("client", "auth", ""),
            ("ontology", "filter", ""),
            ("filter", "codecs", ""),
            ("codecs", "kinds", ""),
            ("auth", "kinds", ""),
        ],
    ),
    "request-path": Flow(
        "The path of a request through the server",
        {
            "client": Box(("client", "HTTP or WebSocket"), 0, 0),
            "asgi": Box(("ASGI server", "uvicorn, any other"), 1, 0),
            "route": Box(("route", "{prefix}/{op}"), 2, 0),
            "auth": Box(("authenticate", "token → session → user"), 3, 0),
            "neg": Box(("negotiate", "Content-Type, Accept"), 3, 1),
            "decode": Box(("decode the grid", "limits checked"), 2, 1),
            "role": Box(("role check", "viewer, operator, admin"), 1, 1),
            "op": Box(("op handler", "standard or your own"), 1, 2),
            "store": Box(("Store", "memory, PostgreSQL, Redis"), 2, 2, store=True),
            "encode": Box(("encode the answer", "Zinc, JSON, Trio, CSV"), 0, 2),
        },
        [
            ("client", "asgi", ""),
            ("asgi", "route", ""),
            ("route", "auth", ""),
            ("auth", "neg", ""),
            ("neg", "decode", ""),
            ("decode", "role", ""),
            ("role", "op", ""),
            ("op", "store", ""),
            ("op", "encode", ""),
            ("encode", "client", "the grid"),
        ],
    ),
    "auth-exchange": Exchange(
        "The login exchange: HELLO, SCRAM-SHA-256, then a bearer token",
        ["Client", "Server", "Store"],
        [
            ("Client", "Server", "GET /api/about\nHELLO username=<b64 user>"),
            ("Server", "Store", "the user's salt, iterations\n(derived for unknown users)"),
            ("Server", "Client", "401 WWW-Authenticate: SCRAM\nhandshakeToken, hash=SHA-256"),
            ("Client", "Server", "SCRAM handshakeToken,\ndata=<client-first>"),
            ("Server", "Client", "401 SCRAM handshakeToken,\ndata=<salt, iterations, nonce>"),
            ("Client", "Server", "SCRAM handshakeToken,\ndata=<client-final: proof>"),
            ("Server", "Store", "check the proof, count failures,\nstore the session (hashed)"),
            ("Server", "Client", "200 Authentication-Info:\nauthToken, data=<signature>"),
            ("Client", "Client", "checks the server's signature"),
            ("Client", "Server", "GET /api/read?filter=site\nBEARER authToken=…"),
            ("Server", "Store", "token → session → user"),
            ("Server", "Client", "200 the grid"),
        ],
        gap=240,
    ),
    "deployment": Flow(
        "Several servers behind a load balancer, over one shared store",
        {
            "clients": Box(("clients",), 0, 0.5),
            "lb": Box(("load balancer", "TLS termination"), 1, 0.5),
            "h1": Box(("host 1", "haystack-server, N workers"), 2, 0),
            "h2": Box(("host 2", "haystack-server, N workers"), 2, 1),
            "store": Box(("shared store", "PostgreSQL or Redis"), 3, 0.5, store=True),
        },
        [
            ("clients", "lb", ""),
            ("lb", "h1", ""),
            ("lb", "h2", ""),
            ("h1", "store", ""),
            ("h2", "store", ""),
        ],
        cell=(210, 80),
    ),
}


def render(name: str) -> str:
    """The SVG text of the diagram called ``name``."""
    diagram = DIAGRAMS[name]
    return render_flow(diagram) if isinstance(diagram, Flow) else render_exchange(diagram)


def main(argv: list[str]) -> int:
    """Write every diagram into the folder ``argv[0]``."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in DIAGRAMS:
        (out / f"{name}.svg").write_text(render(name), encoding="utf-8")
        print(out / f"{name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
