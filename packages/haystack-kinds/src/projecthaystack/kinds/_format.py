"""Text forms shared by the kinds' ``__str__`` and the codecs."""

from __future__ import annotations

import math

__all__ = ["format_float", "format_number"]


def format_float(val: float) -> str:
    """The shortest text that reads back as ``val``: ``72`` for 72.0, ``INF``, ``NaN``.

    >>> format_float(72.0), format_float(-0.5), format_float(float("inf"))
    ('72', '-0.5', 'INF')
    """
    if val != val:
        return "NaN"
    if math.isinf(val):
        return "INF" if val > 0 else "-INF"
    if val.is_integer() and abs(val) < 1e16:
        return str(int(val))
    return repr(val)


def format_number(val: float, unit: str | None) -> str:
    """A Number in its Zinc form, the unit right after the value: ``72.5°F``.

    >>> format_number(72.5, "°F")
    '72.5°F'
    """
    text = format_float(val)
    return text + unit if unit else text
