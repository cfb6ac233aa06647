"""The exception hierarchy shared by every projecthaystack package, drawn once here.

Every error raised on purpose is a :class:`HaystackError`, and also the builtin whose
meaning matches (``ValueError`` for bad input, ``LookupError`` for a name that is not
there).  Each package keeps its own errors in its errors module, which draws its part::

    HaystackError                           root of everything this project raises on purpose
    ├── InvalidValueError (ValueError)      kinds: a value that breaks a rule of its kind
    ├── DecodeError (ValueError)            kinds: malformed input to a decoder; says where
    │   └── FilterSyntaxError (FilterError) filter: text that does not parse
    ├── EncodeError (ValueError)            kinds: a value a format cannot represent
    ├── UnknownFormatError (LookupError)    codecs: no codec for that MIME type or name
    ├── FilterError (ValueError)            filter: a filter that cannot be used as asked
    ├── NamespaceError (ValueError)         ontology: libs that make no valid namespace
    ├── AuthError                           auth: anything that stops an authentication
    │   ├── AuthProtocolError (ValueError)
    │   ├── CredentialsRejectedError
    │   ├── ServerSignatureError
    │   └── UnsupportedMechanismError
    ├── ClientError                         client: every error names the URL that failed
    │   ├── RequestNotSentError             never reached the server: safe to retry
    │   ├── ResponseError                   sent, then failed: the op may have run
    │   │   └── TooManyRequestsError        429: wait ``retry_after`` seconds
    │   ├── CallError                       the server answered with an error grid
    │   ├── UnknownRecError (LookupError)   ids that do not exist
    │   └── AuthenticationError (AuthError) the login did not succeed (one class for
    │                                       each auth failure, subclassing auth's too)
    └── ServerError                         server
        ├── OpError (ValueError)            answered as an error grid
        ├── HttpError                       answered with an HTTP status
        └── StartupError (RuntimeError)     a configuration the server will not start with

``FilterSyntaxError`` is both a ``FilterError`` and a ``DecodeError``.  No name shadows a
builtin (``ConnectionError``, ``TimeoutError``).
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
