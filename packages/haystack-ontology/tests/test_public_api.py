"""The public names are pinned: adding or removing one is a decision, not an accident."""

import projecthaystack.ontology as ontology
from projecthaystack.kinds import HaystackError


def test_public_names_are_pinned():
    assert sorted(ontology.__all__) == [
        "Lib",
        "Namespace",
        "NamespaceError",
        "Reflection",
        "load_lib",
        "to_graph",
        "to_jsonld",
        "to_turtle",
    ]


def test_public_names_say_the_public_module():
    for name in ontology.__all__:
        assert getattr(ontology, name).__module__ == "projecthaystack.ontology", name


def test_errors_are_in_the_one_tree():
    assert issubclass(ontology.NamespaceError, HaystackError)
    assert issubclass(ontology.NamespaceError, ValueError)
