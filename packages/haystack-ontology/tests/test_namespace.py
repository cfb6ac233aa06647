import io
import zipfile

import pytest

import projecthaystack.ontology as ontology
from projecthaystack.codecs import zinc
from projecthaystack.filter import select
from projecthaystack.kinds import FrozenDict, Grid, Marker, Number, Ref, Symbol, Uri
from projecthaystack.ontology import Lib, Namespace, NamespaceError, load_lib

S = Symbol


def test_public_names_are_pinned():
    assert sorted(ontology.__all__) == sorted(
        [
            "Lib",
            "Namespace",
            "NamespaceError",
            "Reflection",
            "load_lib",
            "to_graph",
            "to_jsonld",
            "to_turtle",
        ]
    )


# --------------------------------------------------------------------------- the standard libs


def test_standard_libs_load_clean(ns):
    assert [d["def"].val for d in ns.libs()] == [
        "lib:ph",
        "lib:phIct",
        "lib:phIoT",
        "lib:phScience",
    ]
    assert len(ns) > 700
    assert "ahu" in ns and S("site") in ns and "nope" not in ns and 3 not in ns


def test_normalized_tags(ns):
    assert ns["geoCity"]["is"] == [S("str")]
    assert ns["geoCity"]["tagOn"] == [S("geoPlace")]
    assert ns["equip"]["lib"] == S("lib:phIoT")
    assert ns["lib:phIoT"]["lib"] == S("lib:phIoT")
    assert ns["lib:phIoT"]["is"] == [S("lib")]
    assert ns["filetype:json"]["is"] == [S("filetype")]
    assert ns["filetype:json"]["mime"] == "application/json"
    assert "is" not in ns["marker"]


def test_taxonomy(ns):
    assert "ahu" in ns.subtypes("airHandlingEquip")
    assert {"ahu", "rtu", "vav", "chiller", "meter", "elec-meter"} <= set(ns.all_subtypes("equip"))
    assert ns.supertypes("site") == ("entity", "geoPlace")
    assert ns.inheritance("water") == (
        "water",
        "liquid",
        "fluid",
        "substance",
        "phenomenon",
        "marker",
    )
    assert (
        ns.fits("rtu", "equip") and ns.fits("hot-water", "fluid") and not ns.fits("site", "equip")
    )
    assert ns.fits(S("ahu"), S("entity"))
    assert ns.is_marker("site") and not ns.is_marker("dis")
    assert (
        ns.kind("siteRef") == "ref" and ns.kind("area") == "number" and ns.kind("site") == "marker"
    )
    assert ns.kind("marker") == "marker" and ns.kind("entity") == "marker"


def test_inheritance_respects_not_inherited_and_accumulate(ns):
    # 'mandatory' is notInherited: ahu is mandatory, rtu (a subtype) is not.
    assert ns["ahu"].get("mandatory") is Marker and "mandatory" not in ns["rtu"]
    # 'children' accumulates down the tree and is deduplicated.
    children = ns["ahu"]["children"]
    assert len(children) == len({frozenset(c.items()) for c in children})
    assert FrozenDict(thermostat=Marker, equip=Marker) in children
    assert FrozenDict(equip=Marker) in children  # from equip
    # 'tagOn' is notInherited.
    assert "tagOn" not in ns["siteRef"] or ns["siteRef"]["tagOn"] != ns["ref"].get("tagOn")
    # 'doc' is inherited where a def has none of its own.
    assert ns["doas"]["doc"] != ns["ahu"]["doc"]


def test_associations_and_choices(ns):
    assert {"tz", "area", "yearBuilt"} <= set(ns.associations("site", "tags"))
    assert "geoCity" not in ns.associations("site", "tags")  # its tagOn is geoPlace
    assert ns.associations("geoCity", "tagOn") == ["geoPlace"]
    assert ns.associations("site", "is") == ["entity", "geoPlace"]
    assert ns.associations("nope", "is") == []
    assert "tz" in ns.tags_on("site") and "geoCity" in ns.tags_on("site")
    assert "pointFunction" in ns.choices("point")
    assert {"sensor", "cmd", "sp"} <= set(ns.choice_options("pointFunction"))
    # pipeFluid takes its options from 'of': every fluid.
    assert {"water", "hot-water", "steam", "naturalGas"} <= set(ns.choice_options("pipeFluid"))
    assert "pipeFluid" in ns.choices("pipe")


def test_reflection_spec_example(ns):
    r = ns.reflect(
        {
            "id": Ref("hwp"),
            "dis": "Hot Water Plant",
            "hot": Marker,
            "water": Marker,
            "plant": Marker,
            "equip": Marker,
        }
    )
    assert {"id", "dis", "hot", "water", "plant", "equip", "hot-water", "hot-water-plant"} <= set(
        r.declared
    )
    assert {"entity", "marker", "ref", "str", "scalar", "val", "liquid"} <= set(r.defs)
    assert r.entity_types() == ("hot-water-plant",)
    assert r.fits("plant") and not r.fits("site")
    assert ns.fits_record({"site": Marker}, "geoPlace")
    assert repr(r).startswith("<Reflection")


def test_alpha_reflects(ns, alpha):
    points = [row for row in alpha if "point" in row]
    assert points and all(ns.reflect(p).fits("point") for p in points)
    ahus = [row for row in alpha if "ahu" in row]
    assert ahus and all("ahu" in ns.reflect(a).entity_types() for a in ahus)
    sites = [row for row in alpha if "site" in row]
    assert ns.reflect(sites[0]).entity_types() == ("site",)
    # A whole building in one pass: every entity has an entity type.
    typed = [row for row in alpha if ns.reflect(row).entity_types()]
    assert len(typed) == len(alpha) - sum(
        1 for r in alpha if not ({"site", "equip", "point", "weatherStation"} & set(r))
    )


def test_implement(ns):
    assert ns.implement("point") == {"point": Marker}
    assert set(ns.implement("rtu")) == {"rtu", "ahu", "equip"}
    assert set(ns.implement("hot-water-plant")) == {"hot", "water", "plant", "equip"}
    with pytest.raises(NamespaceError, match="feature key"):
        ns.implement("filetype:json")


def test_protos_flatten_the_parent(ns):
    plain = ns.protos({"pipe": Marker, "equip": Marker})
    assert FrozenDict(valve=Marker, actuator=Marker, equip=Marker) in plain
    hot = ns.protos({"hot": Marker, "water": Marker, "pipe": Marker, "equip": Marker})
    assert FrozenDict(hot=Marker, water=Marker, valve=Marker, actuator=Marker, equip=Marker) in hot
    gas = ns.protos({"leaving": Marker, "naturalGas": Marker, "pipe": Marker, "equip": Marker})
    assert all(p.get("leaving") is Marker and p.get("naturalGas") is Marker for p in gas)
    assert ns.protos({"dis": "nothing"}) == []


def test_relationships(ns):
    plant = {"id": Ref("hwp"), "hot": Marker, "water": Marker, "plant": Marker, "equip": Marker}
    ahu = {"id": Ref("ahu"), "ahu": Marker, "equip": Marker, "hotWaterRef": Ref("hwp")}
    fan = {
        "id": Ref("fan"),
        "discharge": Marker,
        "fan": Marker,
        "equip": Marker,
        "equipRef": Ref("ahu"),
    }
    status = {
        "id": Ref("status"),
        "speed": Marker,
        "cmd": Marker,
        "point": Marker,
        "equipRef": Ref("fan"),
    }
    by_id = {r["id"]: r for r in (plant, ahu, fan, status)}.get
    assert ns.related(ahu, "inputs")
    assert ns.related(ahu, "inputs", "hot-water", Ref("hwp"))
    assert ns.related(ahu, "inputs", "water") and ns.related(ahu, "inputs", "liquid")
    assert not ns.related(ahu, "inputs", "steam")
    assert not ns.related(ahu, "inputs", "hot-water", Ref("other"))
    # Reciprocal: the plant outputs hot water to the AHU.
    assert ns.related(plant, "outputs", "hot-water", Ref("ahu"), resolver=by_id)
    assert not ns.related(plant, "outputs", "hot-water", Ref("ahu"))
    # Transitive containment: both the fan and its point are contained by the AHU.
    assert ns.related(fan, "containedBy", None, Ref("ahu"), resolver=by_id)
    assert ns.related(status, "containedBy", None, Ref("ahu"), resolver=by_id)
    assert not ns.related(status, "containedBy", None, Ref("ahu"))
    assert not ns.related(plant, "containedBy", None, Ref("ahu"), resolver=by_id)
    # A reference cycle does not loop.
    a = {"id": Ref("a"), "equip": Marker, "equipRef": Ref("b")}
    b = {"id": Ref("b"), "equip": Marker, "equipRef": Ref("a")}
    assert not ns.related(
        a, "containedBy", None, Ref("zzz"), resolver={Ref("a"): a, Ref("b"): b}.get
    )


def test_filters_with_spec_names(ns, alpha):
    meters = select("Meter", alpha, namespace=ns)
    assert meters and all(ns.reflect(m).fits("meter") for m in meters)
    assert select("ElecMeter", alpha, namespace=ns) == [m for m in meters if "elec" in m]
    ahus = select("ph::Ahu and equip", alpha, namespace=ns)
    assert len(ahus) == len([r for r in alpha if "ahu" in r])
    assert select("NoSuchThing", alpha, namespace=ns) == []
    assert select("acme::Ahu", alpha, namespace=ns) == []


def test_def_queries_and_op_grids(ns):
    # 'is' holds a list of symbols: a symbol literal matches any of them.
    equips = ns.select_defs("is == ^equip")
    assert {"airHandlingEquip", "meter"} <= {d["def"].val for d in equips}
    phiot = ns.select_defs("lib == ^lib:phIoT and mandatory")
    assert {"equip", "point", "site", "ahu"} <= {d["def"].val for d in phiot}
    assert len(ns.select_defs("def", limit=3)) == 3
    defs = ns.defs_grid("mandatory", limit=5)
    assert isinstance(defs, Grid) and len(defs) == 5
    assert len(ns.defs_grid()) == len(ns)
    assert len(ns.defs_grid("nothingHasThis")) == 0
    libs = ns.libs_grid()
    assert sorted(r["def"].val for r in libs) == [
        "lib:ph",
        "lib:phIct",
        "lib:phIoT",
        "lib:phScience",
    ]
    assert len(ns.libs_grid('version == "4.0.0" or baseUri')) == 4
    ops = {r["def"].val for r in ns.ops_grid()}
    assert {"op:about", "op:read", "op:hisRead", "op:pointWrite", "op:watchSub"} <= ops
    files = {r["def"].val: r for r in ns.filetypes_grid()}
    assert files["filetype:zinc"]["mime"] == "text/zinc"


def test_from_defs_round_trips_through_zinc(ns):
    text = zinc.encode_grid(ns.defs_grid())
    again = Namespace.from_defs(zinc.decode_grid(text))
    assert len(again) == len(ns)
    assert again.fits("rtu", "equip") and again.reflect(
        {"ahu": Marker, "equip": Marker}
    ).entity_types() == ("ahu",)
    with pytest.raises(NamespaceError):
        Namespace.from_defs([{"dis": "no def"}])


# --------------------------------------------------------------------------- custom libs


def _ph_core() -> list[dict]:
    """A tiny stand-in for lib:ph: just the defs the test libs below use."""
    return [
        {"def": S("lib:ph"), "doc": "core", "version": "1.0", "baseUri": Uri("http://x/ph/")},
        {"def": S("marker")},
        {"def": S("val")},
        {"def": S("feature")},
        {"def": S("lib"), "is": S("feature")},
        {"def": S("def"), "is": S("symbol")},
        {"def": S("defx"), "is": S("symbol")},
        {"def": S("scalar"), "is": S("val")},
        {"def": S("symbol"), "is": S("scalar")},
        {"def": S("str"), "is": S("scalar")},
        {"def": S("uri"), "is": S("scalar")},
        {"def": S("number"), "is": S("scalar")},
        {"def": S("ref"), "is": S("scalar")},
        {"def": S("list"), "is": S("val")},
        {"def": S("association"), "is": S("list")},
        {"def": S("is"), "is": S("association")},
        {"def": S("tagOn"), "is": S("association"), "notInherited": Marker, "accumulate": Marker},
        {
            "def": S("tags"),
            "is": S("association"),
            "reciprocalOf": S("tagOn"),
            "computedFromReciprocal": Marker,
        },
        {"def": S("reciprocalOf"), "is": S("symbol")},
        {"def": S("computedFromReciprocal"), "is": S("marker")},
        {"def": S("notInherited"), "is": S("marker")},
        {"def": S("accumulate"), "is": S("marker")},
        {"def": S("mandatory"), "is": S("marker"), "notInherited": Marker},
        {"def": S("doc"), "is": S("str")},
        {"def": S("version"), "is": S("str")},
        {"def": S("baseUri"), "is": S("uri")},
        {"def": S("depends"), "is": S("list")},
        {"def": S("relationship"), "is": S("symbol")},
        {"def": S("containedBy"), "is": S("relationship")},
        {"def": S("choice"), "is": S("marker")},
        {"def": S("of"), "is": S("symbol")},
        {"def": S("lib"), "is": S("feature")} if False else {"def": S("entity"), "is": S("marker")},
    ]


def _acme(*extra: dict) -> Lib:
    meta = {
        "def": S("lib:acme"),
        "doc": "acme",
        "version": "1.0",
        "baseUri": Uri("http://x/acme/"),
        "depends": [S("lib:ph")],
    }
    return Lib.from_dicts([meta, *extra])


def test_spec_inheritance_example():
    car = {
        "def": S("car"),
        "is": S("marker"),
        "numDoors": Number(4),
        "color": "red",
        "engine": "V8",
    }
    pickup = {
        "def": S("pickup"),
        "is": S("marker"),
        "numDoors": Number(2),
        "color": "blue",
        "bedLength": Number(80, "in"),
    }
    el = {"def": S("elCamino"), "is": [S("pickup"), S("car")], "color": "purple"}
    tags = [
        {"def": S(t), "is": S(k)}
        for t, k in (
            ("numDoors", "number"),
            ("color", "str"),
            ("engine", "str"),
            ("bedLength", "number"),
        )
    ]
    ns = Namespace.from_libs([Lib.from_dicts(_ph_core()), _acme(car, pickup, el, *tags)])
    d = ns["elCamino"]
    assert (d["color"], d["numDoors"], d["engine"], d["bedLength"]) == (
        "purple",
        Number(2),
        "V8",
        Number(80, "in"),
    )
    assert d["is"] == [S("pickup"), S("car")]
    assert d["lib"] == S("lib:acme")


def test_defx_extends_and_accumulates():
    base = [
        {"def": S("thing"), "is": S("marker"), "tagOn": S("entity")},
        {"defx": S("thing"), "doc": "added later"},
        {"defx": S("thing"), "tagOn": S("marker")},
    ]
    ns = Namespace.from_libs([Lib.from_dicts(_ph_core()), _acme(*base)])
    assert ns["thing"]["doc"] == "added later"
    assert ns["thing"]["tagOn"] == [S("entity"), S("marker")]
    assert ns.associations("entity", "tags") == ["thing"]


def test_malformed_libs_report_every_problem():
    bad = [
        {"def": S("noIs")},
        {"def": S("a"), "is": S("b")},
        {"def": S("b"), "is": S("a")},
        {"def": S("usesUnknown"), "is": S("marker"), "mystery": Marker},
        {"def": S("badSymbol"), "is": S("nowhere")},
        {"def": S("acme:key"), "is": S("marker")},
        {"def": S("withLib"), "is": S("marker"), "lib": S("lib:acme")},
        {"def": S("num"), "is": S("number")},
        {"def": S("num-marker"), "is": S("marker")},
        {"def": S("index"), "is": S("marker")},
        {"def": S("computed"), "is": S("marker"), "tags": [S("marker")]},
        {"def": S("conj-unct"), "is": S("marker"), "tagOn": S("entity")},
        {"def": S("notRef"), "is": S("str"), "containedBy": S("entity")},
        {"def": S("badDoc"), "is": S("marker"), "doc": Number(3)},
        {"def": S("dup"), "is": S("marker")},
        {"def": S("dup"), "is": S("marker")},
        {"defx": S("ghost"), "doc": "x"},
        {"defx": S("entity"), "is": S("val")},
    ]
    with pytest.raises(NamespaceError) as info:
        Namespace.from_libs([Lib.from_dicts(_ph_core()), _acme(*bad)])
    problems = "\n".join(info.value.problems)
    for expected in (
        "^noIs has no 'is' tag",
        "cyclic 'is'",
        "tag 'mystery' has no def in scope",
        "^nowhere has no def in scope",
        "^acme:key is a feature key and must not declare 'is'",
        "^acme:key: feature ^acme has no def",
        "^withLib must not declare 'lib'",
        "conjunct ^num-marker: ^num is not a marker",
        "^index is reserved",
        "computed from its reciprocal",
        "'tagOn' is only for tag defs",
        "uses relationship 'containedBy' but is not a ref",
        "'doc' should be a str",
        "^dup is defined in both",
        "defx ^ghost in lib:acme: no such def",
        "redefines tag 'is'",
    ):
        assert expected in problems, expected
    assert str(info.value).startswith(f"{len(info.value.problems)} problems in the defs")


def test_lib_level_problems():
    with pytest.raises(NamespaceError, match="exactly one"):
        Lib.from_dicts([{"def": S("x")}])
    with pytest.raises(NamespaceError, match="neither a 'def' nor a 'defx'"):
        Lib.from_dicts([{"def": S("lib:x")}, {"dis": "stray"}])
    orphan = Lib.from_dicts(
        [{"def": S("lib:orphan"), "doc": "d", "version": "1", "baseUri": Uri("http://o/")}]
    )
    needs = Lib.from_dicts(
        [
            {
                "def": S("lib:needs"),
                "doc": "d",
                "version": "1",
                "baseUri": Uri("http://n/"),
                "depends": [S("lib:ph"), S("lib:missing")],
            }
        ]
    )
    with pytest.raises(NamespaceError) as info:
        Namespace.from_libs([Lib.from_dicts(_ph_core()), orphan, needs, orphan])
    text = "\n".join(info.value.problems)
    assert "lib:orphan must depend on lib:ph" in text
    assert "lib:needs depends on lib:missing, which is not loaded" in text
    assert "lib lib:orphan is loaded twice" in text
    nometa = Lib.from_dicts([{"def": S("lib:bare"), "depends": [S("lib:ph")]}])
    with pytest.raises(NamespaceError, match="must declare 'version'"):
        Namespace.from_libs([Lib.from_dicts(_ph_core()), nometa])


def test_depends_are_not_transitive():
    alpha = Lib.from_dicts(
        [
            {
                "def": S("lib:alpha"),
                "doc": "a",
                "version": "1",
                "baseUri": Uri("http://a/"),
                "depends": [S("lib:ph")],
            },
            {"def": S("alphaTag"), "is": S("marker")},
        ]
    )
    beta = Lib.from_dicts(
        [
            {
                "def": S("lib:beta"),
                "doc": "b",
                "version": "1",
                "baseUri": Uri("http://b/"),
                "depends": [S("lib:ph"), S("lib:alpha")],
            },
            {"def": S("betaTag"), "is": S("alphaTag")},
        ]
    )
    gamma = Lib.from_dicts(
        [
            {
                "def": S("lib:gamma"),
                "doc": "g",
                "version": "1",
                "baseUri": Uri("http://g/"),
                "depends": [S("lib:ph"), S("lib:beta")],
            },
            {"def": S("gammaTag"), "is": S("alphaTag")},
        ]
    )
    core = Lib.from_dicts(_ph_core())
    Namespace.from_libs([core, alpha, beta])
    with pytest.raises(
        NamespaceError, match=r"\^gammaTag in lib:gamma: \^alphaTag has no def in scope"
    ):
        Namespace.from_libs([core, alpha, beta, gamma])


def test_load_lib_from_dir_file_and_zip(tmp_path, defs_dir):
    lib = load_lib(defs_dir / "phScience")
    assert lib.name == "lib:phScience" and lib.depends == ("lib:ph",)
    assert lib.version and lib.base_uri and lib.base_uri.startswith("https://")
    single = load_lib(defs_dir / "ph" / "lib.trio")
    assert single.name == "lib:ph" and single.defs == ()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((defs_dir / "phScience").glob("*.trio")):
            zf.writestr(f"lib/{p.name}", p.read_bytes())
    zipped = tmp_path / "phScience.zip"
    zipped.write_bytes(buf.getvalue())
    assert load_lib(zipped) == lib
    assert load_lib(buf.getvalue()) == lib
    with pytest.raises(NamespaceError, match="not a valid zip"):
        load_lib(b"not a zip")
    broken = tmp_path / "broken.trio"
    broken.write_text('def: ^lib:x\ndoc: "open\n')
    with pytest.raises(NamespaceError, match=r"broken\.trio"):
        load_lib(broken)


def test_lookups_reject_non_names(ns):
    with pytest.raises(TypeError):
        ns.get(3)  # type: ignore[arg-type]
    assert ns.get("nope") is None
    with pytest.raises(KeyError):
        ns["nope"]
    assert "Namespace" in repr(ns)
