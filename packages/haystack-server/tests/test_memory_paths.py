"""The memory store's filters through its Ref index equal plain evaluation: random
buildings shaped like Alpha (sites, equips, points; Refs, lists of Refs, dangling Refs,
nested dicts), random filters with ``->`` paths, and random changes between queries."""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from projecthaystack.filter import And, Cmp, Filter, Has, Missing, Or, Path, select
from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.server import MemoryStore

IDS = [f"e{i}" for i in range(6)]
CITIES = ["Hugo", "Richmond", "Ames"]
REF_TAGS = ["siteRef", "equipRef", "spaceRef"]

_ref = st.builds(Ref, st.sampled_from([*IDS, "gone"]))  # "gone" never exists
_ref_tag_value = st.one_of(
    _ref,
    st.lists(_ref, min_size=1, max_size=3),
    st.fixed_dictionaries({"geoCity": st.sampled_from(CITIES)}),  # a nested dict
    st.just("not a ref"),
)


@st.composite
def _entity(draw: st.DrawFn, id: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": Ref(id)}
    for marker in draw(st.sets(st.sampled_from(["site", "equip", "point", "temp"]))):
        rec[marker] = Marker
    if draw(st.integers(0, 3)):
        rec["geoCity"] = draw(st.sampled_from(CITIES))
    if draw(st.booleans()):
        rec["area"] = Number(draw(st.integers(0, 3)) * 1000, "ft²")
    for tag in draw(st.sets(st.sampled_from(REF_TAGS), min_size=1)):
        rec[tag] = draw(_ref_tag_value)
    return rec


_path = st.lists(st.sampled_from(REF_TAGS), min_size=1, max_size=2).flatmap(
    lambda hops: st.sampled_from(["geoCity", "area", "site", "equip", "id", *REF_TAGS]).map(
        lambda end: Path((*hops, end))
    )
)
_leaf: st.SearchStrategy[Filter] = st.one_of(
    st.builds(Cmp, _path, st.just("=="), st.sampled_from(CITIES)),
    st.builds(Has, _path),
    st.builds(Has, st.builds(Path, st.tuples(st.sampled_from(["site", "equip", "temp"])))),
    st.builds(Missing, _path),
    st.builds(Cmp, _path, st.sampled_from(["==", "!="]), _ref),
    st.builds(
        Cmp, _path, st.sampled_from(["<", ">="]), st.builds(Number, st.just(1500), st.just("ft²"))
    ),
)
_filters = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda a, b: And((a, b)), inner, inner),
        st.builds(lambda a, b: Or((a, b)), inner, inner),
    ),
    max_leaves=4,
)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    filters=st.lists(_filters, min_size=1, max_size=4),
    rounds=st.integers(1, 3),
)
def test_queries_equal_plain_evaluation(
    data: st.DataObject, filters: list[Filter], rounds: int
) -> None:
    model: dict[str, dict[str, Any]] = {}

    async def run() -> None:
        store = MemoryStore()
        for _ in range(rounds):
            # A round of changes: puts (new or replacing), deletes.
            for id in data.draw(st.lists(st.sampled_from(IDS), min_size=2, max_size=8)):
                rec = data.draw(_entity(id))
                model[id] = rec
                await store.put_entities([rec])
            gone = data.draw(st.lists(st.sampled_from(IDS), max_size=2))
            await store.delete_entities(gone)
            for id in gone:
                model.pop(id, None)
            rows = list(model.values())
            for flt in filters:
                want = select(flt, rows, resolver=lambda ref: model.get(ref.id))
                got = await store.query(flt)
                assert [r["id"] for r in got] == [r["id"] for r in want], str(flt)
                if want:
                    limited = await store.query(flt, limit=1)
                    assert [r["id"] for r in limited] == [want[0]["id"]]

    anyio.run(run)


def test_a_path_is_answered_from_the_far_end() -> None:
    """``siteRef->geoCity == "Hugo"`` finds the sites in Hugo, then what refers to them;
    updates that move an equip to another site, or a site to another city, follow."""

    async def run() -> None:
        store = MemoryStore()
        await store.put_entities(
            [
                {"id": Ref("s1"), "site": Marker, "geoCity": "Hugo"},
                {"id": Ref("s2"), "site": Marker, "geoCity": "Ames"},
                {"id": Ref("e1"), "equip": Marker, "siteRef": Ref("s1")},
                {"id": Ref("e2"), "equip": Marker, "siteRef": [Ref("s2"), Ref("s1")]},
                {"id": Ref("e3"), "equip": Marker, "siteRef": Ref("s2")},
                {"id": Ref("p1"), "point": Marker, "equipRef": Ref("e3")},
            ]
        )
        hugo = Cmp(Path(("siteRef", "geoCity")), "==", "Hugo")
        deep = Cmp(Path(("equipRef", "siteRef", "geoCity")), "==", "Hugo")

        async def ids(flt: Filter) -> list[str]:
            return [r["id"].id for r in await store.query(flt)]

        assert await ids(hugo) == ["e1", "e2"]
        assert await ids(deep) == []
        await store.update_entity("e3", {"siteRef": Ref("s1")})
        assert await ids(hugo) == ["e1", "e2", "e3"]
        assert await ids(deep) == ["p1"]
        await store.update_entity("s1", {"geoCity": "Ames"})
        assert await ids(hugo) == [] and await ids(deep) == []
        await store.delete_entities(["s1"])
        assert await ids(Has(Path(("siteRef", "site")))) == ["e2"]

    anyio.run(run)
