"""The values of one machine: its snapshot, and what a transition hands around.

`MachineSnapshot` is a machine's whole state at one version. A transition gives
each hook a `TransitionContext`, and returns a `TransitionOutcome` (a creation,
a `CreationOutcome`) for the caller to commit; an after-commit hook that raised
comes back as a `HookFailure`. All are frozen; those made on every transition
use `quick_init`'s faster ``__init__``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._chart import ChartState
from ._history import EMPTY_HISTORY, Entry, History, TransitionRecord
from ._quick import quick_init
from ._spec import Hook, MachineSpec
from ._state import ImmutableState, record

__all__ = [
    "CreationOutcome",
    "HookFailure",
    "MachineSnapshot",
    "TransitionContext",
    "TransitionOutcome",
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
    """

    state: str
    version: int = 0
    data: ImmutableState = EMPTY
    history: Sequence[TransitionRecord] = EMPTY_HISTORY
    chart: ChartState | None = None

    @property
    def configuration(self) -> frozenset[str]:
        """Every active state: with compound states, ``state`` (the active leaf)
        and each state it is inside; with parallel regions, every region's."""
        if self.chart is None:
            return frozenset((self.state,))
        return self.chart.configuration

    @classmethod
    def initial(cls, spec: MachineSpec, data: Mapping[str, Any] | None = None) -> MachineSnapshot:
        """A new machine of ``spec``: its initial state, version 0, no history."""
        frozen = data if isinstance(data, ImmutableState) else ImmutableState(data or {})
        chart = spec._chart
        if chart is None:
            return cls(spec.initial, 0, frozen, EMPTY_HISTORY)
        active = spec.initial_configuration
        return cls(chart.current(active), 0, frozen, EMPTY_HISTORY, ChartState(active))

    def to_state(self) -> ImmutableState:
        """An encodable form, for the codec (see `from_state`); a statechart's
        also has ``configuration`` and, once history states remember, ``memory``."""
        if self.chart is not None:
            return record(
                state=self.state,
                version=self.version,
                data=self.data,
                history=tuple(_entries(self.history)),
                configuration=tuple(sorted(self.chart.configuration)),
                **({"memory": self.chart.memory} if self.chart.memory else {}),
            )
        return record(
            state=self.state,
            version=self.version,
            data=self.data,
            history=tuple(_entries(self.history)),
        )

    @classmethod
    def from_state(cls, value: Mapping[str, Any]) -> MachineSnapshot:
        """Rebuild a snapshot from `to_state`'s form."""
        data = value["data"]
        active = value.get("configuration")
        chart = None
        if active is not None:
            memory = value.get("memory", ())
            chart = ChartState(
                frozenset(active), tuple((str(h), tuple(states)) for h, states in memory)
            )
        return cls(
            value["state"],
            value["version"],
            data if isinstance(data, ImmutableState) else ImmutableState(data),
            History(TransitionRecord.from_tuple(tuple(r)) for r in value["history"]),
            chart,
        )


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
    """

    source: str | None
    target: str
    event: str | None
    payload: ImmutableState
    data: ImmutableState
    version: int
    machine: str | None
    at: _dt.datetime

    def with_payload(self, payload: ImmutableState) -> TransitionContext:
        return TransitionContext(
            self.source,
            self.target,
            self.event,
            payload,
            self.data,
            self.version,
            self.machine,
            self.at,
        )

    def with_target(self, target: str) -> TransitionContext:
        return TransitionContext(
            self.source,
            target,
            self.event,
            self.payload,
            self.data,
            self.version,
            self.machine,
            self.at,
        )

    def with_data(self, data: ImmutableState) -> TransitionContext:
        return TransitionContext(
            self.source,
            self.target,
            self.event,
            self.payload,
            data,
            self.version,
            self.machine,
            self.at,
        )


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
