"""SASLprep (RFC 4013), which SCRAM applies to user names and passwords."""

from __future__ import annotations

import stringprep
import unicodedata

from ._errors import AuthProtocolError

__all__ = ["saslprep"]

_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(text: str) -> str:
    """Normalize a user name or password for SCRAM.

    >>> saslprep("I\\u00adX"), saslprep("\\u2168")
    ('IX', 'IX')
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    normal = unicodedata.normalize("NFKC", mapped)
    if not normal:
        return normal
    for c in normal:
        if any(table(c) for table in _PROHIBITED) or stringprep.in_table_a1(c):
            raise AuthProtocolError(f"character U+{ord(c):04X} is not allowed (SASLprep)")
    if any(stringprep.in_table_d1(c) for c in normal):
        # Right-to-left text must start and end with RTL characters and hold no LTR.
        if not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])):
            raise AuthProtocolError("bidirectional text not allowed here (SASLprep)")
        if any(stringprep.in_table_d2(c) for c in normal):
            raise AuthProtocolError("mixed-direction text not allowed (SASLprep)")
    return normal
