"""Behaviours: what an actor of each kind does with one message.

A behaviour maps the current snapshot and one message (`stateward.core._messages`)
to an `Outcome`: the new snapshot, the caller's answer, and the work to run
once the new snapshot is committed. It changes nothing itself: the cell that
runs it commits the snapshot (stores it, then publishes it), runs the
after-commit work, then answers the caller. A behaviour that raises leaves
the snapshot as it was; the error goes to that caller alone.

There is one behaviour per kind: `machine_behaviour`, `manager_behaviour`,
`config_behaviour`. Each is made once per actor, bound to what it needs from
its surroundings (the machine's name, the clock, how to run a coroutine
hook's awaitable), and then called once per message: ``behaviour(snapshot,
message) -> Outcome``.
"""

from __future__ import annotations

import datetime as _dt
import inspect
from collections.abc import Callable
from typing import Any

from ._config import ConfigHistory
from ._errors import ArgumentTypeError
from ._hooks import _transition_steps
from ._machine import (
    AsyncRunner,
    MachineSnapshot,
    TransitionOutcome,
    TransitionRecord,
    _run_here,
    transition_step,
    utc_now,
)
from ._messages import ConfigUpdate, Message, Modify, Move, Rollback, Update
from ._spec import Hook, MachineSpec
from ._store import StoreSnapshot
from ._suspend import Suspended, drive
from ._timer_fire import Fire, TimerFiring, fire_step

__all__ = [
    "Behaviour",
    "Outcome",
    "committed",
    "config_behaviour",
    "machine_behaviour",
    "manager_behaviour",
]


class Outcome:
    """What a behaviour returns for one message.

    Attributes:
        snapshot: the new snapshot, to commit (store, then publish).
        reply: the caller's answer, sent once the after-commit work has run.
        after: the after-commit work, or None: a `TransitionOutcome` whose
            ``after_commit`` hooks run (`run_after_commit`) once ``snapshot``
            is published. Their errors never undo the commit.
    """

    # A plain slotted class: one is made per message, and its fields are read
    # once, by the cell that commits it.
    __slots__ = ("after", "reply", "snapshot")

    def __init__(self, snapshot: Any, reply: Any, after: TransitionOutcome | None = None) -> None:
        self.snapshot = snapshot
        self.reply = reply
        self.after = after

    def __repr__(self) -> str:
        return f"Outcome(snapshot={self.snapshot!r}, reply={self.reply!r}, after={self.after!r})"


#: ``behaviour(snapshot, message) -> Outcome``.
Behaviour = Callable[[Any, Any], Outcome]
#: Reads the time: a timezone-aware ``datetime``.
Now = Callable[[], _dt.datetime]


def committed(outcome: TransitionOutcome, reply: Any) -> Outcome:
    """The `Outcome` of a transition computed by `apply_transition`: its
    snapshot, ``reply``, and its after-commit hooks (if any) as the work to run."""
    return Outcome(outcome.snapshot, reply, outcome if outcome.after_commit else None)


def _refuse(kind: str, takes: str, message: object) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"{kind}_behaviour", "message", f"a {takes} message", message, "The handles build them"
    )


def machine_behaviour(
    spec: MachineSpec,
    *,
    machine: str | None = None,
    clock: Now = utc_now,
    run_async: AsyncRunner | None = None,
    suspend: bool = False,
    timers: Callable[[MachineSnapshot], Any] | None = None,
) -> Behaviour:
    """The behaviour of a machine of ``spec``: a `Move` makes one transition,
    a `Fire` fires one of its pending timers (`_timer_fire`).

    Its outcome's snapshot is also the reply. Checks and hooks are
    `apply_transition`'s (the same algorithm, through `transition_step`).

    Args:
        machine: the machine's name, as hooks and errors see it.
        clock: the time of each transition.
        run_async: runs a coroutine hook's awaitable to completion (a private
            event loop by default).
        suspend: if the spec has coroutine hooks (`MachineSpec.has_async_hooks`),
            raise `Suspended` at each awaitable instead of running it: the
            algorithm's generator form (`_hooks`) goes on when the caller
            resumes it. A hook that is a plain function returning an awaitable
            still goes to ``run_async``. Without coroutine hooks, the plain-code
            fast path runs either way.
        timers: called with the new snapshot once a commit that changed its
            pending timers has been made (the last of its after-commit work):
            the actors arm them there. A `Fire` is always run by the
            plain-code path.

    Raises (from the behaviour):
        InvalidTransition: the definition does not allow the move.
        TransitionRejected: a guard or hook vetoed it.
        HookReturnError: a hook returned something unusable.
        Suspended: with ``suspend``, a coroutine hook's awaitable to wait for.
        Exception: whatever a hook raised, unchanged.
    """
    run = run_async or _run_here

    def arming(new: MachineSnapshot) -> Hook:
        assert timers is not None
        return Hook("after_commit", lambda ctx: timers(new), "stateward: arm timers")

    def outcome(
        snapshot: MachineSnapshot,
        new: MachineSnapshot,
        entry: Any,
        ctx: Any,
        after_commit: tuple[Hook, ...],
        reply: Any = None,
    ) -> Outcome:
        if new.timers is not snapshot.timers and timers is not None:
            after_commit = (*after_commit, arming(new))
        if not after_commit:
            return Outcome(new, new if reply is None else reply)
        # After-commit hooks get the record and the final context: only now
        # are they worth building.
        record = TransitionRecord(*entry)
        done = TransitionOutcome(snapshot, new, record, ctx, after_commit)
        return committed(done, new if reply is None else reply)

    def fire(snapshot: MachineSnapshot, message: Fire) -> Outcome:
        timer, new, entry, ctx, after_commit, error = fire_step(
            spec, snapshot, message.timer, clock(), machine, run
        )
        reply = TimerFiring(timer, new, error)
        if timer is None:
            return Outcome(snapshot, reply)  # dropped: the cell commits nothing
        return outcome(snapshot, new, entry, ctx, after_commit, reply)

    if suspend and spec.has_async_hooks:

        def suspending(snapshot: MachineSnapshot, message: Move | Fire) -> Outcome:
            if type(message) is not Move:
                if type(message) is Fire:
                    return fire(snapshot, message)
                raise _refuse("machine", "Move or Fire", message)
            target, event, payload = message
            steps = _transition_steps(spec, snapshot, target, event, payload, clock(), machine)
            return drive(steps, lambda done: outcome(snapshot, *done))

        return suspending

    def behaviour(snapshot: MachineSnapshot, message: Move | Fire) -> Outcome:
        if type(message) is not Move:
            if type(message) is Fire:
                return fire(snapshot, message)
            raise _refuse("machine", "Move or Fire", message)
        target, event, payload = message
        new, entry, ctx, after_commit = transition_step(
            spec, snapshot, target, event, payload, clock(), machine, run
        )
        if not after_commit and new.timers is snapshot.timers:
            return Outcome(new, new)
        return outcome(snapshot, new, entry, ctx, after_commit)

    return behaviour


def manager_behaviour(*, run_async: AsyncRunner | None = None, suspend: bool = False) -> Behaviour:
    """The behaviour of a state manager: `Update` merges changes, `Modify` runs
    its function on the state. The reply is the new state.

    Args:
        run_async: runs the awaitable of a coroutine ``modify`` function (a
            private event loop by default).
        suspend: raise `Suspended` with that awaitable instead of running it;
            resuming it with the awaitable's result makes the outcome.

    Raises (from the behaviour):
        HookReturnError: a ``modify`` function returned no state.
        Suspended: with ``suspend``, a ``modify`` function's awaitable to wait for.
        Exception: whatever a ``modify`` function raised, unchanged.
    """
    run = run_async or _run_here

    def behaviour(snapshot: StoreSnapshot, message: Message) -> Outcome:
        kind = type(message)
        if kind is Update:
            new = snapshot.update(message[0])
        elif kind is Modify:
            fn = message[0]
            if suspend:
                result = fn(snapshot.state)
                if inspect.isawaitable(result):
                    raise _modify_suspended(snapshot, fn, result)
                new = snapshot.modified(fn, result)
            else:
                new = snapshot.modify(fn, run)
        else:
            raise _refuse("manager", "Update or Modify", message)
        return Outcome(new, new.state)

    return behaviour


def _modify_suspended(snapshot: StoreSnapshot, fn: Any, awaitable: Any) -> Suspended:
    """A ``modify`` function's awaitable to wait for; resumed, the outcome."""

    def proceed(value: Any, error: BaseException | None) -> Outcome:
        if error is not None:
            raise error
        new = snapshot.modified(fn, value)
        return Outcome(new, new.state)

    return Suspended(awaitable, proceed, lambda: None)


def config_behaviour(*, clock: Now = utc_now) -> Behaviour:
    """The behaviour of a config manager: `ConfigUpdate` and `Rollback` each
    add a version. The reply is the new version's `ConfigChange`.

    Args:
        clock: the time of each version.

    Raises (from the behaviour):
        UnknownVersionError: a rollback to a version not in the history.
    """

    def behaviour(history: ConfigHistory, message: Message) -> Outcome:
        kind = type(message)
        if kind is ConfigUpdate:
            changes, metadata = message
            new = history.update(changes, metadata, clock=clock)
        elif kind is Rollback:
            version, metadata = message
            new = history.rollback(version, metadata, clock=clock)
        else:
            raise _refuse("config", "ConfigUpdate or Rollback", message)
        return Outcome(new, new.current)

    return behaviour
