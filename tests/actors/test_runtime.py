"""Runtime lifecycle, timeouts, stopped actors, error reporting and run-to-completion."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading

import pytest
from support import TOGGLE, Workers

from stateward.actors import (
    ActorStopped,
    ActorTimeout,
    DuplicateActorName,
    ErrorReport,
    Reply,
    Runtime,
    RuntimeStopped,
    SelfCallError,
    StateMachine,
    StateManager,
)
from stateward.actors._handles import ActorHandle
from stateward.actors._runtime import stop_request
from stateward.core import ArgumentTypeError, ArgumentValueError, ImmutableState, MachineBuilder


def _blocker(manager: StateManager) -> tuple[threading.Event, Reply[ImmutableState]]:
    """Occupy ``manager``'s actor until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(10), "the test never released the actor"
        return state

    reply = manager.request_modify(hold)
    assert entered.wait(10)
    return release, reply


def test_shutdown_drains_mailboxes_and_stops_in_reverse_start_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[str] = []
    original = ActorHandle._stop

    def recording_stop(
        self: ActorHandle, reason: str, timeout: float | None, *, wait: bool
    ) -> None:
        stopped.append(self.name)
        original(self, reason, timeout, wait=wait)

    monkeypatch.setattr(ActorHandle, "_stop", recording_stop)
    runtime = Runtime("drain")
    first = StateManager({"n": 0}, name="first", runtime=runtime)
    second = StateManager({"n": 0}, name="second", runtime=runtime)
    replies = [
        m.request_modify(lambda s: s.update(n=s.n + 1)) for m in (first, second) for _ in range(500)
    ]
    runtime.shutdown(timeout=10)
    assert stopped == ["second", "first"]
    assert all(r.done() and r.exception() is None for r in replies)
    assert first.get_state().n == 500 and second.get_state().n == 500
    assert not first.alive and not second.alive
    with pytest.raises(
        ActorStopped,
        match=r"actor 'first' has stopped \(runtime 'drain' shut "
        r"down\)",
    ):
        first.update_state({"n": 0})
    with pytest.raises(RuntimeStopped, match="runtime 'drain' has shut down"):
        StateManager({}, runtime=runtime)


def test_runtime_is_a_context_manager_and_finds_actors_by_name() -> None:
    with Runtime("ctx") as runtime:
        machine = StateMachine("a", {"a": []}, name="m", runtime=runtime)
        assert runtime.get("m") is machine
        assert "m" in runtime and runtime.names() == ["m"]
        with pytest.raises(DuplicateActorName, match="already has an actor named 'm'"):
            StateMachine("a", {"a": []}, name="m", runtime=runtime)
        with pytest.raises(KeyError, match="has no actor 'nope'; actors: m"):
            runtime.get("nope")
        machine.stop()
        assert "m" not in runtime
        # The name is free again once the actor has stopped.
        StateMachine("a", {"a": []}, name="m", runtime=runtime)
    assert runtime.closed


def test_stopped_actor_answers_queued_requests_with_actor_stopped(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, name="gone", runtime=runtime)
    release, blocked = _blocker(manager)
    stop = stop_request(manager._cell, "stopped by the test")
    behind = [manager.request_update({"n": i}) for i in range(5)]
    release.set()
    blocked.result()
    stop.result()
    for reply in behind:
        error = reply.exception(timeout=5)
        assert isinstance(error, ActorStopped)
        assert error.actor == "gone" and error.reason == "stopped by the test"
    assert "create a new handle" in str(behind[0].exception())
    with pytest.raises(ActorStopped):
        manager.request_update({"n": 1}).result()
    manager.stop()  # stopping twice is harmless
    assert manager.get_state() == {"n": 0}


def test_timeout_names_actor_message_and_seconds_and_withdraws_the_request(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, name="slow", runtime=runtime)
    release, blocked = _blocker(manager)
    with pytest.raises(ActorTimeout) as caught:
        manager.update_state({"n": 99}, timeout=0.05)
    err = caught.value
    assert (err.actor, err.seconds, err.started) == ("slow", 0.05, False)
    assert "update({'n': 99})" in str(err) and "0.05 s" in str(err)
    assert "will not run" in str(err)
    release.set()
    blocked.result()
    assert manager.update_state({"m": 1}) == {"n": 0, "m": 1}
    assert manager.version == 2  # the withdrawn update never ran


def test_timeout_after_start_says_the_request_may_still_complete(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    entered, release = threading.Event(), threading.Event()

    def slow(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert release.wait(10)
        return state.update(n=1)

    reply = manager.request_modify(slow)
    assert entered.wait(10)
    with pytest.raises(ActorTimeout, match="may still complete") as caught:
        reply.result(timeout=0.01)
    assert caught.value.started
    release.set()
    assert reply.result() == {"n": 1}


def test_runtime_default_timeout_applies_and_must_be_positive() -> None:
    with pytest.raises(ArgumentValueError, match="'default_timeout' must be a finite number"):
        Runtime(default_timeout=0)
    with pytest.raises(ArgumentTypeError, match="'default_timeout' must be a number"):
        Runtime(default_timeout="5")  # type: ignore[arg-type]
    with Runtime(default_timeout=0.05) as runtime:
        manager = StateManager({"n": 0}, runtime=runtime)
        release, blocked = _blocker(manager)
        with pytest.raises(ActorTimeout, match=r"within 0\.05 s"):
            manager.update_state({"n": 1})
        release.set()
        blocked.result(timeout=10)


def test_hook_sending_to_its_own_actor_is_queued_after_the_current_message(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("idle", {"idle": ["busy"], "busy": ["idle"]})
    seen: list[str] = []
    follow_ups: list[Reply[object]] = []

    @flow.after_commit("busy")
    def go_back(ctx):
        seen.append(f"after {ctx.target}, state is {machine.current_state}")
        follow_ups.append(machine.request_transition("idle"))

    machine = StateMachine(flow, runtime=runtime)
    assert machine.transition("busy").state == "busy"
    assert follow_ups[0].result().state == "idle"
    assert seen == ["after busy, state is busy"]
    assert [r.to_state for r in machine.history] == ["busy", "idle"]


def test_blocking_call_to_itself_raises_instead_of_deadlocking(runtime: Runtime) -> None:
    flow = MachineBuilder("a", TOGGLE)
    errors: list[BaseException] = []

    @flow.after_commit
    def call_self(ctx):
        try:
            machine.transition("a", timeout=1)
        except SelfCallError as exc:
            errors.append(exc)

    machine = StateMachine(flow, name="loop", runtime=runtime)
    manager = StateManager({"n": 0}, name="store", runtime=runtime)

    def observer(old: ImmutableState, new: ImmutableState) -> None:
        manager.update_state({"n": -1})

    manager.add_observer(observer)
    machine.transition("b")
    assert len(errors) == 1
    assert "on actor 'loop'" in str(errors[0]) and "request_*" in str(errors[0])
    manager.update_state({"n": 1})  # the observer's self-call is reported, not raised here
    assert manager.get_state() == {"n": 1}
    report = runtime.errors()[-1]
    assert isinstance(report.error, SelfCallError)
    assert (report.actor, report.source) == ("store", "observer")


def test_after_commit_and_observer_errors_are_reported_never_undo_the_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports: list[ErrorReport] = []
    with Runtime("errs", error_handler=reports.append) as runtime:
        flow = MachineBuilder("a", {"a": ["b"], "b": []})
        ran: list[str] = []

        @flow.after_commit
        def broken(ctx):
            raise RuntimeError("after-commit failed")

        @flow.after_commit
        def still_runs(ctx):
            ran.append(ctx.target)

        machine = StateMachine(flow, name="m", runtime=runtime)
        machine.add_observer(lambda old, new: 1 / 0)
        with caplog.at_level(logging.ERROR, logger="stateward"):
            assert machine.transition("b").state == "b"
        assert machine.current_state == "b" and ran == ["b"]
        assert [(r.actor, r.source) for r in reports] == [("m", "after_commit"), ("m", "observer")]
        assert isinstance(reports[1].error, ZeroDivisionError)
        assert machine.stats().hook_errors == 2
        assert runtime.error_count == 2
        logged = [r.getMessage() for r in caplog.records]
        assert any("actor 'm'" in m and "after-commit failed" in m for m in logged)


def test_observers_run_in_commit_order_and_can_be_removed(
    runtime: Runtime, workers: Workers
) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    seen: list[tuple[int, int]] = []

    def observer(old: ImmutableState, new: ImmutableState) -> None:
        seen.append((old.n, new.n))

    manager.add_observer(observer)
    for _ in range(4):
        workers.start(lambda: [manager.modify(lambda s: s.update(n=s.n + 1)) for _ in range(50)])
    workers.join()
    assert seen == [(i, i + 1) for i in range(200)]
    manager.remove_observer(observer)
    manager.update_state({"n": 0})
    assert len(seen) == 200
    with pytest.raises(ValueError, match="is not an observer"):
        manager.remove_observer(observer)
    with pytest.raises(TypeError, match="must be callable"):
        manager.add_observer(42)  # type: ignore[arg-type]


def test_done_callbacks_run_once_done_and_their_errors_are_reported(runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=runtime)
    results: list[object] = []
    reply = manager.request_update({"n": 1}, callback=lambda r: results.append(r.result()))
    reply.result()
    reply.add_done_callback(lambda r: results.append("late"))  # already done: runs now
    assert results == [{"n": 1}, "late"]
    manager.request_update({"n": 2}, callback=lambda r: 1 / 0).result()
    assert manager.update_state({"n": 3}) == {"n": 3}
    assert any(
        isinstance(r.error, ZeroDivisionError) and r.source == "callback" for r in runtime.errors()
    )


def test_default_runtime_never_keeps_the_interpreter_alive_and_drains_at_exit() -> None:
    script = textwrap.dedent(
        """
        import os

        from stateward.actors import StateManager

        # One write per line: two threads write, and print() may split a line.
        counter = StateManager({"n": 0})
        counter.add_observer(
            lambda old, new: os.write(1, b"final 300\\n") if new.n == 300 else None)
        for _ in range(300):
            counter.request_modify(lambda s: s.update(n=s.n + 1))
        os.write(1, b"main done\\n")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    # Two threads write, so the lines may come in either order.
    assert sorted(result.stdout.splitlines()) == ["final 300", "main done"]
    assert "Traceback" not in result.stderr


def test_waiting_in_a_hook_for_a_reply_from_the_same_actor_raises_at_once(
    runtime: Runtime,
) -> None:
    flow = MachineBuilder("a", TOGGLE)
    errors: list[BaseException] = []

    @flow.after_commit("b")
    def wait_for_own_reply(ctx):
        reply = machine.request_transition("a")
        try:
            reply.result(timeout=30)
        except SelfCallError as exc:
            errors.append(exc)
        # A done-callback is the way to react to it.
        reply.add_done_callback(lambda r: errors.append(r.result().state))

    machine = StateMachine(flow, runtime=runtime)
    machine.transition("b")
    assert isinstance(errors[0], SelfCallError)
    assert "waiting for transition('a')" in str(errors[0])
    assert "add_done_callback" in str(errors[0])
    # The queued request still runs after the current message.
    assert machine.request_transition("b").result().state == "b"
    assert errors[1] == "a"
