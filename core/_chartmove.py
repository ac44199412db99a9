"""A statechart's moves: which states one exits and enters, and its hooks.

`begin_move` (in `_moves`) checks a request with `pick_move` as for any
machine, and for a hierarchical spec hands the alternatives it found here.
Each alternative comes from the active leaf or one of its ancestors (the spec
lists a state's own alternatives, then each ancestor's: see `_events`); its
plan (`MovePlan`) is built from the states it exits and enters, by SCXML's
rule (`Chart.domain`), and carries a `ChartStep` with the configurations
before and after, which `chart_snapshot_after` turns into the new snapshot.

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
from ._errors import InvalidTransition
from ._events import Event
from ._history import Entry, extend_history
from ._parts import Hook, HookKind, MovePlan, describe
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import MachineSpec

__all__ = [
    "DONE_EVENT",
    "ChartStep",
    "Regions",
    "chart_creation_plan",
    "chart_move",
    "chart_snapshot_after",
    "configuration_allows",
    "configuration_events",
    "done_move",
    "is_done",
    "whole_move",
]

#: Checked moves kept per spec, at most (then the table starts again).
MOVES_KEPT = 4096


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


def _plan(
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


def _chain(
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
        plan = _plan(spec, chart, leaf, step, None, None)
    for ev in reversed(alternatives):
        source = _source(chart, ev, leaf, ev.target)
        step = _step(chart, before, source, ev.target, ev.internal)
        plan = _plan(spec, chart, leaf, step, event, ev)._replace(otherwise=plan)
    assert plan is not None and plan.target is not None
    return plan


#: ``pick_move`` (from `_moves`, which builds on this module).
Pick = Callable[
    [MachineSpec, str, "str | None", "str | None", "str | None"],
    tuple["str | None", tuple[Event, ...], "str | None"],
]


def chart_move(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None,
    event: str | None,
    name: str | None,
    pick: Pick,
) -> tuple[str, str | None, MovePlan]:
    """A statechart's move from ``snapshot``'s configuration, checked by
    ``pick`` (`pick_move`) from the active leaf: its new ``current_state``, its
    event and its plan (alternatives linked by `MovePlan.otherwise`). With
    several active leaves (parallel regions), an event goes to each leaf's
    alternatives; a move by target is made from the first leaf that allows it."""
    chart = spec._chart
    assert chart is not None
    before = snapshot.chart or ChartState(frozenset((snapshot.state,)))
    key = (before, target, event)
    moves = spec._chart_moves
    move = moves.get(key)
    if move is not None:
        return move  # type: ignore[no-any-return]
    leaves = chart.leaves(before.configuration)
    if len(leaves) == 1:
        event, alternatives, target = pick(spec, leaves[0], target, event, name)
        plan = _chain(spec, chart, before, leaves[0], event, alternatives, target)
    else:
        plan = _regions(spec, chart, before, leaves, snapshot.state, target, event, name, pick)
    assert plan.target is not None
    move = (plan.target, event, plan)
    if len(moves) >= MOVES_KEPT:
        moves.clear()
    moves[key] = move
    return move


def _regions(
    spec: MachineSpec,
    chart: Chart,
    before: ChartState,
    leaves: list[str],
    current: str,
    target: str | None,
    event: str | None,
    name: str | None,
    pick: Pick,
) -> MovePlan:
    if event is None:
        assert target is not None
        for leaf in leaves:
            if spec.allows(leaf, target):
                event, alternatives, target = pick(spec, leaf, target, None, name)
                return _chain(spec, chart, before, leaf, event, alternatives, target)
        raise _invalid(spec, leaves, current, target, None, name)
    chains: list[MovePlan] = []
    chain_leaves: list[str] = []
    for leaf in leaves:
        alternatives = spec.alternatives(event, leaf)
        if target is not None:
            alternatives = tuple(ev for ev in alternatives if ev.target == target)
        if alternatives:
            chains.append(_chain(spec, chart, before, leaf, event, alternatives, target))
            chain_leaves.append(leaf)
    if not chains:
        raise _invalid(spec, leaves, current, target, event, name)
    if len(chains) == 1:
        return chains[0]
    first = chains[0]
    regions = Regions(tuple(chains), tuple(chain_leaves), current, event)
    return first._replace(otherwise=None, chart=regions)


def _invalid(
    spec: MachineSpec,
    leaves: list[str],
    current: str,
    target: str | None,
    event: str | None,
    name: str | None,
) -> InvalidTransition:
    """The refusal of a request no active leaf allows: what the whole configuration allows."""
    allowed = frozenset().union(*(spec.allowed_targets(leaf) for leaf in leaves))
    events = sorted({e for leaf in leaves for e in spec.allowed_events(leaf)})
    note = ""
    if event is not None and not spec.has_event(event):
        note = f"there is no event named {event!r}"
    elif event is None and target not in spec.states:
        note = f"{target!r} is not a state of this machine"
    return InvalidTransition(
        current, target, allowed, event=event, allowed_events=events, machine=name, note=note
    )


@dataclass(frozen=True, slots=True)
class Regions:
    """The alternatives of one event in each active region, in document order
    (a plan's ``chart`` when several regions have some); `_hooks` tries each
    and `combine`s the admitted moves into one.

    Attributes:
        chains: each region's plan chain.
        leaves: the active leaf each chain starts from.
        current: ``current_state`` before the move.
        event: the event.
    """

    chains: tuple[MovePlan, ...]
    leaves: tuple[str, ...]
    current: str
    event: str | None

    def target(self, index: int) -> str:
        """The target a region's (first) alternative names, for a refusal."""
        moves = self.chains[index].chart.moves
        return str(moves[-1][1]) if moves else self.leaves[index]

    def preempted(self, index: int, chosen: list[MovePlan]) -> bool:
        """Whether an earlier region's admitted move leaves this region's leaf."""
        leaf = self.leaves[index]
        return any(leaf in plan.chart.exited for plan in chosen)

    def combine(self, spec: MachineSpec, chosen: list[MovePlan]) -> MovePlan:
        """One move made of the admitted ones: a move that would exit a state
        an earlier region's move exits is dropped (document order wins); exit
        hooks of every state exited, the effects in document order, enter
        hooks of every state entered."""
        chart = spec._chart
        assert chart is not None
        kept: list[MovePlan] = []
        exited: set[str] = set()
        for plan in chosen:
            step: ChartStep = plan.chart
            if kept and not exited.isdisjoint(step.exited):
                continue
            kept.append(plan)
            exited.update(step.exited)
        if len(kept) == 1:
            return kept[0]
        before: ChartState = kept[0].chart.before
        moves = tuple(m for plan in kept for m in plan.chart.moves)
        entered = chart.entries(moves, before)
        active = before.configuration
        after = (active - exited) | entered
        memory = chart.remember(before, exited, active) if chart.history else before.memory
        step = ChartStep(
            before,
            ChartState(frozenset(after), memory),
            chart.exit_order(exited),
            chart.enter_order(entered),
            moves,
        )
        effects = tuple(stage for plan in kept for stage in plan.stages if stage[0] == "effect")
        return _plan(spec, chart, self.current, step, self.event, None, effects)


def chart_creation_plan(spec: MachineSpec) -> MovePlan:
    """The hooks of creating a machine: entering its initial configuration."""
    chart = spec._chart
    assert chart is not None
    active = spec.initial_configuration
    step = ChartStep(ChartState(frozenset()), ChartState(active), (), chart.enter_order(active))
    return _plan(spec, chart, None, step, None, None)


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
    new = MachineSnapshot(ctx.target, ctx.version, ctx.data, history, step.after)
    return new, chart_entry


#: The event a statechart sends itself when a parallel state is done.
DONE_EVENT = "done.state.{}"


def is_done(chart: Chart, state: str, configuration: frozenset[str]) -> bool:
    """Whether ``state`` is in a final state: an atomic state no move of its
    own leaves; a compound state whose active child is done; a parallel state
    whose every region is done."""
    kind = chart.kind[state]
    if kind == "atomic":
        return not chart.own[state]
    active = [c for c in chart.children[state] if c in configuration]
    if kind == "compound":
        return bool(active) and is_done(chart, active[0], configuration)
    return all(is_done(chart, region, configuration) for region in chart.children[state])


def done_move(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    taken: list[MovePlan],
    ctx: TransitionContext,
    pick: Pick,
) -> tuple[TransitionContext, MovePlan] | None:
    """The move of ``done.state.<name>``, when the last move taken made the
    parallel state ``<name>`` done and the spec defines that event from the
    configuration it left (the innermost such state first); else None."""
    chart = spec._chart
    assert chart is not None
    step: ChartStep = taken[-1].chart
    before, after = step.before.configuration, step.after.configuration
    if len(taken) > len(chart.parent):  # each step needs a state newly done: a bound
        return None
    for state in chart.exit_order(after):
        event = DONE_EVENT.format(state)
        if (
            chart.kind[state] != "parallel"
            or not spec.has_event(event)
            or not is_done(chart, state, after)
            or (state in before and is_done(chart, state, before))
        ):
            continue
        here = MachineSnapshot(ctx.target, ctx.version, ctx.data, snapshot.history, step.after)
        try:
            target, _, plan = chart_move(spec, here, None, event, ctx.machine, pick)
        except InvalidTransition:
            continue  # defined, but not from where the machine is now
        follow = TransitionContext(
            ctx.target, target, event, ctx.payload, ctx.data, ctx.version, ctx.machine, ctx.at
        )
        return follow, plan
    return None


def whole_move(
    spec: MachineSpec,
    taken: list[MovePlan],
    ctx: TransitionContext,
    source: str | None,
    event: str | None,
) -> tuple[MovePlan, TransitionContext]:
    """One plan for the moves one transaction took (a move, then done events'):
    the configurations before the first and after the last, the after-commit
    hooks of each once; and the context of the transaction (its source and
    event, the final target, payload and data)."""
    if len(taken) == 1:
        plan = taken[0]
        assert plan.target is not None
        return plan, TransitionContext(
            source, plan.target, event, ctx.payload, ctx.data, ctx.version, ctx.machine, ctx.at
        )
    chart = spec._chart
    assert chart is not None
    first: ChartStep = taken[0].chart
    last: ChartStep = taken[-1].chart
    step = ChartStep(
        first.before,
        last.after,
        tuple(s for plan in taken for s in plan.chart.exited),
        tuple(s for plan in taken for s in plan.chart.entered),
    )
    after_commit = tuple(dict.fromkeys(h for plan in taken for h in plan.after_commit))
    target = chart.current(last.after.configuration)
    plan = MovePlan((), (), (), after_commit, True, target, False, None, step)
    whole = TransitionContext(
        source, target, event, ctx.payload, ctx.data, ctx.version, ctx.machine, ctx.at
    )
    return plan, whole


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
