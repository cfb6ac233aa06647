"""Index sets of a batch: entities that share a shape share the work, and every entity
still gets exactly the sets its own tags call for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.stores.redis._keys import encode_part
from projecthaystack.stores.redis._query import index_batch, index_suffixes

NAMES = ["site", "equip", "point", "siteRef", "equipRef", "a:b", "日本", "custom"]
VALUES = st.one_of(
    st.just(Marker),
    st.none(),
    st.text(max_size=3),
    st.builds(Number, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(Ref, st.sampled_from(["s", "s:1", "a.b~", "p"])),
    st.lists(st.one_of(st.builds(Ref, st.sampled_from(["s", "t:1"])), st.integers()), max_size=4),
    st.dictionaries(st.sampled_from(["a", "b"]), st.just(Marker), max_size=2),
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6).map(
        lambda r: {"id": Ref("ignored"), **r}
    ),
    max_size=30,
)


def _expected(record: Mapping[str, Any]) -> set[str]:
    """The sets of one entity, written plainly: the rule the batch must keep."""
    out: set[str] = set()
    for name, val in record.items():
        if name == "id" or val is None:
            continue
        n = encode_part(name)
        out.add(f"t:{n}")
        if isinstance(val, Ref):
            out.add(f"r:{n}:{encode_part(val.id)}")
        elif isinstance(val, list):
            out.update(f"r:{n}:{encode_part(v.id)}" for v in val if isinstance(v, Ref))
        elif isinstance(val, Mapping):
            out.add(f"d:{n}")
    return out


@given(RECORDS)
@settings(deadline=None)  # a loaded shared machine: no time limit per example
def test_a_batch_gives_each_entity_its_own_sets(records: list[dict[str, Any]]) -> None:
    ids = [f"e{i}" for i in range(len(records))]
    suffixes, sets = index_batch(ids, records)
    assert [set(s) for s in suffixes] == [_expected(r) for r in records]
    assert all(len(s) == len(set(s)) for s in suffixes)  # a list of two equal Refs: one set
    members: dict[str, set[str]] = {}
    for id, rec in zip(ids, records, strict=True):
        for k in _expected(rec):
            members.setdefault(k, set()).add(id)
    assert {k: set(v) for k, v in sets.items()} == members
    assert all(len(v) == len(set(v)) for v in sets.values())
    # One entity alone gets the same list, in the same order, as inside any batch: the
    # stored list is compared as text to skip unchanged entities on replace.
    assert [index_suffixes(r) for r in records] == suffixes


def test_one_shape_with_other_refs_and_a_null() -> None:
    recs = [
        {"id": Ref("a"), "point": Marker, "siteRef": Ref("s1")},
        {"id": Ref("b"), "point": Marker, "siteRef": Ref("s2")},
        {"id": Ref("c"), "point": Marker, "siteRef": None},
        {"id": Ref("d"), "point": Marker, "siteRef": "not a ref"},
    ]
    suffixes, sets = index_batch(["a", "b", "c", "d"], recs)
    assert suffixes == [
        ["t:point", "t:siteRef", "r:siteRef:s1"],
        ["t:point", "t:siteRef", "r:siteRef:s2"],
        ["t:point"],
        ["t:point", "t:siteRef"],
    ]
    assert sets == {
        "t:point": ["a", "b", "c", "d"],
        "t:siteRef": ["a", "b", "d"],
        "r:siteRef:s1": ["a"],
        "r:siteRef:s2": ["b"],
    }


def test_the_cache_of_shapes_is_bounded(monkeypatch: Any) -> None:
    # Tag names come from clients: a stream of new shapes must not grow memory forever.
    from projecthaystack.stores.redis import _query

    monkeypatch.setattr(_query, "_SHAPES", {})
    monkeypatch.setattr(_query, "_SHAPES_KEPT", 3)
    for i in range(10):
        assert index_suffixes({"id": Ref("a"), f"tag{i}": Marker}) == [f"t:tag{i}"]
        assert len(_query._SHAPES) <= 3
