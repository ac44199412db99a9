"""Machine snapshots and the transition algorithm, usable with or without actors.

The algorithm is written once, as a generator that yields whenever a hook
returns an awaitable. `apply_transition` drives it from plain code (running
coroutines on a loop it is given, or on a private one), `apply_transition_async`
drives it from a coroutine. Either returns a `TransitionOutcome`: the new
snapshot plus the after-commit work, which the caller runs once it has
committed (`run_after_commit`). Nothing is changed in place: a hook that raises
or vetoes leaves the old snapshot as the current one.
"""

from __future__ import annotations

import datetime as _dt
import inspect
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._arguments import check_move
from ._errors import InvalidTransition, Reject, StatewardError, TransitionRejected
from ._history import EMPTY_HISTORY, Entry, History, TransitionRecord, extend_history
from ._quick import quick_init
from ._spec import Hook, MachineSpec, MovePlan
from ._state import ImmutableState, record

__all__ = [
    "AsyncRunner",
    "Clock",
    "CreationOutcome",
    "HookFailure",
    "HookReturnError",
    "MachineSnapshot",
    "TransitionContext",
    "TransitionOutcome",
    "TransitionRecord",
    "apply_creation",
    "apply_transition",
    "apply_transition_async",
    "run_after_commit",
    "run_after_commit_async",
    "utc_now",
]

Clock = Callable[[], _dt.datetime]
#: Runs one awaitable to completion and returns its result (or raises its error).
AsyncRunner = Callable[[Awaitable[Any]], Any]

_EMPTY = ImmutableState()


_now = _dt.datetime.now
_UTC = _dt.UTC


def utc_now() -> _dt.datetime:
    """The default clock: the current time, timezone-aware, in UTC."""
    return _now(_UTC)


class HookReturnError(StatewardError, TypeError):
    """A hook returned something its kind cannot use.

    Attributes:
        hook: the hook's name.
        kind: the hook's kind.
        value: what it returned.
    """

    def __init__(self, hook: str, kind: str, value: object, expected: str) -> None:
        self.hook = hook
        self.kind = kind
        self.value = value
        super().__init__(f"{kind} hook {hook!r} returned {value!r}; {expected}")


def _entries(history: Sequence[TransitionRecord]) -> Iterable[Entry]:
    if type(history) is History:
        return history.entries()
    return (r.to_tuple() for r in history)


@quick_init
@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """The complete, immutable state of one machine at one version.

    Attributes:
        state: the current state.
        version: how many transitions have been committed (0 for a new machine).
        data: the machine's own data, changed by event effects and enter/exit hooks.
        history: the last `TransitionRecord` entries, oldest first, at most the
            spec's ``history_limit``: a `History`, a read-only sequence that
            shares its older records with the snapshots before it (any
            sequence of records is accepted when building one by hand).
    """

    state: str
    version: int = 0
    data: ImmutableState = _EMPTY
    history: Sequence[TransitionRecord] = EMPTY_HISTORY

    @classmethod
    def initial(cls, spec: MachineSpec, data: Mapping[str, Any] | None = None) -> MachineSnapshot:
        """A new machine of ``spec``: its initial state, version 0, no history."""
        frozen = data if isinstance(data, ImmutableState) else ImmutableState(data or {})
        return cls(spec.initial, 0, frozen, EMPTY_HISTORY)

    def to_state(self) -> ImmutableState:
        """An encodable form, for the codec (see `from_state`)."""
        return record(
            state=self.state,
            version=self.version,
            data=self.data,
            history=tuple(_entries(self.history)),
        )

    @classmethod
    def from_state(cls, value: Mapping[str, Any]) -> MachineSnapshot:
        """Rebuild a snapshot from `to_state`'s form."""
        data = value["data"]
        return cls(
            value["state"],
            value["version"],
            data if isinstance(data, ImmutableState) else ImmutableState(data),
            History(TransitionRecord.from_tuple(tuple(r)) for r in value["history"]),
        )


@quick_init
@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What every hook receives: the move being made and the values around it.

    Attributes:
        source: the state being left; None when a new machine is being created.
        target: the state being entered.
        event: the event that fired, or None.
        payload: the caller's payload, as enriched by pre-transition hooks so far.
        data: the machine's data, as changed by exit/effect/enter hooks so far.
        version: the version this transition creates when it commits.
        machine: the machine's name, if it has one.
        at: the transition's time, from the clock.
    """

    source: str | None
    target: str
    event: str | None
    payload: ImmutableState
    data: ImmutableState
    version: int
    machine: str | None
    at: _dt.datetime

    def with_payload(self, payload: ImmutableState) -> TransitionContext:
        return TransitionContext(
            self.source,
            self.target,
            self.event,
            payload,
            self.data,
            self.version,
            self.machine,
            self.at,
        )

    def with_data(self, data: ImmutableState) -> TransitionContext:
        return TransitionContext(
            self.source,
            self.target,
            self.event,
            self.payload,
            data,
            self.version,
            self.machine,
            self.at,
        )


@quick_init
@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    """A transition that passed every check, ready to commit.

    Attributes:
        previous: the snapshot before.
        snapshot: the snapshot after; commit it, then run `after_commit`.
        record: the history entry it adds.
        context: the final context, given to after-commit hooks.
        after_commit: the after-commit hooks that apply, in run order.
    """

    previous: MachineSnapshot
    snapshot: MachineSnapshot
    record: TransitionRecord
    context: TransitionContext
    after_commit: tuple[Hook, ...]


@dataclass(frozen=True, slots=True)
class HookFailure:
    """An after-commit hook (or observer) that raised. The commit stands.

    Attributes:
        hook: the hook's name.
        kind: its kind (``after_commit``, ``observer``).
        error: the exception it raised.
    """

    hook: str
    kind: str
    error: BaseException


# -- the algorithm ------------------------------------------------------------------
#
# The hooks run in one of two ways: `_run_hooks_now` calls them in plain code
# (running a coroutine hook's awaitable through ``run_async`` on the spot), and
# `_run_hooks` is a generator that yields each awaitable to an async driver.
# Both read hook results through the same helpers below, so they agree on
# every veto, error and change; tests run every hook behaviour through both.

_Steps = Generator[Awaitable[Any], Any, Any]


def _veto_reason(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn)
    if doc:
        return doc.strip().splitlines()[0]
    return "returned False"


def _data_changes(hook: str, kind: str, result: Any) -> Mapping[str, Any] | None:
    """Read the return of an exit/enter/effect hook: changes, or None; False vetoes."""
    if result is None or result is True:
        return None
    if isinstance(result, Mapping):
        return result
    raise HookReturnError(
        hook,
        kind,
        result,
        "return None, a mapping of changes to the machine's data, or False to veto",
    )


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


def _rejected(
    ctx: TransitionContext, spec: MachineSpec, hook: str, reason: str
) -> TransitionRejected:
    if ctx.source is None:  # a creation: the only way in is the initial state
        return TransitionRejected(
            "(new)", ctx.target, (spec.initial,), guard=hook, reason=reason, machine=ctx.machine
        )
    return TransitionRejected(
        ctx.source,
        ctx.target,
        spec.allowed_targets(ctx.source),
        guard=hook,
        reason=reason,
        event=ctx.event,
        allowed_events=spec.allowed_events(ctx.source),
        machine=ctx.machine,
    )


def _annotate(exc: BaseException, ctx: TransitionContext, kind: str, hook: str) -> None:
    exc.add_note(f"raised by {kind} hook {hook!r} during {ctx.source!r} -> {ctx.target!r}")


def _stopped(ctx: TransitionContext, kind: str, name: str) -> RuntimeError:
    """The error for a hook that raised StopIteration.

    A generator cannot let StopIteration out (PEP 479), so the async driver's
    path turns it into this RuntimeError; the plain-code path raises the same,
    as both did before it existed. Raised ``from`` the StopIteration.
    """
    error = RuntimeError("generator raised StopIteration")
    _annotate(error, ctx, kind, name)
    return error


def _enriched(ctx: TransitionContext, hook: Hook, result: Any) -> TransitionContext:
    """The context after a pre-transition hook returned ``result``."""
    if result is None:
        return ctx
    if not isinstance(result, Mapping):
        raise HookReturnError(
            hook.name, hook.kind, result, "return None or a mapping of payload additions"
        )
    return ctx.with_payload(ctx.payload.update(result))


def _changed(
    spec: MachineSpec,
    ctx: TransitionContext,
    stage: tuple[str, str, Callable[..., Any]],
    result: Any,
) -> TransitionContext:
    """The context after an exit hook, event effect or enter hook returned ``result``."""
    kind, name, fn = stage
    if result is False:
        raise _rejected(ctx, spec, name, _veto_reason(fn))
    changes = _data_changes(name, kind, result)
    return ctx.with_data(ctx.data.update(changes)) if changes else ctx


def _call_now(
    spec: MachineSpec,
    ctx: TransitionContext,
    kind: str,
    name: str,
    fn: Callable[..., Any],
    run_async: AsyncRunner,
) -> Any:
    try:
        result = fn(ctx)
        if result is not None and inspect.isawaitable(result):
            result = run_async(result)
    except Reject as veto:
        raise _rejected(ctx, spec, name, veto.reason) from veto
    except StopIteration as stop:
        raise _stopped(ctx, kind, name) from stop
    except Exception as exc:
        _annotate(exc, ctx, kind, name)
        raise
    return result


def _run_hooks_now(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext, run_async: AsyncRunner
) -> TransitionContext:
    """Run a move's hooks up to the commit, in plain code; return the final context."""
    for hook in plan.pre_transition:
        ctx = _enriched(ctx, hook, _call_now(spec, ctx, hook.kind, hook.name, hook.fn, run_async))
    for hook in plan.guards:
        if _call_now(spec, ctx, hook.kind, hook.name, hook.fn, run_async) is False:
            raise _rejected(ctx, spec, hook.name, _veto_reason(hook.fn))
    for stage in plan.stages:
        result = _call_now(spec, ctx, *stage, run_async)
        if result is not None:  # None, the usual answer, changes nothing
            ctx = _changed(spec, ctx, stage, result)
    return ctx


def _call(
    spec: MachineSpec, ctx: TransitionContext, kind: str, name: str, fn: Callable[..., Any]
) -> _Steps:
    try:
        result = fn(ctx)
        if result is not None and inspect.isawaitable(result):
            result = yield result
    except Reject as veto:
        raise _rejected(ctx, spec, name, veto.reason) from veto
    except StopIteration as stop:
        raise _stopped(ctx, kind, name) from stop
    except Exception as exc:
        _annotate(exc, ctx, kind, name)
        raise
    return result


def _run_hooks(spec: MachineSpec, plan: MovePlan, ctx: TransitionContext) -> _Steps:
    """`_run_hooks_now` for an async driver: yields each hook's awaitable."""
    for hook in plan.pre_transition:
        ctx = _enriched(ctx, hook, (yield from _call(spec, ctx, hook.kind, hook.name, hook.fn)))
    for hook in plan.guards:
        if (yield from _call(spec, ctx, hook.kind, hook.name, hook.fn)) is False:
            raise _rejected(ctx, spec, hook.name, _veto_reason(hook.fn))
    for stage in plan.stages:
        result = yield from _call(spec, ctx, *stage)
        if result is not None:
            ctx = _changed(spec, ctx, stage, result)
    return ctx


def _resolve_move(
    spec: MachineSpec, source: str, target: str | None, event: str | None, name: str | None
) -> tuple[str, str | None, MovePlan]:
    """The move a request names, checked: its target, its event and its hooks.

    A move named by its target is the event that makes it, if one does: its
    effect and event hooks run, and the history names it.
    """
    if event is not None:
        ev = spec.event_for(event, source)
        if ev is None:
            spec.allowed_targets(source)  # an unknown state raises here
            note = "" if spec.has_event(event) else f"there is no event named {event!r}"
            raise _invalid(spec, source, target, event, name, note)
        if target is not None and target != ev.target:
            raise _invalid(
                spec, source, target, event, name, f"event {event!r} leads to {ev.target!r}"
            )
        target = ev.target
    elif target is None:
        raise TypeError("a transition needs a target state or an event")
    elif not spec.allows(source, target):
        spec.allowed_targets(source)  # an unknown state raises here
        note = "" if target in spec.states else f"{target!r} is not a state of this machine"
        raise _invalid(spec, source, target, event, name, note)
    else:
        via = spec.events_between(source, target)
        if len(via) == 1:
            event = via[0]
        elif via:
            raise _invalid(
                spec,
                source,
                target,
                None,
                name,
                f"events {', '.join(map(repr, via))} all lead there: name one with trigger(event)",
            )
    return target, event, spec.plan(source, target, event)


def _begin(
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
        # Resolved outside any ``except`` block, so that a refusal raised here
        # carries no internal KeyError as its context.
        move = _resolve_move(spec, source, target, event, name)
        # Allowed moves only: a bounded table, and the spec never changes.
        moves[key] = move
    target, event, plan = move
    if payload is None or isinstance(payload, ImmutableState):
        frozen_payload = payload or _EMPTY
    else:
        frozen_payload = ImmutableState(payload) if payload else _EMPTY
    ctx = TransitionContext(
        source, target, event, frozen_payload, snapshot.data, snapshot.version + 1, name, at
    )
    return ctx, plan


def _after(
    spec: MachineSpec, snapshot: MachineSnapshot, ctx: TransitionContext
) -> tuple[MachineSnapshot, Entry]:
    """The snapshot a move whose hooks all passed creates, and its history entry
    (in `TransitionRecord.to_tuple`'s form)."""
    payload = ctx.payload
    keys = tuple(sorted(payload._data)) if payload._data else ()
    entry: Entry = (ctx.version, snapshot.state, ctx.target, ctx.event, ctx.at, keys)
    history = extend_history(snapshot.history, entry, spec.history_limit)
    return MachineSnapshot(ctx.target, ctx.version, ctx.data, history), entry


def transition_step(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
    run_async: AsyncRunner,
) -> tuple[MachineSnapshot, Entry, TransitionContext, tuple[Hook, ...]]:
    """`apply_transition` for the actors' hot path: the same checks and hooks,
    returning ``(snapshot, entry, context, after_commit)`` with no outcome or
    record object (``TransitionRecord(*entry)`` makes the record, when there
    are after-commit hooks to give it to)."""
    ctx, plan = _begin(spec, snapshot, target, event, payload, at, machine)
    if plan.before_commit:
        ctx = _run_hooks_now(spec, plan, ctx, run_async)
    new, entry = _after(spec, snapshot, ctx)
    return new, entry, ctx, plan.after_commit


def _transition_steps(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
) -> _Steps:
    ctx, plan = _begin(spec, snapshot, target, event, payload, at, machine)
    if plan.before_commit:
        ctx = yield from _run_hooks(spec, plan, ctx)
    new, entry = _after(spec, snapshot, ctx)
    return TransitionOutcome(snapshot, new, TransitionRecord(*entry), ctx, plan.after_commit)


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


async def _drive_async(steps: _Steps) -> Any:
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
    clock: Clock = utc_now,
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
    clock: Clock = utc_now,
    machine: str | None = None,
) -> TransitionOutcome:
    """`apply_transition` for coroutines: awaits coroutine hooks on the running loop."""
    if target is not None or event is not None:  # neither: _resolve_move says one is needed
        target, event, payload = check_move(target, event, payload, "apply_transition_async")
    steps = _transition_steps(spec, snapshot, target, event, payload, clock(), machine)
    outcome: TransitionOutcome = await _drive_async(steps)
    return outcome


@quick_init
@dataclass(frozen=True, slots=True)
class CreationOutcome:
    """A new machine that passed its creation hooks, ready to commit.

    Attributes:
        snapshot: the new machine: the initial state, version 0, the data as the
            hooks left it.
        context: the final context (``source`` is None), for after-commit hooks.
        after_commit: the after-commit hooks that apply, in run order.
    """

    snapshot: MachineSnapshot
    context: TransitionContext
    after_commit: tuple[Hook, ...]


def _creation(
    spec: MachineSpec,
    payload: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
    run_async: AsyncRunner,
) -> CreationOutcome:
    frozen_payload = ImmutableState(payload) if payload else _EMPTY
    frozen_data = data if isinstance(data, ImmutableState) else ImmutableState(data or {})
    name = machine if machine is not None else spec.name
    ctx = TransitionContext(None, spec.initial, None, frozen_payload, frozen_data, 0, name, at)
    plan = spec.plan(None, spec.initial, None)
    ctx = _run_hooks_now(spec, plan, ctx, run_async)
    new = MachineSnapshot(spec.initial, 0, ctx.data, EMPTY_HISTORY)
    return CreationOutcome(new, ctx, plan.after_commit)


def apply_creation(
    spec: MachineSpec,
    payload: Mapping[str, Any] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    clock: Clock = utc_now,
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
