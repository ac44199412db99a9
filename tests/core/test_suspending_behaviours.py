"""Behaviours made with ``suspend=True`` raise `Suspended` at each awaitable.

Whoever runs the behaviour awaits the awaitable itself and resumes it with
the result (or the error): the move goes on where it stopped, with the same
outcome `apply_transition` computes, and the same errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from support import ORDER_FLOW_PAID_IS_FINAL

from stateward.core import (
    ImmutableState,
    MachineBuilder,
    MachineSnapshot,
    StoreSnapshot,
    TransitionContext,
    TransitionRejected,
    apply_transition,
)
from stateward.core._behaviours import Outcome, machine_behaviour, manager_behaviour
from stateward.core._messages import Modify, Move, Update
from stateward.core._suspend import Suspended

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def at_t0() -> dt.datetime:
    return T0


def run_to_the_end(behaviour: Any, snapshot: Any, message: Any) -> tuple[Outcome, int]:
    """Run ``behaviour``, awaiting each awaitable it suspends on here; return
    its outcome and how many times it suspended."""
    suspended = 0
    try:
        return behaviour(snapshot, message), suspended
    except Suspended as first:
        step = first
    while True:
        suspended += 1
        try:
            value = asyncio.run(step.awaitable)  # type: ignore[arg-type]
        except Exception as exc:
            outcome = lambda step=step, exc=exc: step.resume(None, exc)  # noqa: E731
        else:
            outcome = lambda step=step, value=value: step.resume(value)  # noqa: E731
        try:
            return outcome(), suspended
        except Suspended as following:
            step = following


def order_flow() -> MachineBuilder:
    flow = MachineBuilder("pending", ORDER_FLOW_PAID_IS_FINAL)

    @flow.pre_transition("paid")
    async def enrich(ctx: TransitionContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"checked": True}

    @flow.guard("cancelled")
    async def too_late(ctx: TransitionContext) -> bool:
        await asyncio.sleep(0)
        return False

    @flow.on_enter("paid")
    async def fetch_receipt(ctx: TransitionContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        if ctx.payload.get("fail"):
            raise RuntimeError("the receipt service is down")
        return {"receipt": "r-1", "checked": ctx.payload.checked}

    @flow.after_commit("paid")
    def log(ctx: TransitionContext) -> None:
        pass

    return flow


def test_a_move_suspends_at_each_awaitable_and_ends_as_apply_transition_does() -> None:
    spec = order_flow().build()
    before = MachineSnapshot.initial(spec)
    behaviour = machine_behaviour(spec, clock=at_t0, suspend=True)
    outcome, suspended = run_to_the_end(behaviour, before, Move(("paid", None, None)))
    assert suspended == 2  # the pre-transition hook, then the enter hook
    expected = apply_transition(spec, before, "paid", clock=at_t0)
    assert outcome.snapshot == expected.snapshot == outcome.reply
    assert outcome.snapshot.data == {"receipt": "r-1", "checked": True}
    assert outcome.after is not None and [
        h.name.rsplit(".", 1)[-1] for h in outcome.after.after_commit
    ] == ["log"]


def test_a_suspended_guard_vetoes_and_a_thrown_error_is_the_hooks() -> None:
    spec = order_flow().build()
    before = MachineSnapshot.initial(spec)
    behaviour = machine_behaviour(spec, clock=at_t0, suspend=True)
    with pytest.raises(TransitionRejected) as vetoed:
        run_to_the_end(behaviour, before, Move(("cancelled", None, None)))
    assert vetoed.value.guard.endswith("too_late")
    with pytest.raises(RuntimeError, match="receipt service is down") as failed:
        run_to_the_end(behaviour, before, Move(("paid", None, {"fail": True})))
    assert any("fetch_receipt" in note for note in failed.value.__notes__)


def test_a_machine_without_coroutine_hooks_never_suspends() -> None:
    spec = MachineBuilder("pending", ORDER_FLOW_PAID_IS_FINAL).build()
    behaviour = machine_behaviour(spec, clock=at_t0, suspend=True)
    outcome = behaviour(MachineSnapshot.initial(spec), Move(("paid", None, None)))
    assert outcome.snapshot.state == "paid"


def test_closing_a_suspended_move_closes_its_awaitable() -> None:
    spec = order_flow().build()
    behaviour = machine_behaviour(spec, clock=at_t0, suspend=True)
    with pytest.raises(Suspended) as caught:
        behaviour(MachineSnapshot.initial(spec), Move(("paid", None, None)))
    awaitable = caught.value.awaitable
    caught.value.close()
    assert asyncio.iscoroutine(awaitable) and awaitable.cr_frame is None  # closed


def test_an_async_modify_suspends_and_its_result_is_checked_when_resumed() -> None:
    async def add(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        return state.update(n=state.n + 1)

    async def forgets(state: ImmutableState) -> None:
        await asyncio.sleep(0)

    behaviour = manager_behaviour(suspend=True)
    before = StoreSnapshot.initial({"n": 1})
    outcome, suspended = run_to_the_end(behaviour, before, Modify((add,)))
    assert suspended == 1 and outcome.reply == {"n": 2} and outcome.snapshot.version == 1
    with pytest.raises(TypeError, match="forgets"):
        run_to_the_end(behaviour, before, Modify((forgets,)))
    # Updates and plain functions never suspend.
    assert behaviour(before, Update(({"n": 5},))).reply == {"n": 5}
    assert behaviour(before, Modify((lambda s: s.update(n=0),))).reply == {"n": 0}
