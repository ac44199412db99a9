"""Modules import only downward, and no import cycle exists, not even through an
import inside a function or under ``TYPE_CHECKING``.

The imports are read from the source with `ast` (every ``import`` and ``from
... import`` anywhere in a module: at module level, inside functions and
classes, under ``if TYPE_CHECKING:``), for every module found by walking the
package folders of ``stateward.core`` and ``stateward.actors``. The layers are
declared below, lowest first: a module may import modules of its own layer or
of a lower one. A module that is in no layer fails the test until it is placed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Where each package's source lives (setuptools maps the folders onto these names).
PACKAGES = {"stateward.core": ROOT / "core", "stateward.actors": ROOT / "actors"}

#: The layers, lowest first. An entry names a module, or a subpackage with
#: everything in it (``stateward.actors.rows``). core is below actors.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "core: errors and the wall clock",
        [
            "stateward.core._errors",
            "stateward.core._quick",
            "stateward.core._wallclock",
            "stateward.core._zones",
        ],
    ),
    ("core: what a value may hold", ["stateward.core._storable"]),
    (
        "core: values",
        ["stateward.core._frozen", "stateward.core._state", "stateward.core._same"],
    ),
    (
        "core: codec, histories, arguments",
        [
            "stateward.core._layout",
            "stateward.core._codec",
            "stateward.core._history",
            "stateward.core._arguments",
            "stateward.core._messages",
        ],
    ),
    (
        "core: specs",
        [
            "stateward.core._timers",
            "stateward.core._parts",
            "stateward.core._chart",
            "stateward.core._chartdef",
            "stateward.core._events",
            "stateward.core._decorators",
            "stateward.core._spec_tables",
            "stateward.core._spec",
            "stateward.core._chart_states",
            "stateward.core._chart_tree",
            "stateward.core._chart_read",
            "stateward.core._chart_hooks",
            "stateward.core._chart_events",
            "stateward.core._chart_class",
            "stateward.core._graph",
        ],
    ),
    (
        "core: machines",
        [
            "stateward.core._snapshot",
            "stateward.core._chartplan",
            "stateward.core._chartmove",
            "stateward.core._chartstore",
            "stateward.core._timer_moves",
            "stateward.core._moves",
            "stateward.core._hooks",
            "stateward.core._generated_hooks",
            "stateward.core._generate",
            "stateward.core._machine",
            "stateward.core._timer_fire",
        ],
    ),
    ("core: stores and configs", ["stateward.core._store", "stateward.core._config"]),
    ("core: persistence", ["stateward.core._persist"]),
    ("core: behaviours", ["stateward.core._suspend", "stateward.core._behaviours"]),
    ("core: public names", ["stateward.core"]),
    (
        "actors: errors and clocks",
        ["stateward.actors._errors", "stateward.actors._clock", "stateward.actors._context"],
    ),
    ("actors: stores", ["stateward.actors.stores"]),
    (
        "actors: replies and mailboxes",
        [
            "stateward.actors._loop_inbox",
            "stateward.actors._reply",
            "stateward.actors._backpressure",
            "stateward.actors._mailbox",
        ],
    ),
    (
        "actors: cells",
        [
            "stateward.actors._stats",
            "stateward.actors._commit_batch",
            "stateward.actors._cell_state",
            "stateward.actors._cell_watch",
            "stateward.actors._cell",
            "stateward.actors._watchers",
            "stateward.actors._change_stream",
        ],
    ),
    (
        "actors: hosts",
        [
            "stateward.actors._host",
            "stateward.actors._loop_turn",
            "stateward.actors._suspension",
            "stateward.actors._lifecycle_stop",
            "stateward.actors._lifecycle",
            "stateward.actors._passivation",
            "stateward.actors._pool_host",
            "stateward.actors._thread_host",
        ],
    ),
    (
        "actors: supervisor",
        [
            "stateward.actors._supervision",
            "stateward.actors._subtree_stop",
            "stateward.actors._supervisor",
        ],
    ),
    (
        "actors: runtime",
        [
            "stateward.actors._timers",
            "stateward.actors._lease_renewal",
            "stateward.actors._async_host",
            "stateward.actors._signals",
            "stateward.actors._metrics_table",
            "stateward.actors._otel_globals",
            "stateward.actors._probe",
            "stateward.actors._telemetry",
            "stateward.actors._health",
            "stateward.actors._endpoint",
            "stateward.actors._runtime",
            "stateward.actors._default",
        ],
    ),
    ("actors: handles", ["stateward.actors._handles"]),
    ("actors: public names", ["stateward.actors"]),
    (
        "actors: rows, ray, cli",
        [
            "stateward.actors.rows",
            "stateward.actors.ray",
            "stateward.actors.cli",
            "stateward.actors.__main__",
        ],
    ),
]


@dataclass(frozen=True)
class Import:
    """One import of a stateward module by another."""

    importer: str
    imported: str
    line: int
    where: str  # "module level", "inside a function", "under TYPE_CHECKING"

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} {self.where} (line {self.line})"


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_in(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import node with where it sits."""

    def visit(node: ast.AST, where: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, where
            inner = where
            if (
                isinstance(child, ast.FunctionDef)
                and child.name == "__getattr__"
                and where == ("module level")
            ):
                # PEP 562: a package's names imported on first use (an optional
                # dependency's binding); still an edge for the layer and cycle checks.
                inner = "in the module's __getattr__ (on use)"
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = "inside a function"
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                inner = "under TYPE_CHECKING" if where == "module level" else where
            yield from visit(child, inner)

    yield from visit(tree, "module level")


def imports(known: dict[str, Path]) -> list[Import]:
    """The imports between known modules, read from the source."""
    found: list[Import] = []
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, where in _imports_in(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # ``from pkg import mod`` imports the module pkg.mod.
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                    for alias in node.names
                ]
            for target in targets:
                while target and target not in known:  # a.b.c -> the module that holds it
                    target = target.rpartition(".")[0]
                edge = Import(name, target, node.lineno, where)
                if target and target != name and edge not in found:
                    found.append(edge)
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching entry, layer index)
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and (
                best is None or len(entry) > best[0]
            ):
                best = (len(entry), index)
    return None if best is None else best[1]


def cycles(edges: list[Import]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


@pytest.fixture(scope="module")
def known() -> dict[str, Path]:
    return modules()


@pytest.fixture(scope="module")
def edges(known: dict[str, Path]) -> list[Import]:
    return imports(known)


def test_every_module_is_placed_in_a_layer(known: dict[str, Path]) -> None:
    missing = [name for name in known if layer_of(name) is None]
    assert not missing, (
        f"modules in no layer: {', '.join(missing)}. Place each one in LAYERS in "
        f"{Path(__file__).name}, in the layer of what it does (see DESIGN.md, 'Layers')"
    )


def test_modules_import_only_downward(edges: list[Import]) -> None:
    upward = []
    for edge in edges:
        mine, theirs = layer_of(edge.importer), layer_of(edge.imported)
        if mine is not None and theirs is not None and theirs > mine:
            upward.append(f"{edge} goes up from layer {LAYERS[mine][0]!r} to {LAYERS[theirs][0]!r}")
    assert not upward, (
        "imports that go upward:\n"
        + "\n".join(upward)
        + ("\nDefine a Protocol in the lower module, or pass a callable down, instead")
    )


def test_no_import_cycle_even_inside_functions_or_under_type_checking(
    edges: list[Import],
) -> None:
    found = cycles(edges)
    described = []
    for group in found:
        members = set(group)
        described.append(
            "cycle: "
            + ", ".join(group)
            + "\n  "
            + "\n  ".join(str(e) for e in edges if e.importer in members and e.imported in members)
        )
    assert not found, "\n".join(described)


def test_the_actor_modules_import_stateward_at_module_level_only(edges: list[Import]) -> None:
    # An import inside a function hides a dependency from the reader (and was
    # how cycles hid here); the actors' modules import what they use up front.
    # core's few lazy imports of its own errors module are downward and cycle-free.
    hidden = [
        str(e)
        for e in edges
        if e.where == "inside a function" and e.importer.startswith("stateward.actors")
    ]
    assert not hidden, "imports inside functions:\n" + "\n".join(hidden)


def test_the_layer_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import a\n"
        "if TYPE_CHECKING:\n"
        "    from .b import B\n"
        "def f():\n"
        "    from ..c import C\n"
        "    import stateward.d\n"
    )
    tree = ast.parse(source.read_text())
    seen = [(type(n).__name__, getattr(n, "module", None), w) for n, w in _imports_in(tree)]
    assert seen == [
        ("ImportFrom", "typing", "module level"),
        ("ImportFrom", None, "module level"),
        ("ImportFrom", "b", "under TYPE_CHECKING"),
        ("ImportFrom", "c", "inside a function"),
        ("Import", None, "inside a function"),
    ]
    assert cycles([Import("x", "y", 1, ""), Import("y", "z", 1, ""), Import("z", "x", 1, "")]) == [
        ["x", "y", "z"]
    ]
