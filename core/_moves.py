"""Checking a move, and the table of moves already checked.

`begin_move` turns a request (a target, an event, or both) into the move it
names and the first `TransitionContext`, or refuses it with `InvalidTransition`.
A move named by its target is the event that makes it, if exactly one does.
Each allowed move is resolved once per spec and kept in the spec's table
(``spec._moves``): a bounded table, since only allowed moves enter it and the
spec never changes. `snapshot_after` builds the snapshot a move creates once
its hooks have all passed (and the timers it leaves pending: `_timer_moves`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ._chartmove import chart_move
from ._chartplan import chart_snapshot_after
from ._errors import InvalidTransition
from ._events import Event
from ._history import Entry, extend_history
from ._snapshot import EMPTY, MachineSnapshot, TransitionContext, new_context, new_snapshot
from ._spec import MachineSpec, MovePlan
from ._state import ImmutableState
from ._timer_moves import timers_after

__all__ = ["begin_move", "pick_move", "snapshot_after"]


def _invalid(
    spec: MachineSpec,
    source: str,
    target: str | None,
    event: str | None,
    machine: str | None,
    note: str = "",
) -> InvalidTransition:
    return InvalidTransition(
        source,
        target,
        spec.allowed_targets(source),
        event=event,
        allowed_events=spec.allowed_events(source),
        machine=machine,
        note=note,
    )


def pick_move(
    spec: MachineSpec, source: str, target: str | None, event: str | None, name: str | None
) -> tuple[str | None, tuple[Event, ...], str | None]:
    """The alternatives a request names, checked: ``(event, alternatives, target)``.

    A move named by its target is the event that makes it, if one does (its
    effect and event hooks run, and the history names it); with no event the
    alternatives are empty. With an event, the alternatives from ``source``
    (those that lead to ``target``, when it is named), in the order tried.
    """
    if event is not None:
        alternatives = spec.alternatives(event, source)
        if not alternatives:
            spec.allowed_targets(source)  # an unknown state raises here
            note = "" if spec.has_event(event) else f"there is no event named {event!r}"
            raise _invalid(spec, source, target, event, name, note)
        if target is not None:
            leading = tuple(ev for ev in alternatives if ev.target == target)
            if not leading:
                targets = " or ".join(dict.fromkeys(repr(ev.target) for ev in alternatives))
                raise _invalid(
                    spec, source, target, event, name, f"event {event!r} leads to {targets}"
                )
            alternatives = leading
        return event, alternatives, target
    if target is None:
        raise TypeError("a transition needs a target state or an event")
    if not spec.allows(source, target):
        spec.allowed_targets(source)  # an unknown state raises here
        note = "" if target in spec.states else f"{target!r} is not a state of this machine"
        raise _invalid(spec, source, target, event, name, note)
    via = spec.events_between(source, target)
    if len(via) > 1:
        raise _invalid(
            spec,
            source,
            target,
            None,
            name,
            f"events {', '.join(map(repr, via))} all lead there: name one with trigger(event)",
        )
    if not via:
        return None, (), target
    event = via[0]
    return (
        event,
        tuple(ev for ev in spec.alternatives(event, source) if ev.target == target),
        target,
    )


def _resolve_move(
    spec: MachineSpec, source: str, target: str | None, event: str | None, name: str | None
) -> tuple[str, str | None, MovePlan]:
    """The move a request names, checked (`pick_move`), with its plan: an
    event with several alternatives gets a plan that tries them in order
    (`MovePlan.otherwise`)."""
    event, alternatives, target = pick_move(spec, source, target, event, name)
    if not alternatives:
        assert target is not None
        return target, None, spec.plan(source, target, None)
    assert event is not None
    if len(alternatives) == 1:
        ev = alternatives[0]
        return ev.target, event, spec.plan(source, ev.target, event, ev)
    plan = spec.branching_plan(source, event, alternatives)
    assert plan.target is not None
    return plan.target, event, plan


def begin_move(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
) -> tuple[TransitionContext, MovePlan]:
    """Check the move and build its first context."""
    source = snapshot.state
    name = machine if machine is not None else spec.name
    moves = spec._moves
    key = (source, target, event)
    move = moves.get(key)
    if move is None:
        if spec._chart is not None:  # a statechart: the move depends on more than the state
            move = chart_move(spec, snapshot, target, event, name, pick_move)
        else:
            # Resolved outside any ``except`` block, so that a refusal raised here
            # carries no internal KeyError as its context.
            move = _resolve_move(spec, source, target, event, name)
            # Allowed moves only: a bounded table, and the spec never changes.
            moves[key] = move
    target, event, plan = move
    if payload is None or isinstance(payload, ImmutableState):
        frozen_payload = payload or EMPTY
    else:
        frozen_payload = ImmutableState(payload) if payload else EMPTY
    ctx = new_context(
        source, target, event, frozen_payload, snapshot.data, snapshot.version + 1, name, at
    )
    return ctx, plan


def snapshot_after(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    ctx: TransitionContext,
    plan: MovePlan | None = None,
) -> tuple[MachineSnapshot, Entry]:
    """The snapshot a move whose hooks all passed creates, and its history entry
    (in `TransitionRecord.to_tuple`'s form). ``plan``: the move's plan, given
    for an internal transition (which the entry says) and a statechart's move
    (whose configurations it carries)."""
    payload = ctx.payload
    keys = tuple(sorted(payload._data)) if payload._data else ()
    entry: Entry = (ctx.version, snapshot.state, ctx.target, ctx.event, ctx.at, keys)
    if plan is not None:
        if plan.chart is not None:
            return chart_snapshot_after(spec, snapshot, ctx, plan, entry)
        entry = (*entry, True)
    history = extend_history(snapshot.history, entry, spec.history_limit)
    if ctx.timer_requests or snapshot.timers or spec.timeouts:
        timers = timers_after(spec, snapshot, ctx, plan is not None)
        return new_snapshot(ctx.target, ctx.version, ctx.data, history, None, timers), entry
    return new_snapshot(ctx.target, ctx.version, ctx.data, history), entry
