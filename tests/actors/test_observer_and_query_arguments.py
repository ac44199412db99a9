"""Observers and queries refuse bad arguments as the write methods do.

``add_observer`` with something that cannot be called, ``remove_observer``
with a function that was never added and ``can_transition`` with a target that
is not a state's name used to raise a builtin ``TypeError``/``ValueError`` (for
an unhashable target, Python's own "unhashable type: 'list'"), unlike every
other method of a handle, which raises an `InvalidArgument`: a `StatewardError`
that is also the matching builtin, names the call and the argument, and says
what to pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stateward.actors import ConfigManager, Runtime, StateMachine, StateManager
from stateward.core import ArgumentTypeError, ArgumentValueError


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime("arguments")
    yield rt
    assert rt.shutdown(5).clean


HANDLES: dict[str, Callable[[Runtime], Any]] = {
    "machine": lambda rt: StateMachine("a", {"a": ["b"], "b": []}, runtime=rt),
    "manager": lambda rt: StateManager({"n": 0}, runtime=rt),
    "config": lambda rt: ConfigManager({"level": "INFO"}, runtime=rt),
}


@pytest.mark.parametrize("kind", sorted(HANDLES))
@pytest.mark.parametrize("fn", [None, 5, "print", ["f"]], ids=repr)
def test_an_observer_that_cannot_be_called_is_refused(runtime: Runtime, kind: str, fn: Any) -> None:
    handle = HANDLES[kind](runtime)
    with pytest.raises(ArgumentTypeError, match="add_observer"):
        handle.add_observer(fn)


@pytest.mark.parametrize("kind", sorted(HANDLES))
def test_removing_an_observer_never_added_is_refused(runtime: Runtime, kind: str) -> None:
    handle = HANDLES[kind](runtime)
    handle.add_observer(print)
    with pytest.raises(ArgumentValueError, match="remove_observer"):
        handle.remove_observer(repr)
    handle.remove_observer(print)  # the one that was added goes


@pytest.mark.parametrize("target", [["b"], {"b": 1}, 5, None, b"b"], ids=repr)
def test_can_transition_refuses_a_target_that_is_not_a_name(runtime: Runtime, target: Any) -> None:
    machine = HANDLES["machine"](runtime)
    with pytest.raises(ArgumentTypeError, match="can_transition"):
        machine.can_transition(target)
    assert machine.can_transition("b") and not machine.can_transition("a")
