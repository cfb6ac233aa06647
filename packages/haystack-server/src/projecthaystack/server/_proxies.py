"""Who is calling: the socket's peer, or, behind trusted reverse proxies only, the
address they forward (:attr:`ServerConfig.trusted_proxies`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from ._config import ServerConfig

__all__ = ["ProxyTrust"]

_MAX_HEADER = 4096
_MAX_HOPS = 32

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """An address from a header element: ``1.2.3.4``, ``1.2.3.4:80``, ``"[::1]:80"``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(value: str) -> Iterable[str]:
    """The ``for=`` of each element of an RFC 7239 ``Forwarded`` header."""
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            key, _, val = pair.partition("=")
            if key.strip().lower() == "for":
                found = val
        yield found


def _forwarded_proto(value: str) -> str:
    """The ``proto=`` of the last element of a ``Forwarded`` header (the nearest proxy)."""
    last = value.rsplit(",", 1)[-1]
    for pair in last.split(";"):
        key, _, val = pair.partition("=")
        if key.strip().lower() == "proto":
            return val.strip().strip('"').lower()
    return ""


class ProxyTrust:
    """Resolves the client address of a request by :class:`ServerConfig`'s rules.

    >>> trust = ProxyTrust(ServerConfig(trusted_proxies=("10.0.0.0/8",)))
    >>> trust.client("10.0.0.1", {"x-forwarded-for": "203.0.113.9, 10.0.0.7"}, tls=False)
    ('203.0.113.9', False)
    >>> ProxyTrust(ServerConfig()).client("127.0.0.1", {"x-forwarded-for": "6.6.6.6"}, tls=False)
    ('127.0.0.1', False)
    """

    def __init__(self, config: ServerConfig) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies
        )
        self._header = config.proxy_header.lower()

    def _trusted(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self._networks)

    def client(self, peer: str, headers: Mapping[str, str], *, tls: bool) -> tuple[str, bool]:
        """The client's address and whether it came over TLS, for a request whose socket
        peer is ``peer`` (lower-case header names)."""
        if not self._networks or not self._trusted(_address(peer)):
            return peer, tls
        raw = headers.get(self._header)
        if not raw or len(raw) > _MAX_HEADER:
            return peer, tls
        if self._header == "forwarded":
            hops = list(_forwarded_for(raw))
            proto = _forwarded_proto(raw)
        else:
            hops = raw.split(",")
            proto = headers.get("x-forwarded-proto", "").rsplit(",", 1)[-1].strip().lower()
        client = peer
        # Right to left: each hop was added by the proxy before it; the first address
        # that is not a trusted proxy is the client. Anything left of it is the
        # client's own say, and is not believed.
        for hop in reversed(hops[-_MAX_HOPS:]):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self._trusted(address):
                break
        return client, tls or proto in ("https", "wss")
