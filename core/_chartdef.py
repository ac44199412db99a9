"""Checking the tree a `MachineSpec` is given: ``compound=``, ``parallel=``,
``history=``, and the spec's queries about it.

`build_chart` reads the keywords, refuses every bad shape with a
`MachineDefinitionError` that names the culprit (a child with two parents, a
cycle, an unknown child, an empty compound state, an initial child that is
not a child, a history state whose parent is not compound, ...) and returns
the `Chart`; `expand_tables` makes a parent's moves apply from every state
inside it; `TreeQueries` are the spec's methods about the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._chart import DONE_EVENT, Chart, HistoryKind
from ._errors import MachineDefinitionError

__all__ = ["TreeQueries", "build_chart", "expand_tables"]


def _names(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise MachineDefinitionError(f"{what} must be a list of state names, got {value!r}")
    names = list(value)
    for name in names:
        if not isinstance(name, str) or not name or name == "*":
            raise MachineDefinitionError(
                f"{what} must hold non-empty state names other than '*', got {name!r}",
                state=str(name),
            )
    if len(set(names)) != len(names):
        raise MachineDefinitionError(f"{what} names a state twice: {names!r}")
    return names


def _compound_entry(parent: str, value: object) -> tuple[list[str], str]:
    """Read ``["a", "b"]`` or ``{"initial": "b", "states": ["a", "b"]}``."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("initial", "states")]
        if unknown or "states" not in value:
            raise MachineDefinitionError(
                f"compound[{parent!r}]: a mapping needs 'states' (the children) and may "
                f"have 'initial'; got keys {', '.join(map(repr, value))}",
                state=parent,
            )
        children = _names(value["states"], f"compound[{parent!r}]['states']")
        initial = value.get("initial", children[0] if children else None)
    else:
        children = _names(value, f"compound[{parent!r}]")
        initial = children[0] if children else None
    if not children:
        raise MachineDefinitionError(
            f"compound state {parent!r} has no children; list at least one", state=parent
        )
    if initial not in children:
        raise MachineDefinitionError(
            f"compound state {parent!r}: its initial child {initial!r} is not one of its "
            f"children ({', '.join(map(repr, children))})",
            state=parent,
        )
    return children, initial


def build_chart(
    ordered: list[str],
    declared: bool,
    compound: Mapping[str, Any] | None,
    parallel: Mapping[str, Any] | None,
    history: Mapping[str, Any] | None,
) -> tuple[Chart, list[str]]:
    """Check the tree and return it with the states in document order.

    ``ordered`` are the states the rest of the definition names; ``declared``:
    they were declared (a transitions mapping was given), so a parent or child
    named only here is unknown. Otherwise states named here join them.
    """
    parents: dict[str, str] = {}
    children: dict[str, tuple[str, ...]] = {}
    kind: dict[str, str] = {}
    initial_child: dict[str, str] = {}
    named: list[str] = []
    for label, table in (("compound", compound), ("parallel", parallel)):
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise MachineDefinitionError(
                f"{label}= must be a mapping {{parent: [children]}}, got {table!r}"
            )
        for parent, value in table.items():
            if not isinstance(parent, str) or not parent or parent == "*":
                raise MachineDefinitionError(
                    f"{label}= keys must be state names, got {parent!r}", state=str(parent)
                )
            if parent in kind:
                raise MachineDefinitionError(
                    f"state {parent!r} is both compound and parallel; make it one of them",
                    state=parent,
                )
            if label == "compound":
                kids, first = _compound_entry(parent, value)
                initial_child[parent] = first
            else:
                kids = _names(value, f"parallel[{parent!r}]")
                if not kids:
                    raise MachineDefinitionError(
                        f"parallel state {parent!r} has no regions; list at least one",
                        state=parent,
                    )
            kind[parent] = label
            children[parent] = tuple(kids)
            named += [parent, *kids]
            for child in kids:
                if child in parents:
                    raise MachineDefinitionError(
                        f"state {child!r} has two parents, {parents[child]!r} and {parent!r}; "
                        "a state has one parent (state names are unique in the whole machine)",
                        state=child,
                    )
                parents[child] = parent
    known = set(ordered)
    for state in dict.fromkeys(named):
        if state not in known:
            if declared:
                raise MachineDefinitionError(
                    f"compound/parallel names unknown state {state!r}; add it to the "
                    "transitions mapping (with [] if no move leaves it) or to states=",
                    state=state,
                )
            ordered.append(state)
            known.add(state)
    for state in parents:  # a cycle: a state that is its own ancestor
        seen = [state]
        up = parents.get(state)
        while up is not None:
            if up in seen:
                raise MachineDefinitionError(
                    f"the states {' -> '.join(map(repr, [*seen, up]))} form a cycle: a state "
                    "cannot be inside itself",
                    state=up,
                )
            seen.append(up)
            up = parents.get(up)
    chart = Chart()
    put = object.__setattr__
    put(chart, "parent", {s: parents.get(s) for s in ordered})
    put(chart, "children", {s: children.get(s, ()) for s in ordered})
    put(chart, "kind", {s: kind.get(s, "atomic") for s in ordered})
    put(chart, "initial_child", initial_child)
    top = tuple(s for s in ordered if s not in parents)
    document: list[str] = []

    def walk(state: str) -> None:
        document.append(state)
        for child in chart.children[state]:
            walk(child)

    for state in top:
        walk(state)
    put(chart, "top", top)
    put(chart, "order", {s: i for i, s in enumerate(document)})
    depth: dict[str, int] = {}
    for state in document:
        up = parents.get(state)
        depth[state] = 0 if up is None else depth[up] + 1
    put(chart, "depth", depth)
    put(chart, "history", _histories(history, chart, known))
    return chart, document


def _histories(
    history: Mapping[str, Any] | None, chart: Chart, known: set[str]
) -> dict[str, tuple[str, HistoryKind]]:
    found: dict[str, tuple[str, HistoryKind]] = {}
    if history is None:
        return found
    if not isinstance(history, Mapping):
        raise MachineDefinitionError(
            f"history= must be a mapping {{history state: parent or (parent, 'deep')}}, "
            f"got {history!r}"
        )
    for name, value in history.items():
        if not isinstance(name, str) or not name or name == "*":
            raise MachineDefinitionError(
                f"history= keys must be names, got {name!r}", state=str(name)
            )
        if name in known:
            raise MachineDefinitionError(
                f"history state {name!r} is also a state; give the history state its own name",
                state=name,
            )
        parent, depth = (value, "shallow") if isinstance(value, str) else (None, None)
        if isinstance(value, tuple | list) and len(value) == 2:
            parent, depth = value
        if depth not in ("shallow", "deep") or not isinstance(parent, str):
            raise MachineDefinitionError(
                f"history[{name!r}] must be a parent state or (parent, 'shallow'|'deep'), "
                f"got {value!r}",
                state=name,
            )
        if chart.kind.get(parent) != "compound":
            kind = chart.kind.get(parent, "")
            what = (
                "not a state"
                if parent not in known
                else f"{'an' * (kind == 'atomic') or 'a'} {kind} state"
            )
            raise MachineDefinitionError(
                f"history state {name!r}: its parent {parent!r} is {what}; a history state "
                "belongs to a compound state",
                state=name,
            )
        found[name] = (parent, depth)
    return found


def expand_tables(
    chart: Chart,
    event_table: dict[tuple[str, str], tuple[Any, ...]],
    allowed: dict[str, frozenset[str]],
    events_from: dict[str, tuple[str, ...]],
    events_to: dict[tuple[str, str], tuple[str, ...]],
) -> tuple[
    dict[tuple[str, str], tuple[Any, ...]],
    dict[str, frozenset[str]],
    dict[str, tuple[str, ...]],
    dict[tuple[str, str], tuple[str, ...]],
]:
    """The spec's tables, each state's entries followed by its ancestors': a
    move defined on a parent applies from every state inside it. The own
    moves are kept in ``chart.own``."""
    for (name, source), _alternatives in event_table.items():
        if source in chart.history:
            raise MachineDefinitionError(
                f"event {name!r} leaves history state {source!r}; a history state is only "
                "a target (a machine is never in it)",
                state=source,
                event=name,
            )
    object.__setattr__(chart, "own", dict(allowed))
    names = dict.fromkeys(name for name, _ in event_table)
    parallel = [s for s in chart.exit_order(chart.parent) if chart.kind[s] == "parallel"]
    finishing = tuple((s, DONE_EVENT.format(s)) for s in parallel if DONE_EVENT.format(s) in names)
    object.__setattr__(chart, "finishing", finishing)
    table: dict[tuple[str, str], tuple[Any, ...]] = {}
    wide_allowed: dict[str, frozenset[str]] = {}
    wide_from: dict[str, tuple[str, ...]] = {}
    wide_to: dict[tuple[str, str], tuple[str, ...]] = {}
    for state in chart.parent:
        line = (state, *chart.ancestors(state))
        for name in names:
            chain: list[Any] = []
            for up in line:
                chain += [ev for ev in event_table.get((name, up), ()) if ev not in chain]
            if chain:
                table[(name, state)] = tuple(chain)
        wide_allowed[state] = frozenset().union(*(allowed[up] for up in line))
        wide_from[state] = tuple(sorted({n for up in line for n in events_from[up]}))
        for target in wide_allowed[state]:
            via = [n for up in line for n in events_to.get((up, target), ())]
            if via:
                wide_to[(state, target)] = tuple(dict.fromkeys(via))
    return table, wide_allowed, wide_from, wide_to


class TreeQueries:
    """`MachineSpec`'s questions about its tree (a flat spec's answers: no
    parent, no children, nothing compound or parallel)."""

    __slots__ = ()

    _chart: Chart | None
    initial: str

    if TYPE_CHECKING:  # MachineSpec's own

        def allowed_targets(self, state: str) -> frozenset[str]: ...

    def parent(self, state: str) -> str | None:
        """The compound or parallel state ``state`` is directly inside, or None."""
        self.allowed_targets(state)
        return self._chart.parent[state] if self._chart is not None else None

    def children(self, state: str) -> tuple[str, ...]:
        """A compound state's children or a parallel state's regions, in document
        order; empty for an atomic state."""
        self.allowed_targets(state)
        return self._chart.children[state] if self._chart is not None else ()

    def ancestors(self, state: str) -> tuple[str, ...]:
        """The states ``state`` is inside, innermost first."""
        self.allowed_targets(state)
        return self._chart.ancestors(state) if self._chart is not None else ()

    def initial_child(self, state: str) -> str | None:
        """The child entering a compound state enters by default; None for a
        state that is not compound."""
        self.allowed_targets(state)
        return self._chart.initial_child.get(state) if self._chart is not None else None

    def is_compound(self, state: str) -> bool:
        """Whether ``state`` has children of which one is active at a time."""
        self.allowed_targets(state)
        return self._chart is not None and self._chart.kind[state] == "compound"

    def is_parallel(self, state: str) -> bool:
        """Whether ``state`` has regions that are all active together."""
        self.allowed_targets(state)
        return self._chart is not None and self._chart.kind[state] == "parallel"

    @property
    def has_parallel(self) -> bool:
        """Whether any state is parallel."""
        return self._chart is not None and "parallel" in self._chart.kind.values()

    @property
    def is_hierarchical(self) -> bool:
        """Whether any state is compound or parallel (or has history states)."""
        return self._chart is not None

    @property
    def history_states(self) -> Mapping[str, tuple[str, str]]:
        """The history pseudo-states: name -> (parent, ``"shallow"`` or ``"deep"``)."""
        return dict(self._chart.history) if self._chart is not None else {}

    @property
    def initial_configuration(self) -> frozenset[str]:
        """Every state active in a new machine: the initial state, the states it
        is inside, and what entering it enters."""
        if self._chart is None:
            return frozenset((self.initial,))
        return self._chart.initial_configuration(self.initial)
