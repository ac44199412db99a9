"""Machines bound to database rows: one definition, many rows, safe across processes.

A transition on a bound row never trusts the caller's idea of its state: it
reads the row, decides, writes and audits in one database transaction, and
runs the after-commit hooks only once that commits (`_row_transaction`).

Within one process, the transitions of one row go through one actor (created
on demand, stopped when idle), so threads queue in its mailbox instead of
fighting over the row lock. Across processes, the database decides.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Mapping
from typing import Any

from stateward.core import (
    ImmutableState,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    run_after_commit,
)
from stateward.core._arguments import check_move, check_payload, check_timeout
from stateward.core._behaviours import Behaviour, Outcome, committed
from stateward.core._machine import AsyncRunner
from stateward.core._messages import Move

from .._cell import Cell, ErrorReport
from .._errors import ActorStopped
from .._handles import ActorHandle, ActorOptions
from .._runtime import Runtime, current_runtime
from .._supervisor import Supervisor
from ._adapter import (
    AUDIT_KEY_LENGTH,
    ModelBinding,
    ORMAdapter,
    is_adapter,
    joins_caller,
)
from ._errors import InvalidRowKey, ParallelStatesUnbindable, RowBusy, RowNotFound
from ._row_result import RetryPolicy, RowResult
from ._row_transaction import create, transact

#: RetryPolicy and RowResult live in `_row_result`, and are still importable from here.
__all__ = ["LOCKS", "MODES", "RetryPolicy", "RowMachines", "RowResult"]

logger = logging.getLogger(__name__)

MODES = ("pessimistic", "optimistic")
#: Serial numbers of row actors, shared by every RowMachines: two of them on one
#: table in one runtime must not give their actors the same name.
_SERIALS = itertools.count(1)
LOCKS = ("wait", "nowait", "skip_locked")


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
        return create(self, check_payload(data, "RowMachines.create"))

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

    def _transact(
        self,
        key: Any,
        target: str | None,
        event: str | None,
        payload: Mapping[str, Any] | None,
        run_async: AsyncRunner | None,
    ) -> tuple[RowResult, Any, bool]:
        """One transition of row ``key`` (`_row_transaction.transact`)."""
        return transact(self, key, target, event, payload, run_async)
