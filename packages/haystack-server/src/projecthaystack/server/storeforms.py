"""The serialised forms of what a store keeps, defined once for every store.

A store that writes to a database or a key-value server turns the protocol's values
into text and numbers; these functions fix how, so that two stores (or two versions of
one) never invent two forms of the same thing, and a dump of any store reads alike.

=====================  =================================================================
what                   form
=====================  =================================================================
entity                 Haystack JSON v4 text of the record (a JSON object):
                       :func:`encode_entity` / :func:`decode_entity`
history value          Haystack JSON v4 text of one value: :func:`encode_value` /
                       :func:`decode_value`
history timestamp      integer microseconds since the Unix epoch (UTC):
                       :func:`ts_key` / :func:`ts_from_key`; the zone is the point's
                       (the server refuses samples in any other zone), so no store keeps
                       a zone per sample
priority array         JSON object ``{"8": {"val": <v4>, "who": "...", "expires":
                       "<ISO 8601>" | null}, ...}``: :func:`encode_levels` /
                       :func:`decode_levels`
watch                  JSON object ``{"id", "dis", "owner", "lease" (seconds),
                       "expires" (ISO 8601), "size"}``: :func:`encode_watch` /
                       :func:`decode_watch`; beside it the store keeps its ids, each
                       with the change-feed position it was added at, and the position
                       of the watch's last poll (in the store's own cursor form)
session                keyed by :func:`token_hash` of the bearer token (never the token);
                       JSON object ``{"username", "expires"}``: :func:`encode_session` /
                       :func:`decode_session`
handshake replay       the key :meth:`ServerReply.replay_key
record                 <projecthaystack.auth.ServerReply>` names, kept until its
                       ``expires`` (nothing else of a handshake is ever stored)
user                   JSON object of :meth:`User.to_dict
                       <projecthaystack.server.User.to_dict>`: :func:`encode_user` /
                       :func:`decode_user`
datetimes              ISO 8601 with offset, in UTC
=====================  =================================================================

>>> from projecthaystack.kinds import Marker, Ref
>>> text = encode_entity({"id": Ref("a"), "site": Marker})
>>> text
'{"id":{"_kind":"ref","val":"a"},"site":{"_kind":"marker"}}'
>>> decode_entity(text)["id"]
Ref(id='a')
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from projecthaystack.codecs import json as hjson
from projecthaystack.kinds import FrozenDict, Ref

from ._store import PriorityLevel, Session, User, Watch

__all__ = [
    "decode_entity",
    "decode_levels",
    "decode_session",
    "decode_user",
    "decode_value",
    "decode_watch",
    "encode_entity",
    "encode_levels",
    "encode_session",
    "encode_user",
    "encode_value",
    "encode_watch",
    "entity_id",
    "token_hash",
    "ts_from_key",
    "ts_key",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def entity_id(record: Mapping[str, Any]) -> str:
    """The id string of a record; ``ValueError`` if it has no Ref ``id``.

    >>> from projecthaystack.kinds import Ref
    >>> entity_id({"id": Ref("site-1")})
    'site-1'
    """
    ref = record.get("id")
    if type(ref) is not Ref:
        raise ValueError("an entity needs a Ref 'id' tag")
    return ref.id


def encode_entity(record: Mapping[str, Any]) -> str:
    """An entity as Haystack JSON v4 text; ``ValueError`` if it has no Ref ``id``."""
    entity_id(record)
    return hjson.encode_value(record if isinstance(record, FrozenDict) else FrozenDict(record))


def decode_entity(text: str | bytes) -> FrozenDict:
    """The entity of :func:`encode_entity`'s text."""
    value = hjson.decode_value(text)
    if not isinstance(value, FrozenDict):
        raise ValueError("an entity's form is a JSON object")
    return value


def encode_value(value: Any) -> str:
    """One Haystack value (a history sample's, a level's) as JSON v4 text."""
    return hjson.encode_value(value)


def decode_value(text: str | bytes) -> Any:
    """The value of :func:`encode_value`'s text."""
    return hjson.decode_value(text)


def ts_key(ts: dt.datetime) -> int:
    """A sample's timestamp as integer microseconds since the epoch: the order and the
    identity of samples (two samples at one instant are one sample).

    >>> import datetime as dt
    >>> ts_key(dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC))
    1000000
    """
    return (ts - _EPOCH) // _MICRO


def ts_from_key(key: int, tz: dt.tzinfo) -> dt.datetime:
    """The timestamp of :func:`ts_key`, in the zone ``tz``."""
    return (_EPOCH + dt.timedelta(microseconds=key)).astimezone(tz)


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def _when(text: Any) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(str(text))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode_levels(levels: Mapping[int, PriorityLevel]) -> str:
    """A priority array's set levels as a JSON object keyed by level number."""
    return _dumps(
        {
            str(n): {
                "val": json.loads(hjson.encode_value(lv.val)),
                "who": lv.who,
                "expires": _iso(lv.expires),
            }
            for n, lv in sorted(levels.items())
        }
    )


def decode_levels(text: str | bytes) -> dict[int, PriorityLevel]:
    """The levels of :func:`encode_levels`'s text."""
    return {
        int(n): PriorityLevel(
            hjson.decode_value(_dumps(lv["val"])), str(lv["who"]), _when(lv.get("expires"))
        )
        for n, lv in json.loads(text).items()
    }


def encode_watch(watch: Watch) -> str:
    """A watch's header (not its ids) as a JSON object."""
    return _dumps(
        {
            "id": watch.id,
            "dis": watch.dis,
            "owner": watch.owner,
            "lease": watch.lease.total_seconds(),
            "expires": _iso(watch.expires),
            "size": watch.size,
        }
    )


def decode_watch(text: str | bytes) -> Watch:
    """The watch of :func:`encode_watch`'s text."""
    data = json.loads(text)
    expires = _when(data["expires"])
    assert expires is not None
    return Watch(
        str(data["id"]),
        str(data["dis"]),
        str(data["owner"]),
        dt.timedelta(seconds=float(data["lease"])),
        expires,
        int(data.get("size", 0)),
    )


def token_hash(token: str) -> str:
    """What a store keeps of a bearer token: its SHA-256, in hex.  A dump of the store
    then yields nothing a client could present.

    >>> token_hash("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(token.encode()).hexdigest()


def encode_session(session: Session) -> str:
    """A session as a JSON object (its key is the token hash, kept beside it)."""
    return _dumps({"username": session.username, "expires": _iso(session.expires)})


def decode_session(token_hash: str, text: str | bytes) -> Session:
    """The session of :func:`encode_session`'s text, kept under ``token_hash``."""
    data = json.loads(text)
    expires = _when(data["expires"])
    assert expires is not None
    return Session(token_hash, str(data["username"]), expires)


def encode_user(user: User) -> str:
    """A user as a JSON object (SCRAM keys, never a password)."""
    return _dumps(user.to_dict())


def decode_user(text: str | bytes) -> User:
    """The user of :func:`encode_user`'s text."""
    return User.from_dict(json.loads(text))
