"""Store URLs: the startup nodes a cluster URL lists, and URLs and messages with their
password hidden.

A cluster URL may list several nodes, ``redis+cluster://h1:7000,h2:7001,[::1]:7002/``:
a worker discovers the cluster from whichever of them answers, so one node being down
does not stop it from starting.  The user and password before ``@`` apply to every node.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, unquote

__all__ = ["DEFAULT_PORT", "MAX_NODES", "Node", "redact", "scrub", "show_node", "split_nodes"]

MAX_NODES = 64
"""Startup nodes a URL may list: a few per shard are plenty; thousands would be a mistake
(a worker may try each in turn before it gives up)."""

DEFAULT_PORT = 6379
"""The port of a node listed without one, as redis-py assumes."""

Node = tuple[str, int]

# Host names and IPv4 addresses; IPv6 addresses go in brackets and are checked apart.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PORT = re.compile(r"[0-9]{1,5}")
# A password given as a query parameter, which redis-py also accepts.
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def _password(url: str) -> tuple[str, str, str, str] | None:
    """``(before, user, password, after)`` of a URL that carries a password, else ``None``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    end = min(ends, default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return None
    user, _, password = userinfo.partition(":")
    return f"{scheme}{sep}", user, password, f"@{hosts}{rest[end:]}"


def redact(url: str) -> str:
    """``url`` fit to show: its password (before ``@`` or as a ``password`` query
    parameter) replaced by ``***``.

    >>> redact("redis+cluster://app:s3cret@h1:7000,h2:7000/?prefix=hs")
    'redis+cluster://app:***@h1:7000,h2:7000/?prefix=hs'
    """
    found = _password(url)
    if found is not None:
        before, user, _, after = found
        url = f"{before}{user}:***{after}"
    return _QUERY_PASSWORD.sub(r"\1***", url)


def scrub(text: str, url: str) -> str:
    """``text`` (a message about ``url``) with ``url``'s passwords replaced by ``***``."""
    found = _password(url)
    secrets = [found[2]] if found is not None else []
    query = url.partition("?")[2].partition("#")[0]
    secrets += [v for k, v in parse_qsl(query) if k.lower() == "password"]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def show_node(node: Node) -> str:
    """``host:port``, an IPv6 address in brackets."""
    host, port = node
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _node(item: str) -> tuple[Node, str]:
    """One ``host[:port]`` of the list, and a key that is equal for the same node."""
    if not item:
        raise ValueError("an empty node (a stray comma?)")
    if item.startswith("["):
        close = item.find("]")
        if close < 0:
            raise ValueError(f"{item!r} opens '[' without closing it")
        # A zone id is written %25 in a URL (RFC 6874): fe80::1%25eth0 is fe80::1%eth0.
        inside, rest = unquote(item[1:close]), item[close + 1 :]
        try:
            addr = ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(f"{item!r}: {inside!r} in brackets is not an IPv6 address") from None
        host, key = inside, str(addr)
        if rest and not rest.startswith(":"):
            raise ValueError(f"{item!r}: only ':port' may follow ']'")
        port_text: str | None = rest[1:] if rest else None
    else:
        if ":" in item:
            host, _, port_text = item.rpartition(":")
            if ":" in host:
                raise ValueError(f"{item!r}: an IPv6 address goes in brackets, [::1]:7000")
        else:
            host, port_text = item, None
        if not host:
            raise ValueError(f"{item!r} has no host")
        if not _NAME.fullmatch(host):
            raise ValueError(f"{item!r}: {host!r} is not a host name or IPv4 address")
        key = host.lower()
    if port_text is None:
        port = DEFAULT_PORT
    elif _PORT.fullmatch(port_text) and 1 <= int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise ValueError(f"{item!r}: the port {port_text!r} is not a number from 1 to 65535")
    return (host, port), f"{key}:{port}"


def split_nodes(hosts: str) -> tuple[Node, ...]:
    """The ``(host, port)`` of each node in the host part of a URL (after any ``@``):
    ``host[:port]`` or ``[ipv6][:port]``, separated by commas, port 6379 where none is
    given.  An empty host, a bad port, a node listed twice or more than
    :data:`MAX_NODES` raise ``ValueError`` saying which.

    >>> split_nodes("h1:7000,H2,[::1]:7002")
    (('h1', 7000), ('H2', 6379), ('::1', 7002))
    """
    if not hosts:
        raise ValueError("it names no node (host:port)")
    items = hosts.split(",")
    if len(items) > MAX_NODES:
        raise ValueError(f"it lists {len(items)} nodes; at most {MAX_NODES}")
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, item in enumerate(items, 1):
        try:
            node, key = _node(item)
        except ValueError as exc:
            raise ValueError(f"node {i} of {len(items)}: {exc}") from None
        if key in seen:
            raise ValueError(f"node {i} of {len(items)}: {show_node(node)} is listed twice")
        seen.add(key)
        nodes.append(node)
    return tuple(nodes)
