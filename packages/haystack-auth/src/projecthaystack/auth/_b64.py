"""base64url as the Auth chapter uses it: written without padding, read with or without."""

from __future__ import annotations

import base64
import binascii

from ._errors import AuthProtocolError

__all__ = ["b64url_decode", "b64url_encode"]


def b64url_encode(data: bytes | str) -> str:
    """base64url without padding.

    >>> b64url_encode("user")
    'dXNlcg'
    """
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url, tolerating padding and the standard ``+/`` alphabet that some
    servers send.

    >>> b64url_decode("dXNlcg"), b64url_decode("dXNlcg==")
    (b'user', b'user')
    """
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    if len(cleaned) % 4 == 1:
        raise AuthProtocolError("invalid base64url length")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AuthProtocolError(f"invalid base64url: {exc}") from None
