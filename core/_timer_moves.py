"""The timers a committed transition leaves pending (see `_timers` for the kinds).

`timers_after` is what `snapshot_after` calls when a move touches timers:
the old snapshot has some, the spec has state timeouts, or a hook asked for
one. A move that changes none returns the old tuple itself, so that a caller
can tell "unchanged" by identity.
"""

from __future__ import annotations

from ._errors import ArgumentValueError
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import MachineSpec
from ._timers import PendingTimer, due_after, state_timer

__all__ = ["chart_timers_after", "creation_timers", "timers_after"]

_WHERE = {
    "start": "TransitionContext.start_timer",
    "event": "TransitionContext.set_event_timeout",
    "later": "TransitionContext.send_later",
}


def _apply_requests(spec: MachineSpec, kept: list[PendingTimer], ctx: TransitionContext) -> None:
    later = 0
    for asked in ctx.timer_requests:
        action = asked.action
        if action == "cancel":
            kept[:] = [t for t in kept if not (t.kind == "named" and t.name == asked.name)]
            continue
        if not spec.has_event(asked.event):
            raise ArgumentValueError(
                _WHERE[action],
                "event",
                "an event of the machine",
                asked.event,
                f"Its events are {', '.join(sorted({ev.name for ev in spec.events})) or 'none'}",
                outcome="the transition was not committed",
            )
        due = due_after(ctx.at, asked.seconds)
        if action == "start":
            kept[:] = [t for t in kept if not (t.kind == "named" and t.name == asked.name)]
            kept.append(
                PendingTimer("named", asked.name, due, asked.event, asked.payload, ctx.version)
            )
        elif action == "event":
            kept[:] = [t for t in kept if t.kind != "event"]
            kept.append(PendingTimer("event", "", due, asked.event, asked.payload, ctx.version))
        else:
            later += 1
            kept.append(
                PendingTimer("later", str(later), due, asked.event, asked.payload, ctx.version)
            )


def timers_after(
    spec: MachineSpec, snapshot: MachineSnapshot, ctx: TransitionContext, internal: bool
) -> tuple[PendingTimer, ...]:
    """The timers pending once ``ctx``'s move from ``snapshot`` commits.

    The event timeout goes (any transition cancels it); an external move
    leaves its source and enters its target, so the source's state timeout
    goes and the target's starts (again, for a self-transition); an internal
    one keeps them. Then the hooks' requests apply, in call order.

    Raises:
        ArgumentValueError: a hook asked for a timer of an event the machine
            does not have.
    """
    old = snapshot.timers
    kept = [t for t in old if t.kind != "event" and (internal or t.kind != "state")]
    if not internal:
        timeout = spec.timeouts.get(ctx.target) if spec.timeouts else None
        if timeout is not None:
            kept.append(state_timer(ctx.target, timeout, ctx.at, ctx.version))
    if ctx.timer_requests:
        _apply_requests(spec, kept, ctx)
    if len(kept) == len(old) and all(a is b for a, b in zip(kept, old, strict=True)):
        return old
    return tuple(kept)


def chart_timers_after(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    ctx: TransitionContext,
    exited: tuple[str, ...],
    entered: tuple[str, ...],
    active: frozenset[str],
) -> tuple[PendingTimer, ...]:
    """`timers_after` for a statechart's move, which exits the states
    ``exited`` and enters ``entered`` (in that order; a transaction with done
    events' moves may exit and enter several times), leaving ``active``.

    The event timeout goes; the state timeouts of the states exited or
    entered go (a state exited and entered again restarts its timeout), and
    those of the states entered that are still active start, outermost first.
    A state neither exited nor entered keeps its timeout: a compound state's
    runs on while the machine moves between the states inside it. Then the
    hooks' requests apply, in call order.

    Raises:
        ArgumentValueError: as `timers_after`.
    """
    old = snapshot.timers
    left = {*exited, *entered}
    kept = [t for t in old if t.kind != "event" and (t.kind != "state" or t.name not in left)]
    if spec.timeouts:
        kept += _state_timers(spec, entered, active, ctx)
    if ctx.timer_requests:
        _apply_requests(spec, kept, ctx)
    if len(kept) == len(old) and all(a is b for a, b in zip(kept, old, strict=True)):
        return old
    return tuple(kept)


def _state_timers(
    spec: MachineSpec, states: tuple[str, ...], active: frozenset[str], ctx: TransitionContext
) -> list[PendingTimer]:
    timeouts = spec.timeouts
    return [
        state_timer(s, timeouts[s], ctx.at, ctx.version)
        for s in dict.fromkeys(states)
        if s in timeouts and s in active
    ]


def creation_timers(spec: MachineSpec, ctx: TransitionContext) -> tuple[PendingTimer, ...]:
    """The timers of a machine created by ``ctx`` (`apply_creation`): the
    timeouts of the states it starts in (a statechart's whole initial
    configuration, outermost first), then what its creation hooks asked for."""
    kept: list[PendingTimer] = []
    chart = spec._chart
    if chart is not None:
        active = spec.initial_configuration
        kept += _state_timers(spec, chart.enter_order(active), active, ctx)
    else:
        timeout = spec.timeouts.get(spec.initial) if spec.timeouts else None
        if timeout is not None:
            kept.append(state_timer(spec.initial, timeout, ctx.at, 0))
    if ctx.timer_requests:
        _apply_requests(spec, kept, ctx)
    return tuple(kept)
