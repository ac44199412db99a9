"""Cheap cells: what a machine costs when it is idle, and what it shares.

Machines of one definition share one spec, one codec and one initial
snapshot; an idle cell holds no mailbox queue, no event and no lock of its
own; an idle actor is created and stopped without a turn on a worker.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support import wait_for_free_turn

from stateward.actors import Runtime, StateMachine, StateManager
from stateward.actors._cell_state import callback_locks
from stateward.actors._mailbox import _turn_locks
from stateward.core import ImmutableState, MachineBuilder, MachineSpec

pytestmark = pytest.mark.usefixtures("each_host")

TOGGLE = {"a": ["b"], "b": ["a"]}
WAIT = 10.0


def test_machines_defined_the_same_way_share_their_spec_and_initial_snapshot(
    runtime: Runtime,
) -> None:
    first = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="first", runtime=runtime)
    second = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="second", runtime=runtime)
    assert first.spec is second.spec
    assert first.snapshot is second.snapshot
    assert first._cell.codec is second._cell.codec
    first.transition("b")
    assert (first.current_state, second.current_state) == ("b", "a")
    assert second.snapshot.version == 0


def test_machines_of_different_definitions_do_not_share(runtime: Runtime) -> None:
    toggle = StateMachine("a", TOGGLE, runtime=runtime)
    other_start = StateMachine("b", TOGGLE, runtime=runtime)
    shorter = StateMachine("a", TOGGLE, history_limit=5, runtime=runtime)
    evented = StateMachine("a", TOGGLE, events={"go": "a -> b"}, runtime=runtime)
    specs = {id(m.spec) for m in (toggle, other_start, shorter, evented)}
    assert len(specs) == 4
    assert other_start.current_state == "b"
    assert shorter.spec.history_limit == 5
    assert evented.trigger("go").state == "b"
    assert toggle.spec.has_event("go") is False


def test_a_machine_made_with_data_starts_from_its_own_data(runtime: Runtime) -> None:
    plain = StateMachine("a", TOGGLE, runtime=runtime)
    with_data = StateMachine("a", TOGGLE, data={"n": 1}, runtime=runtime)
    assert with_data.spec is plain.spec
    assert with_data.data == {"n": 1} and plain.data == {}


def test_a_spec_passed_in_is_shared_as_is(runtime: Runtime) -> None:
    spec = MachineSpec("a", TOGGLE)
    one = StateMachine(spec, runtime=runtime)
    two = StateMachine(spec, runtime=runtime)
    assert one.spec is two.spec is spec
    assert one.snapshot is two.snapshot
    assert one._cell.codec is two._cell.codec


def test_a_builder_changed_after_a_machine_was_made_reaches_only_later_machines(
    runtime: Runtime,
) -> None:
    builder = MachineBuilder("a", TOGGLE)
    before = [StateMachine(builder, runtime=runtime) for _ in range(2)]
    assert before[0].spec is before[1].spec
    seen: list[str] = []

    @builder.after_commit
    def note(ctx: object) -> None:
        seen.append("after")

    after = StateMachine(builder, runtime=runtime)
    assert after.spec is not before[0].spec
    before[0].transition("b")
    assert seen == []
    after.transition("b")
    assert seen == ["after"]


def test_targets_given_as_one_shot_iterables_are_read_once(runtime: Runtime) -> None:
    machine = StateMachine("a", {"a": iter(["b"]), "b": iter(["a"])}, runtime=runtime)
    assert machine.transition("b").state == "b"
    assert machine.transition("a").state == "a"


# -- what an idle cell holds ---------------------------------------------------------------


def _slots(obj: object) -> list[Any]:
    return [
        getattr(obj, slot, None)
        for kind in type(obj).__mro__
        for slot in getattr(kind, "__slots__", ())
    ]


def test_an_idle_cell_holds_no_queue_no_event_and_no_lock(runtime: Runtime) -> None:
    machine = StateMachine("a", TOGGLE, runtime=runtime)
    cell = machine._cell
    assert cell.mailbox.queue is None
    machine.request_transition("b").result(timeout=WAIT)  # queued: runs in a turn
    wait_for_free_turn(cell.mailbox, WAIT)  # its holder has looked at the queue again
    assert cell.mailbox.queue is None  # dropped once found empty
    shared = {id(lock) for lock in (*callback_locks._locks, *_turn_locks)}
    held = [v for v in _slots(cell) + _slots(cell.mailbox) if id(v) not in shared]
    lock_types = (type(threading.Lock()), type(threading.RLock()))
    kinds = (threading.Event, collections.deque, *lock_types)
    assert not [v for v in held if isinstance(v, kinds)]
    assert cell.mailbox.turn == 0  # the turn is a token, not a lock
    if runtime.host is not runtime.dedicated_host:  # there, it records its own thread
        assert cell._extra is None  # no rarely used field was set


def test_idle_cells_share_their_locks(runtime: Runtime) -> None:
    cells = [StateMachine("a", TOGGLE, runtime=runtime)._cell for _ in range(200)]
    assert len({id(c.callback_lock) for c in cells}) <= 64
    assert len({id(c.commit_lock) for c in cells}) <= 64
    assert len({id(c.observer_lock) for c in cells}) <= 64


def test_machines_that_got_no_message_start_no_pooled_thread() -> None:
    with Runtime("idle", workers=2, default_timeout=WAIT) as runtime:
        machines = [StateMachine("a", TOGGLE, runtime=runtime) for _ in range(100)]
        assert all(m.alive and m.current_state == "a" for m in machines)
        assert runtime.host.threads == []  # type: ignore[attr-defined]
        machines[0].stop()  # an idle actor stops on the caller's thread
        assert not machines[0].alive
        assert runtime.host.threads == []  # type: ignore[attr-defined]
        reply = machines[1].request_transition("b")  # the first turn attaches a worker
        assert reply.result(timeout=WAIT).state == "b"
        assert len(runtime.host.threads) == 2  # type: ignore[attr-defined]
    assert runtime.host.threads == []  # type: ignore[attr-defined]


def test_every_request_of_every_sender_is_answered_in_its_order_while_queues_come_and_go(
    runtime: Runtime,
) -> None:
    """Senders race the turn's holder dropping the queue it found empty (and
    inline calls, which leave it alone): nothing is lost, and each sender's
    requests run in the order sent. Fixed counts."""
    senders, per_sender = 4, 1500
    manager = StateManager({"n": 0}, runtime=runtime)
    ran: list[tuple[int, int]] = []  # ops run one at a time
    replies: list[Any] = []
    errors: list[BaseException] = []

    def op(item: tuple[int, int]) -> Callable[[ImmutableState], ImmutableState]:
        def run(state: ImmutableState) -> ImmutableState:
            ran.append(item)
            return state.update(n=state.n + 1)

        return run

    def send(sender: int) -> None:
        try:
            for i in range(per_sender):
                if i % 3 == 0:
                    manager.modify(op((sender, i)), timeout=WAIT)  # inline when idle
                else:
                    replies.append(manager.request_modify(op((sender, i))))
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    for reply in replies:
        reply.result(timeout=WAIT)
    assert manager.get_state().n == senders * per_sender
    for sender in range(senders):
        assert [i for s, i in ran if s == sender] == list(range(per_sender))
