"""A statechart's moves: the alternatives a request names, from each active
region, and the moves one transaction makes.

`begin_move` (in `_moves`) hands a hierarchical spec's requests to
`chart_move`: from one active leaf, the alternatives `pick_move` checks (as
for any machine) become a plan chain (`_chartplan.chain`); from several
(parallel regions), an event goes to each leaf's alternatives, and a
`Regions` plan lets `_hooks` try each region and `combine` the admitted moves.
`done_move` finds the ``done.state.<name>`` move that follows a move leaving
a parallel state done, and `whole_move` makes one record of a transaction's
moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ._chart import DONE_EVENT, Chart, ChartState
from ._chartplan import ChartStep, chain, plan_step
from ._errors import InvalidTransition
from ._events import Event
from ._parts import MovePlan
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import MachineSpec

__all__ = [
    "DONE_EVENT",
    "MOVES_KEPT",
    "Regions",
    "chart_move",
    "done_move",
    "is_done",
    "whole_move",
]

#: Checked moves kept per spec, at most (then the table starts again).
MOVES_KEPT = 4096

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
    # A snapshot that holds only its state (a database row's, say): what it implies.
    before = snapshot.chart or ChartState(chart.implied(snapshot.state))
    key = (before, target, event)
    moves = spec._chart_moves
    move = moves.get(key)
    if move is not None:
        return move  # type: ignore[no-any-return]
    leaves = chart.leaves(before.configuration)
    if len(leaves) == 1:
        event, alternatives, target = pick(spec, leaves[0], target, event, name)
        plan = chain(spec, chart, before, leaves[0], event, alternatives, target)
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
                return chain(spec, chart, before, leaf, event, alternatives, target)
        raise _invalid(spec, leaves, current, target, None, name)
    chains: list[MovePlan] = []
    chain_leaves: list[str] = []
    for leaf in leaves:
        alternatives = spec.alternatives(event, leaf)
        if target is not None:
            alternatives = tuple(ev for ev in alternatives if ev.target == target)
        if alternatives:
            chains.append(chain(spec, chart, before, leaf, event, alternatives, target))
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
    #: combined moves already made, by the identities of the plans combined
    #: (plans of ``chains``, which this object keeps alive)
    combined: dict[tuple[int, ...], MovePlan] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

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
        key = tuple(map(id, chosen))
        made = self.combined.get(key)
        if made is None:
            made = self.combined[key] = self._combine(spec, chosen)
        return made

    def _combine(self, spec: MachineSpec, chosen: list[MovePlan]) -> MovePlan:
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
        return plan_step(spec, chart, self.current, step, self.event, None, effects)


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
    if not chart.finishing or len(taken) > len(chart.parent):  # a bound: see below
        return None  # (each step that follows needs a state newly done)
    step: ChartStep = taken[-1].chart
    before, after = step.before.configuration, step.after.configuration
    for state, event in chart.finishing:
        if (
            state not in after
            or not is_done(chart, state, after)
            or (state in before and is_done(chart, state, before))
        ):
            continue
        here = MachineSnapshot(ctx.target, ctx.version, ctx.data, snapshot.history, step.after)
        try:
            target, _, plan = chart_move(spec, here, None, event, ctx.machine, pick)
        except InvalidTransition:
            continue  # defined, but not from where the machine is now
        follow = ctx.with_move(ctx.target, target, event)
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
        return plan, ctx.with_move(source, plan.target, event)
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
    whole = ctx.with_move(source, target, event)
    return plan, whole
