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
rules, what a transition exits (`Chart.domain`) and what transitions enter
(`Chart.entries`), and what history states remember (`Chart.remember`);
`_chartplan` and `_chartmove` build moves from them. `_chartdef` checks the
tree a spec is given and builds the `Chart`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DONE_EVENT", "Chart", "ChartState", "HistoryKind", "Memory"]

#: The event a statechart sends itself when a parallel state is done.
DONE_EVENT = "done.state.{}"

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


class Chart:
    """The checked state tree of a hierarchical spec (see the module)."""

    __slots__ = (
        "children",
        "depth",
        "finishing",
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
    #: the parallel states whose ``done.state.<name>`` event the spec
    #: defines, innermost first, each with that event's name
    finishing: tuple[tuple[str, str], ...]

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

    def implied(self, state: str) -> frozenset[str]:
        """The configuration a state alone implies, for a machine that stored
        no more than its state (a database row, a flat snapshot): the state,
        the states it is inside, and what entering it enters."""
        return frozenset(self.entries([(None, state)], None))
