"""What the encoders share: tag-name checks (remembered, so most dicts skip the regex),
and finding the encoder of a value in a table by its type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from projecthaystack.kinds import EncodeError, is_tag_name

__all__ = ["check_names", "encoder_for"]

_CHECKED: set[str] = set()
_MAX_REMEMBERED: Final = 100_000


def check_names(names: Iterable[object]) -> None:
    """Raise ``EncodeError`` unless every name is a valid tag name."""
    if _CHECKED.issuperset(names):
        return
    for name in names:
        if not isinstance(name, str) or not is_tag_name(name):
            raise EncodeError(f"invalid tag name {name!r}")
        if len(_CHECKED) < _MAX_REMEMBERED:
            _CHECKED.add(name)


def encoder_for(table: Mapping[type, Callable[[Any], Any]], v: Any) -> Callable[[Any], Any]:
    """The function of ``table`` for ``v``'s type, or for the first kind it is an instance
    of (``int`` excepted: a ``bool`` is no Number); any Mapping is a dict."""
    fn = table.get(type(v))
    if fn is not None:
        return fn
    for cls, f in table.items():
        if isinstance(v, cls) and cls is not int:
            return f
    if isinstance(v, Mapping):
        return table[dict]
    raise EncodeError(f"{type(v).__name__} is not a Haystack kind")
