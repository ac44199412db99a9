"""The move tables of a `MachineSpec`, built once from its definition.

`move_tables` reads the states, the mapping form ``{state: [targets]}`` and the
events (with a statechart's tree, `_chartdef`) into the tables a spec answers
its queries from: which moves each state allows, which events fire from it and
which lead to a given target; it checks the hooks against them.
`hooks_by_kind` orders the hooks as they run; `awaits` says whether any of
them, or an event's effect or guard, is a coroutine function.
`MachineSpec.__init__` (in `_spec`) checks the rest and keeps the results.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._chart import Chart
from ._chartdef import build_chart, expand_tables
from ._errors import MachineDefinitionError
from ._events import Event, check_branches, check_events, check_internal
from ._parts import ANY, Hook, check_hook, declared_states

__all__ = ["MoveTables", "awaits", "hooks_by_kind", "move_tables"]


class MoveTables(NamedTuple):
    """A definition's states and moves."""

    #: the states, in definition order
    ordered: list[str]
    #: the state tree of a statechart (None: a flat machine)
    chart: Chart | None
    #: every allowed move in the mapping form, the events' included
    table: dict[str, tuple[str, ...]]
    #: an event's alternatives by (event, source)
    event_table: dict[tuple[str, str], tuple[Event, ...]]
    #: the targets each state allows
    allowed: dict[str, frozenset[str]]
    #: the events that fire from each state, sorted
    events_from: dict[str, tuple[str, ...]]
    #: the events that make each (source, target) move, in definition order
    events_to: dict[tuple[str, str], tuple[str, ...]]


def move_tables(
    initial: str | None,
    transitions: Mapping[str, Iterable[str]] | None,
    states: Iterable[str],
    event_list: list[Event],
    hook_list: list[Hook],
    compound: Mapping[str, Any] | None,
    parallel: Mapping[str, Any] | None,
    history: Mapping[str, Any] | None,
) -> MoveTables:
    """The tables of a definition (the arguments are `MachineSpec`'s), its
    hooks checked against them; a statechart's parents' moves spread to the
    states inside them.

    Raises:
        MachineDefinitionError: no or an unknown initial state, a mapping entry
            that is a string or names an unknown target, an event that cannot
            work (`check_events`), a tree that cannot (`build_chart`), a hook
            that cannot (`check_hook`, `check_branches`, `check_internal`).
    """
    declared = declared_states(transitions, states)
    ordered = list(declared)
    if transitions is None:
        # Without a mapping, states are whatever the initial state and the
        # events name, in the order they first appear.
        named = [initial] if isinstance(initial, str) else []
        for ev in event_list:
            named += [*sorted(s for s in ev.sources if s != ANY), ev.target]
        pseudo = set(history) if isinstance(history, Mapping) else set()
        ordered += [s for s in dict.fromkeys(named) if s not in ordered and s not in pseudo]
    chart: Chart | None = None
    if compound or parallel or history:
        chart, ordered = build_chart(ordered, transitions is not None, compound, parallel, history)
    known = set(ordered)
    # History pseudo-states are targets, never states a machine is in.
    reachable = known | set(chart.history) if chart is not None else known

    if initial is None:
        raise MachineDefinitionError("no initial state: pass initial='<state>'")
    if not isinstance(initial, str) or initial not in known:
        raise MachineDefinitionError(
            f"initial state {initial!r} is not a state of this machine; states: "
            f"{', '.join(map(repr, ordered)) or 'none'}",
            state=str(initial),
        )

    table: dict[str, tuple[str, ...]] = {}
    for state, targets in (transitions or {}).items():
        if isinstance(targets, str):
            raise MachineDefinitionError(
                f"transitions[{state!r}] must be a list of states, got the string "
                f"{targets!r}; write [{targets!r}]",
                state=state,
            )
        listed = tuple(dict.fromkeys(targets))
        for target in listed:
            if target not in reachable:
                raise MachineDefinitionError(
                    f"transitions[{state!r}] names unknown target state {target!r}; "
                    f"add {target!r}: [] if it is a terminal state",
                    state=target,
                )
        table[state] = listed

    event_table = check_events(event_list, reachable, ordered)
    allowed: dict[str, frozenset[str]] = {}
    events_from: dict[str, tuple[str, ...]] = {}
    events_to: dict[tuple[str, str], tuple[str, ...]] = {}
    for state in ordered:
        moves = list(table.get(state, ()))
        names: list[str] = []
        for (ev_name, source), alternatives in event_table.items():
            if source == state:
                names.append(ev_name)
                for ev in alternatives:
                    if ev.target not in moves:
                        moves.append(ev.target)
                    key = (state, ev.target)
                    if ev_name not in events_to.get(key, ()):
                        events_to[key] = (*events_to.get(key, ()), ev_name)
        allowed[state] = frozenset(moves)
        events_from[state] = tuple(sorted(names))
        table[state] = tuple(moves)  # the mapping form of every allowed move

    known = set(ordered)
    for hook in hook_list:
        check_hook(hook, known, {ev.name for ev in event_list})
    check_branches(event_table, hook_list)
    check_internal(event_list, chart)
    if chart is not None:
        # A parent's moves apply from every state inside it: after the
        # state's own, those of each ancestor outward (see `_events`).
        event_table, allowed, events_from, events_to = expand_tables(
            chart, event_table, allowed, events_from, events_to
        )
    return MoveTables(ordered, chart, table, event_table, allowed, events_from, events_to)


def hooks_by_kind(hook_list: list[Hook]) -> dict[str, tuple[Hook, ...]]:
    """The hooks of each kind, in the order they run: by ``order``, then by
    registration (the sort is stable)."""
    by_kind: dict[str, tuple[Hook, ...]] = {}
    for kind in ("pre_transition", "guard", "exit", "enter", "after_commit"):
        chosen = [h for h in hook_list if h.kind == kind]
        chosen.sort(key=lambda h: h.order)
        by_kind[kind] = tuple(chosen)
    return by_kind


def awaits(hooks: Iterable[Hook], event_list: Iterable[Event]) -> bool:
    """Whether any hook, or any event's effect, guard or unless, is a coroutine
    function (asked once per machine an actor runtime creates: computed once)."""
    return any(h.is_async for h in hooks) or any(
        inspect.iscoroutinefunction(fn)
        for ev in event_list
        for fn in (ev.effect, *ev.guards, *ev.unless)
    )
