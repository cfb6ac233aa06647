"""Limits on what a decoder accepts, so hostile input cannot exhaust memory or stack."""

from __future__ import annotations

from dataclasses import dataclass

from projecthaystack.kinds import DecodeError

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a decoder accepts.

    ``max_size`` counts the bytes (or characters) of the input; ``max_depth`` the nesting
    of lists, dicts and grids inside one another.

    >>> from projecthaystack.codecs import zinc
    >>> zinc.decode_grid('ver:"3.0"\\na\\n[[[1]]]', limits=Limits(max_depth=2))
    Traceback (most recent call last):
    ...
    projecthaystack.kinds.DecodeError: nesting deeper than 2 (line 3, col 3)
    """

    max_size: int = 256 * 1024 * 1024
    max_depth: int = 64

    def check_size(self, size: int) -> None:
        """Raise ``DecodeError`` if an input of ``size`` is over ``max_size``."""
        if size > self.max_size:
            raise DecodeError(f"input of {size} bytes is over the limit of {self.max_size}")


DEFAULT_LIMITS = Limits()
