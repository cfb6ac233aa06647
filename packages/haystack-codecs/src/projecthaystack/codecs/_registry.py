"""The codecs by MIME type, as HTTP content negotiation needs them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from projecthaystack.kinds import Grid

from . import csv, json, trio, zinc
from ._errors import UnknownFormatError
from ._limits import DEFAULT_LIMITS, Limits

__all__ = [
    "CODECS",
    "Codec",
    "UnknownFormatError",
    "codec_for_mime",
    "codec_for_name",
    "negotiate",
]


@dataclass(frozen=True, slots=True)
class Codec:
    """One wire format: its name, MIME type, and grid encoder and decoder on bytes.

    >>> codec = codec_for_mime("text/zinc; charset=utf-8")
    >>> codec.name, codec.mime
    ('zinc', 'text/zinc')
    """

    name: str
    mime: str
    file_ext: str
    lossless: bool
    _encode: Callable[[Grid], bytes]
    _decode: Callable[[bytes | str, Limits], Grid]

    def encode(self, grid: Grid) -> bytes:
        """The grid as UTF-8 bytes in this format."""
        return self._encode(grid)

    def decode(self, data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Grid:
        """A grid from bytes or text in this format."""
        return self._decode(data, limits)

    @property
    def content_type(self) -> str:
        """The value of a ``Content-Type`` header for this format."""
        if self.name == "json3":
            return self.mime
        return self.mime + "; charset=utf-8"


CODECS: Final[tuple[Codec, ...]] = (
    Codec(
        "zinc",
        "text/zinc",
        "zinc",
        True,
        zinc.encode_grid_bytes,
        lambda d, lim: zinc.decode_grid(d, limits=lim),
    ),
    Codec(
        "json",
        "application/json",
        "json",
        True,
        json.encode_grid_bytes,
        lambda d, lim: json.decode_grid(d, limits=lim),
    ),
    Codec(
        "json3",
        "application/vnd.haystack+json;version=3",
        "json",
        True,
        lambda g: json.encode_grid_bytes(g, version=3),
        lambda d, lim: json.decode_grid(d, version=3, limits=lim),
    ),
    Codec(
        "trio",
        "text/trio",
        "trio",
        False,
        trio.encode_grid_bytes,
        lambda d, lim: trio.decode_grid(d, limits=lim),
    ),
    Codec(
        "csv",
        "text/csv",
        "csv",
        False,
        csv.encode_grid_bytes,
        lambda d, lim: csv.decode_grid(d, limits=lim),
    ),
)
_BY_NAME: Final = {c.name: c for c in CODECS}


def codec_for_name(name: str) -> Codec:
    """The codec called ``zinc``, ``json``, ``json3``, ``trio`` or ``csv``."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise UnknownFormatError(f"no format called {name!r}") from None


def codec_for_mime(mime: str) -> Codec:
    """The codec for a MIME type, parameters and case as HTTP headers carry them.

    ``application/vnd.haystack+json`` is JSON v4 unless it says ``version=3``; ``*/*``
    and an empty type mean Zinc, the HTTP API's default.

    >>> codec_for_mime("application/vnd.haystack+json; version=3").name
    'json3'
    """
    base, _, params = mime.partition(";")
    base = base.strip().lower()
    if base in ("", "*/*", "text/*", "text/zinc"):
        return _BY_NAME["zinc"]
    if base in ("application/json", "application/vnd.haystack+json"):
        version = ""
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "version":
                version = val.strip().strip('"')
        if version in ("", "4"):
            return _BY_NAME["json"]
        if version == "3":
            return _BY_NAME["json3"]
        raise UnknownFormatError(f"unsupported Haystack JSON version {version!r}")
    if base in ("text/trio", "text/csv"):
        return _BY_NAME[base[5:]]
    raise UnknownFormatError(f"no codec for MIME type {mime!r}")


def negotiate(accept: str | None) -> Codec:
    """The codec to answer an HTTP ``Accept`` header with: the most preferred type
    (by ``q``, then by order) that a codec writes; Zinc, the HTTP API's default, when
    the header is absent, empty or ``*/*``.  Raises :class:`UnknownFormatError` when
    no accepted type has a codec (an HTTP server answers 406).

    >>> negotiate("application/json;q=0.5, text/zinc").name
    'zinc'
    >>> negotiate(None).name
    'zinc'
    """
    if not accept or not accept.strip():
        return _BY_NAME["zinc"]
    codec = _NEGOTIATED.get(accept)
    if codec is None:
        codec = _negotiate(accept)
        if len(_NEGOTIATED) < 1024:  # bounded: the header is the client's to choose
            _NEGOTIATED[accept] = codec
    return codec


# Accept headers seen and their codecs: clients send the same one on every request.
_NEGOTIATED: dict[str, Codec] = {}


def _negotiate(accept: str) -> Codec:
    choices: list[tuple[float, int, str]] = []
    for i, item in enumerate(accept.split(",")[:32]):
        parts = [p.strip() for p in item.split(";")]
        q = 1.0
        kept = [parts[0]]
        for param in parts[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
            else:
                kept.append(param)
        if q > 0:
            choices.append((-q, i, ";".join(kept)))
    for _, _, mime in sorted(choices):
        with contextlib.suppress(UnknownFormatError):
            return codec_for_mime(mime)
    raise UnknownFormatError(f"none of the accepted types is supported: {accept[:200]}")
