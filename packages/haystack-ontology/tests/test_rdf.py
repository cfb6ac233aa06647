import pytest

from projecthaystack.kinds import Marker, Number, Ref
from projecthaystack.ontology import to_graph, to_jsonld, to_turtle

rdflib = pytest.importorskip("rdflib", reason="rdflib is not installed: install the [rdf] extra")


def test_turtle_follows_the_rdf_chapter(ns):
    graph = to_graph(ns)
    phiot = rdflib.Namespace("https://project-haystack.org/def/phIoT/4.0.0#")
    ph = rdflib.Namespace("https://project-haystack.org/def/ph/4.0.0#")
    site = phiot["site"]
    assert (site, rdflib.RDF.type, rdflib.OWL.Class) in graph
    assert (site, rdflib.RDFS.subClassOf, ph["entity"]) in graph
    assert (site, rdflib.RDFS.subClassOf, ph["geoPlace"]) in graph
    assert (site, ph["is"], ph["entity"]) in graph
    assert (site, ph["lib"], phiot["lib:phIoT"]) in graph
    assert (site, ph["mandatory"], ph["marker"]) in graph
    assert any(p == rdflib.RDFS.comment for _, p, _ in graph.triples((site, None, None)))
    assert (ph["number"], rdflib.RDF.type, rdflib.OWL.DatatypeProperty) in graph
    assert (ph["number"], rdflib.RDFS.subClassOf, rdflib.XSD.double) in graph
    assert (ph["dateTime"], rdflib.RDFS.subClassOf, rdflib.XSD.dateTime) in graph
    assert (phiot["siteRef"], rdflib.RDF.type, rdflib.OWL.ObjectProperty) in graph
    assert (phiot["siteRef"], rdflib.RDFS.range, phiot["site"]) in graph
    assert (ph["tz"], rdflib.RDF.type, rdflib.OWL.DatatypeProperty) in graph
    assert (ph["tz"], rdflib.RDFS.domain, phiot["site"]) in graph
    text = to_turtle(ns)
    again = rdflib.Graph().parse(data=text, format="turtle")
    assert len(again) == len(graph)


def test_instances_and_jsonld(ns):
    site = {
        "id": Ref("24192ca1-0c85f75d"),
        "site": Marker,
        "area": Number(140797, "ft²"),
        "tz": "New_York",
        "dis": "HQ",
        "custom": "dropped",
    }
    graph = to_graph(ns, [site, {"dis": "no id, not exported"}])
    node = rdflib.BNode("24192ca1-0c85f75d")
    phiot = rdflib.Namespace("https://project-haystack.org/def/phIoT/4.0.0#")
    ph = rdflib.Namespace("https://project-haystack.org/def/ph/4.0.0#")
    assert (node, rdflib.RDF.type, phiot["site"]) in graph
    assert (node, ph["hasTag"], phiot["site"]) in graph
    assert (node, ph["tz"], rdflib.Literal("New_York")) in graph
    assert not list(graph.triples((node, ph["custom"], None)))
    doc = to_jsonld(ns, [site])
    assert '"@id"' in doc and "24192ca1-0c85f75d" in doc
