"""The codecs' own error, in the project's tree (drawn whole in ``projecthaystack.kinds``)::

    HaystackError
    ├── DecodeError (ValueError)         (kinds) malformed input; says where
    ├── EncodeError (ValueError)         (kinds) a value the format cannot carry
    └── UnknownFormatError (LookupError) no codec answers to that MIME type or name

The decoders and encoders raise kinds' ``DecodeError`` and ``EncodeError``.
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = ["UnknownFormatError"]


class UnknownFormatError(HaystackError, LookupError):
    """No codec answers to that MIME type or name.

    >>> from projecthaystack.codecs import codec_for_name
    >>> codec_for_name("xml")
    Traceback (most recent call last):
    ...
    projecthaystack.codecs.UnknownFormatError: no format called 'xml'
    """
