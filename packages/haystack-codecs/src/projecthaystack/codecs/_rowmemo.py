"""What the JSON v4 writer remembers of the rows it writes, by their identity.

Rows are immutable ``FrozenDict`` objects, so what is learnt about one stays true for
its life.  A row written once is *seen*: the writer remembers whether msgspec can write
it as it stands.  A row written again lives on (a store's entity, a stored sample): its
JSON is *kept*, and from then on is copied, not rebuilt.  Both memos hold the rows only
weakly and are bounded, so rows that die take their entries with them and hostile data
cannot grow them without end.
"""

from __future__ import annotations

import threading
import weakref
from typing import Final

from projecthaystack.kinds import FrozenDict

__all__ = ["RowMemo"]


class _KeptRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a kept row that knows the row's key, for its callback."""

    __slots__ = ("key",)
    key: int


class RowMemo:
    """Two identity-keyed memos of rows: seen once (their plainness), kept (their JSON).

    ``kept`` maps ``id(row)`` to the row's bytes; an entry lives exactly as long as its
    row (a weak reference's callback removes it while the row is being freed, before any
    other object can take its ``id``), so a hit needs no further check.  ``seen`` maps
    ``id(row)`` to a weak reference and the verdict; a hit counts only if the reference
    still points at the row asked about.
    """

    __slots__ = ("_lock", "_refs", "_size", "kept", "max_bytes", "max_rows", "max_seen", "seen")

    def __init__(
        self, *, max_rows: int = 1 << 20, max_bytes: int = 1 << 28, max_seen: int = 1 << 18
    ) -> None:
        self.kept: dict[int, bytes] = {}
        self.seen: dict[int, tuple[weakref.ref[FrozenDict], bool]] = {}
        self._refs: dict[int, _KeptRef] = {}
        self._size = 0
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_seen = max_seen
        # Reentrant: a row freed by the collector inside keep() calls _gone() right there.
        self._lock = threading.RLock()

    def plain(self, row: FrozenDict) -> bool | None:
        """What was found of ``row`` when it was first written, or ``None`` if it was not."""
        entry = self.seen.get(id(row))
        if entry is None or entry[0]() is not row:
            return None
        return entry[1]

    def see(self, row: FrozenDict, plain: bool) -> None:
        """Remember that ``row`` was written, and whether it went as it stands."""
        if self.make_room(1):
            self.seen[id(row)] = (weakref.ref(row), plain)

    def make_room(self, count: int) -> bool:
        """Make room for ``count`` more rows to be seen; ``False`` if they cannot fit.

        Writers that fill ``seen`` themselves (one call a grid, not one a row) call this
        first, and skip the memo when it answers ``False``."""
        if len(self.seen) + count > self.max_seen:
            self._prune(count)
        return len(self.seen) + count <= self.max_seen

    def keep(self, row: FrozenDict, raw: bytes) -> None:
        """Keep the JSON of ``row`` for as long as the row lives, if there is room."""
        key = id(row)
        if key in self.kept:
            return
        with self._lock:  # the size and the bounds are one decision
            if len(self.kept) >= self.max_rows or self._size + len(raw) > self.max_bytes:
                return
            ref = _KeptRef(row, self._gone)
            ref.key = key
            self._refs[key] = ref
            self.kept[key] = raw
            self._size += len(raw)

    def clear(self) -> None:
        """Forget every row (the references go too, so no callback fires later)."""
        with self._lock:
            self.kept.clear()
            self._refs.clear()
            self.seen.clear()
            self._size = 0

    def _gone(self, ref: weakref.ref[FrozenDict]) -> None:
        key = ref.key  # type: ignore[attr-defined]
        with self._lock:
            raw = self.kept.pop(key, None)
            self._refs.pop(key, None)
            if raw is not None:
                self._size -= len(raw)

    def _prune(self, count: int) -> None:
        seen = self.seen
        for key in [k for k, (ref, _) in list(seen.items()) if ref() is None]:
            seen.pop(key, None)
        if len(seen) + count > self.max_seen * 3 // 4:  # mostly live rows: start again
            seen.clear()


ROWS: Final = RowMemo()
"""The memo of the JSON v4 writer."""
