"""Tag-name checks shared by the encoders, remembered so that most dicts skip the regex."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from projecthaystack.kinds import EncodeError, is_tag_name

__all__ = ["check_names"]

_CHECKED: set[str] = set()
_MAX_REMEMBERED: Final = 100_000


def check_names(names: Iterable[str]) -> None:
    """Raise ``EncodeError`` unless every name is a valid tag name."""
    if _CHECKED.issuperset(names):
        return
    for name in names:
        if not isinstance(name, str) or not is_tag_name(name):
            raise EncodeError(f"invalid tag name {name!r}")
        if len(_CHECKED) < _MAX_REMEMBERED:
            _CHECKED.add(name)
