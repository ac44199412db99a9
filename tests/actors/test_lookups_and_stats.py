"""Looking actors up, starting them under a stopped supervisor, reading the
runtime's counters, and the thread an observer runs on."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from support import wait_for_free_turn

from stateward.actors import (
    ActorNotFound,
    ActorStats,
    Runtime,
    RuntimeStats,
    RuntimeStopped,
    StateMachine,
    StateManager,
    Supervisor,
    SupervisorStopped,
)
from stateward.core import ImmutableState, StatewardError

WAIT = 10.0


def test_get_with_an_unknown_name_raises_actor_not_found_naming_the_fix(
    runtime: Runtime,
) -> None:
    StateManager({"n": 0}, name="orders", runtime=runtime)
    with pytest.raises(ActorNotFound) as caught:
        runtime.get("order")
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, StatewardError)
    assert (error.name, error.runtime, error.known) == ("order", "test", ("orders",))
    # Not quoted the way a KeyError shows its key.
    assert str(error).startswith("runtime 'test' has no actor 'order'; actors: orders. ")
    assert "runtime.names()" in str(error)


def test_starting_under_a_stopped_supervisor_says_the_supervisor_stopped(
    runtime: Runtime,
) -> None:
    sup = Supervisor("payments", runtime=runtime)
    sup.stop(timeout=WAIT)
    assert not runtime.closed
    with pytest.raises(SupervisorStopped) as caught:
        StateManager({"n": 0}, runtime=runtime, supervisor=sup)
    error = caught.value
    assert isinstance(error, RuntimeStopped)  # what it was raised as before
    assert (error.supervisor, error.runtime) == ("payments", "test")
    assert "supervisor 'payments' of runtime 'test' has stopped" in str(error)
    assert "supervisor 'payments' stopped" in error.reason
    assert "has shut down" not in str(error)
    with pytest.raises(SupervisorStopped):
        Supervisor("child", runtime=runtime, parent=sup)
    # The runtime itself still takes actors.
    assert StateManager({"n": 1}, runtime=runtime).get_state().n == 1


def test_runtime_stats_is_a_frozen_value_that_reads_as_a_mapping(runtime: Runtime) -> None:
    machine = StateMachine("a", {"a": ["b"], "b": []}, name="m", runtime=runtime)
    machine.transition("b")
    stats = runtime.stats()
    assert isinstance(stats, RuntimeStats) and dataclasses.is_dataclass(stats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.errors = 3  # type: ignore[misc]
    assert not hasattr(stats, "__dict__")  # slotted
    assert isinstance(stats.actors["m"], ActorStats)
    # As a mapping, the way it read when it was a dict.
    assert stats["m"] is stats.actors["m"] and stats["m"].version == 1
    assert "m" in stats and len(stats) == 1 and list(stats) == ["m"]
    assert [s.name for s in stats.values()] == ["m"]
    assert stats.events["started"] == 1 and stats.errors == 0 and stats.fatal is None
    with pytest.raises(TypeError):
        stats.events["started"] = 5  # type: ignore[index]


@pytest.mark.parametrize("workers", [0, None], ids=["thread", "pool"])
def test_an_observer_runs_on_the_thread_that_ran_the_request(workers: int | None) -> None:
    with Runtime("test", default_timeout=WAIT, workers=workers) as runtime:
        observer_runs_where_the_request_ran(runtime)


def observer_runs_where_the_request_ran(runtime: Runtime) -> None:
    counter = StateManager({"n": 0}, name="counter", runtime=runtime)
    ran: list[tuple[str, threading.Thread]] = []
    counter.add_observer(lambda old, new: ran.append(("observer", threading.current_thread())))

    def bump(state: ImmutableState) -> ImmutableState:
        ran.append(("request", threading.current_thread()))
        return state.update(n=state.n + 1)

    counter.request_modify(bump).result(timeout=WAIT)  # queued: the actor's worker runs it
    # Wait until the worker has given the turn back (the end of its turn),
    # so that the next blocking call finds the actor idle and runs inline.
    wait_for_free_turn(counter._cell.mailbox, WAIT)
    counter.modify(bump, timeout=WAIT)  # idle actor: run inline, on this thread
    worker = ran[0][1]
    if runtime.host is runtime.dedicated_host:  # workers=0: the actor's own thread
        assert worker.name == "stateward:test:counter"
    else:  # one of the pool's
        assert worker in runtime.host.threads  # type: ignore[attr-defined]
    here = threading.current_thread()
    assert ran == [("request", worker), ("observer", worker), ("request", here), ("observer", here)]
