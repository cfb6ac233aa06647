"""What the writers remember of the rows they write, in the row's ``FrozenDict.memo``.

A FrozenDict never changes, so what a writer derives from it stays true.  The writers
share one memo per row, in types of this module, so that a row written as JSON v4 and
as Zinc keeps both texts:

- a row written once (by any writer) gets a :class:`Seen`, one of three shared
  instances, so marking a fresh row allocates nothing;
- a row written again is a row that lives on (a stored entity, a stored sample): it gets
  a :class:`Kept` of its own, which each writer fills with its text of the row.

A Kept's Zinc text is written in the column order of the grid it was written in; it is
kept with that grid's column names (interned by :func:`cols_key`, so one ``is`` tells
whether it applies) and used only where the columns are the same.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONVERT", "PLAIN", "SEEN", "Kept", "Seen", "cols_key"]


class Seen:
    """A row written once, and whether msgspec can write it as JSON v4 as it stands
    (``None``: not checked, by a writer of another format)."""

    __slots__ = ("plain",)

    def __init__(self, plain: bool | None) -> None:
        self.plain = plain


PLAIN: Final = Seen(True)
"""A row seen once that msgspec writes as it stands."""
CONVERT: Final = Seen(False)
"""A row seen once that needs converting first (or was not checked: always safe)."""
SEEN: Final = Seen(None)
"""A row seen once by a writer that did not check whether it is plain."""


class Kept:
    """A row written twice or more: the texts the writers kept of it.

    ``haystack_json4``: its JSON v4 bytes (``None`` until JSON writes it again);
    ``plain``: whether msgspec writes it as it stands (``None``: not known yet);
    ``haystack_zinc``: ``(cols, line)``, its Zinc line as UTF-8 in a grid whose column
    names are the interned tuple ``cols`` (one attribute, so that threads never pair one
    grid's columns with another's line)."""

    # Names no other tool's entry would carry: the writers read them without a type check.
    __slots__ = ("haystack_json4", "haystack_zinc", "plain")

    def __init__(
        self,
        json4: bytes | None,
        plain: bool | None,
        zinc: tuple[tuple[str, ...], bytes] | None = None,
    ) -> None:
        self.haystack_json4 = json4
        self.plain = plain
        self.haystack_zinc = zinc


# Column-name tuples, one object per distinct tuple: a kept Zinc line is tied to its
# tuple by identity.  Bounded, since clients choose columns; past the bound, grids of
# new columns keep no Zinc lines (and are written as fresh rows, which is right).
_COLS: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_COLS: Final = 4096


def cols_key(names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The interned tuple equal to ``names``, or ``None`` when the table is full."""
    key = _COLS.get(names)
    if key is None and len(_COLS) < _MAX_COLS:
        key = _COLS.setdefault(names, names)
    return key
