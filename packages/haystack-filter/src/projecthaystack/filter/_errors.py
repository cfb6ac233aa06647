"""The errors of filters, in the project's tree (drawn whole in ``projecthaystack.kinds``)::

HaystackError
└── FilterError (ValueError)             a filter that cannot be parsed or evaluated
    └── FilterSyntaxError (DecodeError)  text that does not parse; says where
"""

from __future__ import annotations

from projecthaystack.kinds import DecodeError, HaystackError

__all__ = ["FilterError", "FilterSyntaxError"]


class FilterError(HaystackError, ValueError):
    """A filter that cannot be used as asked: text that does not parse
    (:class:`FilterSyntaxError`), or a spec name with no namespace to resolve it."""


class FilterSyntaxError(FilterError, DecodeError):
    """A filter that does not parse; ``col`` (1-based) points at the problem.

    >>> from projecthaystack.filter import parse
    >>> parse("point and")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    projecthaystack.filter.FilterSyntaxError: expected a tag name, ... (line 1, col 10)
    """
