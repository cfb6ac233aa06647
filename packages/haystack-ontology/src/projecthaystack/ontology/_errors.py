"""The errors of the ontology, in the project's tree (drawn whole in ``projecthaystack.kinds``)::

HaystackError
└── NamespaceError (ValueError)   libs that do not make a valid namespace
"""

from __future__ import annotations

from projecthaystack.kinds import HaystackError

__all__ = ["NamespaceError"]


class NamespaceError(HaystackError, ValueError):
    """Libs that do not make a valid namespace: every problem found, not just the first.

    ``problems`` lists them, one sentence each, in the order the pipeline found them.

    >>> from projecthaystack.ontology import Lib
    >>> Lib.from_dicts([{"def": "not a symbol"}])
    Traceback (most recent call last):
    ...
    projecthaystack.ontology.NamespaceError: 2 problems in the defs:
      - a dict has neither a 'def' nor a 'defx' symbol: {'def': 'not a symbol'}
      - a lib needs exactly one 'def: ^lib:...' dict, found 0
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the defs"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))
