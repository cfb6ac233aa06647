"""Stores by URL: every store, ours included, is found through the entry-point group
``projecthaystack.stores``; the server imports no store package by name.

A store package registers one entry point per URL scheme it serves, named after the
scheme and pointing at a function ``open_store(url: str) -> Store`` that builds the store
without connecting (the server calls ``await store.open()`` at startup)::

    [project.entry-points."projecthaystack.stores"]
    postgresql = "projecthaystack.stores.pg:open_store"

haystack-server registers ``memory`` (``memory:``, ``memory://``) for :class:`MemoryStore`.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from ._errors import StartupError
from ._memory import MemoryStore
from ._store import Store

__all__ = ["STORES_GROUP", "open_memory_store", "open_store", "store_schemes"]

STORES_GROUP = "projecthaystack.stores"
"""The entry-point group where store packages register ``open_store`` by URL scheme."""

# Where the stores of this repository come from, for the message when one is missing.
_KNOWN = {
    "postgresql": "haystack-store-pg",
    "postgres": "haystack-store-pg",
    "redis": "haystack-store-redis",
    "rediss": "haystack-store-redis",
}


def store_schemes() -> dict[str, EntryPoint]:
    """The URL schemes of the installed stores and their entry points.

    >>> "memory" in store_schemes()
    True
    """
    return {ep.name.lower(): ep for ep in entry_points(group=STORES_GROUP)}


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition(":")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise StartupError(
            f"a store URL starts with its scheme (memory:, postgresql://...): {url!r}"
        )
    return scheme.lower()


def open_store(url: str) -> Store:
    """The store a URL names, from the installed store packages: ``memory:``, and
    whatever schemes other packages register (``postgresql://...``, ``redis://...``).
    The store is not opened yet.  Raises :class:`StartupError` for a scheme no installed
    package serves, a store package that cannot be loaded, or a URL its store refuses.

    >>> type(open_store("memory:")).__name__
    'MemoryStore'
    """
    scheme = _scheme(url)
    found = store_schemes()
    ep = found.get(scheme)
    if ep is None:
        have = ", ".join(f"{s}:" for s in sorted(found)) or "none"
        message = f"no installed store serves {scheme}: URLs (installed: {have})"
        package = _KNOWN.get(scheme)
        if package is not None:
            message += (
                f"; {package} provides it: from a clone of the repository, "
                f"pip install -e packages/{package}"
            )
        raise StartupError(message)
    try:
        factory = ep.load()
    except ImportError as exc:
        raise StartupError(f"the {scheme}: store ({ep.value}) cannot be loaded: {exc}") from None
    try:
        store: Store = factory(url)
    except (ValueError, TypeError) as exc:
        raise StartupError(f"bad {scheme}: store URL: {exc}") from None
    return store


def open_memory_store(url: str) -> MemoryStore:
    """The ``memory`` entry point: a fresh, empty :class:`MemoryStore` (``memory:`` or
    ``memory://``; anything after the scheme is refused, so that a typo is not silently
    a store that forgets everything)."""
    rest = url.partition(":")[2]
    if rest not in ("", "//"):
        raise ValueError(f"a memory store takes no address: use memory: (got {url!r})")
    return MemoryStore()
