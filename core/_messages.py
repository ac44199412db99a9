"""Messages: what a handle sends its actor, as frozen values.

A handle checks a call's arguments (`stateward.core._arguments`), then builds
one message from them; the actor's behaviour (`stateward.core._behaviours`)
maps the message and the current snapshot to an outcome. A message is a
tuple: immutable, and the cheapest immutable value Python builds (one is made
per request). Build one from a tuple of its fields, in order::

    Move(("paid", None, None))          # target, event, payload

Two messages are equal when they are of the same kind with equal fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ._state import ImmutableState

__all__ = [
    "ConfigUpdate",
    "Message",
    "Modify",
    "Move",
    "Rollback",
    "Update",
]


class Message(tuple):  # type: ignore[type-arg]  # each kind gives its fields' types
    """A request's content, checked and frozen by the handle that sends it."""

    __slots__ = ()
    #: The call it stands for in error messages (``transition``, ``update``...).
    call: ClassVar[str] = "request"
    #: Its fields' names, in order.
    fields: ClassVar[tuple[str, ...]] = ()

    def describe(self) -> str:
        """The request as a short call, such as ``transition('paid')``: the
        first field by position, the others by name, fields that are None left out."""
        shown = []
        for i, (name, value) in enumerate(zip(self.fields, self, strict=True)):
            if value is not None:
                shown.append(f"{'' if i == 0 else name + '='}{_short(value)}")
        return f"{self.call}({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self), tuple(self)))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(self.fields, self, strict=True))
        return f"{type(self).__name__}({fields})"


class Move(Message, tuple[str | None, str | None, ImmutableState | None]):
    """A machine's transition: to ``target``, or by ``event`` (at least one),
    with the caller's ``payload``."""

    __slots__ = ()
    call = "transition"
    fields = ("target", "event", "payload")

    @property
    def target(self) -> str | None:
        """The state to move to; None to take the event's target."""
        return self[0]

    @property
    def event(self) -> str | None:
        """The event to fire; None to move by target (an event that leads there
        is found, if exactly one does)."""
        return self[1]

    @property
    def payload(self) -> ImmutableState | None:
        """The caller's payload, frozen."""
        return self[2]


class Update(Message, tuple[ImmutableState]):
    """A state manager's shallow merge of ``changes`` into its state."""

    __slots__ = ()
    call = "update"
    fields = ("changes",)

    @property
    def changes(self) -> ImmutableState:
        """The keys to set, frozen."""
        return self[0]


class Modify(Message, tuple[Callable[[ImmutableState], Any]]):
    """A state manager's read-modify-write: ``fn(state) -> new state``, run by the actor."""

    __slots__ = ()
    call = "modify"
    fields = ("fn",)

    @property
    def fn(self) -> Callable[[ImmutableState], Any]:
        """The function that computes the new state from the current one."""
        return self[0]


class ConfigUpdate(Message, tuple[ImmutableState, ImmutableState | None]):
    """A config manager's new version: ``changes`` to top-level keys, with ``metadata``."""

    __slots__ = ()
    call = "update"
    fields = ("changes", "metadata")

    @property
    def changes(self) -> ImmutableState:
        """The top-level keys to set, frozen."""
        return self[0]

    @property
    def metadata(self) -> ImmutableState | None:
        """The new version's metadata, frozen."""
        return self[1]


class Rollback(Message, tuple[int, ImmutableState | None]):
    """A config manager's new version that restores ``version``'s config."""

    __slots__ = ()
    call = "rollback"
    fields = ("version", "metadata")

    @property
    def version(self) -> int:
        """The version whose config to restore."""
        return self[0]

    @property
    def metadata(self) -> ImmutableState | None:
        """The new version's metadata, frozen."""
        return self[1]


def _short(value: object, limit: int = 60) -> str:
    text = getattr(value, "__qualname__", None) if callable(value) else None
    if isinstance(value, ImmutableState):  # a request's frozen payload: show what was passed
        text = repr(value.to_dict())
    text = text or repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
