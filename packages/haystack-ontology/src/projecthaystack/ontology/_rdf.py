"""RDF export per the Rdf chapter, through rdflib (the ``[rdf]`` extra), imported on use."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from projecthaystack.kinds import Coord, Marker, Number, Ref, Symbol, Uri, XStr

from ._errors import NamespaceError

if TYPE_CHECKING:
    from ._namespace import Namespace

__all__ = ["to_graph", "to_jsonld", "to_turtle"]

_XSD: Final = {
    "bool": "boolean",
    "date": "date",
    "dateTime": "dateTime",
    "number": "double",
    "ref": "anyURI",
    "symbol": "anyURI",
    "time": "time",
    "uri": "anyURI",
}
_LITERAL_SCALARS: Final = {"curVal", "writeVal"}


def _rdflib() -> Any:
    try:
        import rdflib  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # the extra is optional; say how to get it
        raise ImportError(
            "RDF export needs rdflib: python -m pip install rdflib "
            "(the [rdf] extra of haystack-ontology)"
        ) from exc
    return rdflib


class _Iris:
    def __init__(self, ns: Namespace, rdflib: Any) -> None:
        self.ns = ns
        self.rdflib = rdflib
        self.prefixes: dict[str, str] = {}
        for lib in ns.libs():
            base = lib.get("baseUri")
            version = lib.get("version")
            if isinstance(base, Uri) and isinstance(version, str):
                self.prefixes[lib["def"].val] = f"{base.val}{version}#"

    def of(self, symbol: str) -> Any:
        d = self.ns.get(symbol)
        lib = d.get("lib") if d is not None else None
        prefix = self.prefixes.get(lib.val) if isinstance(lib, Symbol) else None
        if prefix is None:
            prefix = self.prefixes.get("lib:ph")
        if prefix is None:
            raise NamespaceError([f"no baseUri/version to make an IRI for ^{symbol}"])
        return self.rdflib.URIRef(prefix + symbol)


def _literal(rdflib: Any, value: Any) -> Any:
    lit, xsd = rdflib.Literal, rdflib.XSD
    if isinstance(value, bool):
        return lit(value, datatype=xsd.boolean)
    if isinstance(value, Number):
        return lit(value.val, datatype=xsd.double)
    if isinstance(value, int | float):
        return lit(float(value), datatype=xsd.double)
    if isinstance(value, _dt.datetime):
        return lit(value.isoformat(), datatype=xsd.dateTime)
    if isinstance(value, _dt.date):
        return lit(value.isoformat(), datatype=xsd.date)
    if isinstance(value, _dt.time):
        return lit(value.isoformat(), datatype=xsd.time)
    if isinstance(value, Uri):
        return lit(value.val, datatype=xsd.anyURI)
    if isinstance(value, Coord):
        return lit(f"C({value.lat},{value.lng})")
    if isinstance(value, XStr):
        return lit(f"{value.type}({value.val!r})")
    return lit(str(value))


def to_graph(ns: Namespace, instances: Iterable[Mapping[str, Any]] = ()) -> Any:
    """An ``rdflib.Graph`` of the namespace's defs and, optionally, instance dicts."""
    rdflib = _rdflib()
    rdf, rdfs, owl, xsd = rdflib.RDF, rdflib.RDFS, rdflib.OWL, rdflib.XSD
    graph = rdflib.Graph()
    iris = _Iris(ns, rdflib)
    for lib, prefix in iris.prefixes.items():
        graph.bind(lib.split(":", 1)[1], rdflib.Namespace(prefix))
    for name in ("rdf", "rdfs", "owl", "xsd"):
        graph.bind(name, getattr(rdflib, name.upper()))
    scalar_children = set(ns.subtypes("scalar"))
    for d in ns.defs():
        sym = d["def"].val
        subject = iris.of(sym)
        if ns.is_marker(sym):
            graph.add((subject, rdf.type, owl.Class))
            for sup in ns.supertypes(sym):
                graph.add((subject, rdfs.subClassOf, iris.of(sup)))
        elif sym in scalar_children:
            graph.add((subject, rdf.type, owl.DatatypeProperty))
            xsd_type = getattr(xsd, _XSD.get(sym, "string"))
            base = rdfs.Literal if sym in _LITERAL_SCALARS else xsd_type
            graph.add((subject, rdfs.subClassOf, base))
        elif "-" not in sym and ":" not in sym and ns.fits(sym, "val"):
            is_object = ns.fits(sym, "ref") or ns.fits(sym, "choice")
            prop = owl.ObjectProperty if is_object else owl.DatatypeProperty
            graph.add((subject, rdf.type, prop))
            for domain in ns.associations(sym, "tagOn"):
                graph.add((subject, rdfs.domain, iris.of(domain)))
            of = ns.associations(sym, "of")
            if is_object and of:
                graph.add((subject, rdfs.range, iris.of(of[0])))
            elif not is_object:
                kind = ns.kind(sym)
                if kind is not None and kind in ns:
                    graph.add((subject, rdfs.range, iris.of(kind)))
        for tag, value in d.items():
            if tag == "def":
                continue
            if tag == "doc":
                graph.add((subject, rdfs.comment, rdflib.Literal(value)))
                continue
            predicate = iris.of(tag) if tag in ns else None
            if predicate is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Symbol):
                    if item.val in ns:
                        graph.add((subject, predicate, iris.of(item.val)))
                elif item is Marker:
                    graph.add((subject, predicate, iris.of("marker")))
                elif not isinstance(item, Mapping | list):
                    graph.add((subject, predicate, _literal(rdflib, item)))
    _instances(graph, ns, iris, instances, rdflib)
    return graph


def _instances(
    graph: Any, ns: Namespace, iris: _Iris, instances: Iterable[Mapping[str, Any]], rdflib: Any
) -> None:
    # The chapter's ph:hasTag has no def of its own: it lives in ph's namespace.
    has_tag = rdflib.URIRef(iris.prefixes.get("lib:ph", "urn:haystack:ph#") + "hasTag")
    for rec in instances:
        rid = rec.get("id")
        if not isinstance(rid, Ref):
            continue
        node = rdflib.BNode(rid.id)
        for sym in ns.reflect(rec).entity_types():
            graph.add((node, rdflib.RDF.type, iris.of(sym)))
        for tag, value in rec.items():
            if tag == "id" or tag not in ns:
                continue  # the chapter: tags without a def are not exported
            if value is Marker:
                graph.add((node, has_tag, iris.of(tag)))
            elif isinstance(value, Ref):
                graph.add((node, iris.of(tag), rdflib.BNode(value.id)))
            elif not isinstance(value, Mapping | list):
                graph.add((node, iris.of(tag), _literal(rdflib, value)))


def to_turtle(ns: Namespace, instances: Iterable[Mapping[str, Any]] = ()) -> str:
    """The defs (and instances) as Turtle text."""
    return str(to_graph(ns, instances).serialize(format="turtle"))


def to_jsonld(ns: Namespace, instances: Iterable[Mapping[str, Any]] = ()) -> str:
    """The defs (and instances) as JSON-LD text."""
    return str(to_graph(ns, instances).serialize(format="json-ld"))
