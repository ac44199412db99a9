"""One transition of one row, in one database transaction, retried if it lost a race.

`transact` is what a row's actor runs (or the caller, inside its own
transaction): read the row (locked in pessimistic mode), decide the move on
what was read, write the new state, data and version (in optimistic mode only
if the row is still as read), append the audit entry, and hand the
after-commit hooks to the transaction. A `ConcurrentTransition` or `RowBusy`
is retried under the `RetryPolicy`, each try reading the row again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol

from stateward.core import (
    ArgumentValueError,
    ImmutableState,
    MachineSnapshot,
    MachineSpec,
    apply_creation,
    apply_transition,
)
from stateward.core._machine import AsyncRunner
from stateward.core._same import same

from ._adapter import ModelBinding, ORMAdapter, audit_entry
from ._errors import ConcurrentTransition, RowBusy, RowNotFound, UnknownStateValue
from ._row_result import RetryPolicy, RowResult


class Rows(Protocol):
    """What a row transaction needs of its `RowMachines` (the module above)."""

    spec: MachineSpec
    binding: ModelBinding
    adapter: ORMAdapter
    mode: str
    lock: str
    lock_timeout: float | None
    retry: RetryPolicy | None
    audit: bool
    runtime: Any
    _rng: random.Random

    def key_of(self, key: Any, call: str = ...) -> Any: ...

    def _hand_after_commit(
        self, tx: Any, outcome: Any, key: Any, run_async: AsyncRunner | None
    ) -> bool: ...

    def _run_after_commit(self, outcome: Any, key: Any, run_async: AsyncRunner | None) -> None: ...


__all__ = ["Rows", "create", "no_timers", "transact"]


def _found_state(rows: Rows, key: Any, row: Mapping[str, Any]) -> str:
    """The state a row read after a lost race is in (its raw value if unknown)."""
    value = row[rows.binding.state]
    try:
        return rows.binding.state_of(key, value, rows.spec.states)
    except UnknownStateValue:
        return str(value)


def transact(
    rows: Rows,
    key: Any,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    run_async: AsyncRunner | None,
) -> tuple[RowResult, Any, bool]:
    attempt = 0
    while True:
        try:
            result, outcome, handed = _attempt(rows, key, target, event, payload, run_async)
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
            if rows.retry is None or attempt >= rows.retry.attempts:
                raise
            rows.retry.sleep(rows.retry.delay(attempt, rows._rng))
            attempt += 1


def _attempt(
    rows: Rows,
    key: Any,
    target: str | None,
    event: str | None,
    payload: Mapping[str, Any] | None,
    run_async: AsyncRunner | None,
) -> tuple[RowResult, Any, bool]:
    binding = rows.binding
    pessimistic = rows.mode == "pessimistic"
    try:
        with rows.adapter.transaction(
            binding, lock=rows.lock if pessimistic else None, lock_timeout=rows.lock_timeout
        ) as tx:
            row = tx.read(key, lock=pessimistic)
            if row is None:
                if rows.lock == "skip_locked" and pessimistic and tx.exists(key):
                    raise RowBusy(binding.name, key, "locked, and skipped (SKIP LOCKED)")
                raise RowNotFound(binding.name, key)
            stored = row[binding.state]
            state = binding.state_of(key, stored, rows.spec.states)
            version = int(row[binding.version] or 0) if binding.version else 0
            data = binding.data_of(row)
            outcome = apply_transition(
                rows.spec,
                MachineSnapshot(state, version, data, ()),
                target,
                event=event,
                payload=payload,
                clock=rows.runtime.clock,
                machine=f"{binding.name}[{key!r}]",
                run_async=run_async,
            )
            new = outcome.snapshot
            if new.timers:  # a hook asked for one: a row has nowhere to keep it
                raise no_timers(binding.name, key)
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
                if pessimistic and rows.adapter.dialect in ("postgresql", "sqlite")
                else stored,
                version=None if pessimistic else version,
            )
            if written != 1:
                found_row = tx.read(key, lock=False)
                found = None if found_row is None else _found_state(rows, key, found_row)
                raise ConcurrentTransition(binding.name, key, state, found)
            if rows.audit:
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
            handed = rows._hand_after_commit(tx, outcome, key, run_async)
    except Exception as exc:
        reason = rows.adapter.busy(exc)
        if reason is not None:
            raise RowBusy(binding.name, key, reason) from exc
        raise
    result = RowResult(
        key, new.state, version + 1 if binding.version else None, new.data, outcome.record
    )
    return result, outcome, handed


def create(rows: Rows, data: ImmutableState | None) -> RowResult:
    """Insert a new row in the initial state (`RowMachines.create`), ``data`` checked."""
    outcome = apply_creation(rows.spec, data, clock=rows.runtime.clock, machine=rows.binding.name)
    if outcome.snapshot.timers:  # a creation hook asked for one
        raise no_timers(rows.binding.name, None)
    values = {**outcome.context.payload.to_dict(), **outcome.snapshot.data.to_dict()}
    rows.binding.check_columns(list(values), "create()")
    key_column = rows.binding.key
    if key_column is not None and key_column in values:
        values[key_column] = rows.key_of(values[key_column], "RowMachines.create")
    start = outcome.snapshot.state  # the initial state, or its initial leaf
    values[rows.binding.state] = rows.binding.value_of(start)
    if rows.binding.version is not None:
        values[rows.binding.version] = 0
    handed = False
    try:
        with rows.adapter.transaction(rows.binding, lock=None, lock_timeout=None) as tx:
            key = tx.insert(values)
            handed = rows._hand_after_commit(tx, outcome, key, None)
            if rows.audit:
                tx.audit(
                    audit_entry(
                        rows.binding,
                        key,
                        None,
                        start,
                        "create",
                        0 if rows.binding.version else None,
                        outcome.context.at,
                        outcome.context.payload,
                    )
                )
    except Exception as exc:
        reason = rows.adapter.busy(exc)
        if reason is not None:
            raise RowBusy(rows.binding.name, "<new row>", reason) from exc
        raise
    if not handed:
        rows._run_after_commit(outcome, key, None)
    stored = ImmutableState({c: values[c] for c in rows.binding.data_columns if c in values})
    return RowResult(key, start, 0 if rows.binding.version else None, stored, None)


def no_timers(table: str, key: Any) -> ArgumentValueError:
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
