"""How each kind of actor is persisted: snapshot documents and journal deltas.

A store keeps, per actor, snapshots (the whole value, as a *document*: an
`ImmutableState` the codec can encode) and a journal of *deltas* (what one
commit changed). Recovery is the newest valid snapshot plus the deltas after
it, applied in order. No hook runs during recovery: a delta already holds the
outcome of the hooks.

Documents and deltas carry a record schema version. Old records are brought up
to date by upgrade steps registered explicitly (`RecordUpgrades`), and a
record from a newer schema than this code knows is refused, never misread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._chartstore import chart_delta, chart_from_delta, fit_chart
from ._config import ConfigChange, ConfigHistory
from ._errors import StatewardError
from ._history import EMPTY_HISTORY, extend_history
from ._machine import MachineSnapshot, TransitionRecord
from ._same import same
from ._spec import MachineSpec
from ._state import ImmutableState, record
from ._store import StoreSnapshot
from ._timers import PendingTimer

__all__ = [
    "RECORD_SCHEMA",
    "ConfigCodec",
    "DefinitionMismatch",
    "KindCodec",
    "MachineCodec",
    "ManagerCodec",
    "RecordUpgrades",
]

RECORD_SCHEMA = 1
"""The schema version of the documents and deltas this code writes."""


class DefinitionMismatch(StatewardError, ValueError):
    """A stored actor does not fit the definition it is being recovered with.

    Attributes:
        actor: the actor's name.
        problem: what does not fit.
    """

    def __init__(self, actor: str, problem: str) -> None:
        self.actor = actor
        self.problem = problem
        super().__init__(
            f"stored actor {actor!r} does not fit its new definition: {problem}. Recover it "
            "with a definition that still has what it stored, or give the new actor another "
            "name"
        )


class KindCodec(Protocol):
    """Turns one kind of snapshot into documents and deltas, and back."""

    @property
    def kind(self) -> str:
        """``machine``, ``manager`` or ``config``."""

    def version(self, snapshot: Any) -> int:
        """The snapshot's version."""

    def document(self, snapshot: Any) -> ImmutableState:
        """The whole snapshot, encodable."""

    def from_document(self, name: str, document: Mapping[str, Any]) -> Any:
        """Rebuild a snapshot; raises `DefinitionMismatch` if it cannot be used."""

    def delta(self, old: Any, new: Any) -> Any:
        """What one commit changed, encodable and small."""

    def apply(self, snapshot: Any, delta: Any) -> Any:
        """Replay a delta on the snapshot it was taken from."""

    def definition(self) -> ImmutableState:
        """A description of the definition, stored next to the actor."""


def _changes(old: ImmutableState, new: ImmutableState) -> tuple[dict[str, Any], list[str]]:
    """Top-level keys whose values are not the `same` (types, signs and timezones
    included: ``True`` replacing ``1`` is a change), and removed keys."""
    old_data, new_data = old._data, new._data
    missing = _MISSING
    changed = {
        k: v
        for k, v in new_data.items()
        # ``!=`` first: it settles most changes at C speed; only equal values
        # need the walk that tells an equal twin from the same value.
        if (was := old_data.get(k, missing)) is not v
        and (was is missing or was != v or not same(was, v))
    }
    removed = [k for k in old_data if k not in new_data]
    return changed, removed


_MISSING = object()


def _apply_changes(
    state: ImmutableState, changed: Mapping[str, Any], removed: list[str]
) -> ImmutableState:
    state = state.update(changed) if changed else state
    return state.without(*removed) if removed else state


@dataclass(frozen=True)
class MachineCodec:
    """Documents and deltas of a `StateMachine`."""

    spec: MachineSpec
    kind: str = "machine"

    def version(self, snapshot: MachineSnapshot) -> int:
        return snapshot.version

    def document(self, snapshot: MachineSnapshot) -> ImmutableState:
        return snapshot.to_state()

    def from_document(self, name: str, document: Mapping[str, Any]) -> MachineSnapshot:
        snapshot = MachineSnapshot.from_state(document)
        self._check(name, snapshot.state)
        return self._fit(name, snapshot)

    def _fit(self, name: str, snapshot: MachineSnapshot) -> MachineSnapshot:
        if snapshot.chart is None and self.spec._chart is None:
            return snapshot
        fitted = fit_chart(self.spec, snapshot)
        if isinstance(fitted, str):
            raise DefinitionMismatch(name, fitted)
        return fitted

    def _check(self, name: str, state: str) -> None:
        if state not in self.spec.states:
            raise DefinitionMismatch(
                name,
                f"its state {state!r} is not a state of the machine (states: "
                f"{', '.join(map(repr, self.spec.states))})",
            )

    def delta(self, old: MachineSnapshot, new: MachineSnapshot) -> Any:
        changed, removed = _changes(old.data, new.data)
        record = (
            new.history[-1].to_tuple()
            if new.history
            else (new.version, old.state, new.state, None, None, ())
        )
        extras: dict[str, Any] = {}
        if new.chart is not None:  # a statechart's: what recovery needs besides
            extras["chart"] = chart_delta(new.chart)
        if new.timers is not old.timers:  # a move that changes none keeps the tuple itself
            extras["timers"] = tuple(t.to_tuple() for t in new.timers)
        if extras:
            # Optional extras, by key, in one dict as the fourth item: deltas of
            # flat machines without timers keep their three items, and read as before.
            return (record, changed, removed, extras)
        return (record, changed, removed)

    def apply(self, snapshot: MachineSnapshot, delta: Any) -> MachineSnapshot:
        record_tuple, changed, removed = delta[:3]
        timers = snapshot.timers
        chart = None
        if len(delta) > 3:
            extras = delta[3]
            if isinstance(extras, Mapping):
                if "chart" in extras:
                    chart = chart_from_delta(extras["chart"])
                if "timers" in extras:
                    timers = tuple(PendingTimer.from_tuple(tuple(t)) for t in extras["timers"])
            else:  # a statechart's delta written before timers: the chart alone
                chart = chart_from_delta(extras)
        record = TransitionRecord.from_tuple(tuple(record_tuple))
        if record.to_state not in self.spec.states:
            raise DefinitionMismatch(
                self.spec.name or "machine",
                f"its journal moves it to state {record.to_state!r}, which is not a state of "
                f"the machine (states: {', '.join(map(repr, self.spec.states))})",
            )
        limit = self.spec.history_limit
        history: Sequence[TransitionRecord] = EMPTY_HISTORY
        if limit and record.at is not None:
            history = extend_history(snapshot.history, record.to_tuple(), limit)
        new = MachineSnapshot(
            record.to_state,
            record.version,
            _apply_changes(snapshot.data, changed, list(removed)),
            history,
            chart,
            timers,
        )
        return self._fit(self.spec.name or "machine", new)

    def definition(self) -> ImmutableState:
        """What a store records of the machine's definition (``stateward
        inspect`` rebuilds a spec from it): its initial state, states and
        moves, and, for a statechart only, its tree (``compound``,
        ``parallel``, ``history``), so that a flat machine's is unchanged."""
        spec = self.spec
        tree: dict[str, Any] = {}
        if spec.is_hierarchical:
            compound: dict[str, Any] = {}
            parallel: dict[str, list[str]] = {}
            for state in spec.states:
                if spec.is_compound(state):
                    children = list(spec.children(state))
                    compound[state] = {"initial": spec.initial_child(state), "states": children}
                elif spec.is_parallel(state):
                    parallel[state] = list(spec.children(state))
            history = {name: list(where) for name, where in spec.history_states.items()}
            tree = {"compound": compound, "parallel": parallel, "history": history}
        return ImmutableState(
            initial=spec.initial,
            states=list(spec.states),
            transitions={s: list(t) for s, t in spec.transitions.items()},
            **tree,
        )


@dataclass(frozen=True)
class ManagerCodec:
    """Documents and deltas of a `StateManager`."""

    kind: str = "manager"

    def version(self, snapshot: StoreSnapshot) -> int:
        return snapshot.version

    def document(self, snapshot: StoreSnapshot) -> ImmutableState:
        return record(state=snapshot.state, version=snapshot.version)

    def from_document(self, name: str, document: Mapping[str, Any]) -> StoreSnapshot:
        state = document["state"]
        return StoreSnapshot(
            state if isinstance(state, ImmutableState) else ImmutableState(state),
            document["version"],
        )

    def delta(self, old: StoreSnapshot, new: StoreSnapshot) -> Any:
        changed, removed = _changes(old.state, new.state)
        return (new.version, changed, removed)

    def apply(self, snapshot: StoreSnapshot, delta: Any) -> StoreSnapshot:
        version, changed, removed = delta
        return StoreSnapshot(_apply_changes(snapshot.state, changed, list(removed)), version)

    def definition(self) -> ImmutableState:
        return ImmutableState()


@dataclass(frozen=True)
class ConfigCodec:
    """Documents and deltas of a `ConfigManager` (keeping at most ``limit`` versions)."""

    kind: str = "config"
    limit: int | None = None

    def version(self, snapshot: ConfigHistory) -> int:
        return snapshot.version

    def document(self, snapshot: ConfigHistory) -> ImmutableState:
        return record(
            version=snapshot.version, entries=tuple(e.to_tuple() for e in snapshot.entries)
        )

    def from_document(self, name: str, document: Mapping[str, Any]) -> ConfigHistory:
        entries = tuple(ConfigChange.from_tuple(tuple(e)) for e in document["entries"])
        if self.limit is not None:
            entries = entries[-self.limit :]
        return ConfigHistory(entries, self.limit)

    def delta(self, old: ConfigHistory, new: ConfigHistory) -> Any:
        return new.current.to_tuple()

    def apply(self, snapshot: ConfigHistory, delta: Any) -> ConfigHistory:
        return snapshot._append(ConfigChange.from_tuple(tuple(delta)))

    def definition(self) -> ImmutableState:
        return ImmutableState()


Upgrade = Callable[[Any], Any]


@dataclass
class RecordUpgrades:
    """Explicitly registered steps that bring old records up to `RECORD_SCHEMA`.

    ``register(kind, "document", 1, step)`` adds the step from schema 1 to 2
    for that kind's documents (``"delta"`` for journal deltas). Loading a
    record of schema n runs the steps n -> n+1 -> ... in order.
    """

    steps: dict[tuple[str, str, int], Upgrade] = field(default_factory=dict)
    current: int = RECORD_SCHEMA

    def register(self, kind: str, what: str, from_schema: int, step: Upgrade) -> None:
        if what not in ("document", "delta"):
            raise ValueError(f"what must be 'document' or 'delta', got {what!r}")
        key = (kind, what, from_schema)
        if key in self.steps:
            raise ValueError(
                f"an upgrade from schema {from_schema} of {kind} {what}s is already registered"
            )
        self.steps[key] = step

    def upgrade(self, kind: str, what: str, schema: int, value: Any) -> Any:
        """Bring ``value`` from ``schema`` to the current schema.

        Raises:
            SchemaVersionError: ``schema`` is newer than this code knows.
            LookupError: a step on the way is not registered.
        """
        from ._errors import SchemaVersionError

        if schema > self.current:
            raise SchemaVersionError(schema, self.current, what=f"stored {kind} {what}")
        while schema < self.current:
            step = self.steps.get((kind, what, schema))
            if step is None:
                raise LookupError(
                    f"stored {kind} {what} has schema {schema}, and no upgrade from schema "
                    f"{schema} to {schema + 1} is registered; register one with "
                    "RecordUpgrades.register"
                )
            value = step(value)
            schema += 1
        return value
