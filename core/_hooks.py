"""The transition algorithm: a move's hooks, up to the commit, written once.

It is written here as generators that yield each awaitable a coroutine hook
returns, so that one text serves both drivers: `apply_transition_async` awaits
what they yield; the plain-code fast path (`apply_transition`, the actors'
`transition_step`) runs from `_generated_hooks`, which
``python -m stateward.core._generate`` writes from this module's source (each
``yield`` becomes a call to the caller's ``run_async``, each ``yield from`` a
call to the plain twin) and `tests/core/test_one_algorithm.py` checks is
current. Why generate rather than drive these generators from plain code: a
generator costs a frame and a ``send`` per hook, measurable on a path that runs
a transition in a few microseconds; why generate rather than keep two
hand-written copies: two copies drift, and a check that they agree only covers
the cases someone thought of.

Change the algorithm here, then run the generator.
"""

from __future__ import annotations

import datetime as _dt
import inspect
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

from ._chartmove import Regions, done_move, whole_move
from ._errors import Reject, StatewardError, TransitionRejected
from ._history import Entry
from ._moves import begin_move, pick_move, snapshot_after
from ._snapshot import MachineSnapshot, TransitionContext
from ._spec import Hook, MachineSpec, MovePlan

__all__ = ["AsyncRunner", "HookReturnError"]

#: Runs one awaitable to completion and returns its result (or raises its error).
AsyncRunner = Callable[[Awaitable[Any]], Any]


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


def _veto_reason(fn: Callable[..., Any], answer: str = "returned False") -> str:
    doc = inspect.getdoc(fn)
    if doc:
        return doc.strip().splitlines()[0]
    return answer


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


def _guard_verdict(spec: MachineSpec, ctx: TransitionContext, hook: Hook, result: Any) -> None:
    """Raise the veto of a guard that returned ``result``: False for a guard;
    True for an ``unless`` guard, which must answer True or False."""
    if not hook.negated:
        if result is False:
            raise _rejected(ctx, spec, hook.name, _veto_reason(hook.fn))
    elif result is True:
        raise _rejected(ctx, spec, hook.name, _veto_reason(hook.fn, "unless: returned True"))
    elif result is not False:
        raise HookReturnError(
            hook.name,
            "unless guard",
            result,
            "return True (veto) or False (go on); an unless guard's answer must be a bool",
        )


def _no_alternative(
    ctx: TransitionContext, spec: MachineSpec, refused: list[tuple[str, str, str]]
) -> TransitionRejected:
    """The refusal of an event none of whose alternatives' guards passed."""
    assert ctx.source is not None
    return TransitionRejected(
        ctx.source,
        None,
        spec.allowed_targets(ctx.source),
        guard=", ".join(guard for _, guard, _ in refused),
        reason="no alternative's guards passed",
        event=ctx.event,
        allowed_events=spec.allowed_events(ctx.source),
        machine=ctx.machine,
        alternatives=refused,
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


# -- the algorithm: the generated module has a plain-code twin of each function below --


def _call(
    spec: MachineSpec, ctx: TransitionContext, kind: str, name: str, fn: Callable[..., Any]
) -> Generator[Awaitable[Any], Any, Any]:
    """Call one hook with ``ctx`` and return its result, awaited if it is awaitable.

    A `Reject` becomes the `TransitionRejected` that names the hook; any other
    exception is noted with the hook and the move and raised unchanged.
    """
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


def _admit(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext
) -> Generator[Awaitable[Any], Any, TransitionContext]:
    """Run a move's pre-transition hooks, then its guards; return the enriched
    context, or raise the `TransitionRejected` of the first veto."""
    for hook in plan.pre_transition:
        ctx = _enriched(ctx, hook, (yield from _call(spec, ctx, hook.kind, hook.name, hook.fn)))
    for hook in plan.guards:
        result = yield from _call(spec, ctx, hook.kind, hook.name, hook.fn)
        if result is False or hook.negated:
            _guard_verdict(spec, ctx, hook, result)
    return ctx


def _choose(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext
) -> Generator[Awaitable[Any], Any, tuple[TransitionContext, MovePlan]]:
    """Try an event's alternatives in order (``plan`` and its `MovePlan.otherwise`
    chain); return the first admitted, with its context. Each alternative
    starts from the request's own payload. When none is admitted, raise a
    `TransitionRejected` that names each one and why it refused. What a
    refused alternative's hooks asked of the timers is dropped with it."""
    start = ctx
    requests = ctx.timer_requests
    refused: list[tuple[str, str, str]] = []
    while True:
        try:
            return ((yield from _admit(spec, plan, ctx)), plan)
        except TransitionRejected as refusal:
            refused.append((ctx.target, refusal.guard, refusal.reason))
            if plan.otherwise is None:
                raise _no_alternative(start, spec, refused) from None
        plan = plan.otherwise
        assert plan.target is not None
        ctx = start.with_target(plan.target, requests)


def _run_stages(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext
) -> Generator[Awaitable[Any], Any, TransitionContext]:
    """Run a move's exit hooks, event effect and enter hooks; return the context."""
    for stage in plan.stages:
        result = yield from _call(spec, ctx, *stage)
        if result is not None:  # None, the usual answer, changes nothing
            ctx = _changed(spec, ctx, stage, result)
    return ctx


def _run_hooks(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext
) -> Generator[Awaitable[Any], Any, TransitionContext]:
    """Run a move's hooks up to the commit, in order; return the final context."""
    ctx = yield from _admit(spec, plan, ctx)
    return (yield from _run_stages(spec, plan, ctx))


def _choose_regions(
    spec: MachineSpec, plan: MovePlan, ctx: TransitionContext
) -> Generator[Awaitable[Any], Any, tuple[TransitionContext, MovePlan]]:
    """Parallel regions (``plan.chart`` is a `Regions`): each region's
    alternatives in document order, a region skipped when an earlier region's
    admitted move leaves it; the admitted moves combined into one
    (`Regions.combine`). The payload pre-transition hooks enrich carries on
    to the next region. When no region admits any, a `TransitionRejected`
    names every alternative tried and why it refused."""
    regions = plan.chart
    start = ctx
    chosen: list[MovePlan] = []
    refused: list[tuple[str, str, str]] = []
    for index, chain in enumerate(regions.chains):
        if regions.preempted(index, chosen):
            continue
        attempt = ctx.with_target(chain.target)
        try:
            if chain.otherwise is None:
                ctx = yield from _admit(spec, chain, attempt)
                chosen.append(chain)
            else:
                ctx, taken = yield from _choose(spec, chain, attempt)
                chosen.append(taken)
        except TransitionRejected as refusal:
            refused += refusal.alternatives or [
                (regions.target(index), refusal.guard, refusal.reason)
            ]
    if not chosen:
        raise _no_alternative(start, spec, refused)
    combined = regions.combine(spec, chosen)
    return ctx.with_target(combined.target), combined


def _chart_steps(
    spec: MachineSpec, snapshot: MachineSnapshot, plan: MovePlan, ctx: TransitionContext
) -> Generator[
    Awaitable[Any], Any, tuple[MachineSnapshot, Entry, TransitionContext, tuple[Hook, ...]]
]:
    """A statechart's move (`_chartmove`): the alternative (or each region's)
    that is admitted, its hooks; then, while that leaves a parallel state done
    whose ``done.state.<name>`` event the spec defines, that event's move, in
    the same transaction (one version, one record). A done event none of whose
    alternatives is admitted ends the transaction there."""
    source, event = ctx.source, ctx.event
    taken: list[MovePlan] = []
    while True:
        try:
            if type(plan.chart) is Regions:
                ctx, plan = yield from _choose_regions(spec, plan, ctx)
            elif plan.otherwise is None:
                ctx = yield from _admit(spec, plan, ctx)
            else:
                ctx, plan = yield from _choose(spec, plan, ctx)
        except TransitionRejected:
            if not taken:
                raise
            break
        if plan.stages:
            ctx = yield from _run_stages(spec, plan, ctx)
        taken.append(plan)
        follow = done_move(spec, snapshot, taken, ctx, pick_move)
        if follow is None:
            break
        ctx, plan = follow
    plan, ctx = whole_move(spec, taken, ctx, source, event)
    new, entry = snapshot_after(spec, snapshot, ctx, plan)
    return new, entry, ctx, plan.after_commit


def _transition_steps(
    spec: MachineSpec,
    snapshot: MachineSnapshot,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    at: _dt.datetime,
    machine: str | None,
) -> Generator[
    Awaitable[Any], Any, tuple[MachineSnapshot, Entry, TransitionContext, tuple[Hook, ...]]
]:
    """One transition: the checks, the hooks up to the commit, the new snapshot.

    Returns ``(snapshot, entry, context, after_commit)``: the new snapshot, its
    history entry in `TransitionRecord.to_tuple`'s form (``TransitionRecord(*entry)``
    makes the record), the final context and the after-commit hooks to run
    once the caller has committed. No outcome object: the actors' hot path
    needs none.
    """
    ctx, plan = begin_move(spec, snapshot, target, event, payload, at, machine)
    if plan.before_commit:  # always, for branches, internal transitions and statecharts
        if plan.chart is not None:  # a statechart's move
            return (yield from _chart_steps(spec, snapshot, plan, ctx))
        if plan.otherwise is None:
            ctx = yield from _admit(spec, plan, ctx)
        else:  # an event with alternatives: the first admitted is taken
            ctx, plan = yield from _choose(spec, plan, ctx)
        if plan.stages:
            ctx = yield from _run_stages(spec, plan, ctx)
        if plan.internal:
            new, entry = snapshot_after(spec, snapshot, ctx, plan)
            return new, entry, ctx, plan.after_commit
    new, entry = snapshot_after(spec, snapshot, ctx)
    return new, entry, ctx, plan.after_commit
