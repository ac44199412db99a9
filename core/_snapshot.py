"""The values of one machine: its snapshot, and what a transition hands around.

`MachineSnapshot` is a machine's whole state at one version. A transition gives
each hook a `TransitionContext`, and returns a `TransitionOutcome` (a creation,
a `CreationOutcome`) for the caller to commit; an after-commit hook that raised
comes back as a `HookFailure`. All are frozen; those made on every transition
use `quick_init`'s faster ``__init__``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._chart import ChartState
from ._history import EMPTY_HISTORY, Entry, History, TransitionRecord
from ._quick import quick_init, quick_maker
from ._spec import Hook, MachineSpec
from ._state import ImmutableState, record
from ._timers import PendingTimer, TimerRequest, request, state_timer

__all__ = [
    "CreationOutcome",
    "HookFailure",
    "MachineSnapshot",
    "TransitionContext",
    "TransitionOutcome",
    "new_context",
    "new_snapshot",
]

#: The empty payload or data, shared.
EMPTY = ImmutableState()


def _entries(history: Sequence[TransitionRecord]) -> Iterable[Entry]:
    if type(history) is History:
        return history.entries()
    return (r.to_tuple() for r in history)


@quick_init
@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """The complete, immutable state of one machine at one version.

    Attributes:
        state: the current state.
        version: how many transitions have been committed (0 for a new machine).
        data: the machine's own data, changed by event effects and enter/exit hooks.
        history: the last `TransitionRecord` entries, oldest first, at most the
            spec's ``history_limit``: a `History`, a read-only sequence that
            shares its older records with the snapshots before it (any
            sequence of records is accepted when building one by hand).
        chart: a statechart's active configuration and what its history
            states remember (None for a flat machine); read `configuration`.
        timers: the pending `PendingTimer` entries, in the order they were
            set (empty for a machine with none): see `_timers`.
    """

    state: str
    version: int = 0
    data: ImmutableState = EMPTY
    history: Sequence[TransitionRecord] = EMPTY_HISTORY
    chart: ChartState | None = None
    timers: tuple[PendingTimer, ...] = ()

    @property
    def configuration(self) -> frozenset[str]:
        """Every active state: with compound states, ``state`` (the active leaf)
        and each state it is inside; with parallel regions, every region's."""
        if self.chart is None:
            return frozenset((self.state,))
        return self.chart.configuration

    @classmethod
    def initial(
        cls,
        spec: MachineSpec,
        data: Mapping[str, Any] | None = None,
        at: _dt.datetime | None = None,
    ) -> MachineSnapshot:
        """A new machine of ``spec``: its initial state, version 0, no history.

        The state timeouts of the states it starts in (a statechart's whole
        initial configuration) are pending, due that long after ``at`` (the
        creation's time; now by default).
        """
        frozen = data if isinstance(data, ImmutableState) else ImmutableState(data or {})
        chart = spec._chart
        if chart is None:
            timeout = spec.timeouts.get(spec.initial) if spec.timeouts else None
            if timeout is None:
                return cls(spec.initial, 0, frozen, EMPTY_HISTORY)
            timer = state_timer(spec.initial, timeout, at, 0)
            return cls(spec.initial, 0, frozen, EMPTY_HISTORY, None, (timer,))
        active = spec.initial_configuration
        timeouts = spec.timeouts
        timers = tuple(
            state_timer(s, timeouts[s], at, 0) for s in chart.enter_order(active) if s in timeouts
        )
        return cls(chart.current(active), 0, frozen, EMPTY_HISTORY, ChartState(active), timers)

    def to_state(self) -> ImmutableState:
        """An encodable form, for the codec (see `from_state`); a statechart's
        also has ``configuration`` and, once history states remember, ``memory``;
        a machine with pending timers has a ``timers`` key, one with none has none."""
        if self.chart is not None or self.timers:
            extra: dict[str, Any] = {}
            if self.chart is not None:
                extra["configuration"] = tuple(sorted(self.chart.configuration))
                if self.chart.memory:
                    extra["memory"] = self.chart.memory
            if self.timers:
                extra["timers"] = tuple(t.to_tuple() for t in self.timers)
            return record(
                state=self.state,
                version=self.version,
                data=self.data,
                history=tuple(_entries(self.history)),
                **extra,
            )
        return record(
            state=self.state,
            version=self.version,
            data=self.data,
            history=tuple(_entries(self.history)),
        )

    @classmethod
    def from_state(cls, value: Mapping[str, Any]) -> MachineSnapshot:
        """Rebuild a snapshot from `to_state`'s form (``timers`` optional)."""
        data = value["data"]
        active = value.get("configuration")
        chart = None
        if active is not None:
            memory = value.get("memory", ())
            chart = ChartState(
                frozenset(active), tuple((str(h), tuple(states)) for h, states in memory)
            )
        timers = value.get("timers")
        return cls(
            value["state"],
            value["version"],
            data if isinstance(data, ImmutableState) else ImmutableState(data),
            History(TransitionRecord.from_tuple(tuple(r)) for r in value["history"]),
            chart,
            tuple(PendingTimer.from_tuple(tuple(t)) for t in timers) if timers else (),
        )


#: ``MachineSnapshot(...)`` by position, for the hot path (`quick_maker`): a
#: flat machine's new snapshot pays next to nothing for ``chart`` and ``timers``.
new_snapshot: Callable[..., MachineSnapshot] = quick_maker(MachineSnapshot)


@quick_init
@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What every hook receives: the move being made and the values around it.

    Attributes:
        source: the state being left; None when a new machine is being created.
        target: the state being entered.
        event: the event that fired, or None.
        payload: the caller's payload, as enriched by pre-transition hooks so far.
        data: the machine's data, as changed by exit/effect/enter hooks so far.
        version: the version this transition creates when it commits.
        machine: the machine's name, if it has one.
        at: the transition's time, from the clock.
        timer_requests: what hooks asked of the timers so far, in call order
            (`start_timer`, `cancel_timer`, `set_event_timeout`,
            `send_later`); they take effect only if the transition commits.
    """

    source: str | None
    target: str
    event: str | None
    payload: ImmutableState
    data: ImmutableState
    version: int
    machine: str | None
    at: _dt.datetime
    timer_requests: tuple[TimerRequest, ...] = ()

    def with_payload(self, payload: ImmutableState) -> TransitionContext:
        return new_context(
            self.source,
            self.target,
            self.event,
            payload,
            self.data,
            self.version,
            self.machine,
            self.at,
            self.timer_requests,
        )

    def with_move(self, source: str | None, target: str, event: str | None) -> TransitionContext:
        """This context for another move of the same transaction (a statechart's
        next move, or the whole transaction's), keeping its payload, data and
        timer requests."""
        return new_context(
            source,
            target,
            event,
            self.payload,
            self.data,
            self.version,
            self.machine,
            self.at,
            self.timer_requests,
        )

    def with_target(
        self, target: str, timer_requests: tuple[TimerRequest, ...] = ()
    ) -> TransitionContext:
        """This context moved to another ``target`` (another alternative of
        an event), with ``timer_requests`` in place of its own."""
        return new_context(
            self.source,
            target,
            self.event,
            self.payload,
            self.data,
            self.version,
            self.machine,
            self.at,
            timer_requests,
        )

    def with_data(self, data: ImmutableState) -> TransitionContext:
        return new_context(
            self.source,
            self.target,
            self.event,
            self.payload,
            data,
            self.version,
            self.machine,
            self.at,
            self.timer_requests,
        )

    # -- timers: each call adds a request, kept by the contexts made from this one --

    def _ask(self, timer: TimerRequest) -> None:
        object.__setattr__(self, "timer_requests", (*self.timer_requests, timer))

    def start_timer(
        self, name: str, seconds: float, event: str, payload: Mapping[str, Any] | None = None
    ) -> None:
        """Fire ``event`` (with ``payload``) ``seconds`` after this transition,
        unless `cancel_timer` cancels it first; it outlives state changes.
        Starting a timer under a name that is pending replaces it.

        Raises:
            InvalidArgument: a name that is not a non-empty str, seconds not a
                finite number >= 0, an event that is not a str, a payload that
                is not a mapping. An event the machine does not have makes
                the transition raise `InvalidArgument` before it commits.
        """
        self._ask(request("start", name, seconds, event, payload, "TransitionContext.start_timer"))

    def cancel_timer(self, name: str) -> None:
        """Cancel the named timer ``name`` (nothing happens if none is pending)."""
        self._ask(request("cancel", name, 0, "", None, "TransitionContext.cancel_timer"))

    def set_event_timeout(
        self, seconds: float, event: str, payload: Mapping[str, Any] | None = None
    ) -> None:
        """Fire ``event`` ``seconds`` after this transition unless another
        transition (by any event) commits first. One at a time: setting it
        again replaces it."""
        where = "TransitionContext.set_event_timeout"
        self._ask(request("event", "", seconds, event, payload, where))

    def send_later(
        self, seconds: float, event: str, payload: Mapping[str, Any] | None = None
    ) -> None:
        """Send ``event`` to this machine ``seconds`` after this transition; it
        cannot be cancelled."""
        self._ask(request("later", "", seconds, event, payload, "TransitionContext.send_later"))


#: ``TransitionContext(...)`` by position, for the hot path (`quick_maker`).
new_context: Callable[..., TransitionContext] = quick_maker(TransitionContext)


@quick_init
@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    """A transition that passed every check, ready to commit.

    Attributes:
        previous: the snapshot before.
        snapshot: the snapshot after; commit it, then run `after_commit`.
        record: the history entry it adds.
        context: the final context, given to after-commit hooks.
        after_commit: the after-commit hooks that apply, in run order.
    """

    previous: MachineSnapshot
    snapshot: MachineSnapshot
    record: TransitionRecord
    context: TransitionContext
    after_commit: tuple[Hook, ...]


@dataclass(frozen=True, slots=True)
class HookFailure:
    """An after-commit hook (or observer) that raised. The commit stands.

    Attributes:
        hook: the hook's name.
        kind: its kind (``after_commit``, ``observer``).
        error: the exception it raised.
    """

    hook: str
    kind: str
    error: BaseException


@quick_init
@dataclass(frozen=True, slots=True)
class CreationOutcome:
    """A new machine that passed its creation hooks, ready to commit.

    Attributes:
        snapshot: the new machine: the initial state, version 0, the data as the
            hooks left it.
        context: the final context (``source`` is None), for after-commit hooks.
        after_commit: the after-commit hooks that apply, in run order.
    """

    snapshot: MachineSnapshot
    context: TransitionContext
    after_commit: tuple[Hook, ...]
