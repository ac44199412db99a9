"""Durable timers: the values, and the ``timeouts=`` a spec is defined with.

A machine's pending timers live in its snapshot (`MachineSnapshot.timers`),
each a `PendingTimer`: what kind it is, its name, an absolute due time (a UTC
``datetime`` computed from the transition's clock), the event it fires with
its payload, and the version of the transition that set it. Its `id` joins
kind, name and version, so a timer set again under the same name is another
timer: a firing of the old one finds no timer with its id and is dropped.

Four kinds, in the spirit of Erlang's gen_statem:

- ``state``: a state timeout from the spec's ``timeouts=``; set when its state
  is entered, cancelled when the state is left (an internal transition neither
  leaves nor enters, so it keeps it; an external self-transition restarts it).
- ``event``: an event timeout a hook sets (`TransitionContext.set_event_timeout`);
  the next transition of any kind cancels it, whatever fires it.
- ``named``: a named timer a hook starts (`TransitionContext.start_timer`) and
  cancels (`TransitionContext.cancel_timer`); starting one under a name already
  pending replaces it. It outlives state changes until it fires or is cancelled.
- ``later``: a delayed self-sent event (`TransitionContext.send_later`).

What hooks ask for is kept on the context as `TimerRequest` values, in call
order, and only the committed transition's requests take effect (`_timer_moves`).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import ArgumentTypeError, ArgumentValueError, MachineDefinitionError
from ._state import ImmutableState
from ._wallclock import utc_now

__all__ = [
    "TIMER_KINDS",
    "PendingTimer",
    "StateTimeout",
    "TimerKind",
    "TimerRequest",
    "check_delay",
    "due_after",
    "parse_timeouts",
    "state_timer",
    "timeouts_form",
]

TimerKind = Literal["state", "event", "named", "later"]
TIMER_KINDS: tuple[TimerKind, ...] = ("state", "event", "named", "later")

_EMPTY = ImmutableState()
_UTC = _dt.UTC


@dataclass(frozen=True, slots=True)
class PendingTimer:
    """One pending timer of a machine, as its snapshot keeps it.

    Attributes:
        kind: ``state``, ``event``, ``named`` or ``later`` (see the module).
        name: the state of a state timeout, a named timer's name, ``""`` for the
            event timeout, the sequence number within its transition for a
            delayed event.
        due: when it fires: a timezone-aware UTC ``datetime``.
        event: the event it fires.
        payload: the event's payload.
        version: the version of the transition that set it (0: the creation).
    """

    kind: TimerKind
    name: str
    due: _dt.datetime
    event: str
    payload: ImmutableState
    version: int

    @property
    def id(self) -> str:
        """Its identity: kind, name and the version that set it."""
        return f"{self.kind}:{self.name}@{self.version}"

    def to_tuple(self) -> tuple[Any, ...]:
        """An encodable form (see `from_tuple`)."""
        return (self.kind, self.name, self.due, self.event, self.payload, self.version)

    @classmethod
    def from_tuple(cls, value: tuple[Any, ...]) -> PendingTimer:
        kind, name, due, event, payload, version = value
        if not isinstance(payload, ImmutableState):
            payload = ImmutableState(payload or {})
        return cls(kind, name, due, event, payload, version)


@dataclass(frozen=True, slots=True)
class StateTimeout:
    """A state timeout of a spec: ``seconds`` after its state is entered,
    ``event`` fires with ``payload`` unless the state was left meanwhile."""

    seconds: float
    event: str
    payload: ImmutableState = _EMPTY


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """What a hook asked of the timers during one transition (in call order).

    Attributes:
        action: ``start`` (a named timer), ``cancel`` (a named timer),
            ``event`` (the event timeout) or ``later`` (a delayed event).
        name: the named timer's name (``""`` for the others).
        seconds: the delay, from the transition's time.
        event: the event to fire (``""`` for ``cancel``).
        payload: its payload.
    """

    action: Literal["start", "cancel", "event", "later"]
    name: str
    seconds: float
    event: str
    payload: ImmutableState


def due_after(at: _dt.datetime | None, seconds: float) -> _dt.datetime:
    """``seconds`` after ``at``, in UTC (a naive ``at`` is taken as UTC)."""
    if at is None:
        at = utc_now()
    at = at.replace(tzinfo=_UTC) if at.tzinfo is None else at.astimezone(_UTC)
    return at + _dt.timedelta(seconds=seconds)


def state_timer(
    state: str, timeout: StateTimeout, at: _dt.datetime | None, version: int
) -> PendingTimer:
    """The state timeout of ``state``, entered at ``at`` by ``version``."""
    return PendingTimer(
        "state", state, due_after(at, timeout.seconds), timeout.event, timeout.payload, version
    )


def check_delay(seconds: object, where: str, *, positive: bool = False) -> float:
    """``seconds`` as a float: a finite number >= 0 (> 0 if ``positive``).

    Raises:
        ArgumentTypeError: not a number (a bool is not one).
        ArgumentValueError: negative, zero when ``positive``, NaN or infinite.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ArgumentTypeError(
            where, "seconds", "a number of seconds", seconds, "Pass seconds=1800, say"
        )
    low_ok = seconds > 0 if positive else seconds >= 0
    if not (low_ok and math.isfinite(seconds)):
        wanted = "a finite number of seconds > 0" if positive else "a finite number >= 0"
        raise ArgumentValueError(where, "seconds", wanted, seconds, "Pass seconds=1800, say")
    return float(seconds)


def request(
    action: Literal["start", "cancel", "event", "later"],
    name: str,
    seconds: object,
    event: object,
    payload: object,
    where: str,
) -> TimerRequest:
    """A checked `TimerRequest` (the `TransitionContext` methods make them)."""
    if action in ("start", "cancel") and (not isinstance(name, str) or not name):
        raise ArgumentTypeError(
            where,
            "name",
            "a non-empty str",
            name,
            "Name the timer: ctx.start_timer('reminder', ...)",
        )
    if action == "cancel":
        return TimerRequest("cancel", name, 0.0, "", _EMPTY)
    delay = check_delay(seconds, where)
    if not isinstance(event, str) or not event:
        raise ArgumentTypeError(
            where, "event", "an event name (a non-empty str)", event, "Pass event='expire', say"
        )
    if payload is None:
        frozen = _EMPTY
    elif isinstance(payload, ImmutableState):
        frozen = payload
    elif isinstance(payload, Mapping):
        frozen = ImmutableState(payload)
    else:
        raise ArgumentTypeError(where, "payload", "a mapping or None", payload)
    return TimerRequest(action, name, delay, event, frozen)


def parse_timeouts(
    timeouts: Mapping[str, Any] | None,
    states: tuple[str, ...] | list[str],
    fires_from: Callable[[str, str], bool],
    has_event: Callable[[str], bool],
) -> dict[str, StateTimeout]:
    """Check a spec's ``timeouts=`` and return them by state.

    Each value is ``(seconds, event)``, ``(seconds, event, payload)`` or
    ``{"after": seconds, "event": event, "payload": {...}}``.

    Raises:
        MachineDefinitionError: not a mapping, an unknown state or event, an
            event that cannot fire from its state, or seconds that are not a
            finite number > 0.
    """
    if timeouts is None:
        return {}
    if not isinstance(timeouts, Mapping):
        raise MachineDefinitionError(
            "timeouts must be a mapping {state: (seconds, event)}, got "
            f"{type(timeouts).__qualname__}"
        )
    parsed: dict[str, StateTimeout] = {}
    for state, value in timeouts.items():
        if state not in states:
            raise MachineDefinitionError(
                f"timeouts names unknown state {state!r}; states: {', '.join(map(repr, states))}",
                state=str(state),
            )
        payload: Any = None
        if isinstance(value, Mapping):
            unknown = set(value) - {"after", "event", "payload"}
            if unknown or "after" not in value or "event" not in value:
                raise MachineDefinitionError(
                    f"timeouts[{state!r}] must have the keys 'after' and 'event' (and "
                    f"optionally 'payload'), got {sorted(value)}",
                    state=state,
                )
            seconds, event, payload = value["after"], value["event"], value.get("payload")
        elif isinstance(value, tuple | list) and len(value) in (2, 3):
            seconds, event = value[0], value[1]
            payload = value[2] if len(value) == 3 else None
        else:
            raise MachineDefinitionError(
                f"timeouts[{state!r}] must be (seconds, event) or "
                f"{{'after': seconds, 'event': event}}, got {value!r}",
                state=state,
            )
        try:
            delay = check_delay(seconds, f"timeouts[{state!r}]", positive=True)
        except (ArgumentTypeError, ArgumentValueError):
            raise MachineDefinitionError(
                f"timeouts[{state!r}]: seconds must be a finite number > 0, got {seconds!r}",
                state=state,
            ) from None
        if not isinstance(event, str) or not has_event(event):
            raise MachineDefinitionError(
                f"timeouts[{state!r}] fires unknown event {event!r}; define it in events=",
                state=state,
                event=str(event),
            )
        if not fires_from(event, state):
            raise MachineDefinitionError(
                f"timeouts[{state!r}] fires event {event!r}, which cannot fire from "
                f"{state!r}; add {state!r} to the event's sources",
                state=state,
                event=event,
            )
        if payload is not None and not isinstance(payload, Mapping):
            raise MachineDefinitionError(
                f"timeouts[{state!r}]: payload must be a mapping, got {payload!r}", state=state
            )
        frozen = ImmutableState(payload) if payload else _EMPTY
        parsed[state] = StateTimeout(delay, event, frozen)
    return parsed


def timeouts_form(timeouts: Mapping[str, StateTimeout]) -> dict[str, Any] | None:
    """A spec's timeouts in the form ``timeouts=`` takes: `parse_timeouts` undone."""
    if not timeouts:
        return None
    return {
        state: {"after": t.seconds, "event": t.event, "payload": dict(t.payload)}
        for state, t in timeouts.items()
    }
