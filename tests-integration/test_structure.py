"""Each package is a room with one door: what its source imports, read from the source.

Every module under ``packages/*/src`` is parsed (nothing is imported) and each import,
at module level or inside a function, is checked:

- no import of another package's private module or private name
  (``projecthaystack.kinds._grid``, ``from projecthaystack.kinds import _x``), and no
  private member reached through a name imported from another package (``Grid._trusted``);
- every third-party library imported is declared in the package's ``pyproject.toml``:
  in ``dependencies`` when it is a plain module-level import in a module the package
  loads itself (from its ``__init__`` or its commands), else (an import inside a function,
  under ``try/except ImportError`` or ``TYPE_CHECKING``, or in an opt-in module that the
  package never loads itself, like ``storetests``) in ``dependencies`` or an extra;
- every sibling imported is one the layer table allows, and is declared the same way;
- no import cycle between the modules of one package, function-level imports included
  (they hide a cycle; they do not remove it).

The layer table (the design's "Packages and layers"; docs/index.md shows it) is
``DEPENDS_ON`` below. It is not a straight line: auth needs only kinds, the client does
not need the ontology, and a package may use what its dependencies use.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _import_names() -> dict[str, str]:
    """Each distribution's import name, from where its pyproject keeps the version."""
    names = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        about = Path(config["tool"]["hatch"]["version"]["path"])  # src/projecthaystack/...
        names[config["project"]["name"]] = ".".join(about.parent.parts[1:])
    return names


IMPORT_NAMES = _import_names()

# What each package may use directly (the design's table), closed over below.
DEPENDS_ON: dict[str, set[str]] = {
    "haystack-kinds": set(),
    "haystack-codecs": {"haystack-kinds"},
    "haystack-filter": {"haystack-kinds", "haystack-codecs"},
    "haystack-ontology": {"haystack-kinds", "haystack-codecs", "haystack-filter"},
    "haystack-auth": {"haystack-kinds"},
    "haystack-client": {"haystack-kinds", "haystack-codecs", "haystack-filter", "haystack-auth"},
    "haystack-server": {
        "haystack-kinds",
        "haystack-codecs",
        "haystack-filter",
        "haystack-ontology",
        "haystack-auth",
        "haystack-client",
    },
    "haystack-store-redis": {"haystack-server"},
    "haystack-store-pg": {"haystack-server"},
}


def _closure(name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(DEPENDS_ON[name])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(DEPENDS_ON[dep])
    return seen


ALLOWED = {name: _closure(name) for name in DEPENDS_ON}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(requirement: str) -> str:
    return _norm(re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0])


def _req_extras(requirement: str) -> list[str]:
    match = re.match(r"[^\[;]*\[([^\]]*)\]", requirement)
    return [e.strip() for e in match.group(1).split(",")] if match else []


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is and how it runs."""

    module: str  # the importing module
    line: int
    target: str  # the absolute module imported (for ``from m import n``: ``m``)
    names: tuple[str, ...]  # the names of ``from m import n``; () for ``import m``
    in_function: bool
    guarded: bool  # under try/except ImportError, or typing only
    typing_only: bool = False  # under ``if TYPE_CHECKING``: never runs

    @property
    def where(self) -> str:
        place = "inside a function" if self.in_function else "at module level"
        return f"{self.module}:{self.line} ({place})"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    private_members: list[tuple[int, str]] = field(default_factory=list)  # line, dotted name
    # Private attributes its classes define (slots, methods, self._x), with the class.
    defines: dict[str, str] = field(default_factory=dict)
    # Private attributes it reaches on other objects than self/cls, by line.
    reaches: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Package:
    distribution: str
    root: str
    project: dict[str, Any]
    modules: dict[str, Module]

    def required(self) -> set[str]:
        return self._declared(list(self.project.get("dependencies", [])))

    def optional(self) -> set[str]:
        groups = dict(self.project.get("optional-dependencies", {}))
        return self._declared([r for reqs in groups.values() for r in reqs])

    @staticmethod
    def _declared(requirements: list[str]) -> set[str]:
        """The distributions a list of requirements brings, extras of libraries included."""
        names: set[str] = set()
        for req in requirements:
            name = _req_name(req)
            names.add(name)
            extras = set(_req_extras(req))
            if not extras:
                continue
            try:
                needs = importlib.metadata.requires(name) or []
            except importlib.metadata.PackageNotFoundError:
                continue
            for need in needs:
                marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", need)
                if marker and marker.group(1) in extras:
                    names.add(_req_name(need))
        return names

    def entry_modules(self) -> set[str]:
        """The modules that the package itself loads, now or when a function runs, from
        its ``__init__`` and its commands; the others (``storetests``) are opt-in."""
        roots = {self.root}
        for group in ("scripts", "gui-scripts"):
            for target in dict(self.project.get(group, {})).values():
                roots.add(str(target).split(":")[0])
        for targets in dict(self.project.get("entry-points", {})).values():
            for target in dict(targets).values():
                roots.add(str(target).split(":")[0])
        eager: set[str] = set()
        todo = [r for r in roots if r in self.modules]
        while todo:
            name = todo.pop()
            if name in eager:
                continue
            eager.add(name)
            for imp in self.modules[name].imports:
                if imp.typing_only:
                    continue
                todo.extend(t for t in _targets(imp, self.modules) if t not in eager)
        return eager


class _Reader(ast.NodeVisitor):
    """Collects a module's imports with their context, and private members it reaches."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.depth = 0  # function nesting
        self.guard = 0  # try/except ImportError nesting
        self.typing = 0  # if TYPE_CHECKING nesting
        self.foreign: dict[str, str] = {}  # local name -> the projecthaystack module it came from

    def _base(self, level: int) -> str:
        parts = self.module.name.split(".")
        if not self.module.is_package:
            parts = parts[:-1]
        return ".".join(parts[: len(parts) - (level - 1)] if level > 1 else parts)

    def _add(self, node: ast.stmt, target: str, names: tuple[str, ...]) -> None:
        guarded = self.guard > 0 or self.typing > 0
        self.module.imports.append(
            Import(
                self.module.name,
                node.lineno,
                target,
                names,
                self.depth > 0,
                guarded,
                self.typing > 0,
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name, ())
            if alias.name.startswith("projecthaystack."):
                local = alias.asname or alias.name.split(".")[0]
                self.foreign[local] = alias.name if alias.asname else "projecthaystack"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self._base(node.level)
            target = f"{base}.{node.module}" if node.module else base
        else:
            target = node.module or ""
        names = tuple(a.name for a in node.names)
        if target == "projecthaystack":
            # The namespace root: `from projecthaystack import auth` imports a package.
            for name in names:
                self._add(node, f"{target}.{name}", ())
        else:
            self._add(node, target, names)
        if target.startswith("projecthaystack"):
            for alias in node.names:
                self.foreign[alias.asname or alias.name] = f"{target}.{alias.name}"

    def _scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for sub in ast.walk(node):
            names: list[str] = []
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                names.append(sub.name)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                names.append(sub.attr)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.append(sub.id)
            elif (
                isinstance(sub, ast.Constant)
                and isinstance(sub.value, str)
                and sub.value.isidentifier()
            ):
                names.append(sub.value)  # __slots__ entries, setattr names
            for name in names:
                if _private(name):
                    self.module.defines.setdefault(name, node.name)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # setattr(x, "_a", v), object.__setattr__(x, "_a", v), getattr(x, "_a") ...
        func = ast.unparse(node.func)
        accessors = ("setattr", "getattr", "delattr", "hasattr")
        if func.strip("_").endswith((*accessors, "getattribute")) and (
            len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            self.module.reaches.append((node.lineno, node.args[1].value))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scope(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node)

    def visit_Try(self, node: ast.Try) -> None:
        catches = any(_catches_import_error(h.type) for h in node.handlers)
        self.guard += catches
        for stmt in node.body:
            self.visit(stmt)
        self.guard -= catches
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self.visit_Try(node)  # type: ignore[arg-type]

    def visit_If(self, node: ast.If) -> None:
        typing_only = "TYPE_CHECKING" in ast.unparse(node.test)
        self.visit(node.test)
        self.typing += typing_only
        for stmt in node.body:
            self.visit(stmt)
        self.typing -= typing_only
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = [node.attr]
        value = node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name):
            if _private(node.attr):
                self.module.reaches.append((node.lineno, node.attr))
            self.generic_visit(node)
            return
        # The whole chain is handled here: its inner attributes are not visited again.
        private = [a for a in chain if _private(a)]
        if private and value.id not in self.foreign and value.id not in ("self", "cls"):
            self.module.reaches.extend((node.lineno, a) for a in private)
        if private and value.id in self.foreign:
            full = ".".join([self.foreign[value.id], *reversed(chain)])
            self.module.private_members.append((node.lineno, full))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _catches_import_error(handler: ast.expr | None) -> bool:
    if handler is None:
        return True
    names = {n.id for n in ast.walk(handler) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(handler) if isinstance(n, ast.Attribute)}
    return bool(names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _targets(imp: Import, modules: dict[str, Module]) -> Iterator[str]:
    """The modules of ``modules`` an import loads (``from pkg import sub`` loads ``sub``)."""
    if imp.names:
        for name in imp.names:
            sub = f"{imp.target}.{name}"
            if sub in modules:
                yield sub
            elif imp.target in modules:
                yield imp.target
    elif imp.target in modules:
        yield imp.target


@cache
def packages() -> dict[str, Package]:
    found: dict[str, Package] = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        distribution = project["name"]
        root = IMPORT_NAMES[distribution]
        src = pyproject.parent / "src"
        package_dir = src.joinpath(*root.split("."))
        modules: dict[str, Module] = {}
        for path in sorted(package_dir.rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            module = Module(".".join(parts), path, is_package)
            _Reader(module).visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            modules[module.name] = module
        found[distribution] = Package(distribution, root, project, modules)
    return found


def _owner(module: str) -> str | None:
    """The distribution a ``projecthaystack`` module belongs to."""
    best = None
    for distribution, root in IMPORT_NAMES.items():
        if (module == root or module.startswith(root + ".")) and (
            best is None or len(root) > len(IMPORT_NAMES[best])
        ):
            best = distribution
    return best


@cache
def _installed() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _distributions(top: str) -> list[str]:
    """The distributions that provide an import name (itself, when none is installed)."""
    return [_norm(d) for d in _installed().get(top, [top])]


# -- the checks, one list of offences per package ------------------------------------------


def private_offences(package: Package) -> list[str]:
    offences = []
    for module in package.modules.values():
        for imp in module.imports:
            owner = _owner(imp.target)
            if owner is None or owner == package.distribution:
                continue
            rest = imp.target[len(IMPORT_NAMES[owner]) :].split(".")
            names = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if any(p.startswith("_") and not p.startswith("__") for p in rest):
                offences.append(f"{imp.where}: imports {owner}'s private module {imp.target}")
            elif names:
                offences.append(
                    f"{imp.where}: imports {owner}'s private name(s) {', '.join(names)} "
                    f"from {imp.target}"
                )
        for line, full in module.private_members:
            owner = _owner(full)
            if owner is not None and owner != package.distribution:
                offences.append(f"{module.name}:{line}: uses {owner}'s private member {full}")
    return offences


def private_attribute_offences(package: Package, upstream: list[Package]) -> list[str]:
    """Private attributes of another package's classes reached on its objects.

    A heuristic: a private name defined by an upstream package's classes and nowhere in
    this package (``row._json4``, ``object.__setattr__(d, "_plain", ...)``).
    """
    own = {n for m in package.modules.values() for n in m.defines}
    theirs: dict[str, str] = {}
    for other in upstream:
        for module in other.modules.values():
            for name, cls in module.defines.items():
                theirs.setdefault(name, f"{other.distribution}'s {cls}")
    offences = []
    for module in package.modules.values():
        for line, name in module.reaches:
            if name in theirs and name not in own:
                offences.append(f"{module.name}:{line}: reaches {name}, private to {theirs[name]}")
    return offences


def dependency_offences(package: Package) -> list[str]:
    """Third-party libraries and siblings imported but not declared, or not allowed."""
    required, optional = package.required(), package.optional()
    eager = package.entry_modules()
    offences = []
    for module in package.modules.values():
        for imp in module.imports:
            top = imp.target.split(".")[0]
            if not top or top in sys.stdlib_module_names:
                continue
            lazy = imp.in_function or imp.guarded or module.name not in eager
            if top == "projecthaystack":
                owner = _owner(imp.target)
                if owner is None:
                    offences.append(f"{imp.where}: imports {imp.target}, which no package has")
                    continue
                if owner == package.distribution:
                    continue
                if owner not in ALLOWED[package.distribution]:
                    allowed = ", ".join(sorted(ALLOWED[package.distribution])) or "nothing"
                    offences.append(
                        f"{imp.where}: imports {imp.target}: {package.distribution} may use "
                        f"only {allowed} (layer table)"
                    )
                    continue
                dists = [owner]
            else:
                dists = _distributions(top)
            if any(d in required for d in dists):
                continue
            if lazy and any(d in optional for d in dists):
                continue
            where = "dependencies or an extra" if lazy else "dependencies"
            shown = imp.target if top == "projecthaystack" else top
            offences.append(
                f"{imp.where}: imports {shown} (distribution {' or '.join(dists)}), "
                f"not declared in {package.distribution}'s pyproject {where}"
            )
    return offences


def declared_layer_offences(package: Package) -> list[str]:
    """Sibling requirements in pyproject.toml that the layer table does not allow."""
    offences = []
    for name in sorted(package.required() | package.optional()):
        if name in IMPORT_NAMES and name not in ALLOWED[package.distribution]:
            offences.append(f"pyproject.toml requires {name}, which the layer table does not allow")
    return offences


def cycle_offences(package: Package) -> list[str]:
    """Import cycles between the package's modules, each shown with its import lines."""
    edges: dict[str, dict[str, Import]] = {name: {} for name in package.modules}
    for module in package.modules.values():
        for imp in module.imports:
            if imp.typing_only:
                continue
            for target in _targets(imp, package.modules):
                if target != module.name:
                    edges[module.name].setdefault(target, imp)
    offences = []
    for component in _strongly_connected(edges):
        if len(component) < 2:
            continue
        members = sorted(component)
        steps = [
            f"{a} -> {b} (line {imp.line}{', inside a function' if imp.in_function else ''})"
            for a in members
            for b, imp in sorted(edges[a].items())
            if b in component
        ]
        offences.append(f"import cycle among {', '.join(members)}: " + "; ".join(steps))
    return offences


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            components.append(component)

    for node in edges:
        if node not in index:
            visit(node)
    return components


def _report(what: str, distribution: str, offences: list[str]) -> None:
    if offences:
        listing = "\n".join(f"  - {o}" for o in offences)
        pytest.fail(f"{distribution}: {len(offences)} {what}:\n{listing}", pytrace=False)


DISTRIBUTIONS = sorted(IMPORT_NAMES)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_no_private_imports_across_packages(distribution: str) -> None:
    found = packages()
    package = found[distribution]
    upstream = [found[d] for d in sorted(ALLOWED[distribution])]
    offences = private_offences(package) + private_attribute_offences(package, upstream)
    _report("use(s) of another package's private API", distribution, offences)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_imports_are_declared_and_follow_the_layers(distribution: str) -> None:
    offences = dependency_offences(packages()[distribution])
    _report("undeclared or out-of-layer import(s)", distribution, offences)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_declared_requirements_follow_the_layers(distribution: str) -> None:
    offences = declared_layer_offences(packages()[distribution])
    _report("requirement(s) against the layer table", distribution, offences)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_no_import_cycles_inside_a_package(distribution: str) -> None:
    _report("import cycle(s)", distribution, cycle_offences(packages()[distribution]))


_SKIPS = ("skip", "importorskip", "skipif")
# A skip says what would make the test run: a variable to set, a thing to install or to
# start, a Python to run on.
_SAYS_WHAT_TO_DO = re.compile(r"\b(set|install|start|run)\b", re.IGNORECASE)


def _text(node: ast.expr | None, assigned: dict[str, list[ast.expr]]) -> str:
    """The literal text of a message (f-string holes left out, names looked up)."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v, assigned) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _text(node.left, assigned) + _text(node.right, assigned)
    if isinstance(node, ast.Name):
        return " ".join(_text(v, assigned) for v in assigned.get(node.id, []))
    return ""


def skip_messages(path: Path) -> Iterator[tuple[int, str]]:
    """Each pytest skip in a file: its line and its message."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in _SKIPS or "pytest" not in ast.unparse(func):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        if name == "skip":
            message = keywords.get("reason") or (node.args[0] if node.args else None)
        elif name == "importorskip":
            message = keywords.get("reason")
        else:
            message = keywords.get("reason") or (node.args[1] if len(node.args) > 1 else None)
        yield node.lineno, _text(message, assigned)


def test_skip_messages_say_what_to_set_install_or_start() -> None:
    files = sorted((ROOT / "packages").glob("*/tests/**/*.py"))
    files += sorted((ROOT / "packages").glob("*/src/**/*.py"))
    files += sorted((ROOT / "tests-integration").glob("*.py"))
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {message or '(no message)'!r}"
        for path in files
        for line, message in skip_messages(path)
        if not _SAYS_WHAT_TO_DO.search(message)
    ]
    if offences:
        listing = "\n".join(f"  - {o}" for o in offences)
        pytest.fail(
            "skip messages that do not say what to set, install, start or run:\n" + listing,
            pytrace=False,
        )


def test_skip_messages_are_read_from_every_form(tmp_path: Path) -> None:
    path = tmp_path / "test_x.py"
    path.write_text(
        "import pytest\n"
        "WHY = 'Redis is not reachable: start it on 127.0.0.1:6379'\n"
        "needs = pytest.mark.skipif(True, reason='no Redis')\n"
        "pg = pytest.importorskip('psycopg', reason=f'psycopg missing: install {1}')\n"
        "def test():\n"
        "    pytest.skip(WHY)\n"
        "    pytest.skip('the defs are ' + 'missing')\n"
        "    pytest.importorskip('x')\n"
    )
    assert list(skip_messages(path)) == [
        (3, "no Redis"),
        (4, "psycopg missing: install "),
        (6, "Redis is not reachable: start it on 127.0.0.1:6379"),
        (7, "the defs are missing"),
        (8, ""),
    ]


def test_every_package_is_read() -> None:
    found = packages()
    assert sorted(found) == DISTRIBUTIONS == sorted(DEPENDS_ON)
    assert IMPORT_NAMES["haystack-store-pg"] == "projecthaystack.stores.pg"
    for distribution, package in found.items():
        assert package.root in package.modules, distribution


# -- the checker itself, on small made-up packages ------------------------------------------


def _fake(tmp_path: Path, distribution: str, files: dict[str, str], **project: Any) -> Package:
    root = IMPORT_NAMES[distribution]
    modules: dict[str, Module] = {}
    for rel, text in files.items():
        parts = [*root.split("."), *Path(rel).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        module = Module(".".join(parts), tmp_path / rel, is_package)
        _Reader(module).visit(ast.parse(text))
        modules[module.name] = module
    return Package(distribution, root, {"name": distribution, **project}, modules)


def test_the_checker_finds_private_use(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-filter",
        {
            "__init__.py": "from ._p import parse as parse\n",
            "_p.py": (
                "from projecthaystack.codecs._zinc import ZincParser\n"
                "from projecthaystack.kinds import Grid, _helper\n"
                "import projecthaystack.codecs as codecs\n"
                "def f():\n"
                "    return Grid._trusted([]), codecs.zinc._read\n"
                "from ._q import ok\n"
            ),
            "_q.py": "ok = 1\n",
        },
    )
    offences = private_offences(package)
    assert any("private module projecthaystack.codecs._zinc" in o for o in offences)
    assert any("private name(s) _helper" in o for o in offences)
    assert any("member projecthaystack.kinds.Grid._trusted" in o and ":5" in o for o in offences)
    assert any("member projecthaystack.codecs.zinc._read" in o for o in offences)
    assert len(offences) == 4  # its own private modules are its own business


def test_the_checker_finds_private_attributes_of_upstream_objects(tmp_path: Path) -> None:
    kinds = _fake(
        tmp_path,
        "haystack-kinds",
        {
            "_grid.py": (
                "class FrozenDict(dict):\n"
                "    __slots__ = ('_memo', '_keys')\n"
                "    def _fast(self):\n"
                "        self._seen = 1\n"
            )
        },
    )
    codecs = _fake(
        tmp_path,
        "haystack-codecs",
        {
            "_json.py": (
                "class Encoder:\n"
                "    def __init__(self):\n"
                "        self._keys = {}\n"  # its own attribute of the same name
                "def encode(d, rows):\n"
                "    object.__setattr__(d, '_memo', 1)\n"
                "    rows[0]._seen\n"
                "    return d._keys, d._fast(), getattr(d, '_unknown', None)\n"
            )
        },
    )
    offences = private_attribute_offences(codecs, [kinds])
    assert offences == [
        "projecthaystack.codecs._json:5: reaches _memo, private to haystack-kinds's FrozenDict",
        "projecthaystack.codecs._json:6: reaches _seen, private to haystack-kinds's FrozenDict",
        "projecthaystack.codecs._json:7: reaches _fast, private to haystack-kinds's FrozenDict",
    ]


def test_the_checker_finds_undeclared_and_out_of_layer_imports(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-auth",
        {
            "__init__.py": "from ._a import x as x\nimport msgspec\n",
            "_a.py": (
                "import json\n"
                "import httpx\n"
                "from projecthaystack.codecs import zinc\n"
                "from projecthaystack.kinds import Ref\n"
                "def lazy():\n"
                "    import anyio\n"
                "try:\n"
                "    import hypothesis\n"
                "except ImportError:\n"
                "    hypothesis = None\n"
            ),
            "testing.py": "import pytest\n",
        },
        dependencies=["haystack-kinds>=0.1", "msgspec>=0.18"],
        **{"optional-dependencies": {"x": ["anyio>=4", "hypothesis", "pytest"]}},
    )
    offences = dependency_offences(package)
    assert any("imports httpx" in o and "pyproject dependencies" in o for o in offences)
    assert any("codecs" in o and "may use only haystack-kinds" in o for o in offences)
    assert len(offences) == 2  # stdlib, declared, extras for lazy / guarded / opt-in modules


def test_the_checker_finds_a_sibling_used_but_not_declared(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-server",
        {"__init__.py": "", "_cli.py": "def f():\n    from projecthaystack.client import Client\n"},
        dependencies=[],
    )
    (offence,) = dependency_offences(package)
    assert "projecthaystack.client (distribution haystack-client)" in offence
    assert "dependencies or an extra" in offence


def test_a_command_module_needs_required_dependencies(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-client",
        {"__init__.py": "", "_cli.py": "import httpx\n"},
        dependencies=[],
        scripts={"haystack": "projecthaystack.client._cli:main"},
        **{"optional-dependencies": {"cli": ["httpx"]}},
    )
    (offence,) = dependency_offences(package)
    assert "not declared in haystack-client's pyproject dependencies" in offence


def test_the_checker_finds_cycles_hidden_in_functions(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-kinds",
        {
            "__init__.py": "from ._grid import Grid as Grid\n",
            "_grid.py": "def to():\n    from ._convert import c\n    return c\n",
            "_convert.py": "from . import _grid\nc = 1\n",
            "_alone.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._grid import Grid\n"
            ),
        },
    )
    (offence,) = cycle_offences(package)
    assert "projecthaystack.kinds._convert, projecthaystack.kinds._grid" in offence
    assert "_grid -> projecthaystack.kinds._convert (line 2, inside a function)" in offence


def test_the_declared_requirements_follow_the_layers(tmp_path: Path) -> None:
    package = _fake(
        tmp_path,
        "haystack-ontology",
        {"__init__.py": ""},
        dependencies=["haystack-kinds", "haystack-auth>=0.1"],
    )
    assert declared_layer_offences(package) == [
        "pyproject.toml requires haystack-auth, which the layer table does not allow"
    ]
