"""The key layout: every key of a store under one prefix and one hash tag.

All keys of a store are ``{<prefix>}:<kind>[:<part>...]``.  The braces make the prefix
the key's hash tag, so on Redis Cluster every key of one store lives in one slot: the
Lua scripts that keep an entity and its indexes, a batch of history for many points, a
watch cap or a handshake cap can then touch any of them atomically (the documented
trade-off: one store is served by one shard and its replicas; several stores, under
several prefixes, spread over the cluster).

Parts built from client input (ids, tag names, usernames, watch ids, throttling keys)
are encoded so that they never contain ``:``, ``{``, ``}`` or ``%`` unescaped: a part
then cannot end early, start another part, or move a key to another slot, and two
different parts never give one key.
"""

from __future__ import annotations

import re

__all__ = ["KeySpace", "decode_part", "encode_part"]

_ESCAPES = {ord(c): f"%{ord(c):02X}" for c in "%:{}"}
_ESCAPED = re.compile(r"%([0-9A-F]{2})")
_PREFIX = re.compile(r"[A-Za-z0-9_.\-/]{1,64}")


def encode_part(text: str) -> str:
    """``text`` made safe as one part of a key: ``%``, ``:``, ``{`` and ``}`` become
    ``%XX``; anything else (any Unicode) stays as it is.

    >>> encode_part("a:b{c}%")
    'a%3Ab%7Bc%7D%25'
    """
    return text.translate(_ESCAPES)  # str.translate: several times faster than re.sub


def decode_part(part: str) -> str:
    """The inverse of :func:`encode_part`.

    >>> decode_part(encode_part("x:{y}"))
    'x:{y}'
    """
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), part)


class KeySpace:
    """The keys of one store.  ``prefix`` is the operator's (checked, never a client's).

    >>> keys = KeySpace("hs")
    >>> keys.tag("site")
    '{hs}:t:site'
    >>> keys.ref("siteRef", "s:1")
    '{hs}:r:siteRef:s%3A1'
    """

    def __init__(self, prefix: str) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"invalid key prefix {prefix!r}: use 1 to 64 of A-Z a-z 0-9 _ . - /")
        self.prefix = prefix
        self.base = "{" + prefix + "}:"
        b = self.base
        # Keys with no client part.
        self.seq = b + "seq"  # counter: entity versions and insertion order
        self.entities = b + "e"  # hash: id -> entity as JSON v4
        self.versions = b + "v"  # hash: id -> version
        self.order = b + "o"  # zset: id -> insertion order (the universe of ids)
        self.members = b + "m"  # hash: id -> the index keys the entity is in
        self.his_meta = b + "hm"  # hash: point id -> "zone unit" of its history
        self.priority = b + "p"  # hash: point id -> its priority array (storeforms)
        self.users = b + "u"  # hash: username -> user
        self.feed = b + "feed"  # stream: ids of changed entities (the change feed)
        self.meta = b + "meta"  # hash: layout version and other store facts
        self.scratch = b + "x:"  # scratch keys inside one script, deleted before it ends

    # Entity indexes.
    def tag(self, name: str) -> str:
        """Set of the ids of entities that have tag ``name``."""
        return f"{self.base}t:{encode_part(name)}"

    def ref(self, name: str, target: str) -> str:
        """Set of the ids of entities whose tag ``name`` is (or lists) ``@target``."""
        return f"{self.base}r:{encode_part(name)}:{encode_part(target)}"

    def nested(self, name: str) -> str:
        """Set of the ids of entities whose tag ``name`` is a Dict (paths walk into it)."""
        return f"{self.base}d:{encode_part(name)}"

    # History.
    def his_chunk(self, id: str, chunk: int) -> str:
        """String of packed samples of point ``id`` in period ``chunk``."""
        return f"{self.base}h:{encode_part(id)}:{chunk}"

    def his_chunks(self, id: str) -> str:
        """Zset of the periods of point ``id`` that have samples."""
        return f"{self.base}hc:{encode_part(id)}"

    def his_odd(self, id: str, chunk: int) -> str:
        """Hash of point ``id``'s samples in period ``chunk`` that do not pack
        (time -> JSON v4 value)."""
        return f"{self.base}ho:{encode_part(id)}:{chunk}"

    # Watches, sessions, handshakes, throttling.
    def watch(self, watch_id: str) -> str:
        """Hash: a watch's own fields."""
        return f"{self.base}w:{encode_part(watch_id)}"

    def watch_ids(self, watch_id: str) -> str:
        """Hash: a watch's ids -> the feed position each was subscribed at."""
        return f"{self.base}wi:{encode_part(watch_id)}"

    def watches_of(self, owner: str) -> str:
        """Zset: an owner's watch ids -> lease expiry (ms)."""
        return f"{self.base}wo:{encode_part(owner)}"

    def session(self, token_hash: str) -> str:
        """String: a session, under the hash of its token."""
        return f"{self.base}s:{encode_part(token_hash)}"

    def sessions_of(self, username: str) -> str:
        """Set: a user's token hashes."""
        return f"{self.base}su:{encode_part(username)}"

    def handshake_claim(self, key: str) -> str:
        """String: a completed handshake's replay record (its expiry, ms)."""
        return f"{self.base}hr:{encode_part(key)}"

    def throttle(self, key: str) -> str:
        """List: login attempts counted under ``key`` (times in ms, in counted order)."""
        return f"{self.base}f:{encode_part(key)}"

    def pattern(self) -> str:
        """A SCAN pattern that matches every key of this store and no other's."""
        return "{" + re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "}:*"
