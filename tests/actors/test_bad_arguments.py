"""A caller's bad arguments are refused in the caller's thread: they never reach,
crash or change an actor, and never stop the runtime.

Every public write method of every handle is called with a table of bad
inputs. After each call the actor has received nothing (its message count is
unchanged), has not restarted, has the same state and version, and the
runtime's other actors still work.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stateward.actors import ConfigManager, Runtime, StateMachine, StateManager
from stateward.core import (
    ArgumentTypeError,
    ArgumentValueError,
    InvalidArgument,
    MachineSnapshot,
    MachineSpec,
    StatewardError,
    UnencodableValueError,
    apply_transition,
)

Call = Callable[[Any], Any]


def _machine(rt: Runtime) -> StateMachine:
    return StateMachine(
        "a",
        {"a": ["b"], "b": []},
        events={"go": ("a", "b")},
        runtime=rt,
        on_error="restart",
    )


def _manager(rt: Runtime) -> StateManager:
    return StateManager({"n": 0}, runtime=rt, on_error="restart")


def _config(rt: Runtime) -> ConfigManager:
    config = ConfigManager({"level": "INFO"}, runtime=rt, on_error="restart")
    config.update_config({"level": "DEBUG"})
    return config


def _ok(reply: Any) -> None:
    """A callback that is fine (for cases whose bad argument is another one)."""


#: (id, handle factory, the bad call, the expected error type)
CASES: list[tuple[str, Callable[[Runtime], Any], Call, type[Exception]]] = [
    # StateMachine.transition / transition_to
    ("transition-list", _machine, lambda m: m.transition(["b"]), ArgumentTypeError),
    ("transition-dict", _machine, lambda m: m.transition({"b": 1}), ArgumentTypeError),
    ("transition-int-data", _machine, lambda m: m.transition("b", 5), ArgumentTypeError),
    ("transition-pairs", _machine, lambda m: m.transition("b", [("k", 1)]), ArgumentTypeError),
    ("transition-none", _machine, lambda m: m.transition(None), ArgumentTypeError),
    ("transition-int", _machine, lambda m: m.transition(1), ArgumentTypeError),
    ("transition-int-key", _machine, lambda m: m.transition("b", {1: 2}), UnencodableValueError),
    (
        "transition-object",
        _machine,
        lambda m: m.transition("b", {"x": object()}),
        UnencodableValueError,
    ),
    ("transition-timeout-str", _machine, lambda m: m.transition("b", timeout="5"), TypeError),
    ("transition-timeout-neg", _machine, lambda m: m.transition("b", timeout=-1), ValueError),
    ("transition-timeout-nan", _machine, lambda m: m.transition("b", timeout=math.nan), ValueError),
    ("transition-timeout-inf", _machine, lambda m: m.transition("b", timeout=math.inf), ValueError),
    ("transition_to-list", _machine, lambda m: m.transition_to(["b"]), ArgumentTypeError),
    # StateMachine.trigger
    ("trigger-list", _machine, lambda m: m.trigger(["go"]), ArgumentTypeError),
    ("trigger-none", _machine, lambda m: m.trigger(None), ArgumentTypeError),
    ("trigger-int-data", _machine, lambda m: m.trigger("go", 5), ArgumentTypeError),
    # StateMachine.request_transition
    ("request-list", _machine, lambda m: m.request_transition(["b"]), ArgumentTypeError),
    ("request-nothing", _machine, lambda m: m.request_transition(), ArgumentTypeError),
    ("request-int-data", _machine, lambda m: m.request_transition("b", 5), ArgumentTypeError),
    ("request-int-event", _machine, lambda m: m.request_transition(event=3), ArgumentTypeError),
    (
        "request-callback",
        _machine,
        lambda m: m.request_transition("b", callback=5),
        ArgumentTypeError,
    ),
    # StateManager
    ("update_state-list", _manager, lambda s: s.update_state(["n"]), ArgumentTypeError),
    ("update_state-int", _manager, lambda s: s.update_state(5), ArgumentTypeError),
    (
        "update_state-object",
        _manager,
        lambda s: s.update_state({"n": object()}),
        UnencodableValueError,
    ),
    ("update_state-int-key", _manager, lambda s: s.update_state({1: 2}), UnencodableValueError),
    (
        "update_state-timeout",
        _manager,
        lambda s: s.update_state({"n": 1}, timeout="x"),
        TypeError,
    ),
    ("modify-int", _manager, lambda s: s.modify(5), ArgumentTypeError),
    ("modify-none", _manager, lambda s: s.modify(None), ArgumentTypeError),
    ("modify-timeout", _manager, lambda s: s.modify(lambda st: st, timeout=-2), ValueError),
    ("request_update-int", _manager, lambda s: s.request_update(5), ArgumentTypeError),
    (
        "request_update-callback",
        _manager,
        lambda s: s.request_update({"n": 1}, callback="no"),
        ArgumentTypeError,
    ),
    ("request_modify-int", _manager, lambda s: s.request_modify(5), ArgumentTypeError),
    (
        "request_modify-callback",
        _manager,
        lambda s: s.request_modify(lambda st: st, callback=3),
        ArgumentTypeError,
    ),
    # ConfigManager
    ("update_config-int", _config, lambda c: c.update_config(5), ArgumentTypeError),
    (
        "update_config-metadata",
        _config,
        lambda c: c.update_config({"a": 1}, 5),
        ArgumentTypeError,
    ),
    (
        "update_config-object",
        _config,
        lambda c: c.update_config({"a": object()}),
        UnencodableValueError,
    ),
    (
        "update_config-timeout",
        _config,
        lambda c: c.update_config({"a": 1}, timeout=[1]),
        TypeError,
    ),
    ("rollback-str", _config, lambda c: c.rollback("0"), ArgumentTypeError),
    ("rollback-bool", _config, lambda c: c.rollback(True), ArgumentTypeError),
    ("rollback-float", _config, lambda c: c.rollback(0.0), ArgumentTypeError),
    ("rollback-metadata", _config, lambda c: c.rollback(0, [1]), ArgumentTypeError),
    ("request_update-cfg", _config, lambda c: c.request_update(5), ArgumentTypeError),
    (
        "request_update-cfg-metadata",
        _config,
        lambda c: c.request_update({"a": 1}, "meta"),
        ArgumentTypeError,
    ),
    ("request_rollback-str", _config, lambda c: c.request_rollback("0"), ArgumentTypeError),
    (
        "request_rollback-metadata",
        _config,
        lambda c: c.request_rollback(0, [1]),
        ArgumentTypeError,
    ),
    (
        "request_rollback-callback",
        _config,
        lambda c: c.request_rollback(0, callback=1),
        ArgumentTypeError,
    ),
    ("diff-str", _config, lambda c: c.diff("0", 1), ArgumentTypeError),
    ("diff-none", _config, lambda c: c.diff(0, None), ArgumentTypeError),
    # Every handle
    ("stop-timeout", _manager, lambda s: s.stop(timeout="soon"), TypeError),
]


@pytest.fixture
def strict() -> Iterator[Runtime]:
    """A runtime whose root supervisor gives up at the second crash."""
    rt = Runtime("strict", default_timeout=10.0, max_restarts=1, within=60.0)
    yield rt
    rt.shutdown(timeout=10.0)


def _version_and_value(handle: Any) -> tuple[int, Any]:
    if isinstance(handle, ConfigManager):
        return handle.get_version(), handle.get_config()
    if isinstance(handle, StateMachine):
        return handle.version, handle.current_state
    return handle.version, handle.get_state()


@pytest.mark.parametrize(
    ("factory", "call", "error"),
    [pytest.param(f, c, e, id=name) for name, f, c, e in CASES],
)
def test_bad_argument_is_refused_in_the_callers_thread_and_changes_nothing(
    strict: Runtime, factory: Callable[[Runtime], Any], call: Call, error: type[Exception]
) -> None:
    bystander = StateManager({"n": 0}, runtime=strict)
    handle = factory(strict)
    before = _version_and_value(handle)
    messages = handle.stats().messages

    with pytest.raises(error) as caught:
        call(handle)

    assert isinstance(caught.value, StatewardError)
    assert isinstance(caught.value, (TypeError, ValueError))
    assert handle.stats().messages == messages, "the bad call reached the actor"
    assert handle.restarts == 0
    assert handle.alive
    assert _version_and_value(handle) == before
    assert strict.fatal is None
    assert bystander.update_state({"n": 1}).n == 1


def test_the_message_names_the_call_the_argument_the_expectation_and_the_value(
    runtime: Runtime,
) -> None:
    machine = StateMachine("a", {"a": ["b"], "b": []}, runtime=runtime)
    with pytest.raises(ArgumentTypeError) as caught:
        machine.transition(["b"])
    error = caught.value
    assert (error.call, error.argument, error.value) == ("StateMachine.transition", "target", ["b"])
    assert str(error) == (
        "StateMachine.transition(): 'target' must be a str, the name of a state "
        "(got ['b'], of type list); nothing was sent"
    )
    with pytest.raises(InvalidArgument, match=r"'timeout' must be a finite number of seconds >= 0"):
        machine.transition("b", timeout=-1)
    with pytest.raises(UnencodableValueError, match=r"^data\.when: object cannot be stored"):
        machine.transition("b", {"when": object()})
    assert isinstance(ArgumentValueError("f", "x", "y", 1), ValueError)


def test_four_bad_calls_in_a_row_do_not_stop_the_runtime() -> None:
    """The scenario of the report: with the root supervisor's default limit (3
    restarts in 5 s) the fourth crash used to stop every actor of the runtime."""
    with Runtime("scenario", default_timeout=10.0) as rt:
        other = StateManager({"n": 0}, runtime=rt)
        machine = StateMachine("a", {"a": ["b"], "b": []}, runtime=rt, on_error="restart")
        bad_calls: list[Call] = [
            lambda: machine.transition(["b"]),  # type: ignore[arg-type]
            lambda: machine.transition({"b": 1}),  # type: ignore[arg-type]
            lambda: machine.transition("b", 5),  # type: ignore[arg-type]
            lambda: machine.transition("b", [("k", 1)]),  # type: ignore[arg-type]
        ]
        for bad in bad_calls:
            with pytest.raises(TypeError):
                bad()
        assert rt.fatal is None
        assert machine.restarts == 0
        assert (machine.current_state, machine.version) == ("a", 0)
        assert other.update_state({"n": 1}).n == 1
        assert machine.transition("b").state == "b"


def test_a_request_carries_its_arguments_as_they_were_when_sent(runtime: Runtime) -> None:
    """The caller's dict is frozen when the request is made: changing it while
    the request waits in the mailbox changes nothing."""
    manager = StateManager({"n": 0}, runtime=runtime)
    entered, release = threading.Event(), threading.Event()

    def hold(state: Any) -> Any:
        entered.set()
        assert release.wait(5)
        return state

    held = manager.request_modify(hold)
    assert entered.wait(5)
    changes = {"n": 1, "tags": ["a"]}
    queued = manager.request_update(changes)
    changes["n"] = 99
    changes["tags"].append("b")  # type: ignore[attr-defined]
    release.set()
    held.result(timeout=5)
    assert queued.result(timeout=5).to_dict() == {"n": 1, "tags": ["a"]}


def test_rollback_metadata_may_have_any_field_name(runtime: Runtime) -> None:
    config = ConfigManager({"level": "INFO"}, runtime=runtime, on_error="restart")
    config.update_config({"level": "DEBUG"})
    change = config.rollback(0, {"keys": "rotated", "items": 2})
    assert change.metadata["keys"] == "rotated"
    assert config.restarts == 0


def test_core_apply_transition_checks_its_arguments_too() -> None:
    spec = MachineSpec("a", {"a": ["b"], "b": []})
    snapshot = MachineSnapshot.initial(spec)
    with pytest.raises(ArgumentTypeError, match=r"apply_transition\(\): 'target' must be a str"):
        apply_transition(spec, snapshot, ["b"])  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="'data' must be a mapping"):
        apply_transition(spec, snapshot, "b", payload=5)  # type: ignore[arg-type]
    assert apply_transition(spec, snapshot, "b").snapshot.state == "b"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        pytest.param("", ArgumentValueError, id="empty"),
        pytest.param(5, ArgumentTypeError, id="int"),
        pytest.param(b"orders", ArgumentTypeError, id="bytes"),
        pytest.param("orders\ud800", ArgumentValueError, id="lone-surrogate"),
    ],
)
def test_a_bad_actor_name_is_refused_naming_the_argument(
    runtime: Runtime, name: Any, error: type[InvalidArgument]
) -> None:
    for make in (
        lambda: StateMachine("a", {"a": []}, name=name, runtime=runtime),
        lambda: StateManager({"n": 0}, name=name, runtime=runtime),
    ):
        with pytest.raises(error) as caught:
            make()
        assert (caught.value.argument, caught.value.value) == ("name", name)
        assert "no actor was created" in str(caught.value)
    assert runtime.names() == []
    assert StateManager({"n": 0}, name="after", runtime=runtime).update_state({"n": 1}).n == 1


def test_a_name_a_store_cannot_encode_is_refused_before_anything_is_written(
    tmp_path: Any,
) -> None:
    from stateward.actors import SQLiteStore

    with Runtime("durable", store=SQLiteStore(tmp_path / "s.db")) as rt:
        with pytest.raises(ArgumentValueError, match=r"'name' must be a str encodable as UTF-8"):
            StateMachine("a", {"a": []}, name="\ud800", runtime=rt)
        assert rt.names() == []
        assert rt.store.actors() == []
        kept = StateManager({"n": 0}, name="kept", runtime=rt)
        assert kept.update_state({"n": 1}).n == 1


@pytest.mark.parametrize("name", [5, b"rt", ["rt"]])
def test_a_runtime_name_must_be_a_str(name: Any) -> None:
    with pytest.raises(ArgumentTypeError) as caught:
        Runtime(name)
    assert (caught.value.call, caught.value.argument) == ("Runtime", "name")
    assert "no runtime was created" in str(caught.value)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        pytest.param("x", ArgumentTypeError, id="str"),
        pytest.param(True, ArgumentTypeError, id="bool"),
        pytest.param(-1, ArgumentValueError, id="negative"),
        pytest.param(math.inf, ArgumentValueError, id="infinite"),
        pytest.param(math.nan, ArgumentValueError, id="nan"),
    ],
)
def test_shutdown_checks_its_timeout_before_stopping_anything(
    timeout: Any, error: type[InvalidArgument]
) -> None:
    rt = Runtime("checked", default_timeout=10.0)
    try:
        manager = StateManager({"n": 0}, runtime=rt)
        with pytest.raises(error) as caught:
            rt.shutdown(timeout)
        assert (caught.value.call, caught.value.argument) == ("Runtime.shutdown", "timeout")
        assert not rt.closed
        assert manager.update_state({"n": 1}).n == 1
    finally:
        assert rt.shutdown(None).clean
    assert rt.closed
