"""Keeping handshakes between requests: expiry, and caps that a flood cannot turn against
other users."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["HandshakeTable"]

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    client: str
    expires: float


class HandshakeTable(Generic[T]):
    """In-memory handshakes by token, each owned by a client (an address or key).

    - An entry lives ``ttl`` seconds.
    - One client holds at most ``per_client`` handshakes; its next one evicts its own
      oldest, never anyone else's, so a client flooding HELLOs only churns itself.
    - All clients together hold at most ``total``; past that the client holding the
      most loses its oldest.

    >>> table = HandshakeTable[str](ttl=60, per_client=2, total=10, clock=lambda: 0.0)
    >>> for token in "abc":
    ...     table.put(token, "state " + token, client="10.0.0.9")
    >>> table.get("a") is None, table.get("c")
    (True, 'state c')
    """

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        per_client: int = 8,
        total: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.per_client = per_client
        self.total = total
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._by_client: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def put(self, token: str, value: T, *, client: str) -> None:
        """Keep ``value`` under ``token`` for ``client``."""
        self._expire()
        self.pop(token)
        mine = self._by_client.setdefault(client, OrderedDict())
        while len(mine) >= self.per_client:
            self.pop(next(iter(mine)))
            mine = self._by_client.setdefault(client, OrderedDict())
        while len(self._entries) >= self.total:
            heaviest = max(self._by_client, key=lambda c: len(self._by_client[c]))
            self.pop(next(iter(self._by_client[heaviest])))
        self._entries[token] = _Entry(value, client, self._clock() + self.ttl)
        self._by_client.setdefault(client, OrderedDict())[token] = None

    def get(self, token: str) -> T | None:
        """The live value under ``token``, or ``None``."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self.pop(token)
            return None
        return entry.value

    def pop(self, token: str) -> T | None:
        """Remove and return the value under ``token`` (a handshake is used once)."""
        entry = self._entries.pop(token, None)
        if entry is None:
            return None
        mine = self._by_client.get(entry.client)
        if mine is not None:
            mine.pop(token, None)
            if not mine:
                del self._by_client[entry.client]
        return entry.value if entry.expires > self._clock() else None

    def _expire(self) -> None:
        now = self._clock()
        # Entries are kept in insertion order and share one ttl, so the oldest go first.
        while self._entries:
            token, entry = next(iter(self._entries.items()))
            if entry.expires > now:
                break
            self.pop(token)
