"""A griffe extension for the documentation site: docstrings as mkdocstrings should see them.

Our docstrings are written for ``help()`` and doctest: examples as bare ``>>>`` lines and
references as Sphinx roles (``:class:`Grid```). Rendered as Markdown, the examples would
read as prose (and ``rows[0]["id"]`` as a link) and the roles as raw text. So before
mkdocstrings renders a docstring:

- each doctest run (its ``>>>``/``...`` lines and the output up to the next blank line)
  is put inside a fenced ``pycon`` block;
- a reST simple table becomes a Markdown table;
- a reST literal-block marker (a paragraph ending in ``::``) loses one colon, and a bare
  ``::`` line goes: the indented block after it is already a Markdown code block;
- each role becomes a cross-reference to the object it names, resolved the way Python
  would from the docstring's own scope; a name that does not resolve stays inline code.
  A reference that resolves to an object the site does not render fails the strict build
  (autorefs reports it), which is how a stale name in a docstring is caught.

Nothing in the sources changes. Named in ``mkdocs.yml`` under the Python handler's
``extensions``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import griffe

FENCE = "```"
ROLE = re.compile(
    r":(?:py:)?(?:func|class|data|meth|attr|exc|mod|obj|const):`(~?)([^`<]+?)\s*(?:<([\w.]+)>)?`"
)
NAME = re.compile(r"[\w.]+")
BORDER = re.compile(r"^(\s*)(=+)((?:\s+=+)+)\s*$")


def fence_doctests(text: str) -> str:
    """``text`` with every doctest run outside a fence wrapped in a ``pycon`` fence.

    >>> fence_doctests("Adds.\\n\\n>>> 1 + 1\\n2\\n\\nMore.").splitlines()
    ['Adds.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'More.']
    """
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if in_doctest:
            if stripped and line.startswith(indent):
                out.append(line)
                continue
            out.append(indent + FENCE)
            in_doctest = False
        if stripped.startswith((FENCE, "~~~")):
            in_fence = not in_fence
        elif not in_fence and (stripped.startswith(">>> ") or stripped == ">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(indent + FENCE + "pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append(indent + FENCE)
    return "\n".join(out)


LITERAL = re.compile(r"(?m)^([ \t]*)::[ \t]*\n|(\S)::[ \t]*$")


def literal_blocks(text: str) -> str:
    """reST's ``text::`` and ``::`` before an indented block, as Markdown wants them.

    >>> literal_blocks("Subclass it::\\n\\n    class A: ...").splitlines()
    ['Subclass it:', '', '    class A: ...']
    >>> literal_blocks("Tree:\\n\\n::\\n\\n    a").splitlines()
    ['Tree:', '', '', '    a']
    """
    return LITERAL.sub(lambda m: "" if m.group(2) is None else m.group(2) + ":", text)


def rst_tables(text: str) -> str:
    """reST simple tables (``=====  =====`` borders) as Markdown tables.

    A line whose first column is blank continues the row above it.

    >>> print(rst_tables("==  =====\\nA   B\\n==  =====\\n1   one\\n    more\\n==  ====="))
    | A | B |
    |---|---|
    | 1 | one more |
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = BORDER.match(lines[i])
        if border is None or i + 2 >= len(lines) or lines[i + 2].strip() != lines[i].strip():
            out.append(lines[i])
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]

        def cells(line: str, starts: list[int] = starts) -> list[str]:
            ends = [*starts[1:], len(line) + 1]
            return [line[a:b].strip() for a, b in zip(starts, ends, strict=True)]

        rows = [cells(lines[i + 1])]
        i += 3
        while i < len(lines):
            if BORDER.match(lines[i]):
                i += 1
                break
            if not lines[i].strip():
                i += 1
                continue
            row = cells(lines[i])
            if not row[0] and len(rows) > 1:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row, strict=True)]
            else:
                rows.append(row)
            i += 1
        indent = border.group(1)
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(rows[0]))
        out.extend(indent + "| " + " | ".join(r) + " |" for r in rows[1:])
    return "\n".join(out)


def _resolve(scope: griffe.Object, name: str) -> str | None:
    """The full path ``name`` stands for in ``scope``, or None."""
    if name.startswith("projecthaystack."):
        return name
    head, _, rest = name.partition(".")
    try:
        path = scope.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return f"{path}.{rest}" if rest else path


def link_roles(text: str, scope: griffe.Object) -> str:
    """``text`` with Sphinx roles made into autorefs links (or inline code) from ``scope``."""

    def replace(match: re.Match[str]) -> str:
        short, text, target = match.group(1), " ".join(match.group(2).split()), match.group(3)
        if target is None and not NAME.fullmatch(text):
            return f"`{text}`"
        name = target or text
        title = text if target else (name.rsplit(".", 1)[-1] if short else name)
        path = _resolve(scope, name)
        return f"`{title}`" if path is None else f"[`{title}`][{path}]"

    return ROLE.sub(replace, text)


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and everything defined in it (not what it imports)."""
    yield obj
    for member in obj.members.values():
        if isinstance(member, griffe.Object):
            yield from _walk(member)


class DocstringsForMarkdown(griffe.Extension):
    """Fences doctests and links Sphinx roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and everything defined in it."""
        for obj in _walk(pkg):
            if obj.docstring is not None:
                scope = obj if obj.is_module or obj.is_class else obj.parent
                text = rst_tables(literal_blocks(fence_doctests(obj.docstring.value)))
                obj.docstring.value = link_roles(text, scope or obj)
