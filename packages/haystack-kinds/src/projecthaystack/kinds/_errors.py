"""The exception hierarchy shared by every projecthaystack package.

::

    HaystackError                      root of everything this project raises on purpose
    ├── InvalidValueError (ValueError) a value that breaks a rule of its kind (bad Ref id, ...)
    ├── DecodeError (ValueError)       malformed input to a decoder; says where
    └── EncodeError (ValueError)       a value that a format cannot represent

The higher layers (filter, auth, client, server) subclass ``HaystackError`` in turn.
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "HaystackError", "InvalidValueError"]


class HaystackError(Exception):
    """Root of every exception raised on purpose by a projecthaystack package."""


class InvalidValueError(HaystackError, ValueError):
    """A value breaks a rule of its kind, such as a Ref id with a space in it.

    >>> from projecthaystack.kinds import Ref
    >>> Ref("not valid")
    Traceback (most recent call last):
    ...
    projecthaystack.kinds.InvalidValueError: invalid Ref id 'not valid'
    """


class DecodeError(HaystackError, ValueError):
    """Malformed input to a decoder.

    The message names where the problem is.  ``line`` and ``col`` (1-based) are set by
    the text formats, ``path`` (such as ``rows[3].siteRef``) by JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        col: int | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.col = col
        self.path = path
        where = []
        if line is not None:
            where.append(f"line {line}")
        if col is not None:
            where.append(f"col {col}")
        if path is not None:
            where.append(f"at {path or '$'}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class EncodeError(HaystackError, ValueError):
    """A value cannot be represented in the requested format (e.g. a Python ``set``)."""
