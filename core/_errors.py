"""The error hierarchy: one root, leaves that also subclass the matching builtin.

Every exception keeps its facts as attributes and builds its message from them,
so code can branch on ``err.state`` while a person reads a sentence that ends
with what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple


class StatewardError(Exception):
    """Root of every error stateward raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Exception's default pickling calls ``cls(*self.args)``, which does not
        # fit the keyword-rich constructors below; rebuild without __init__ and
        # restore the message and the attributes as they were.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[StatewardError], args: tuple[object, ...], state: dict[str, object]
) -> StatewardError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _quote_all(items: Iterable[object]) -> str:
    shown = [repr(item) for item in items]
    return ", ".join(shown) if shown else "none"


class InvalidTransition(StatewardError, ValueError):
    """A transition that the machine definition does not allow from the current state.

    Attributes:
        state: the state the machine was in.
        target: the state that was asked for, or ``None`` when only an event was named.
        allowed: the states reachable from ``state``, sorted.
        event: the event that was named, if any.
        allowed_events: the events that can fire from ``state``, sorted.
    """

    def __init__(
        self,
        state: str,
        target: str | None,
        allowed: Iterable[str],
        *,
        event: str | None = None,
        allowed_events: Iterable[str] = (),
        machine: str | None = None,
        note: str = "",
    ) -> None:
        self.state = state
        self.target = target
        self.allowed: tuple[str, ...] = tuple(sorted(allowed))
        self.event = event
        self.allowed_events: tuple[str, ...] = tuple(sorted(allowed_events))
        self.machine = machine
        self.note = note
        super().__init__(self._message())

    def _subject(self) -> str:
        prefix = f"machine {self.machine!r}: " if self.machine else ""
        if self.event is not None and self.target is None:
            return f"{prefix}event {self.event!r} cannot fire from state {self.state!r}"
        via = f" (event {self.event!r})" if self.event is not None else ""
        return f"{prefix}cannot go from {self.state!r} to {self.target!r}{via}"

    def _message(self) -> str:
        text = f"{self._subject()}; allowed targets from {self.state!r}: {_quote_all(self.allowed)}"
        if self.event is not None:
            text += f"; events from {self.state!r}: {_quote_all(self.allowed_events)}"
        if not self.allowed:
            text += f" ({self.state!r} is a terminal state)"
        if self.note:
            text += f"; {self.note}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (type(self), (self.state, self.target, self.allowed), self._kwargs()),
        )

    def _kwargs(self) -> dict[str, object]:
        return {
            "event": self.event,
            "allowed_events": self.allowed_events,
            "machine": self.machine,
            "note": self.note,
        }


class RefusedBranch(NamedTuple):
    """One alternative of an event that was not taken: where it led, and why not."""

    target: str
    guard: str
    reason: str


class TransitionRejected(InvalidTransition):
    """A guard, validator or hook vetoed a transition that the definition allows.

    Attributes:
        guard: the name of the function that vetoed (when an event's
            alternatives all refused: each one's, joined by ``", "``).
        reason: why, in the guard's words.
        alternatives: when an event has several alternatives from this state
            and none was taken, one `RefusedBranch` (``target``, ``guard``,
            ``reason``) per alternative, in the order tried; else empty.
    """

    def __init__(
        self,
        state: str,
        target: str | None,
        allowed: Iterable[str],
        *,
        guard: str,
        reason: str,
        event: str | None = None,
        allowed_events: Iterable[str] = (),
        machine: str | None = None,
        note: str = "",
        alternatives: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        self.guard = guard
        self.reason = reason
        self.alternatives = tuple(RefusedBranch(*branch) for branch in alternatives)
        super().__init__(
            state,
            target,
            allowed,
            event=event,
            allowed_events=allowed_events,
            machine=machine,
            note=note,
        )

    def _message(self) -> str:
        via = f" (event {self.event!r})" if self.event is not None else ""
        prefix = f"machine {self.machine!r}: " if self.machine else ""
        if self.alternatives:
            tried = "; ".join(
                f"-> {b.target!r} refused by {b.guard!r}: {b.reason}" for b in self.alternatives
            )
            return (
                f"{prefix}event {self.event!r} from {self.state!r}: no alternative's guards "
                f"passed ({tried})"
            )
        return (
            f"{prefix}transition {self.state!r} -> {self.target!r}{via} rejected by "
            f"{self.guard!r}: {self.reason}"
        )

    def _kwargs(self) -> dict[str, object]:
        return {
            **super()._kwargs(),
            "guard": self.guard,
            "reason": self.reason,
            "alternatives": self.alternatives,
        }


def _rebuild(
    cls: type[InvalidTransition], args: Sequence[object], kwargs: dict[str, object]
) -> InvalidTransition:
    return cls(*args, **kwargs)  # type: ignore[arg-type]


class Reject(StatewardError):
    """Raise inside a guard or hook to veto the transition with a reason.

    The transition is rolled back and the caller gets a `TransitionRejected`
    naming the hook and carrying ``reason``. Returning ``False`` from a guard
    does the same with a generic reason.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MachineDefinitionError(StatewardError, ValueError):
    """A machine definition that cannot work, found when the spec is built.

    Attributes:
        problem: what is wrong.
        state: the offending state, if one is to blame.
        event: the offending event, if one is to blame.
    """

    def __init__(self, problem: str, *, state: str | None = None, event: str | None = None) -> None:
        self.problem = problem
        self.state = state
        self.event = event
        super().__init__(problem)


class FrozenStateError(StatewardError, AttributeError, TypeError):
    """An attempt to change an immutable value in place.

    It is an `AttributeError` (for ``state.x = 1``) and a `TypeError` (for
    ``state["x"] = 1``), as the builtins raise for those.
    """

    def __init__(self, type_name: str, key: object, *, operation: str = "set") -> None:
        self.type_name = type_name
        self.key = key
        self.operation = operation
        if type_name == "ImmutableState":
            fix = (
                f"use .update({key}=...) to get a new state"
                if isinstance(key, str) and (key.isidentifier())
                else "use .update(...) to get a new state"
            )
        else:
            fix = "build a new value instead (to_dict() gives a mutable copy)"
        super().__init__(f"{type_name} is immutable: cannot {operation} {key!r}; {fix}")


class UninitializedStateError(StatewardError, AttributeError):
    """A subclass of ImmutableState (or FrozenDict) whose ``__init__`` never ran
    the base class's, so it holds no fields.

    Attributes:
        type_name: the subclass's name.
        name: the attribute that was asked for.
    """

    def __init__(self, cls: type, name: str) -> None:
        self.type_name = cls.__qualname__
        self.name = name
        base = (
            "FrozenDict"
            if any(c.__name__ == "FrozenDict" for c in cls.__mro__)
            else ("ImmutableState")
        )
        super().__init__(
            f"{self.type_name} has no fields (looking up {name!r}): its __init__ never called "
            f"{base}.__init__. Call super().__init__(...) from it; a class made by attrs or "
            f"dataclasses cannot subclass {base}, so hold one in a field instead"
        )


class UnencodableValueError(StatewardError, TypeError):
    """A value that stateward cannot freeze or encode.

    Attributes:
        path: where the value sits, such as ``order.items[2]``.
        value_type: the type that is not supported.
        detail: what would be accepted instead.
    """

    def __init__(self, path: str, value_type: type, detail: str = "") -> None:
        self.path = path
        self.value_type = value_type
        self.detail = detail
        where = path or "<value>"
        type_name = value_type.__qualname__
        if value_type.__module__ != "builtins":
            type_name = f"{value_type.__module__}.{type_name}"
        text = (
            f"{where}: {type_name} cannot be stored; "
            "supported: None, bool, int, float, str, bytes, datetime, list, tuple, "
            "dict with str keys, set, frozenset and ImmutableState"
        )
        if detail:
            text = f"{where}: {detail}"
        super().__init__(text)


class DecodeError(StatewardError, ValueError):
    """Bytes that are not a valid stateward payload; nothing was returned.

    Attributes:
        reason: what was wrong with them.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SchemaVersionError(DecodeError):
    """A payload written by a newer stateward than this one.

    Attributes:
        found: the payload's schema version.
        supported: the newest schema version this code reads.
    """

    def __init__(self, found: int, supported: int, *, what: str = "payload") -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"{what} has schema version {found}, but this stateward reads up to "
            f"version {supported}; upgrade stateward to read it"
        )


class UnknownVersionError(StatewardError, LookupError):
    """A config version that is not in the history.

    Attributes:
        version: the version asked for.
        oldest: the oldest version kept.
        newest: the newest version.
    """

    def __init__(self, version: object, oldest: int, newest: int) -> None:
        self.version = version
        self.oldest = oldest
        self.newest = newest
        super().__init__(
            f"config version {version!r} does not exist; versions {oldest} to {newest} are kept"
        )

    def __str__(self) -> str:
        # LookupError/KeyError would show the repr of the args; keep the sentence.
        return str(self.args[0])


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidArgument(StatewardError):
    """A call made with an argument it cannot use; nothing was sent or changed.

    Handles check their arguments in the caller's thread, before any message
    is built, so a bad argument never reaches (let alone crashes) an actor.
    Raised as `ArgumentTypeError` (a `TypeError`) or `ArgumentValueError` (a
    `ValueError`).

    Attributes:
        call: what was called, such as ``StateMachine.transition``.
        argument: the argument's name.
        expected: what it must be, in words.
        value: what was given.
    """

    def __init__(
        self,
        call: str,
        argument: str,
        expected: str,
        value: object,
        fix: str = "",
        *,
        outcome: str = "nothing was sent",
    ) -> None:
        self.call = call
        self.argument = argument
        self.expected = expected
        self.value = value
        self.fix = fix
        text = (
            f"{call}(): {argument!r} must be {expected} "
            f"(got {_shown(value)}, of type {type(value).__qualname__}); {outcome}"
        )
        super().__init__(f"{text}. {fix}" if fix else text)

    def __reduce__(self) -> tuple[object, ...]:
        # The value itself may not pickle (that may be why it was refused).
        state = {**self.__dict__, "value": _shown(self.value)}
        return (_restore, (type(self), self.args, state))


class ArgumentTypeError(InvalidArgument, TypeError):
    """An argument of the wrong type (see `InvalidArgument`)."""


class ArgumentValueError(InvalidArgument, ValueError):
    """An argument of the right type with a value that cannot be used (see
    `InvalidArgument`)."""
