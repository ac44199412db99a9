"""The state tree of a statechart, checked, and what is active in it.

A hierarchical `MachineSpec` (one with ``compound=``, ``parallel=`` or
``history=``) keeps a `Chart`: each state's parent, its children in document
order, its kind (atomic, compound or parallel), a compound state's initial
child, and the history pseudo-states. The machine itself is the implicit
root: its top-level states are its children, and the spec's initial state is
the one it enters first.

A *configuration* is the frozenset of every active state. It is legal when
exactly one top-level state is active, every active state's parent is active,
an active compound state has exactly one active child, and an active parallel
state has every region active. The functions here compute, following SCXML's
rules, what a set of transitions exits and enters (`Chart.exits`,
`Chart.entries`) and what history states remember (`Chart.remember`);
`_chartmove` builds moves from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import MachineDefinitionError

__all__ = ["Chart", "ChartState", "HistoryKind", "Memory", "build_chart", "expand_tables"]

HistoryKind = str  # "shallow" | "deep"
#: What history states remember: ``((history state, (states, ...)), ...)``, sorted.
Memory = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class ChartState:
    """The part of a `MachineSnapshot` that only hierarchical machines have.

    Attributes:
        configuration: every active state.
        memory: per history state that has been recorded, the states it
            remembers (a shallow one: the parent's active children; a deep
            one: every active state below the parent), sorted by name.
    """

    configuration: frozenset[str]
    memory: Memory = ()

    def remembered(self, history: str) -> tuple[str, ...] | None:
        for name, states in self.memory:
            if name == history:
                return states
        return None


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


class Chart:
    """The checked state tree of a hierarchical spec (see the module)."""

    __slots__ = (
        "children",
        "depth",
        "history",
        "initial_child",
        "kind",
        "order",
        "own",
        "parent",
        "top",
    )

    parent: dict[str, str | None]
    children: dict[str, tuple[str, ...]]
    kind: dict[str, str]
    initial_child: dict[str, str]
    history: dict[str, tuple[str, HistoryKind]]
    order: dict[str, int]
    depth: dict[str, int]
    top: tuple[str, ...]
    #: each state's own moves (not its ancestors'): the targets it names
    own: dict[str, frozenset[str]]

    # -- the tree -------------------------------------------------------------------

    def ancestors(self, state: str) -> tuple[str, ...]:
        """The proper ancestors of ``state`` (or of a history state), innermost first."""
        found: list[str] = []
        up = self.history[state][0] if state in self.history else self.parent[state]
        while up is not None:
            found.append(up)
            up = self.parent[up]
        return tuple(found)

    def is_below(self, state: str, ancestor: str | None) -> bool:
        """Whether ``state`` is a proper descendant of ``ancestor`` (None: the root)."""
        return ancestor is None or ancestor in self.ancestors(state)

    def region_of(self, state: str, parallel: str) -> str:
        """The child of ``parallel`` that ``state`` is in (or is)."""
        up = state
        while self.parent[up] != parallel:
            nxt = self.parent[up]
            assert nxt is not None, f"{state!r} is not below {parallel!r}"
            up = nxt
        return up

    # -- configurations -----------------------------------------------------------

    def leaves(self, configuration: frozenset[str]) -> list[str]:
        """The active states with no active child, in document order."""
        found = [s for s in configuration if not any(c in configuration for c in self.children[s])]
        found.sort(key=self.order.__getitem__)
        return found

    def current(self, configuration: frozenset[str]) -> str:
        """``current_state``: the active leaf, or with parallel regions the
        innermost state that contains every active leaf."""
        leaves = self.leaves(configuration)
        if len(leaves) == 1:
            return leaves[0]
        common = [leaves[0], *self.ancestors(leaves[0])]
        for leaf in leaves[1:]:
            around = {leaf, *self.ancestors(leaf)}
            common = [s for s in common if s in around]
        return common[0]

    def problem(self, configuration: frozenset[str]) -> str | None:
        """Why ``configuration`` is not legal, or None when it is."""
        unknown = sorted(s for s in configuration if s not in self.parent)
        if unknown:
            return f"it names {', '.join(map(repr, unknown))}, not states of the machine"
        for state in sorted(configuration, key=self.order.__getitem__):
            up = self.parent[state]
            if up is not None and up not in configuration:
                return f"{state!r} is active but its parent {up!r} is not"
            active = [c for c in self.children[state] if c in configuration]
            kind = self.kind[state]
            if kind == "compound" and len(active) != 1:
                return f"compound state {state!r} has {len(active)} active children, not 1"
            if kind == "parallel" and len(active) != len(self.children[state]):
                return f"parallel state {state!r} does not have every region active"
        top = [s for s in self.top if s in configuration]
        if len(top) != 1:
            return f"{len(top)} top-level states are active ({', '.join(map(repr, top))}), not 1"
        return None

    def enter_defaults(self, state: str, into: set[str], memory: ChartState | None) -> None:
        """Add ``state`` and what entering it enters: a compound state's initial
        child, a parallel state's every region, a history state's remembered
        configuration (its parent's initial child when it remembers none)."""
        if state in self.history:
            parent, kind = self.history[state]
            remembered = memory.remembered(state) if memory is not None else None
            if remembered is None:
                self.enter_defaults(self.initial_child[parent], into, memory)
            elif kind == "deep":
                into.update(remembered)
                for s in remembered:  # states below a remembered one, left out: defaults
                    self._fill(s, into, memory)
            else:
                for s in remembered:
                    self.enter_defaults(s, into, memory)
            return
        into.add(state)
        self._fill(state, into, memory)

    def _fill(self, state: str, into: set[str], memory: ChartState | None) -> None:
        kind = self.kind[state]
        if kind == "compound":
            if not any(c in into for c in self.children[state]):
                self.enter_defaults(self.initial_child[state], into, memory)
        elif kind == "parallel":
            for region in self.children[state]:
                if region not in into:
                    self.enter_defaults(region, into, memory)

    def domain(self, source: str, target: str, internal: bool) -> str | None:
        """The transition's domain (SCXML): the state whose active descendants it
        exits; None is the root. An internal transition to a state inside a
        compound source keeps the source; any other keeps the least common
        compound ancestor of source and target."""
        target_up = self.ancestors(target)
        if internal and self.kind[source] == "compound" and source in target_up:
            return source
        for up in self.ancestors(source):
            if self.kind[up] == "compound" and (up in target_up):
                return up
        return None

    def entries(
        self,
        moves: Iterable[tuple[str | None, str]],
        memory: ChartState | None,
    ) -> set[str]:
        """The states entered by transitions ``(domain, target)``: the path from
        each domain down to its target, the target's defaults, and every other
        region of a parallel state on a path."""
        into: set[str] = set()
        paths: list[str] = []
        for domain, target in moves:
            up = self.ancestors(target)
            path = list(up[: up.index(domain) if domain in up else len(up)])
            into.update(path)
            paths += path
            self.enter_defaults(target, into, memory)
        for state in sorted(set(paths), key=self.order.__getitem__):
            self._fill(state, into, memory)
        return into

    def remember(
        self, before: ChartState, exited: Iterable[str], configuration: frozenset[str]
    ) -> Memory:
        """``before``'s memory updated for the states exited: each history state
        of an exited parent remembers what was active below it."""
        memory = dict(before.memory)
        left = set(exited)
        for name, (parent, kind) in self.history.items():
            if parent in left:
                if kind == "deep":
                    below = (s for s in configuration if parent in self.ancestors(s))
                else:
                    below = (c for c in self.children[parent] if c in configuration)
                memory[name] = tuple(sorted(below))
        return tuple(sorted(memory.items()))

    def exit_order(self, states: Iterable[str]) -> tuple[str, ...]:
        """Innermost first; among equals, reverse document order (SCXML)."""
        return tuple(sorted(states, key=lambda s: (-self.depth[s], -self.order[s])))

    def enter_order(self, states: Iterable[str]) -> tuple[str, ...]:
        """Document order: every state after its ancestors."""
        return tuple(sorted(states, key=self.order.__getitem__))

    def initial_configuration(self, initial: str) -> frozenset[str]:
        return frozenset(self.entries([(None, initial)], None))


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
