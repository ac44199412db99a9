"""Firing a pending timer: a transition by the timer's event, fenced by its id.

The actors send a machine a `Fire` message naming a timer's `PendingTimer.id`
when it falls due. `fire_step` then:

- drops it (no change, no version: the snapshot itself comes back) unless the
  snapshot still holds that exact timer: one cancelled, replaced, or set in a
  state that was left since, never fires;
- otherwise runs the transition by the timer's event with its payload, as
  `trigger` would, and removes the timer in the same transition, so that it
  cannot fire twice;
- if that transition is refused or a hook raises, the timer is used up all
  the same (else it would stay due and fire again at once): a version that
  changes nothing but removes it, recorded in the history as an internal
  transition by its event; the error is returned for the caller to report.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace

from ._generated_hooks import transition_step
from ._history import Entry, extend_history
from ._hooks import AsyncRunner
from ._messages import Message
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import Hook, MachineSpec
from ._timers import PendingTimer

__all__ = ["Fire", "TimerFiring", "fire_step"]


class Fire(Message, tuple[str]):
    """Fire the pending timer whose `PendingTimer.id` is ``timer``."""

    __slots__ = ()
    call = "fire_timer"
    fields = ("timer",)

    @property
    def timer(self) -> str:
        """The timer's id."""
        return self[0]


@dataclass(frozen=True, slots=True)
class TimerFiring:
    """What firing a timer did (the reply to a `Fire` message).

    Attributes:
        timer: the timer that fired; None if it was dropped (no longer pending).
        snapshot: the snapshot after (the same one when dropped).
        error: why its event's transition did not happen, if it did not (the
            timer was used up all the same).
    """

    timer: PendingTimer | None
    snapshot: MachineSnapshot
    error: Exception | None = None


def _without(timers: tuple[PendingTimer, ...], timer: PendingTimer) -> tuple[PendingTimer, ...]:
    return tuple(t for t in timers if t is not timer)


def fire_step(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    timer_id: str,
    at: _dt.datetime,
    machine: str | None,
    run_async: AsyncRunner,
) -> tuple[
    PendingTimer | None,
    MachineSnapshot,
    Entry | None,
    TransitionContext | None,
    tuple[Hook, ...],
    Exception | None,
]:
    """Fire timer ``timer_id`` of ``snapshot`` (see the module).

    Returns ``(timer, snapshot, entry, context, after_commit, error)``:
    ``timer`` None and ``snapshot`` the one given when it was dropped.
    """
    timer = next((t for t in snapshot.timers if t.id == timer_id), None)
    if timer is None:
        return None, snapshot, None, None, (), None
    try:
        new, entry, ctx, after_commit = transition_step(
            spec, snapshot, None, timer.event, timer.payload, at, machine, run_async
        )
    except Exception as error:
        version = snapshot.version + 1
        keys = tuple(sorted(timer.payload._data)) if timer.payload._data else ()
        entry = (version, snapshot.state, snapshot.state, timer.event, at, keys, True)
        history = extend_history(snapshot.history, entry, spec.history_limit)
        timers = _without(snapshot.timers, timer)
        used = MachineSnapshot(
            snapshot.state, version, snapshot.data, history, snapshot.chart, timers
        )
        ctx = TransitionContext(
            snapshot.state,
            snapshot.state,
            timer.event,
            timer.payload,
            snapshot.data,
            version,
            machine if machine is not None else spec.name,
            at,
        )
        return timer, used, entry, ctx, (), error
    if any(t is timer for t in new.timers):
        new = replace(new, timers=_without(new.timers, timer))
    return timer, new, entry, ctx, after_commit, None
