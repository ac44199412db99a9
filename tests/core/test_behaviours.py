"""Behaviours: ``behaviour(snapshot, message) -> Outcome(snapshot, reply, after)``.

Each kind's behaviour is called here directly, with no actor: what it returns
for each message kind, what it refuses, and what becomes of hooks' errors
(before the commit: raised, and the old snapshot stands; after it: returned
by the after-commit work, never raised).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
from collections.abc import Awaitable
from typing import Any

import pytest
from support import ORDER_FLOW_PAID_IS_FINAL

from stateward.core import (
    ArgumentTypeError,
    ConfigChange,
    ConfigHistory,
    HookFailure,
    HookReturnError,
    ImmutableState,
    InvalidArgument,
    InvalidTransition,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    StoreSnapshot,
    TransitionContext,
    TransitionOutcome,
    TransitionRecord,
    TransitionRejected,
    UnknownVersionError,
    apply_transition,
    run_after_commit,
)
from stateward.core._behaviours import (
    Outcome,
    committed,
    config_behaviour,
    machine_behaviour,
    manager_behaviour,
)
from stateward.core._messages import ConfigUpdate, Message, Modify, Move, Rollback, Update

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def at_t0() -> dt.datetime:
    return T0


def frozen(**values: Any) -> ImmutableState:
    return ImmutableState(values)


def plain_spec() -> MachineSpec:
    """No hooks at all: the fast path."""
    return MachineSpec("pending", ORDER_FLOW_PAID_IS_FINAL)


def order_spec(seen: list[str]) -> MachineSpec:
    """Events, a guard, an enter hook that sets data, after-commit hooks (one fails)."""
    flow = MachineBuilder("pending", ORDER_FLOW_PAID_IS_FINAL, events={"pay": "pending -> paid"})

    @flow.guard("cancelled")
    def not_after_payment(ctx: TransitionContext) -> bool:
        """cancelling needs a reason"""
        return "reason" in ctx.payload

    @flow.on_enter("paid")
    def record_amount(ctx: TransitionContext) -> dict[str, Any]:
        return {"paid": ctx.payload.get("amount", 0)}

    @flow.after_commit("paid")
    def mail(ctx: TransitionContext) -> None:
        seen.append(f"mail {ctx.source}->{ctx.target} v{ctx.version} by {ctx.machine}")

    @flow.after_commit("paid")
    def ledger(ctx: TransitionContext) -> None:
        raise RuntimeError("ledger down")

    @flow.after_commit("paid")
    def audit(ctx: TransitionContext) -> None:
        seen.append("audit")

    return flow.build()


# -- messages ------------------------------------------------------------------------------


def test_messages_are_frozen_values_of_their_kind() -> None:
    move = Move(("paid", None, frozen(amount=5)))
    assert (move.target, move.event, move.payload) == ("paid", None, {"amount": 5})
    with pytest.raises(AttributeError):
        move.target = "shipped"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        move.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        move[0] = "shipped"  # type: ignore[index]
    assert move == Move(("paid", None, frozen(amount=5)))
    assert hash(move) == hash(Move(("paid", None, frozen(amount=5))))
    # Equal fields of another kind are another message.
    assert ConfigUpdate((frozen(a=1), None)) != Rollback((frozen(a=1), None))  # type: ignore[arg-type]
    assert Update((frozen(a=1),)) != (frozen(a=1),)
    assert repr(Rollback((2, None))) == "Rollback(version=2, metadata=None)"


@pytest.mark.parametrize(
    ("message", "described"),
    [
        (Move(("paid", None, None)), "transition('paid')"),
        (Move((None, "pay", frozen(amount=5))), "transition(event='pay', payload={'amount': 5})"),
        (Update((frozen(n=99),)), "update({'n': 99})"),
        (Modify((at_t0,)), "modify(at_t0)"),
        (ConfigUpdate((frozen(x=1), frozen(by="ops"))), "update({'x': 1}, metadata={'by': 'ops'})"),
        (Rollback((2, None)), "rollback(2)"),
        (Update((frozen(text="x" * 100),)), "update({'text': '" + "x" * 47 + "...)"),
    ],
)
def test_a_message_describes_itself_as_the_call_it_stands_for(
    message: Message, described: str
) -> None:
    assert message.describe() == described


# -- the machine behaviour -----------------------------------------------------------------


def test_a_move_gives_the_next_snapshot_as_snapshot_and_reply_and_no_work_without_hooks() -> None:
    spec = plain_spec()
    behaviour = machine_behaviour(spec, machine="order-1", clock=at_t0)
    before = MachineSnapshot.initial(spec, {"n": 1})

    outcome = behaviour(before, Move(("paid", None, frozen(amount=5))))

    assert isinstance(outcome, Outcome)
    assert outcome.reply is outcome.snapshot
    assert outcome.after is None
    new = outcome.snapshot
    assert (new.state, new.version, new.data) == ("paid", 1, {"n": 1})
    assert list(new.history) == [TransitionRecord(1, "pending", "paid", None, T0, ("amount",))]
    assert before == MachineSnapshot.initial(spec, {"n": 1})  # nothing changed in place


def test_a_move_agrees_with_apply_transition() -> None:
    seen: list[str] = []
    spec = order_spec(seen)
    before = MachineSnapshot.initial(spec)
    for message in (
        Move(("paid", None, frozen(amount=7))),
        Move((None, "pay", frozen(amount=7))),
        Move(("paid", "pay", None)),
        Move(("cancelled", None, frozen(reason="changed my mind"))),
    ):
        outcome = machine_behaviour(spec, machine="m", clock=at_t0)(before, message)
        reference = apply_transition(
            spec,
            before,
            message.target,
            event=message.event,
            payload=message.payload,
            clock=at_t0,
            machine="m",
        )
        assert outcome.snapshot == reference.snapshot
        if reference.after_commit:
            assert outcome.after == reference
        else:
            assert outcome.after is None


def test_after_commit_hooks_are_work_for_after_the_commit_and_their_errors_are_returned() -> None:
    seen: list[str] = []
    spec = order_spec(seen)
    behaviour = machine_behaviour(spec, machine="order-1", clock=at_t0)
    before = MachineSnapshot.initial(spec)

    outcome = behaviour(before, Move((None, "pay", frozen(amount=5))))

    assert seen == []  # nothing after-commit runs before the commit
    assert outcome.snapshot.data == {"paid": 5}
    after = outcome.after
    assert isinstance(after, TransitionOutcome)
    assert (after.previous, after.snapshot) == (before, outcome.snapshot)
    assert after.record == TransitionRecord(1, "pending", "paid", "pay", T0, ("amount",))
    assert [hook.name.rpartition(".")[2] for hook in after.after_commit] == [
        "mail",
        "ledger",
        "audit",
    ]

    failures = run_after_commit(after)

    assert seen == ["mail pending->paid v1 by order-1", "audit"]  # one failure stops no other
    assert len(failures) == 1 and isinstance(failures[0], HookFailure)
    assert failures[0].hook.endswith("ledger") and failures[0].kind == "after_commit"
    assert str(failures[0].error) == "ledger down"


def test_a_refused_move_raises_and_leaves_the_snapshot_as_it_was() -> None:
    seen: list[str] = []
    spec = order_spec(seen)
    behaviour = machine_behaviour(spec, machine="order-1", clock=at_t0)
    before = MachineSnapshot.initial(spec)

    with pytest.raises(InvalidTransition) as invalid:
        behaviour(before, Move(("shipped", None, None)))
    assert (invalid.value.state, invalid.value.target) == ("pending", "shipped")
    assert "order-1" in str(invalid.value)

    with pytest.raises(TransitionRejected, match="cancelling needs a reason") as vetoed:
        behaviour(before, Move(("cancelled", None, None)))
    assert vetoed.value.guard.endswith("not_after_payment")

    with pytest.raises(InvalidTransition, match="no event named 'ship'"):
        behaviour(before, Move((None, "ship", None)))
    assert seen == [] and before == MachineSnapshot.initial(spec)


def test_a_hook_error_before_the_commit_reaches_the_caller_unchanged() -> None:
    flow = MachineBuilder("pending", ORDER_FLOW_PAID_IS_FINAL)
    boom = ValueError("no stock")

    @flow.on_exit("pending")
    def reserve(ctx: TransitionContext) -> None:
        if ctx.target == "paid":
            raise boom

    @flow.on_enter("cancelled")
    def bad_return(ctx: TransitionContext) -> Any:
        return 42

    spec = flow.build()
    behaviour = machine_behaviour(spec, clock=at_t0)
    before = MachineSnapshot.initial(spec)

    with pytest.raises(ValueError, match="no stock") as raised:
        behaviour(before, Move(("paid", None, None)))
    assert raised.value is boom
    assert any("reserve'" in note for note in raised.value.__notes__)
    with pytest.raises(HookReturnError):
        behaviour(before, Move(("cancelled", None, None)))


def test_async_guards_and_hooks_run_through_the_given_runner() -> None:
    flow = MachineBuilder("pending", ORDER_FLOW_PAID_IS_FINAL)

    @flow.guard("cancelled")
    async def too_late(ctx: TransitionContext) -> bool:
        await asyncio.sleep(0)
        return False

    @flow.on_enter("paid")
    async def fetch_receipt(ctx: TransitionContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"receipt": "r-1"}

    spec = flow.build()
    ran: list[str] = []

    def run_async(awaitable: Awaitable[Any]) -> Any:
        ran.append(type(awaitable).__name__)
        return asyncio.run(awaitable)  # type: ignore[arg-type]

    behaviour = machine_behaviour(spec, clock=at_t0, run_async=run_async)
    before = MachineSnapshot.initial(spec)

    assert behaviour(before, Move(("paid", None, None))).snapshot.data == {"receipt": "r-1"}
    with pytest.raises(TransitionRejected):
        behaviour(before, Move(("cancelled", None, None)))
    assert ran == ["coroutine", "coroutine"]
    # With no runner given, a private event loop runs them.
    default = machine_behaviour(spec, clock=at_t0)
    assert default(before, Move(("paid", None, None))).snapshot.data == {"receipt": "r-1"}


def test_each_move_reads_the_clock_once() -> None:
    ticks = iter([T0, T0 + dt.timedelta(seconds=1)])
    spec = plain_spec()
    behaviour = machine_behaviour(spec, clock=lambda: next(ticks))
    first = behaviour(MachineSnapshot.initial(spec), Move(("paid", None, None))).snapshot
    second = behaviour(first, Move(("shipped", None, None))).snapshot
    assert [r.at for r in second.history] == [T0, T0 + dt.timedelta(seconds=1)]


# -- the manager behaviour -----------------------------------------------------------------


def test_update_merges_changes_as_the_next_version_and_replies_with_the_state() -> None:
    behaviour = manager_behaviour()
    before = StoreSnapshot.initial({"n": 1, "keep": True})

    outcome = behaviour(before, Update((frozen(n=2, new="x"),)))

    assert outcome.snapshot == StoreSnapshot(frozen(n=2, keep=True, new="x"), 1)
    assert outcome.reply is outcome.snapshot.state
    assert outcome.after is None
    assert before == StoreSnapshot.initial({"n": 1, "keep": True})


def test_modify_runs_its_function_on_the_state() -> None:
    before = StoreSnapshot(frozen(n=1), 4)

    outcome = manager_behaviour()(before, Modify((lambda s: s.update(n=s.n + 1),)))
    replaced = manager_behaviour()(before, Modify((lambda s: {"m": 0},)))

    assert outcome.snapshot == StoreSnapshot(frozen(n=2), 5)
    assert outcome.reply == {"n": 2} and outcome.after is None
    assert replaced.snapshot == StoreSnapshot(frozen(m=0), 5)


def test_an_async_modify_function_runs_through_the_given_runner() -> None:
    async def double(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        return state.update(n=state.n * 2)

    ran: list[object] = []

    def run_async(awaitable: Awaitable[Any]) -> Any:
        ran.append(awaitable)
        return asyncio.run(awaitable)  # type: ignore[arg-type]

    outcome = manager_behaviour(run_async=run_async)(StoreSnapshot(frozen(n=3)), Modify((double,)))
    assert outcome.reply == {"n": 6} and len(ran) == 1


def test_a_failing_modify_function_raises_and_changes_nothing() -> None:
    boom = KeyError("missing")

    def fails(state: ImmutableState) -> ImmutableState:
        raise boom

    behaviour = manager_behaviour()
    before = StoreSnapshot(frozen(n=1), 2)
    with pytest.raises(KeyError) as raised:
        behaviour(before, Modify((fails,)))
    assert raised.value is boom
    with pytest.raises(HookReturnError, match="returned None"):
        behaviour(before, Modify((lambda s: None,)))
    assert before == StoreSnapshot(frozen(n=1), 2)


# -- the config behaviour ------------------------------------------------------------------


def test_a_config_update_is_a_new_version_and_replies_with_its_change() -> None:
    behaviour = config_behaviour(clock=at_t0)
    before = ConfigHistory.start({"x": 1, "y": 2}, clock=at_t0)

    outcome = behaviour(before, ConfigUpdate((frozen(x=10), frozen(by="ops"))))

    change = outcome.reply
    assert isinstance(change, ConfigChange)
    assert (change.version, change.changes, change.config) == (1, {"x": 10}, {"x": 10, "y": 2})
    assert (change.metadata, change.at) == ({"by": "ops"}, T0)
    assert outcome.snapshot.version == 1 and outcome.snapshot.current == change
    assert outcome.after is None
    assert before.version == 0


def test_a_rollback_restores_an_old_config_as_a_new_version() -> None:
    behaviour = config_behaviour(clock=at_t0)
    history = ConfigHistory.start({"x": 1}, clock=at_t0)
    history = behaviour(history, ConfigUpdate((frozen(x=2, z=3), None))).snapshot

    outcome = behaviour(history, Rollback((0, frozen(why="bad deploy"))))

    change = outcome.reply
    assert (change.version, change.config, change.rollback_of) == (2, {"x": 1}, 0)
    assert change.removed == ("z",) and change.metadata["why"] == "bad deploy"
    with pytest.raises(UnknownVersionError):
        behaviour(history, Rollback((7, None)))
    assert history.version == 1


# -- what no behaviour takes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "snapshot", "message"),
    [
        (machine_behaviour(plain_spec()), MachineSnapshot("pending"), Update((frozen(),))),
        (machine_behaviour(plain_spec()), MachineSnapshot("pending"), ("paid", None, None)),
        (manager_behaviour(), StoreSnapshot(frozen()), Move(("paid", None, None))),
        (manager_behaviour(), StoreSnapshot(frozen()), Rollback((0, None))),
        (config_behaviour(), ConfigHistory.start({}), Update((frozen(),))),
    ],
    ids=["machine-update", "machine-plain-tuple", "manager-move", "manager-rollback", "config"],
)
def test_a_message_of_another_kind_is_refused_with_an_invalid_argument(
    behaviour: Any, snapshot: Any, message: Any
) -> None:
    with pytest.raises(ArgumentTypeError, match="'message' must be a") as refused:
        behaviour(snapshot, message)
    assert isinstance(refused.value, InvalidArgument) and isinstance(refused.value, TypeError)
    assert "The handles build them" in str(refused.value)


def test_committed_turns_a_transition_into_an_outcome_with_work_only_when_hooks_apply() -> None:
    seen: list[str] = []
    spec = order_spec(seen)
    before = MachineSnapshot.initial(spec)
    with_hooks = apply_transition(spec, before, "paid", clock=at_t0)
    without = apply_transition(spec, before, "cancelled", payload={"reason": "r"}, clock=at_t0)

    outcome = committed(with_hooks, "row result")
    assert (outcome.snapshot, outcome.reply, outcome.after) == (
        with_hooks.snapshot,
        "row result",
        with_hooks,
    )
    assert committed(without, None).after is None


# -- purity ----------------------------------------------------------------------------------

PURE = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path, target=None):
            if name in ("threading", "pykka", "asyncio") or name.startswith("pykka."):
                raise ImportError(f"{name} is blocked in this test")

    for name in ("threading", "logging", "asyncio"):
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, Block())

    from stateward.core import ConfigHistory, MachineSpec, MachineSnapshot, StoreSnapshot
    from stateward.core import ImmutableState
    from stateward.core._behaviours import config_behaviour, machine_behaviour, manager_behaviour
    from stateward.core._messages import ConfigUpdate, Modify, Move, Rollback, Update

    spec = MachineSpec("a", {"a": ["b"], "b": []})
    moved = machine_behaviour(spec)(MachineSnapshot.initial(spec), Move(("b", None, None)))
    assert moved.snapshot.state == "b"
    manager = manager_behaviour()
    updated = manager(StoreSnapshot.initial({"n": 1}), Update((ImmutableState(n=2),)))
    assert manager(updated.snapshot, Modify((lambda s: s.update(n=3),))).reply == {"n": 3}
    config = config_behaviour()
    history = config(ConfigHistory.start({"x": 1}), ConfigUpdate((ImmutableState(x=2), None)))
    assert config(history.snapshot, Rollback((0, None))).reply.config == {"x": 1}
    for name in ("threading", "pykka", "asyncio", "logging"):
        assert name not in sys.modules, f"{name} was imported"
    print("pure ok")
    """
)


def test_behaviours_and_messages_need_no_threads_pykka_or_asyncio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PURE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pure ok" in result.stdout
