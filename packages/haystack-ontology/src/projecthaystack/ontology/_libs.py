"""Libs: the declared defs of one library, read from Trio files, a directory or a zip."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from projecthaystack.codecs import Limits, trio
from projecthaystack.kinds import DecodeError, FrozenDict, Symbol, Uri

from ._errors import NamespaceError

__all__ = ["Lib", "load_lib"]

# A lib zip is small; these bound what a hostile archive can make us read.
_MAX_FILES = 1000
_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Lib:
    """One library: its meta dict (``def: ^lib:name``) and its declared def and defx dicts.

    >>> from projecthaystack.kinds import Symbol
    >>> lib = Lib.from_dicts([
    ...     {"def": Symbol("lib:acme"), "version": "1.0", "depends": [Symbol("lib:ph")]},
    ...     {"def": Symbol("acmeTag"), "is": Symbol("marker")},
    ... ])
    >>> lib.name, lib.depends
    ('lib:acme', ('lib:ph',))
    """

    meta: FrozenDict
    defs: tuple[FrozenDict, ...] = ()
    defxs: tuple[FrozenDict, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The lib's symbol, such as ``lib:phIoT``."""
        return str(self.meta["def"].val)

    @property
    def depends(self) -> tuple[str, ...]:
        """The symbols of the libs this one imports names from."""
        deps = self.meta.get("depends", ())
        if isinstance(deps, Symbol):
            deps = [deps]
        return tuple(d.val for d in deps if isinstance(d, Symbol))

    @property
    def version(self) -> str | None:
        """The declared version, if any."""
        v = self.meta.get("version")
        return v if isinstance(v, str) else None

    @property
    def base_uri(self) -> str | None:
        """The ``baseUri`` used to make IRIs for RDF, if any."""
        v = self.meta.get("baseUri")
        return v.val if isinstance(v, Uri) else None

    @classmethod
    def from_dicts(cls, dicts: Iterable[Mapping[str, Any]], source: str = "") -> Lib:
        """A lib from its dicts: exactly one ``def: ^lib:...`` meta, then defs and defxs."""
        metas: list[FrozenDict] = []
        defs: list[FrozenDict] = []
        defxs: list[FrozenDict] = []
        problems: list[str] = []
        where = f" in {source}" if source else ""
        for d in dicts:
            fd = d if isinstance(d, FrozenDict) else FrozenDict(d)
            sym = fd.get("def")
            if isinstance(sym, Symbol):
                (metas if sym.val.startswith("lib:") else defs).append(fd)
            elif isinstance(fd.get("defx"), Symbol):
                defxs.append(fd)
            else:
                text = f"{dict(fd)!r:.80}"
                problems.append(f"a dict{where} has neither a 'def' nor a 'defx' symbol: {text}")
        if len(metas) != 1:
            found = len(metas)
            problems.append(f"a lib needs exactly one 'def: ^lib:...' dict{where}, found {found}")
        if problems:
            raise NamespaceError(problems)
        return cls(metas[0], tuple(defs), tuple(defxs), source)


def _read_trio(data: bytes, name: str, limits: Limits) -> list[FrozenDict]:
    try:
        return trio.decode_dicts(data, limits=limits)
    except DecodeError as exc:
        raise NamespaceError([f"{name}: {exc}"]) from None


def load_lib(source: str | Path | bytes, *, limits: Limits | None = None) -> Lib:
    """Load a lib from a directory of Trio files, a lib zip (Trio files under ``lib/``),
    a single Trio file, or the bytes of a zip.

    The lib's meta is the dict whose ``def`` is a ``lib:`` symbol (by convention in
    ``lib.trio``).
    """
    lim = limits or Limits(max_size=_MAX_BYTES)
    if isinstance(source, bytes):
        return _load_zip(io.BytesIO(source), "<bytes>", lim)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".trio" and p.is_file())
        if len(files) > _MAX_FILES:
            raise NamespaceError([f"{path}: more than {_MAX_FILES} Trio files"])
        dicts = [d for p in files for d in _read_trio(p.read_bytes(), p.name, lim)]
        return Lib.from_dicts(dicts, str(path))
    if zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            return _load_zip(fh, str(path), lim)
    return Lib.from_dicts(_read_trio(path.read_bytes(), path.name, lim), str(path))


def _load_zip(fh: Any, name: str, limits: Limits) -> Lib:
    dicts: list[FrozenDict] = []
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = [i for i in zf.infolist() if i.filename.endswith(".trio") and not i.is_dir()]
            if len(infos) > _MAX_FILES:
                raise NamespaceError([f"{name}: more than {_MAX_FILES} Trio files"])
            total = 0
            for info in sorted(infos, key=lambda i: i.filename):
                total += info.file_size
                if total > _MAX_BYTES:
                    raise NamespaceError([f"{name}: more than {_MAX_BYTES} bytes of Trio"])
                with zf.open(info) as member:
                    data = member.read(_MAX_BYTES + 1)
                if len(data) > _MAX_BYTES:
                    raise NamespaceError([f"{name}: {info.filename} is too large"])
                dicts.extend(_read_trio(data, f"{name}!{info.filename}", limits))
    except zipfile.BadZipFile as exc:
        raise NamespaceError([f"{name}: not a valid zip: {exc}"]) from None
    return Lib.from_dicts(dicts, name)
