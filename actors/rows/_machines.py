"""Machines bound to database rows: one definition, many rows, safe across processes.

A transition on a bound row never trusts the caller's idea of its state. Inside
one database transaction it:

1. reads the row (locked, in pessimistic mode);
2. runs pre-transition hooks, guards, exit and enter hooks on what it read;
3. writes the new state, the changed columns and the version, in optimistic
   mode only if the row is still as read (a zero row count is a conflict);
4. appends the transition to the audit table;
5. commits, and only then runs the after-commit hooks.

Within one process, the transitions of one row go through one actor (created
on demand, stopped when idle), so threads queue in its mailbox instead of
fighting over the row lock. Across processes, the database decides.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stateward.core import (
    ArgumentValueError,
    ImmutableState,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    TransitionRecord,
    apply_creation,
    apply_transition,
    run_after_commit,
)
from stateward.core._arguments import check_move, check_payload, check_timeout
from stateward.core._behaviours import Behaviour, Outcome, committed
from stateward.core._machine import AsyncRunner
from stateward.core._messages import Move
from stateward.core._same import same

from .._cell import Cell, ErrorReport
from .._errors import ActorStopped
from .._handles import ActorHandle, ActorOptions
from .._runtime import Runtime, current_runtime
from .._supervisor import Supervisor
from ._adapter import (
    AUDIT_KEY_LENGTH,
    ModelBinding,
    ORMAdapter,
    audit_entry,
    is_adapter,
    joins_caller,
)
from ._errors import (
    ConcurrentTransition,
    InvalidRowKey,
    ParallelStatesUnbindable,
    RowBusy,
    RowNotFound,
    UnknownStateValue,
)

logger = logging.getLogger(__name__)

MODES = ("pessimistic", "optimistic")
#: Serial numbers of row actors, shared by every RowMachines: two of them on one
#: table in one runtime must not give their actors the same name.
_SERIALS = itertools.count(1)
LOCKS = ("wait", "nowait", "skip_locked")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a transition that lost a race (`ConcurrentTransition`) or found its
    row locked (`RowBusy`): up to ``attempts`` more times, waiting an
    exponential, jittered backoff between tries. Each retry reads the row
    again and decides again: a retried payment after a cancellation gets
    `InvalidTransition`, not a second write."""

    attempts: int = 3
    min_delay: float = 0.005
    max_delay: float = 0.5
    seed: int | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 0:
            raise ValueError(f"attempts must be an int >= 0, got {self.attempts!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        base: float = min(self.max_delay, self.min_delay * 2**attempt)
        return base * rng.uniform(0.5, 1.5)


@dataclass(frozen=True)
class RowResult:
    """A committed transition (or creation) of one row.

    Attributes:
        key: the row's key.
        state: its state now.
        version: its version now (None without a version column).
        data: its data columns now, as the hooks saw and left them.
        record: the transition (None for a creation).
        retries: how many times it was retried before it committed.
    """

    key: Any
    state: str
    version: int | None
    data: ImmutableState
    record: TransitionRecord | None
    retries: int = 0


class _RowActor(ActorHandle):
    """The in-process actor of one row: serializes that row's transitions."""

    _kind = "row"

    def __init__(self, rows: RowMachines, key: Any) -> None:
        self._rows = rows
        self._key = key
        self.last_used = rows.runtime.timer.monotonic()
        spec = rows.spec
        super().__init__(
            f"{rows.binding.name}[{key!r}]#{next(rows._serial)}",
            rows.runtime,
            MachineSnapshot(spec.initial, 0, ImmutableState(), ()),
            lambda s: s,
            lambda s: s.version,
            ActorOptions(supervisor=rows._supervisor),
            None,  # type: ignore[arg-type]
        )

    def _behaviour(self, cell: Cell) -> Behaviour:
        """A machine's `Move`, made on the row as the database holds it: the
        reply is the `RowResult`, the after-commit hooks are the cell's to run."""
        rows, key, run_async = self._rows, self._key, cell.run_async

        def behaviour(snapshot: MachineSnapshot, message: Move) -> Outcome:
            target, event, payload = message
            result, outcome, handed = rows._transact(key, target, event, payload, run_async)
            if handed:  # the transaction runs the after-commit hooks (on_commit)
                return Outcome(outcome.snapshot, result, None)
            return committed(outcome, result)

        return behaviour


class RowMachines:
    """A machine definition bound to the rows of one table.

    Args:
        spec: the machine (`MachineSpec` or `MachineBuilder`).
        binding: which columns hold the state, the key and the version: a
            `RowBinding` (SQLAlchemy) or a `DjangoBinding`.
        engine: what the binding's ORM works on: a SQLAlchemy engine for a
            `RowBinding`, a database alias (None: ``"default"``) for a
            `DjangoBinding`; or any `ORMAdapter`.
        mode: ``"pessimistic"`` (lock the row: ``SELECT ... FOR UPDATE`` on
            PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) or ``"optimistic"``
            (``UPDATE ... WHERE key=? AND state=? [AND version=?]``; a zero row
            count is a `ConcurrentTransition`). Pessimistic by default.
        lock: PostgreSQL pessimistic mode: ``"wait"`` (default), ``"nowait"``
            (a locked row is `RowBusy` at once) or ``"skip_locked"``.
        lock_timeout: PostgreSQL: seconds to wait for a row lock before `RowBusy`.
        retry: a `RetryPolicy`, to retry lost races and locked rows; off by default.
        audit: write every committed transition to the ``stateward_audit`` table
            (created if missing) in the same transaction.
        runtime: the runtime whose actors serialize each row in this process;
            the current one (see `Runtime`) when omitted.
        idle_timeout: seconds after which a row's idle actor stops.
    """

    def __init__(
        self,
        spec: MachineSpec | MachineBuilder,
        binding: ModelBinding,
        engine: Any,
        *,
        mode: str = "pessimistic",
        lock: str = "wait",
        lock_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        audit: bool = True,
        runtime: Runtime | None = None,
        idle_timeout: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if lock not in LOCKS:
            raise ValueError(f"lock must be one of {', '.join(LOCKS)}, got {lock!r}")
        self.spec = spec.build() if isinstance(spec, MachineBuilder) else spec
        if self.spec.has_parallel:
            raise ParallelStatesUnbindable(binding.name, self.spec)
        if self.spec.timeouts:
            raise MachineDefinitionError(
                f"rows of {binding.name!r} keep their state in a column, and no timers: the "
                f"state timeouts of {', '.join(map(repr, self.spec.timeouts))} would never fire; "
                "run such machines as actors (StateMachine with a store)"
            )
        self.binding = binding
        self.adapter: ORMAdapter = engine if is_adapter(engine) else binding.adapter_for(engine)
        if binding.states is not None:
            # A compound state is never stored: a row holds its active leaf.
            stored = [s for s in self.spec.states if not self.spec.children(s)]
            missing = [s for s in stored if s not in binding.states]
            if missing:
                raise ValueError(
                    f"{type(binding).__name__} states= gives no column value for "
                    f"{', '.join(map(repr, missing))}"
                )
        self.mode = mode
        self.lock = lock
        self.lock_timeout = lock_timeout
        self.retry = retry
        self.audit = audit
        self.runtime = runtime if runtime is not None else current_runtime()
        self.idle_timeout = idle_timeout
        self._rng = random.Random(retry.seed if retry is not None else None)
        self._lock = threading.Lock()
        self._actors: dict[Any, _RowActor] = {}
        self._serial = _SERIALS
        # Row actors are cheap and disposable; a failure fails only its request.
        self._supervisor = Supervisor(
            f"rows:{binding.name}", runtime=self.runtime, max_restarts=1000, within=1.0
        )
        if audit:
            self.adapter.create_audit_table()

    # -- the public operations ---------------------------------------------------------

    def transition(
        self,
        key: Any,
        target: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> RowResult:
        """Move row ``key`` to ``target``; return the committed `RowResult`.

        Raises:
            InvalidRowKey: ``key`` cannot be a value of the key column (see
                `normalize_key`); nothing is read or written.
            InvalidArgument: ``target`` is not a str, or ``data`` not a mapping.
            RowNotFound: no such row.
            UnknownStateValue: the row's state column holds an unknown value.
            InvalidTransition: the row's current state does not allow it.
            TransitionRejected: a guard vetoed it.
            ConcurrentTransition: optimistic mode lost a race (after retries).
            RowBusy: the row stayed locked (after retries).
        """
        return self._call("transition", key, target, None, data, timeout)

    def trigger(
        self,
        key: Any,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> RowResult:
        """Fire ``event`` on row ``key``; return the committed `RowResult`."""
        return self._call("trigger", key, None, event, data, timeout)

    transition_to = transition

    def create(self, data: Mapping[str, Any] | None = None) -> RowResult:
        """Insert a new row in the initial state.

        Pre-transition hooks into the initial state (registered without a
        source) enrich ``data`` first, generating an id, say; guards may veto;
        enter hooks may set columns. Every key of the enriched data must be a
        column of the table. A key given in ``data`` is read as the key
        column's type, as `transition` reads one.
        """
        data = check_payload(data, "RowMachines.create")
        outcome = apply_creation(
            self.spec, data, clock=self.runtime.clock, machine=self.binding.name
        )
        if outcome.snapshot.timers:  # a creation hook asked for one
            raise _no_timers(self.binding.name, None)
        values = {**outcome.context.payload.to_dict(), **outcome.snapshot.data.to_dict()}
        self.binding.check_columns(list(values), "create()")
        key_column = self.binding.key
        if key_column is not None and key_column in values:
            values[key_column] = self.key_of(values[key_column], "RowMachines.create")
        start = outcome.snapshot.state  # the initial state, or its initial leaf
        values[self.binding.state] = self.binding.value_of(start)
        if self.binding.version is not None:
            values[self.binding.version] = 0
        handed = False
        try:
            with self.adapter.transaction(self.binding, lock=None, lock_timeout=None) as tx:
                key = tx.insert(values)
                handed = self._hand_after_commit(tx, outcome, key, None)
                if self.audit:
                    tx.audit(
                        audit_entry(
                            self.binding,
                            key,
                            None,
                            start,
                            "create",
                            0 if self.binding.version else None,
                            outcome.context.at,
                            outcome.context.payload,
                        )
                    )
        except Exception as exc:
            reason = self.adapter.busy(exc)
            if reason is not None:
                raise RowBusy(self.binding.name, "<new row>", reason) from exc
            raise
        if not handed:
            self._run_after_commit(outcome, key, None)
        stored = ImmutableState({c: values[c] for c in self.binding.data_columns if c in values})
        return RowResult(key, start, 0 if self.binding.version else None, stored, None)

    def state_of(self, key: Any) -> str:
        """The row's current state, read now (no lock).

        Raises:
            InvalidRowKey: ``key`` cannot be a value of the key column.
            RowNotFound: no such row.
            RowBusy: the database stayed locked (SQLite, past its busy timeout).
        """
        key = self.key_of(key, "RowMachines.state_of")
        try:
            with self.adapter.transaction(self.binding, lock=None, lock_timeout=None) as tx:
                row = tx.read(key, lock=False)
        except Exception as exc:
            reason = self.adapter.busy(exc)
            if reason is not None:
                raise RowBusy(self.binding.name, key, reason) from exc
            raise
        if row is None:
            raise RowNotFound(self.binding.name, key)
        return self.binding.state_of(key, row[self.binding.state], self.spec.states)

    def history(self, key: Any) -> list[dict[str, Any]]:
        """The row's audit entries, oldest first (needs ``audit=True``).

        Raises:
            InvalidRowKey: ``key`` cannot be a value of the key column.
        """
        if not self.audit:
            raise ValueError("this RowMachines was created with audit=False: no history")
        return self.adapter.audit_entries(
            self.binding.name, self.key_of(key, "RowMachines.history")
        )

    def key_of(self, key: Any, call: str = "RowMachines.key_of") -> Any:
        """``key`` as the key column holds it: the one spelling under which the
        row's actor, its queries, its audit entries and its errors know it.

        Integer columns take ints within the column's range on this database
        (``1.0`` and ``Decimal(1)`` are ``1``; ``1.5``, ``"1"`` and bools are
        refused), text columns take str, UUID columns a UUID or its text, other
        typed columns an instance of the column's Python type.

        Raises:
            InvalidRowKey: ``key`` cannot be a value of the key column.
        """
        key = self.binding.normalize_key(key, self.adapter.dialect, call)
        if self.audit and len(str(key)) > AUDIT_KEY_LENGTH:
            raise InvalidRowKey(
                call,
                self.binding.name,
                str(self.binding.key),
                f"a key whose text is at most {AUDIT_KEY_LENGTH} characters (the audit "
                "table's row_key)",
                key,
                "Use a shorter key, or audit=False",
            )
        return key

    def close(self) -> None:
        """Stop every row actor, then close the adapter's connections (an
        adapter's optional ``close()``)."""
        with self._lock:
            actors = list(self._actors.values())
            self._actors.clear()
        for actor in actors:
            actor.stop()
        self._supervisor.stop()
        close = getattr(self.adapter, "close", None)  # an adapter's connections, if it has any
        if close is not None:
            close()

    def __enter__(self) -> RowMachines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- after the commit -----------------------------------------------------------------

    def _run_after_commit(self, outcome: Any, key: Any, run_async: AsyncRunner | None) -> None:
        """Run the after-commit hooks of a committed move. The commit stands: a
        hook's error is reported, as a row actor reports it, never swallowed."""
        for failure in run_after_commit(outcome, run_async):
            name = f"{self.binding.name}[{key!r}]"
            logger.error(
                "%s: %s %r raised after the commit (the commit stands): %r",
                name,
                failure.kind,
                failure.hook,
                failure.error,
                exc_info=failure.error,
            )
            self.runtime._report(ErrorReport(name, failure.kind, failure.hook, failure.error))

    def _hand_after_commit(
        self, tx: Any, outcome: Any, key: Any, run_async: AsyncRunner | None
    ) -> bool:
        """Give the after-commit hooks to a transaction that runs them once it
        (or the caller's transaction it joined) commits; False if it cannot."""
        defer = getattr(tx, "after_commit", None)
        if defer is None:
            return False
        if outcome.after_commit:
            defer(lambda: self._run_after_commit(outcome, key, run_async))
        return True

    # -- one actor per row ---------------------------------------------------------------

    def _actor(self, key: Any) -> _RowActor:
        with self._lock:
            actor = self._actors.get(key)
            if actor is None or not actor.alive:
                actor = _RowActor(self, key)
                self._actors[key] = actor
                self.runtime.timer.call_later(self.idle_timeout, lambda: self._idle(key, actor))
            actor.last_used = self.runtime.timer.monotonic()
        return actor

    def _idle(self, key: Any, actor: _RowActor) -> None:
        idle_for = self.runtime.timer.monotonic() - actor.last_used
        if idle_for < self.idle_timeout or actor._cell.mailbox.qsize():
            remaining = max(0.01, self.idle_timeout - idle_for)
            self.runtime.timer.call_later(remaining, lambda: self._idle(key, actor))
            return
        with self._lock:
            if self._actors.get(key) is actor:
                del self._actors[key]
        actor._stop("idle", 5.0, wait=False)

    def _call(
        self,
        method: str,
        key: Any,
        target: str | None,
        event: str | None,
        data: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> RowResult:
        # Everything is checked here, in the caller's thread, before the row's
        # actor is even looked up: a bad argument reaches neither it nor the database.
        call = f"RowMachines.{method}"
        key = self.key_of(key, call)
        if event is None:
            target, event, data = check_move(target, None, data, call)
        else:
            _, event, data = check_move(None, event, data, call)
        if timeout is not None:
            timeout = check_timeout(timeout, call)
        if joins_caller(self.adapter):
            # Inside the caller's own transaction: the move joins it, in this
            # thread (an actor's thread has a connection, and a transaction, of
            # its own); its after-commit hooks wait for the caller's commit.
            joined, _outcome, _handed = self._transact(key, target, event, data, None)
            return joined
        for _ in range(3):
            actor = self._actor(key)
            try:
                result: RowResult = actor._call(Move((target, event, data)), timeout)
                return result
            except ActorStopped:
                continue  # it went idle between our lookup and our call: take a new one
        raise RuntimeError(f"row {self.binding.name}[{key!r}]: its actor kept stopping")

    # -- the transaction -------------------------------------------------------------------

    def _found_state(self, key: Any, row: Mapping[str, Any]) -> str:
        """The state a row read after a lost race is in (its raw value if unknown)."""
        value = row[self.binding.state]
        try:
            return self.binding.state_of(key, value, self.spec.states)
        except UnknownStateValue:
            return str(value)

    def _transact(
        self,
        key: Any,
        target: str | None,
        event: str | None,
        payload: Mapping[str, Any] | None,
        run_async: AsyncRunner | None,
    ) -> tuple[RowResult, Any, bool]:
        attempt = 0
        while True:
            try:
                result, outcome, handed = self._attempt(key, target, event, payload, run_async)
                return (
                    RowResult(
                        result.key,
                        result.state,
                        result.version,
                        result.data,
                        result.record,
                        attempt,
                    ),
                    outcome,
                    handed,
                )
            except (ConcurrentTransition, RowBusy):
                if self.retry is None or attempt >= self.retry.attempts:
                    raise
                self.retry.sleep(self.retry.delay(attempt, self._rng))
                attempt += 1

    def _attempt(
        self,
        key: Any,
        target: str | None,
        event: str | None,
        payload: Mapping[str, Any] | None,
        run_async: AsyncRunner | None,
    ) -> tuple[RowResult, Any, bool]:
        binding = self.binding
        pessimistic = self.mode == "pessimistic"
        try:
            with self.adapter.transaction(
                binding, lock=self.lock if pessimistic else None, lock_timeout=self.lock_timeout
            ) as tx:
                row = tx.read(key, lock=pessimistic)
                if row is None:
                    if self.lock == "skip_locked" and pessimistic and tx.exists(key):
                        raise RowBusy(binding.name, key, "locked, and skipped (SKIP LOCKED)")
                    raise RowNotFound(binding.name, key)
                stored = row[binding.state]
                state = binding.state_of(key, stored, self.spec.states)
                version = int(row[binding.version] or 0) if binding.version else 0
                data = binding.data_of(row)
                outcome = apply_transition(
                    self.spec,
                    MachineSnapshot(state, version, data, ()),
                    target,
                    event=event,
                    payload=payload,
                    clock=self.runtime.clock,
                    machine=f"{binding.name}[{key!r}]",
                    run_async=run_async,
                )
                new = outcome.snapshot
                if new.timers:  # a hook asked for one: a row has nowhere to keep it
                    raise _no_timers(binding.name, key)
                # Exact sameness, not ==: a hook's -0.0 over 0.0, or True over 1, is
                # a change the row must hold, as the reply says it does.
                changes = {
                    k: v for k, v in new.data._data.items() if k not in data or not same(data[k], v)
                }
                binding.check_columns(list(changes), f"a hook of {binding.name}[{key!r}]")
                values = {**changes, binding.state: binding.value_of(new.state)}
                if binding.version is not None:
                    values[binding.version] = version + 1
                written = tx.update(
                    key,
                    values,
                    state_value=None
                    if pessimistic and self.adapter.dialect in ("postgresql", "sqlite")
                    else stored,
                    version=None if pessimistic else version,
                )
                if written != 1:
                    found_row = tx.read(key, lock=False)
                    found = None if found_row is None else self._found_state(key, found_row)
                    raise ConcurrentTransition(binding.name, key, state, found)
                if self.audit:
                    tx.audit(
                        audit_entry(
                            binding,
                            key,
                            state,
                            new.state,
                            outcome.record.event,
                            version + 1 if binding.version else None,
                            outcome.record.at,
                            outcome.context.payload,
                        )
                    )
                handed = self._hand_after_commit(tx, outcome, key, run_async)
        except Exception as exc:
            reason = self.adapter.busy(exc)
            if reason is not None:
                raise RowBusy(binding.name, key, reason) from exc
            raise
        result = RowResult(
            key, new.state, version + 1 if binding.version else None, new.data, outcome.record
        )
        return result, outcome, handed


def _no_timers(table: str, key: Any) -> ArgumentValueError:
    """The refusal of a row transition whose hook asked for a timer."""
    row = table if key is None else f"{table}[{key!r}]"
    return ArgumentValueError(
        "TransitionContext.start_timer",
        "timer",
        "no timer: a row keeps its state in a column, and no timers",
        row,
        "Run machines with timers as actors (StateMachine with a store)",
        outcome="nothing was written",
    )
