"""What the JSON v4 writer remembers of a row, kept in the row's ``memo``.

Rows are immutable ``FrozenDict`` objects, so what is learnt about one stays true for
its life, and ``FrozenDict.memo`` is the place kinds leaves for such a result.  The
entries are this writer's own types, so it tells them from another tool's:

- :class:`Seen`, a row written once: whether msgspec can write it as it stands.
- :class:`Kept`, a row written again, so one that lives on (a store's entity, a stored
  sample): its JSON, copied from then on instead of rebuilt.

The entries live and die with their rows; nothing here grows on its own.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONVERT", "PLAIN", "Kept", "Seen"]


class Seen:
    """A row written once, and whether msgspec can write it as it stands."""

    __slots__ = ("plain",)

    def __init__(self, plain: bool) -> None:
        self.plain = plain


PLAIN: Final = Seen(True)
"""A row seen once that msgspec writes as it stands."""
CONVERT: Final = Seen(False)
"""A row seen once that needs converting first (or was not checked: always safe)."""


class Kept:
    """A row written twice: its JSON v4 bytes, and whether it was plain."""

    # A name no other tool's entry would carry: the writer reads it without a type check.
    __slots__ = ("haystack_json4", "plain")

    def __init__(self, json4: bytes, plain: bool) -> None:
        self.haystack_json4 = json4
        self.plain = plain
