"""Checks of the arguments a request is made of, run before the request exists.

A request's content is checked here, in the caller's thread, and frozen: a
state name is a plain ``str``, a payload or a set of changes is an
`ImmutableState`. What passes can no longer fail in the actor because of its
type or its encodability, and the caller cannot change it after sending it.
Each check raises an `InvalidArgument` (`ArgumentTypeError` or
`ArgumentValueError`) that names the call, the argument, what it must be and
what was given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ArgumentTypeError, ArgumentValueError, UnencodableValueError
from ._frozen import MAX_DEPTH, _freeze_mapping
from ._state import ImmutableState

__all__ = [
    "check_callable",
    "check_changes",
    "check_move",
    "check_name",
    "check_payload",
    "check_timeout",
    "check_version",
]


def check_name(value: Any, call: str, argument: str, what: str = "a state") -> str:
    """``value`` as a plain ``str`` (a subclass such as a ``StrEnum`` member is
    read as its text), or an `ArgumentTypeError`."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    raise ArgumentTypeError(call, argument, f"a str, the name of {what}", value)


def check_payload(value: Any, call: str, argument: str = "data") -> ImmutableState | None:
    """``value`` (None, or a mapping of str keys to storable values) frozen now.

    Raises:
        ArgumentTypeError: not a mapping.
        UnencodableValueError: a key or value cannot be stored; its path starts
            with ``argument`` (``data.items[2]``).
    """
    if value is None:
        return None
    return check_changes(value, call, argument)


def check_changes(value: Any, call: str, argument: str) -> ImmutableState:
    """A required mapping argument, frozen now (see `check_payload`)."""
    kind = type(value)
    if kind is ImmutableState:
        frozen: ImmutableState = value
        return frozen
    if kind is not dict and not isinstance(value, Mapping):  # a dict needs no ABC check
        raise ArgumentTypeError(
            call,
            argument,
            "a mapping (a dict with str keys)",
            value,
            "Pass a dict such as {'amount': 5}",
        )
    if isinstance(value, ImmutableState):  # a subclass: stored as the plain type
        return ImmutableState._wrap(value._data)
    try:
        return ImmutableState._wrap(_freeze_mapping(value, "", MAX_DEPTH - 1))
    except UnencodableValueError:
        # Again, to name the value's path from the argument (``data.items[2]``);
        # building those paths on every call would slow the usual, valid one.
        _freeze_mapping(value, argument, MAX_DEPTH - 1)
        raise


def check_move(
    target: Any, event: Any, payload: Any, call: str
) -> tuple[str | None, str | None, ImmutableState | None]:
    """The arguments of a transition: a target state and/or an event (at least
    one), and a payload; checked and frozen."""
    if target is None and event is None:
        raise ArgumentTypeError(
            call,
            "target",
            "a str, the name of a state, when no event is named",
            None,
            "A transition needs a target state or an event",
        )
    if target is not None:
        target = check_name(target, call, "target")
    if event is not None:
        event = check_name(event, call, "event", "an event")
    return target, event, check_payload(payload, call)


def check_version(value: Any, call: str, argument: str = "version") -> int:
    """A config version: an ``int`` (not a bool). Whether it exists is the
    history's to say (`UnknownVersionError`)."""
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ArgumentTypeError(call, argument, "an int, a version number", value)


def check_callable(value: Any, call: str, argument: str) -> Callable[..., Any]:
    """A function argument."""
    if not callable(value):
        raise ArgumentTypeError(call, argument, "callable (a function)", value)
    return value  # type: ignore[no-any-return]


def check_timeout(value: Any, call: str, *, outcome: str = "nothing was sent") -> float | None:
    """A ``timeout=``: None (the default), or a finite number of seconds >= 0.
    ``outcome`` says what the refusal left undone (see `InvalidArgument`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            call, "timeout", "a number of seconds, or None", value, outcome=outcome
        )
    if not (value >= 0 and math.isfinite(value)):
        raise ArgumentValueError(
            call,
            "timeout",
            "a finite number of seconds >= 0",
            value,
            "Nothing waits forever here: pass a finite timeout",
            outcome=outcome,
        )
    return float(value)
