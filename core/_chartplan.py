"""A statechart's move as a plan: which states it exits and enters, and its hooks.

Each alternative of an event comes from the active leaf or one of its
ancestors (the spec lists a state's own alternatives, then each ancestor's:
see `_events`); its plan (`MovePlan`) is built from the states it exits and
enters, by SCXML's rule (`Chart.domain`), and carries a `ChartStep` with the
configurations before and after, which `chart_snapshot_after` turns into the
new snapshot. `_chartmove` picks the alternatives and combines regions.

Hooks, when a move exits or enters several states:

- exit hooks run per exited state, innermost first; for each state, the exit
  hooks registered on it (``source=``). An exit hook registered on no state
  runs once, with the first (innermost) exited state's.
- enter hooks run per entered state, outermost first (document order); for
  each, the enter hooks registered on it (``to=``); one registered on no state
  runs once, with the last entered state's.
- any other filter of a hook (``source=`` of an enter hook or a guard, ``to=``
  of an exit hook or a guard, ...) is met when it names the active leaf before
  (or after) the move, or a state the move exits (enters).

A flat machine's move exits its source and enters its target, so these rules
give it exactly the hooks it always had. An internal transition whose target
is its source exits and enters nothing; one to a state inside its compound
source exits and enters only what is below the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._chart import Chart, ChartState
from ._events import Event
from ._history import Entry, extend_history
from ._parts import Hook, HookKind, MovePlan, describe
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import MachineSpec
from ._timer_moves import chart_timers_after

__all__ = [
    "ChartStep",
    "chain",
    "chart_creation_plan",
    "chart_snapshot_after",
    "configuration_allows",
    "configuration_events",
    "plan_step",
]


@dataclass(frozen=True, slots=True)
class ChartStep:
    """What a statechart's move changes.

    Attributes:
        before: the configuration and memory before.
        after: those after.
        exited: the states exited, innermost first.
        entered: the states entered, outermost first.
    """

    before: ChartState
    after: ChartState
    exited: tuple[str, ...]
    entered: tuple[str, ...]
    #: each transition's (domain, target), for combining regions' moves
    moves: tuple[tuple[str | None, str], ...] = ()


def _source(chart: Chart, ev: Event | None, leaf: str, target: str) -> str:
    """The state a move is defined on: the nearest of the leaf and its
    ancestors that the event (or the transitions mapping) names."""
    for state in (leaf, *chart.ancestors(leaf)):
        if ev is None:
            if target in chart.own[state]:
                return state
        elif state in ev.sources or "*" in ev.sources:
            return state
    raise AssertionError(f"no source of {target!r} above {leaf!r}")


def _step(chart: Chart, before: ChartState, source: str, target: str, internal: bool) -> ChartStep:
    if internal and source == target:
        return ChartStep(before, before, (), ())
    domain = chart.domain(source, target, internal)
    active = before.configuration
    exited = [s for s in active if chart.is_below(s, domain)]
    entered = chart.entries([(domain, target)], before)
    after = (active - set(exited)) | entered
    memory = chart.remember(before, exited, active) if chart.history else before.memory
    return ChartStep(
        before,
        ChartState(frozenset(after), memory),
        chart.exit_order(exited),
        chart.enter_order(entered),
        ((domain, target),),
    )


def _fits(names: frozenset[str] | None, states: set[str]) -> bool:
    return names is None or not names.isdisjoint(states)


def plan_step(
    spec: MachineSpec,
    chart: Chart,
    leaf: str | None,
    step: ChartStep,
    event: str | None,
    ev: Event | None,
    effects: tuple[tuple[str, str, Callable[..., Any]], ...] | None = None,
) -> MovePlan:
    """The hooks of one move, by the rules in the module's docstring
    (``effects``: those of several regions' moves, instead of ``ev``'s)."""
    target = chart.current(step.after.configuration)
    froms = {*step.exited} if leaf is None else {leaf, *step.exited}
    tos = {target, *step.entered}
    by_kind = spec._hooks_by_kind

    def whole(kind: HookKind) -> tuple[Hook, ...]:
        return tuple(
            h
            for h in by_kind[kind]
            if _fits(h.to, tos) and _fits(h.source, froms) and (h.event is None or event in h.event)
        )

    stages: list[tuple[str, str, Callable[..., Any]]] = []
    for state in step.exited:
        first = state == step.exited[0]
        stages += [
            ("exit", h.name, h.fn)
            for h in by_kind["exit"]
            if (state in h.source if h.source is not None else first)
            and _fits(h.to, tos)
            and (h.event is None or event in h.event)
        ]
    if effects is not None:
        stages += effects
    elif ev is not None and ev.effect is not None:
        stages.append(("effect", describe(ev.effect), ev.effect))
    for state in step.entered:
        last = state == step.entered[-1]
        stages += [
            ("enter", h.name, h.fn)
            for h in by_kind["enter"]
            if (state in h.to if h.to is not None else last)
            and _fits(h.source, froms)
            and (h.event is None or event in h.event)
        ]
    guards = whole("guard")
    if ev is not None:
        guards = ev.conditions + guards
    return MovePlan(
        whole("pre_transition"),
        guards,
        tuple(stages),
        whole("after_commit"),
        True,  # a statechart's move always takes the path that builds its snapshot
        target,
        ev is not None and ev.internal,
        None,
        step,
    )


def chain(
    spec: MachineSpec,
    chart: Chart,
    before: ChartState,
    leaf: str,
    event: str | None,
    alternatives: tuple[Event, ...],
    target: str | None,
) -> MovePlan:
    """The plans of ``alternatives`` from ``leaf``, linked in the order tried."""
    plan: MovePlan | None = None
    if not alternatives:
        assert target is not None
        step = _step(chart, before, _source(chart, None, leaf, target), target, False)
        plan = plan_step(spec, chart, leaf, step, None, None)
    for ev in reversed(alternatives):
        source = _source(chart, ev, leaf, ev.target)
        step = _step(chart, before, source, ev.target, ev.internal)
        plan = plan_step(spec, chart, leaf, step, event, ev)._replace(otherwise=plan)
    assert plan is not None and plan.target is not None
    return plan


def chart_creation_plan(spec: MachineSpec) -> MovePlan:
    """The hooks of creating a machine: entering its initial configuration."""
    chart = spec._chart
    assert chart is not None
    active = spec.initial_configuration
    step = ChartStep(ChartState(frozenset()), ChartState(active), (), chart.enter_order(active))
    return plan_step(spec, chart, None, step, None, None)


def chart_snapshot_after(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    ctx: TransitionContext,
    plan: MovePlan,
    entry: Entry,
) -> tuple[MachineSnapshot, Entry]:
    """`snapshot_after` for a statechart's move: the entry carries the
    configurations before and after, the snapshot the new one."""
    step: ChartStep = plan.chart
    chart_entry: Entry = (
        *entry,
        plan.internal,
        step.before.configuration,
        step.after.configuration,
    )
    history = extend_history(snapshot.history, chart_entry, spec.history_limit)
    if ctx.timer_requests or snapshot.timers or spec.timeouts:
        active = step.after.configuration
        timers = chart_timers_after(spec, snapshot, ctx, step.exited, step.entered, active)
        new = MachineSnapshot(ctx.target, ctx.version, ctx.data, history, step.after, timers)
    else:
        new = MachineSnapshot(ctx.target, ctx.version, ctx.data, history, step.after)
    return new, chart_entry


def configuration_allows(spec: MachineSpec, snapshot: MachineSnapshot, target: str) -> bool:
    """Whether the definition allows a move to ``target`` from the snapshot's
    configuration (from any active leaf, with parallel regions); guards are
    not run."""
    chart = snapshot.chart
    if chart is None or spec._chart is None:
        return spec.allows(snapshot.state, target)
    return any(spec.allows(leaf, target) for leaf in spec._chart.leaves(chart.configuration))


def configuration_events(spec: MachineSpec, snapshot: MachineSnapshot) -> tuple[str, ...]:
    """The events that can fire from the snapshot's configuration, sorted."""
    chart = snapshot.chart
    if chart is None or spec._chart is None:
        return spec.allowed_events(snapshot.state)
    leaves = spec._chart.leaves(chart.configuration)
    return tuple(sorted({e for leaf in leaves for e in spec.allowed_events(leaf)}))
