"""Transitions of a machine, usable with or without actors: the entry points.

`apply_transition` computes one transition from plain code (running coroutine
hooks on a loop it is given, or on a private one), `apply_transition_async`
from a coroutine. Either returns a `TransitionOutcome`: the new snapshot plus
the after-commit work, which the caller runs once it has committed
(`run_after_commit`). Nothing is changed in place: a hook that raises or
vetoes leaves the old snapshot as the current one. `apply_creation` admits a
new machine into its initial state.

The algorithm itself is written once, in `_hooks`, as generators;
`apply_transition_async` drives them, and the plain-code path runs their
generated twins in `_generated_hooks` (see `_hooks` for why). The modules
below this one: `_snapshot` (the values), `_moves` (checking a move and the
table of checked moves), `_hooks` (running a move's hooks).
"""

from __future__ import annotations

import datetime as _dt
import inspect
from collections.abc import Awaitable, Generator, Mapping
from dataclasses import replace
from typing import Any

from ._arguments import check_move
from ._chartplan import chart_creation_plan
from ._generated_hooks import _run_hooks_now, transition_step
from ._history import EMPTY_HISTORY, TransitionRecord
from ._hooks import AsyncRunner, HookReturnError, _transition_steps
from ._snapshot import (
    EMPTY,
    CreationOutcome,
    HookFailure,
    MachineSnapshot,
    TransitionContext,
    TransitionOutcome,
)
from ._spec import MachineSpec
from ._state import ImmutableState
from ._timer_moves import creation_timers
from ._wallclock import WallClock, utc_now

__all__ = [
    "AsyncRunner",
    "CreationOutcome",
    "HookFailure",
    "HookReturnError",
    "MachineSnapshot",
    "TransitionContext",
    "TransitionOutcome",
    "TransitionRecord",
    "WallClock",
    "apply_creation",
    "apply_transition",
    "apply_transition_async",
    "run_after_commit",
    "run_after_commit_async",
    "transition_step",
    "utc_now",
]


def _run_here(awaitable: Awaitable[Any]) -> Any:
    """Run one awaitable on a private loop, for plain code with no loop of its own."""
    import asyncio  # here, not at the top: asyncio imports threading, core must not

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError(
            "an async hook cannot run from apply_transition() inside a running event loop; "
            "use 'await apply_transition_async(...)' instead"
        )
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(awaitable)
    finally:
        loop.close()


async def _drive_async(steps: Generator[Awaitable[Any], Any, Any]) -> Any:
    try:
        awaitable = next(steps)
        while True:
            try:
                value = await awaitable
            except Exception as exc:
                awaitable = steps.throw(exc)
            else:
                awaitable = steps.send(value)
    except StopIteration as stop:
        return stop.value


def apply_transition(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None = None,
    *,
    event: str | None = None,
    payload: Mapping[str, Any] | None = None,
    clock: WallClock = utc_now,
    machine: str | None = None,
    run_async: AsyncRunner | None = None,
) -> TransitionOutcome:
    """Compute one transition: checks, hooks up to the commit, the new snapshot.

    Name a ``target`` state, an ``event``, or both (then the event must lead to
    the target). A move named only by its target is made by the event that
    leads there, when exactly one does (its effect and event hooks run); when
    several do, name one. Hooks run in the order pre_transition, guard, exit, event
    effect, enter. Nothing is committed here: the caller commits
    ``outcome.snapshot`` and then runs `run_after_commit`.

    Args:
        run_async: runs the awaitable of a coroutine hook and returns its result;
            by default a private event loop in this thread (not allowed inside a
            running loop: use `apply_transition_async` there).

    Raises:
        InvalidArgument: ``target``/``event`` not a str, neither given, or a
            payload that is not a mapping (checked before anything runs).
        InvalidTransition: the definition does not allow the move.
        TransitionRejected: a guard or hook vetoed it.
        HookReturnError: a hook returned something unusable.
        Exception: whatever a hook raised, unchanged.
    """
    if target is not None or event is not None:  # neither: _resolve_move says one is needed
        target, event, payload = check_move(target, event, payload, "apply_transition")
    new, entry, ctx, after_commit = transition_step(
        spec, snapshot, target, event, payload, clock(), machine, run_async or _run_here
    )
    return TransitionOutcome(snapshot, new, TransitionRecord(*entry), ctx, after_commit)


async def apply_transition_async(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None = None,
    *,
    event: str | None = None,
    payload: Mapping[str, Any] | None = None,
    clock: WallClock = utc_now,
    machine: str | None = None,
) -> TransitionOutcome:
    """`apply_transition` for coroutines: awaits coroutine hooks on the running loop."""
    if target is not None or event is not None:  # neither: _resolve_move says one is needed
        target, event, payload = check_move(target, event, payload, "apply_transition_async")
    steps = _transition_steps(spec, snapshot, target, event, payload, clock(), machine)
    new, entry, ctx, after_commit = await _drive_async(steps)
    return TransitionOutcome(snapshot, new, TransitionRecord(*entry), ctx, after_commit)


def _creation(
    spec: MachineSpec,
    payload: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
    run_async: AsyncRunner,
) -> CreationOutcome:
    frozen_payload = ImmutableState(payload) if payload else EMPTY
    frozen_data = data if isinstance(data, ImmutableState) else ImmutableState(data or {})
    name = machine if machine is not None else spec.name
    if spec._chart is not None:  # a statechart enters its initial configuration
        plan = chart_creation_plan(spec)
        assert plan.target is not None
        ctx = TransitionContext(None, plan.target, None, frozen_payload, frozen_data, 0, name, at)
        ctx = _run_hooks_now(spec, plan, ctx, run_async)
        start = MachineSnapshot.initial(spec, ctx.data)
        if spec.timeouts or ctx.timer_requests:
            start = replace(start, timers=creation_timers(spec, ctx))
        return CreationOutcome(start, ctx, plan.after_commit)
    ctx = TransitionContext(None, spec.initial, None, frozen_payload, frozen_data, 0, name, at)
    plan = spec.plan(None, spec.initial, None)
    ctx = _run_hooks_now(spec, plan, ctx, run_async)
    if spec.timeouts or ctx.timer_requests:
        timers = creation_timers(spec, ctx)
        new = MachineSnapshot(spec.initial, 0, ctx.data, EMPTY_HISTORY, None, timers)
    else:
        new = MachineSnapshot(spec.initial, 0, ctx.data, EMPTY_HISTORY)
    return CreationOutcome(new, ctx, plan.after_commit)


def apply_creation(
    spec: MachineSpec,
    payload: Mapping[str, Any] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    clock: WallClock = utc_now,
    machine: str | None = None,
    run_async: AsyncRunner | None = None,
) -> CreationOutcome:
    """Admit a new machine into its initial state, running the hooks of that move.

    The hooks that apply are those into the initial state registered without a
    ``source`` (the context's ``source`` is None): pre-transition hooks enrich
    the payload (generating an order id, say), guards may veto, enter hooks may
    set the data. This is how a database row is created in its start state.
    """
    return _creation(spec, payload, data, clock(), machine, run_async or _run_here)


def run_after_commit(
    outcome: TransitionOutcome | CreationOutcome, run_async: AsyncRunner | None = None
) -> tuple[HookFailure, ...]:
    """Run the after-commit hooks of a committed outcome, in order.

    A hook that raises does not stop the others and never undoes the commit:
    each error is returned as a `HookFailure` for the caller to report.
    """
    failures: list[HookFailure] = []
    for hook in outcome.after_commit:
        try:
            result = hook.fn(outcome.context)
            if inspect.isawaitable(result):
                (run_async or _run_here)(result)
        except Exception as exc:
            failures.append(HookFailure(hook.name, hook.kind, exc))
    return tuple(failures)


async def run_after_commit_async(
    outcome: TransitionOutcome | CreationOutcome,
) -> tuple[HookFailure, ...]:
    """`run_after_commit` for coroutines."""
    failures: list[HookFailure] = []
    for hook in outcome.after_commit:
        try:
            result = hook.fn(outcome.context)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            failures.append(HookFailure(hook.name, hook.kind, exc))
    return tuple(failures)
