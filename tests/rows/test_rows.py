"""Machines bound to database rows, on SQLite (a file on disk) and on PostgreSQL.

What a user of ``RowMachines`` counts on, one claim per test: the row's state is
read inside the database transaction (never the caller's copy), a veto or a
failure writes nothing, after-commit hooks run only after a commit, the audit
entry commits with the row, a lost race is a `ConcurrentTransition` (or
`RowBusy`), retries re-read and decide again, and threads of one process queue
in one actor per row. Raw SQL on a second engine plays the other process.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from support import ORDER_FLOW_UNTIL_SHIPPED

from stateward.actors import ManualClock, Runtime
from stateward.actors.rows import (
    ConcurrentTransition,
    RetryPolicy,
    RowBinding,
    RowBusy,
    RowMachines,
    RowNotFound,
    SQLAlchemyAdapter,
    UnknownStateValue,
    UnmappedColumn,
)
from stateward.core import (
    InvalidTransition,
    MachineBuilder,
    Reject,
    StatewardError,
    TransitionRejected,
)

#: The fixtures' types (conftest.py's Databases and machines factory), for reading only.
Databases = Any
MachinesFactory = Callable[..., RowMachines]

#: Seconds any single wait in these tests may take.
WAIT_S = 10.0


@dataclass
class Flow:
    """The orders machine of one test, and what its after-commit hooks saw."""

    builder: MachineBuilder
    committed: list[tuple[str | None, str]] = field(default_factory=list)


def order_flow(first_number: int = 1) -> Flow:
    """pending -> paid | cancelled, paid -> shipped | cancelled.

    Creation generates the order id (pre-transition enrichment); a guard vetoes
    paying an order over 1000; entering "paid" stamps ``paid_at``; every commit
    is recorded by an after-commit hook.
    """
    builder = MachineBuilder("pending", ORDER_FLOW_UNTIL_SHIPPED, name="orders")
    flow = Flow(builder)
    numbers = itertools.count(first_number)

    @builder.pre_transition("pending")
    def generate_order_id(ctx):
        if ctx.source is None:  # a creation
            return {"order_id": f"ORD-{next(numbers):04d}"}
        return None

    @builder.guard("pending", name="amount_positive")
    def amount_positive(ctx):
        """the amount must be positive"""
        return ctx.payload.get("amount", 0) > 0

    @builder.guard("paid", name="within_limit")
    def within_limit(ctx):
        if ctx.data.amount > 1000:
            raise Reject(f"amount {ctx.data.amount} is over the limit of 1000")

    @builder.on_enter("paid")
    def stamp_paid_at(ctx):
        return {"paid_at": ctx.at}

    @builder.after_commit
    def record(ctx):
        flow.committed.append((ctx.source, ctx.target))

    return flow


def flip_flow() -> MachineBuilder:
    """Two states and one event that always fires: every flip adds 1 to ``amount``."""
    builder = MachineBuilder(
        "open",
        {"open": ["held"], "held": ["open"]},
        events=["flip: open -> held", "flip: held -> open"],
    )

    @builder.on_enter
    def count(ctx):
        if ctx.source is not None:
            return {"amount": ctx.data.amount + 1}
        return None

    return builder


def row_actors(runtime: Runtime, table: str = "orders") -> list[str]:
    return [name for name in runtime.names() if name.startswith(f"{table}[")]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll a condition only the database can tell (another backend waiting on a
    lock), with a deadline. Not a sleep to synchronise: it waits for the state."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"gave up after {timeout}s waiting for {what}"
        pause.wait(0.01)


def nothing_written(engines: Databases, key: Any, before: dict[str, Any], audit: int) -> None:
    assert engines.row(key) == before
    assert len(engines.audit(key)) == audit


# -- creation --------------------------------------------------------------------------------


def test_create_puts_the_row_in_the_start_state_with_enriched_data(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    orders = machines(flow.builder)

    first = orders.create({"amount": 12.5, "customer": "ana"})
    second = orders.create({"amount": 3.0, "customer": "bo"})

    assert (first.state, first.version, first.record) == ("pending", 0, None)
    assert first.data.order_id == "ORD-0001"
    assert second.data.order_id == "ORD-0002"
    assert first.key != second.key
    row = engines.row(first.key)
    assert (row["status"], row["order_id"], row["amount"], row["version"], row["customer"]) == (
        "pending",
        "ORD-0001",
        12.5,
        0,
        "ana",
    )
    [entry] = engines.audit(first.key)
    assert (entry["from_state"], entry["to_state"], entry["event"], entry["version"]) == (
        None,
        "pending",
        "create",
        0,
    )
    assert entry["payload"] == {"amount": 12.5, "customer": "ana", "order_id": "ORD-0001"}
    assert entry["process"] == os.getpid()
    assert flow.committed == [(None, "pending"), (None, "pending")]
    assert orders.state_of(first.key) == "pending"


def test_create_that_is_vetoed_or_names_an_unknown_column_writes_nothing(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    orders = machines(flow.builder)

    with pytest.raises(TransitionRejected) as vetoed:
        orders.create({"amount": 0})
    assert vetoed.value.guard == "amount_positive"
    assert "the amount must be positive" in str(vetoed.value)

    with pytest.raises(UnmappedColumn) as unmapped:
        orders.create({"amount": 5.0, "colour": "red"})
    assert isinstance(unmapped.value, AttributeError)
    assert unmapped.value.column == "colour"
    assert "'colour'" in str(unmapped.value)
    assert "nothing was written" in str(unmapped.value)

    assert engines.count() == 0
    assert engines.audit() == []
    assert flow.committed == []


# -- the row's state is read inside the transaction -----------------------------------------


def test_a_transition_reads_the_row_inside_the_transaction_not_the_callers_copy(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    seen_amounts: list[float] = []

    @flow.builder.on_enter("shipped")
    def remember_amount(ctx):
        seen_amounts.append(ctx.data.amount)

    orders = machines(flow.builder)
    key = orders.create({"amount": 20.0}).key
    first = orders.transition(key, "paid")  # the row's actor now exists and knows "paid"
    assert first.state == "paid"

    # Another process cancels the order; this process still holds "paid".
    engines.execute("UPDATE orders SET status = 'cancelled' WHERE id = :k", k=key)
    with pytest.raises(InvalidTransition) as refused:
        orders.transition(key, "shipped")
    assert (refused.value.state, refused.value.target) == ("cancelled", "shipped")

    # And back to paid, with a new amount: the next transition sees both.
    engines.execute("UPDATE orders SET status = 'paid', amount = 99.0 WHERE id = :k", k=key)
    assert orders.state_of(key) == "paid"
    shipped = orders.transition(key, "shipped")
    assert shipped.state == "shipped"
    assert seen_amounts == [99.0]
    assert shipped.data.amount == 99.0

    # A row inserted by someone else entirely works the same.
    engines.execute(
        "INSERT INTO orders (id, order_id, status, amount, version) "
        "VALUES (500, 'EXT-1', 'pending', 7.0, 0)"
    )
    assert orders.transition(500, "paid").state == "paid"
    assert engines.row(500)["status"] == "paid"


# -- guards, after-commit hooks, the audit ---------------------------------------------------


def test_a_guard_veto_raises_transition_rejected_and_writes_nothing(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    orders = machines(flow.builder)
    key = orders.create({"amount": 5000.0}).key
    flow.committed.clear()
    before = engines.row(key)

    with pytest.raises(TransitionRejected) as vetoed:
        orders.transition(key, "paid")

    err = vetoed.value
    assert isinstance(err, InvalidTransition)
    assert (err.guard, err.state, err.target) == ("within_limit", "pending", "paid")
    assert err.reason == "amount 5000.0 is over the limit of 1000"
    assert "within_limit" in str(err)
    nothing_written(engines, key, before, audit=1)
    assert before["paid_at"] is None
    assert flow.committed == []


def test_after_commit_hooks_run_only_once_the_commit_is_visible_to_others(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    seen_from_outside: list[str] = []

    @flow.builder.after_commit("paid")
    def look_from_another_connection(ctx):
        row = engines.row(ctx.data.order_id, key_column="order_id")
        seen_from_outside.append(row["status"])

    orders = machines(flow.builder)
    key = orders.create({"amount": 10.0}).key
    orders.transition(key, "paid")
    assert seen_from_outside == ["paid"]
    assert flow.committed == [(None, "pending"), ("pending", "paid")]

    # A veto is no commit: no after-commit hook.
    vetoed_key = orders.create({"amount": 2000.0}).key
    flow.committed.clear()
    with pytest.raises(TransitionRejected):
        orders.transition(vetoed_key, "paid")
    assert flow.committed == []
    assert seen_from_outside == ["paid"]


def test_after_commit_errors_are_reported_and_the_commit_stands(
    engines: Databases, machines: MachinesFactory, runtime: Runtime
) -> None:
    flow = order_flow()

    @flow.builder.after_commit
    def mailer(ctx):
        raise ConnectionError(f"mailer down ({ctx.target})")

    orders = machines(flow.builder)
    key = orders.create({"amount": 10.0}).key
    result = orders.transition(key, "paid")

    assert result.state == "paid"
    assert engines.row(key)["status"] == "paid"
    reports = [r for r in runtime.errors() if r.name.endswith("mailer")]
    assert [(r.source, str(r.error)) for r in reports] == [
        ("after_commit", "mailer down (pending)"),
        ("after_commit", "mailer down (paid)"),
    ]
    assert all(isinstance(r.error, ConnectionError) for r in reports)
    assert flow.committed == [(None, "pending"), ("pending", "paid")]  # the others still ran


def test_audit_entries_commit_with_the_row_and_only_with_it(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    orders = machines(flow.builder)
    key = orders.create({"amount": 10.0}).key
    orders.transition(key, "paid", {"method": "card"})
    orders.transition(key, "shipped")
    with pytest.raises(InvalidTransition):
        orders.transition(key, "cancelled")

    entries = engines.audit(key)
    assert [(e["from_state"], e["to_state"], e["version"]) for e in entries] == [
        (None, "pending", 0),
        ("pending", "paid", 1),
        ("paid", "shipped", 2),
    ]
    assert entries[1]["payload"] == {"method": "card"}
    assert {e["process"] for e in entries} == {os.getpid()}
    assert [e["id"] for e in orders.history(key)] == [e["id"] for e in entries]

    # Same transaction: when the audit write fails, the row is not changed either.
    other = orders.create({"amount": 10.0}).key
    flow.committed.clear()
    before = engines.row(other)
    engines.execute("DROP TABLE stateward_audit")
    with pytest.raises(sa.exc.DBAPIError):
        orders.transition(other, "paid")
    assert engines.row(other) == before
    assert flow.committed == []


def test_audit_can_be_turned_off(engines: Databases, machines: MachinesFactory) -> None:
    orders = machines(order_flow().builder, audit=False)
    key = orders.create({"amount": 10.0}).key
    assert orders.transition(key, "paid").version == 1
    assert engines.audit() == []
    with pytest.raises(ValueError, match="audit=False"):
        orders.history(key)


# -- optimistic mode: lost races -------------------------------------------------------------


@pytest.mark.parametrize("version_column", ["version", None])
def test_optimistic_lost_race_is_a_concurrent_transition_and_writes_nothing(
    engines: Databases, machines: MachinesFactory, order_model: Any, version_column: str | None
) -> None:
    flow = order_flow()
    interfere = [True]

    @flow.builder.pre_transition("paid")
    def another_process_cancels(ctx):
        # Between our read and our write, another connection cancels the order.
        if interfere and interfere.pop():
            engines.execute(
                "UPDATE orders SET status = 'cancelled', version = version + 1 WHERE order_id = :o",
                o=ctx.data.order_id,
            )

    binding = RowBinding(order_model, version=version_column)
    orders = machines(flow.builder, binding, mode="optimistic")
    key = orders.create({"amount": 10.0}).key
    flow.committed.clear()

    with pytest.raises(ConcurrentTransition) as lost:
        orders.transition(key, "paid")

    err = lost.value
    assert isinstance(err, StatewardError)
    assert (err.table, err.row, err.expected, err.found) == ("orders", key, "pending", "cancelled")
    message = str(err)
    assert f"orders[{key!r}]" in message
    assert "'pending'" in message
    assert "'cancelled'" in message
    row = engines.row(key)
    assert (row["status"], row["paid_at"]) == ("cancelled", None)
    assert [e["to_state"] for e in engines.audit(key)] == ["pending"]
    assert flow.committed == []


def test_optimistic_version_column_catches_changes_to_other_columns(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    def touching_flow(first_number: int) -> MachineBuilder:
        flow = order_flow(first_number)

        @flow.builder.pre_transition("paid")
        def another_process_edits_the_note(ctx):
            engines.execute(
                "UPDATE orders SET note = 'edited', version = version + 1 WHERE order_id = :o",
                o=ctx.data.order_id,
            )

        return flow.builder

    # With a version column, any concurrent change is a conflict, even with the
    # state unchanged.
    with_version = machines(touching_flow(1), mode="optimistic")
    key = with_version.create({"amount": 1.0}).key
    with pytest.raises(ConcurrentTransition) as lost:
        with_version.transition(key, "paid")
    assert (lost.value.expected, lost.value.found) == ("pending", "pending")
    assert engines.row(key)["status"] == "pending"

    # Without one, only the state is compared: the move commits, and it writes
    # only the columns it changed, so the other writer's note survives.
    state_only = machines(
        touching_flow(100), RowBinding(order_model, version=None), mode="optimistic"
    )
    key = state_only.create({"amount": 1.0}).key
    assert state_only.transition(key, "paid").state == "paid"
    row = engines.row(key)
    assert (row["status"], row["note"]) == ("paid", "edited")


def test_two_row_machines_racing_on_one_row(engines: Databases, machines: MachinesFactory) -> None:
    canceller = machines(order_flow().builder)  # pessimistic, its own actor for the row
    flow = order_flow()
    raced = [True]

    @flow.builder.pre_transition("paid")
    def the_other_machine_cancels_first(ctx):
        if raced and raced.pop():
            canceller.transition(key, "cancelled", {"reason": "customer called"})

    payer = machines(flow.builder, mode="optimistic")
    key = payer.create({"amount": 10.0}).key

    with pytest.raises(ConcurrentTransition) as lost:
        payer.transition(key, "paid")

    assert (lost.value.expected, lost.value.found) == ("pending", "cancelled")
    assert [(e["from_state"], e["to_state"]) for e in engines.audit(key)] == [
        (None, "pending"),
        ("pending", "cancelled"),
    ]
    assert engines.row(key)["status"] == "cancelled"
    with pytest.raises(InvalidTransition):
        payer.transition(key, "paid")


# -- retries ---------------------------------------------------------------------------------


def test_retry_re_reads_the_row_and_decides_again(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    calls = []

    @flow.builder.pre_transition("paid")
    def another_process_cancels_once(ctx):
        calls.append(ctx.source)
        if len(calls) == 1:
            engines.execute(
                "UPDATE orders SET status = 'cancelled', version = version + 1 WHERE order_id = :o",
                o=ctx.data.order_id,
            )

    delays: list[float] = []
    retry = RetryPolicy(attempts=3, seed=7, sleep=delays.append)
    orders = machines(flow.builder, mode="optimistic", retry=retry)
    key = orders.create({"amount": 10.0}).key

    with pytest.raises(InvalidTransition) as refused:
        orders.transition(key, "paid")

    assert (refused.value.state, refused.value.target) == ("cancelled", "paid")
    assert not isinstance(refused.value, ConcurrentTransition)
    assert calls == ["pending"]  # the second try stopped at the state check
    assert len(delays) == 1
    assert 0.5 * retry.min_delay <= delays[0] <= 1.5 * retry.min_delay
    assert [e["to_state"] for e in engines.audit(key)] == ["pending"]


def test_retry_backs_off_and_wins_once_the_row_holds_still(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    interference = [2]

    @flow.builder.pre_transition("paid")
    def another_process_edits(ctx):
        if interference[0]:
            interference[0] -= 1
            engines.execute(
                "UPDATE orders SET note = 'edited', version = version + 1 WHERE order_id = :o",
                o=ctx.data.order_id,
            )

    delays: list[float] = []
    retry = RetryPolicy(attempts=3, min_delay=0.01, max_delay=0.015, seed=1, sleep=delays.append)
    orders = machines(flow.builder, mode="optimistic", retry=retry)
    key = orders.create({"amount": 10.0}).key

    result = orders.transition(key, "paid")

    assert (result.state, result.retries, result.version) == ("paid", 2, 3)
    assert len(delays) == 2
    assert 0.005 <= delays[0] <= 0.015  # 0.01 +- 50 %
    assert 0.0075 <= delays[1] <= 0.0225  # min(0.015, 0.02) +- 50 %: capped by max_delay
    paid = [e for e in engines.audit(key) if e["to_state"] == "paid"]
    assert [e["version"] for e in paid] == [3]


def test_retry_gives_up_after_its_attempts(engines: Databases, machines: MachinesFactory) -> None:
    flow = order_flow()
    tries = []

    @flow.builder.pre_transition("paid")
    def another_process_always_edits(ctx):
        tries.append(1)
        engines.execute(
            "UPDATE orders SET version = version + 1 WHERE order_id = :o", o=ctx.data.order_id
        )

    delays: list[float] = []
    orders = machines(
        flow.builder, mode="optimistic", retry=RetryPolicy(attempts=2, seed=3, sleep=delays.append)
    )
    key = orders.create({"amount": 10.0}).key

    with pytest.raises(ConcurrentTransition):
        orders.transition(key, "paid")
    assert len(tries) == 3
    assert len(delays) == 2
    assert engines.row(key)["status"] == "pending"


def test_retry_policy_and_options_are_validated(
    engines: Databases, machines: MachinesFactory
) -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=-1)
    with pytest.raises(ValueError, match="mode"):
        machines(order_flow().builder, mode="hopeful")
    with pytest.raises(ValueError, match="lock"):
        machines(order_flow().builder, lock="eventually")


# -- PostgreSQL row locks --------------------------------------------------------------------


def _lock_row(db: Databases, key: Any) -> sa.Connection:
    holder = db.other.connect()
    holder.execute(sa.text("SELECT id FROM orders WHERE id = :k FOR UPDATE"), {"k": key})
    return holder


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"lock": "nowait"}, "NOWAIT"),
        ({"lock": "skip_locked"}, "SKIP LOCKED"),
        ({"lock_timeout": 0.2}, "lock_timeout"),
    ],
    ids=["nowait", "skip_locked", "lock_timeout"],
)
def test_pg_a_locked_row_is_row_busy(
    pg_db: Databases, pg_machines: MachinesFactory, options: dict[str, Any], reason: str
) -> None:
    flow = order_flow()
    orders = pg_machines(flow.builder, **options)
    key = orders.create({"amount": 10.0}).key
    flow.committed.clear()
    before = pg_db.row(key)

    holder = _lock_row(pg_db, key)
    try:
        started = time.monotonic()
        with pytest.raises(RowBusy) as busy:
            orders.transition(key, "paid")
        waited = time.monotonic() - started
    finally:
        holder.close()

    err = busy.value
    assert isinstance(err, StatewardError)
    assert (err.table, err.row) == ("orders", key)
    assert reason in err.reason
    assert f"orders[{key!r}]" in str(err)
    if "lock_timeout" in options:
        assert 0.15 <= waited < WAIT_S
    else:
        assert waited < WAIT_S
    nothing_written(pg_db, key, before, audit=1)
    assert flow.committed == []
    assert orders.transition(key, "paid").state == "paid"  # free again


def test_pg_wait_blocks_on_the_lock_then_decides_on_the_committed_state(
    pg_db: Databases, pg_machines: MachinesFactory, workers: Any
) -> None:
    orders = pg_machines(order_flow().builder)  # lock="wait": FOR UPDATE waits
    key = orders.create({"amount": 10.0}).key
    holder = _lock_row(pg_db, key)
    try:
        holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        outcome: list[Any] = []

        def pay() -> None:
            try:
                outcome.append(orders.transition(key, "paid", timeout=WAIT_S))
            except Exception as exc:
                outcome.append(exc)

        workers.start(pay, name="payer")

        def payer_waits_on_the_lock() -> bool:
            with pg_db.other.connect() as conn:
                blocked = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE :holder = ANY(pg_blocking_pids(pid))"
                    ),
                    {"holder": holder_pid},
                ).scalar_one()
            return bool(blocked)

        wait_until(payer_waits_on_the_lock, "the payer to wait for the row lock")
        holder.execute(sa.text("UPDATE orders SET status = 'cancelled' WHERE id = :k"), {"k": key})
        holder.commit()
        workers.join(WAIT_S)
    finally:
        holder.close()

    [err] = outcome
    assert isinstance(err, InvalidTransition)
    assert (err.state, err.target) == ("cancelled", "paid")
    assert [e["to_state"] for e in pg_db.audit(key)] == ["pending"]


def test_pg_row_busy_is_retried_until_the_lock_is_released(
    pg_db: Databases, pg_machines: MachinesFactory
) -> None:
    holder: list[sa.Connection] = []
    delays: list[float] = []

    def sleep(delay: float) -> None:  # the injected sleep: the lock holder lets go
        delays.append(delay)
        if holder:
            holder.pop().close()

    orders = pg_machines(
        order_flow().builder, lock="nowait", retry=RetryPolicy(attempts=2, seed=2, sleep=sleep)
    )
    key = orders.create({"amount": 10.0}).key
    holder.append(_lock_row(pg_db, key))
    try:
        result = orders.transition(key, "paid")
    finally:
        for conn in holder:
            conn.close()
    assert (result.state, result.retries) == ("paid", 1)
    assert len(delays) == 1


# -- SQLite: BEGIN IMMEDIATE and busy timeouts -----------------------------------------------


@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_sqlite_locked_database_is_row_busy_never_a_raw_database_is_locked(
    sqlite_db: Databases, sqlite_machines: MachinesFactory, mode: str
) -> None:
    flow = order_flow()
    adapter = SQLAlchemyAdapter(sqlite_db.engine, busy_timeout=0.1)
    orders = sqlite_machines(flow.builder, engine=adapter, mode=mode)
    key = orders.create({"amount": 10.0}).key
    flow.committed.clear()
    before = sqlite_db.row(key)

    holder = sqlite_db.other.connect()
    try:
        holder.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the database
        errors: list[BaseException] = []
        started = time.monotonic()
        for attempt in (
            lambda: orders.transition(key, "paid"),
            lambda: orders.create({"amount": 1.0}),
        ):
            with pytest.raises(RowBusy) as busy:
                attempt()
            errors.append(busy.value)
        waited = time.monotonic() - started
        assert orders.state_of(key) == "pending"  # readers are not blocked
    finally:
        holder.rollback()
        holder.close()

    for err in errors:
        assert "database is locked" not in str(err)
        assert "busy timeout" in err.reason
        assert isinstance(err.__cause__, sa.exc.OperationalError)
    assert errors[0].row == key
    assert waited < WAIT_S
    nothing_written(sqlite_db, key, before, audit=1)
    assert sqlite_db.count() == 1
    assert flow.committed == []
    assert orders.transition(key, "paid").state == "paid"  # free again


def test_sqlite_busy_is_retried_until_the_other_writer_commits(
    sqlite_db: Databases, sqlite_machines: MachinesFactory
) -> None:
    holder = sqlite_db.other.connect()
    delays: list[float] = []

    def sleep(delay: float) -> None:  # the injected sleep: the other writer finishes
        delays.append(delay)
        if holder.in_transaction():
            holder.exec_driver_sql("UPDATE orders SET note = 'from the other writer'")
            holder.commit()

    adapter = SQLAlchemyAdapter(sqlite_db.engine, busy_timeout=0.05)
    orders = sqlite_machines(
        order_flow().builder, engine=adapter, retry=RetryPolicy(attempts=2, seed=4, sleep=sleep)
    )
    key = orders.create({"amount": 10.0}).key
    try:
        holder.exec_driver_sql("BEGIN IMMEDIATE")
        result = orders.transition(key, "paid")
    finally:
        holder.close()
    assert (result.state, result.retries) == ("paid", 1)
    assert result.data.note == "from the other writer"
    assert len(delays) == 1


# -- one actor per row in a process ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_threads_on_one_row_queue_in_one_actor(
    engines: Databases, machines: MachinesFactory, runtime: Runtime, workers: Any, mode: str
) -> None:
    threads, per_thread = 8, 50
    builder = flip_flow()
    in_flight = [0, 0]  # now, most ever
    guard = threading.Lock()

    @builder.pre_transition
    def enter_critical(ctx):
        with guard:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)

    @builder.after_commit
    def leave_critical(ctx):
        with guard:
            in_flight[0] -= 1

    flips = machines(builder, mode=mode, idle_timeout=600.0)  # one actor all along
    key = flips.create({"amount": 0.0}).key
    versions: list[list[int]] = [[] for _ in range(threads)]

    def flipper(mine: list[int]) -> None:
        for _ in range(per_thread):
            mine.append(flips.trigger(key, "flip", timeout=WAIT_S).version)

    for index in range(threads):
        workers.start(flipper, versions[index], name=f"flipper-{index}")
    workers.join(60.0)

    total = threads * per_thread
    assert in_flight[1] == 1, "two transitions of one row overlapped in this process"
    assert sorted(v for mine in versions for v in mine) == list(range(1, total + 1))
    assert all(mine == sorted(mine) for mine in versions)
    row = engines.row(key)
    assert (row["status"], row["version"], row["amount"]) == ("open", total, float(total))
    entries = engines.audit(key)
    assert [e["version"] for e in entries] == list(range(total + 1))
    for before, after in itertools.pairwise(entries):
        assert after["from_state"] == before["to_state"] != after["to_state"]
    [actor] = row_actors(runtime)
    assert runtime.get(actor).stats().messages >= total


def test_idle_row_actors_stop_and_are_recreated_on_demand(
    engines: Databases, order_model: Any
) -> None:
    clock = ManualClock()
    with (
        Runtime("idle-rows", timer=clock, default_timeout=30.0) as runtime,
        RowMachines(
            flip_flow(),
            RowBinding(order_model, version="version"),
            engines.engine,
            runtime=runtime,
            idle_timeout=5.0,
        ) as flips,
    ):
        key = flips.create({"amount": 0.0}).key
        assert row_actors(runtime) == []  # creation needs no actor

        flips.trigger(key, "flip")
        [first] = row_actors(runtime)
        clock.advance(4.0)
        flips.trigger(key, "flip")  # used again at t=4: not idle yet
        clock.advance(4.0)
        assert row_actors(runtime) == [first]
        clock.advance(1.5)  # 5.5 s since its last use
        assert row_actors(runtime) == []

        result = flips.trigger(key, "flip")  # a new actor, the row read from the database
        [second] = row_actors(runtime)
        assert second != first
        assert (result.state, result.version, result.data.amount) == ("held", 3, 3.0)
        clock.advance(6.0)
        assert row_actors(runtime) == []


# -- bad input -------------------------------------------------------------------------------


def test_unknown_row_is_row_not_found(engines: Databases, machines: MachinesFactory) -> None:
    orders = machines(order_flow().builder)
    with pytest.raises(RowNotFound) as missing:
        orders.transition(404, "paid")
    assert isinstance(missing.value, LookupError)
    assert (missing.value.table, missing.value.row) == ("orders", 404)
    assert "orders[404]" in str(missing.value)
    with pytest.raises(RowNotFound):
        orders.state_of(404)
    assert engines.count() == 0
    assert engines.audit() == []


def test_a_hook_returning_an_unmapped_column_writes_nothing(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()

    @flow.builder.on_enter("paid")
    def print_label(ctx):
        return {"shipping_label": "LBL-1"}

    orders = machines(flow.builder)
    key = orders.create({"amount": 10.0}).key
    flow.committed.clear()
    before = engines.row(key)

    with pytest.raises(UnmappedColumn) as unmapped:
        orders.transition(key, "paid")

    assert unmapped.value.column == "shipping_label"
    assert "shipping_label" in str(unmapped.value)
    assert "nothing was written" in str(unmapped.value)
    nothing_written(engines, key, before, audit=1)
    assert flow.committed == []


def test_pg_a_hook_changing_a_column_to_an_equal_twin_writes_it(
    pg_db: Databases, pg_machines: MachinesFactory
) -> None:
    # -0.0 == 0.0, but they are different values and PostgreSQL keeps both:
    # what the transition acknowledged is what the row holds afterwards.
    # (SQLite stores -0.0 as 0.0 whatever is written, so this runs on PostgreSQL.)
    flow = order_flow()

    @flow.builder.on_enter("paid")
    def settle(ctx):
        return {"amount": 0.0}

    @flow.builder.on_enter("shipped")
    def refund_everything(ctx):
        return {"amount": -0.0}

    orders = pg_machines(flow.builder)
    key = orders.create({"amount": 5.0}).key
    assert orders.transition(key, "paid").data.amount == 0.0
    shipped = orders.transition(key, "shipped")

    assert math.copysign(1.0, shipped.data.amount) == -1.0
    stored = pg_db.row(key)["amount"]
    assert stored == 0.0 and math.copysign(1.0, stored) == -1.0


def test_an_unknown_state_value_in_the_database_writes_nothing(
    engines: Databases, machines: MachinesFactory
) -> None:
    flow = order_flow()
    orders = machines(flow.builder)
    key = orders.create({"amount": 10.0}).key
    flow.committed.clear()
    engines.execute("UPDATE orders SET status = 'lost' WHERE id = :k", k=key)
    before = engines.row(key)

    with pytest.raises(UnknownStateValue) as unknown:
        orders.transition(key, "paid")

    assert isinstance(unknown.value, ValueError)
    assert (unknown.value.row, unknown.value.value) == (key, "lost")
    assert "'lost'" in str(unknown.value)
    assert "'pending'" in str(unknown.value)  # it lists the known values
    nothing_written(engines, key, before, audit=1)
    assert flow.committed == []
    with pytest.raises(UnknownStateValue):
        orders.state_of(key)


@pytest.mark.parametrize(
    ("options", "column"),
    [
        ({"state": "state"}, "state"),
        ({"version": "rev"}, "rev"),
        ({"key": "uuid"}, "uuid"),
        ({"columns": ["amount", "colour"]}, "colour"),
    ],
)
def test_a_binding_naming_a_missing_column_fails_at_construction(
    order_model: Any, options: dict[str, Any], column: str
) -> None:
    with pytest.raises(UnmappedColumn) as unmapped:
        RowBinding(order_model, **options)
    assert unmapped.value.column == column
    assert f"no column {column!r}" in str(unmapped.value)
    assert "order_id" in str(unmapped.value)  # it lists the columns there are


def test_a_states_mapping_must_cover_every_state(
    engines: Databases, machines: MachinesFactory, order_model: Any
) -> None:
    with pytest.raises(ValueError, match="'cancelled'"):
        machines(
            order_flow().builder,
            RowBinding(order_model, states={"pending": 0, "paid": 1, "shipped": 2}),
        )


def test_states_stored_as_integers(
    engines: Databases, machines: MachinesFactory, ticket_model: Any
) -> None:
    builder = MachineBuilder(
        "open", {"open": ["working", "closed"], "working": ["closed", "open"], "closed": []}
    )
    interfere = [False]

    @builder.pre_transition("closed")
    def someone_else_closes_it(ctx):
        if interfere[0]:
            engines.execute("UPDATE tickets SET state = 3, rev = rev + 1 WHERE code = 'T-1'")

    binding = RowBinding(
        ticket_model,
        state="state",
        key="code",
        version="rev",
        states={"open": 1, "working": 2, "closed": 3},
    )
    tickets = machines(builder, binding, mode="optimistic")

    created = tickets.create({"code": "T-1", "title": "printer jams"})
    assert (created.key, created.state) == ("T-1", "open")
    assert engines.row("T-1", "tickets", "code")["state"] == 1
    moved = tickets.transition("T-1", "working")
    assert (moved.state, moved.version) == ("working", 1)
    assert engines.row("T-1", "tickets", "code")["state"] == 2
    assert tickets.state_of("T-1") == "working"
    assert [e["to_state"] for e in engines.audit("T-1", "tickets")] == ["open", "working"]

    interfere[0] = True
    with pytest.raises(ConcurrentTransition) as lost:
        tickets.transition("T-1", "closed")
    assert (lost.value.row, lost.value.expected, lost.value.found) == ("T-1", "working", "closed")

    engines.execute("UPDATE tickets SET state = 9 WHERE code = 'T-1'")
    with pytest.raises(UnknownStateValue) as unknown:
        tickets.transition("T-1", "open")
    assert unknown.value.value == 9
    assert engines.row("T-1", "tickets", "code")["state"] == 9
