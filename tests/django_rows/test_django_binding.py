"""A machine bound to a Django model's rows through `RowMachines` and `DjangoBinding`,
on SQLite (a file) and PostgreSQL: reads in the transaction, writes, audits,
after-commit hooks, modes and locks, and every bad input refused with nothing
written."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections, transaction
from shop.models import Order, Ticket, TicketState

from stateward.actors import Runtime
from stateward.actors.rows import (
    ConcurrentTransition,
    InvalidRowKey,
    RetryPolicy,
    RowBusy,
    RowMachines,
    RowNotFound,
    UnknownStateValue,
    UnmappedColumn,
)
from stateward.actors.rows.django import BindingError, DjangoAdapter, DjangoBinding
from stateward.actors.rows.django.models import AuditEntry
from stateward.core import InvalidTransition, MachineBuilder, MachineSpec, decode

ORDERS = {"pending": ["paid", "cancelled"], "paid": ["shipped"], "shipped": [], "cancelled": []}


def order_machines(alias: str, runtime: Runtime, spec: Any = None, **options: Any) -> RowMachines:
    spec = spec if spec is not None else MachineSpec("pending", ORDERS)
    binding = DjangoBinding(Order, state="status", version="version")
    return RowMachines(spec, binding, alias, runtime=runtime, **options)


def audit(alias: str, key: Any = None) -> list[dict[str, Any]]:
    query = AuditEntry.objects.using(alias).order_by("id")
    if key is not None:
        query = query.filter(row_key=str(key))
    return [
        {**entry, "payload": decode(bytes(entry["payload"])).to_dict()} for entry in query.values()
    ]


def test_a_transition_reads_writes_versions_and_audits_the_row(
    alias: str, runtime: Runtime
) -> None:
    spec = MachineBuilder("pending", ORDERS)

    @spec.on_enter("paid")
    def stamp(ctx):  # type: ignore[no-untyped-def]
        return {"note": f"paid {ctx.payload['amount']}"}

    with order_machines(alias, runtime, spec) as rows:
        created = rows.create({"amount": 12.5})
        paid = rows.transition(created.key, "paid", {"amount": 12.5})
        assert (paid.state, paid.version, paid.data.note) == ("paid", 1, "paid 12.5")
        row = Order.objects.using(alias).get(pk=created.key)
        assert (row.status, row.version, row.note, row.amount) == ("paid", 1, "paid 12.5", 12.5)
        assert rows.state_of(created.key) == "paid"
        history = rows.history(created.key)
        assert [(e["from_state"], e["to_state"], e["version"]) for e in history] == [
            (None, "pending", 0),
            ("pending", "paid", 1),
        ]
        assert decode(history[1]["payload"]).to_dict() == {"amount": 12.5}
        assert history[1]["table_name"] == "shop_order"


def test_a_move_is_decided_on_the_row_as_the_database_holds_it(
    alias: str, runtime: Runtime
) -> None:
    with order_machines(alias, runtime) as rows:
        key = rows.create().key
        Order.objects.using(alias).filter(pk=key).update(status="cancelled")  # behind its back
        with pytest.raises(InvalidTransition) as refused:
            rows.transition(key, "paid")
        assert refused.value.state == "cancelled"
        assert Order.objects.using(alias).get(pk=key).version == 0
        assert [e["to_state"] for e in audit(alias, key)] == ["pending"]


def test_integer_choices_map_state_names_to_stored_values(alias: str, runtime: Runtime) -> None:
    spec = MachineSpec("open", {"open": ["closed"], "closed": ["reopened"], "reopened": []})
    binding = DjangoBinding(Ticket, state="state", states=TicketState)
    assert binding.states == {"open": 1, "closed": 2, "reopened": 3}
    with RowMachines(spec, binding, alias, runtime=runtime) as tickets:
        made = tickets.create({"code": "T-1", "title": "printer"})
        assert (made.key, Ticket.objects.using(alias).get(pk="T-1").state) == ("T-1", 1)
        assert tickets.transition("T-1", "closed").state == "closed"
        assert Ticket.objects.using(alias).get(pk="T-1").state == TicketState.closed
        assert tickets.state_of("T-1") == "closed"


def test_a_field_with_choices_maps_its_labels_to_its_values(alias: str, runtime: Runtime) -> None:
    spec = MachineSpec("Open", {"Open": ["Closed"], "Closed": ["Reopened"], "Reopened": []})
    binding = DjangoBinding(Ticket, state="state")  # choices labels: Open, Closed, Reopened
    assert binding.states == {"Open": 1, "Closed": 2, "Reopened": 3}
    with RowMachines(spec, binding, alias, runtime=runtime, audit=False) as tickets:
        tickets.create({"code": "T-2"})
        tickets.transition("T-2", "Closed")
        assert Ticket.objects.using(alias).get(pk="T-2").state == 2


def test_after_commit_hooks_run_through_on_commit_once_the_commit_succeeded(
    alias: str, runtime: Runtime
) -> None:
    spec = MachineBuilder("pending", ORDERS)
    seen: list[tuple[str, bool, str]] = []

    @spec.after_commit("paid")
    def notify(ctx):  # type: ignore[no-untyped-def]
        # Runs after the commit: another connection already sees the row paid.
        other = Order.objects.using(alias).get(pk=ctx.payload["key"])
        seen.append((other.status, connections[alias].in_atomic_block, ctx.payload["key"]))

    @spec.on_enter("paid")
    def fail_on_request(ctx):  # type: ignore[no-untyped-def]
        if ctx.payload.get("fail"):
            raise RuntimeError("refused")
        return {}

    with order_machines(alias, runtime, spec) as rows:
        key = rows.create().key
        with pytest.raises(RuntimeError, match="refused"):
            rows.transition(key, "paid", {"key": key, "fail": True})
        assert seen == []  # rolled back: no hook
        rows.transition(key, "paid", {"key": key})
        assert seen == [("paid", False, key)]


def test_inside_the_callers_atomic_block_the_move_joins_it(alias: str, runtime: Runtime) -> None:
    spec = MachineBuilder("pending", ORDERS)
    notified: list[str] = []

    @spec.after_commit("paid")
    def notify(ctx):  # type: ignore[no-untyped-def]
        notified.append(ctx.payload["why"])

    with order_machines(alias, runtime, spec) as rows:
        key, other = rows.create().key, rows.create().key

        class Undo(Exception):
            pass

        def pay_then_undo() -> None:
            with transaction.atomic(using=alias):
                rows.transition(key, "paid", {"why": "rolled back"})
                assert Order.objects.using(alias).get(pk=key).status == "paid"  # ours to see
                raise Undo

        with pytest.raises(Undo):
            pay_then_undo()
        assert Order.objects.using(alias).get(pk=key).status == "pending"
        assert [e["to_state"] for e in audit(alias, key)] == ["pending"]
        assert notified == []  # never: the caller's transaction rolled back

        with transaction.atomic(using=alias):
            rows.transition(other, "paid", {"why": "committed"})
            assert notified == []  # not before the caller's commit
        assert notified == ["committed"]
        assert [e["to_state"] for e in audit(alias, other)] == ["pending", "paid"]


def test_optimistic_mode_loses_a_race_with_concurrent_transition_naming_the_row(
    pg_alias: str, runtime: Runtime
) -> None:
    """PostgreSQL: the read holds no lock. (On SQLite every transition takes the
    database's write lock up front, so no other writer can slip in.)"""
    alias = pg_alias
    spec = MachineBuilder("pending", ORDERS)
    races = [1]

    @spec.pre_transition("paid")
    def meanwhile_someone_cancels(ctx):  # type: ignore[no-untyped-def]
        if races and races.pop():
            done = threading.Event()

            def cancel() -> None:  # another connection: another thread
                Order.objects.using(alias).update(status="cancelled", version=1)
                connections.close_all()
                done.set()

            thread = threading.Thread(target=cancel)
            thread.start()
            thread.join(10)
            assert done.is_set()

    with order_machines(alias, runtime, spec, mode="optimistic") as rows:
        key = rows.create().key
        with pytest.raises(ConcurrentTransition) as lost:
            rows.transition(key, "paid")
        assert (lost.value.table, lost.value.row) == ("shop_order", key)
        assert (lost.value.expected, lost.value.found) == ("pending", "cancelled")
        assert f"shop_order[{key!r}]" in str(lost.value)
        assert [e["to_state"] for e in audit(alias, key)] == ["pending"]


def test_retries_are_opt_in_and_decide_again_on_the_row_read_again(
    pg_alias: str, runtime: Runtime
) -> None:
    alias = pg_alias
    spec = MachineBuilder("pending", {**ORDERS, "cancelled": ["pending"]})
    races = [1]

    @spec.pre_transition("paid")
    def meanwhile_someone_bumps(ctx):  # type: ignore[no-untyped-def]
        if races and races.pop():
            thread = threading.Thread(
                target=lambda: (
                    Order.objects.using(alias).update(version=5, note="bumped"),
                    connections.close_all(),
                )
            )
            thread.start()
            thread.join(10)

    delays: list[float] = []
    retry = RetryPolicy(attempts=2, seed=1, sleep=delays.append)
    with order_machines(alias, runtime, spec, mode="optimistic", retry=retry) as rows:
        key = rows.create().key
        paid = rows.transition(key, "paid")
        assert (paid.state, paid.version, paid.retries, len(delays)) == ("paid", 6, 1, 1)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda rows: rows.transition(10**6, "paid"), RowNotFound),
        (lambda rows: rows.transition("1", "paid"), InvalidRowKey),
        (lambda rows: rows.transition(1.5, "paid"), InvalidRowKey),
        (lambda rows: rows.transition(2**70, "paid"), InvalidRowKey),  # a BigAutoField
        (lambda rows: rows.create({"colour": "red"}), UnmappedColumn),
    ],
    ids=["unknown row", "text key", "fractional key", "key out of range", "unmapped column"],
)
def test_bad_input_is_a_clear_error_and_nothing_is_written(
    alias: str, runtime: Runtime, call: Any, error: Any
) -> None:
    with order_machines(alias, runtime) as rows:
        key = rows.create().key
        before = (list(Order.objects.using(alias).values()), audit(alias))
        with pytest.raises(error) as raised:
            call(rows)
        assert "shop_order" in str(raised.value)
        assert (list(Order.objects.using(alias).values()), audit(alias)) == before
        assert rows.state_of(key) == "pending"


def test_a_stored_value_the_machine_does_not_know_is_refused_untouched(
    alias: str, runtime: Runtime
) -> None:
    with order_machines(alias, runtime) as rows:
        key = rows.create().key
        Order.objects.using(alias).filter(pk=key).update(status="lost")
        with pytest.raises(UnknownStateValue, match=r"status='lost'.*not a state"):
            rows.transition(key, "paid")
        assert Order.objects.using(alias).get(pk=key).status == "lost"
        assert len(audit(alias, key)) == 1


def test_a_hook_writing_a_field_the_model_lacks_writes_nothing(
    alias: str, runtime: Runtime
) -> None:
    spec = MachineBuilder("pending", ORDERS)

    @spec.on_enter("paid")
    def typo(ctx):  # type: ignore[no-untyped-def]
        return {"nott": "x"}

    with order_machines(alias, runtime, spec) as rows:
        key = rows.create().key
        with pytest.raises(UnmappedColumn, match="'nott'"):
            rows.transition(key, "paid")
        assert (Order.objects.using(alias).get(pk=key).status, len(audit(alias, key))) == (
            "pending",
            1,
        )


def test_a_binding_naming_fields_that_do_not_fit_fails_at_construction() -> None:
    with pytest.raises(UnmappedColumn, match="no column 'stauts'"):
        DjangoBinding(Order, state="stauts")
    with pytest.raises(BindingError, match="must be an integer field"):
        DjangoBinding(Order, state="status", version="note")
    with pytest.raises(BindingError, match="without choices"):
        DjangoBinding(Order, state="version")
    with pytest.raises(BindingError, match=r"99 not among the choices"):
        DjangoBinding(Ticket, state="state", states={"open": 1, "gone": 99})
    with pytest.raises(BindingError, match="no database 'nowhere'"):
        DjangoAdapter("nowhere")
    with pytest.raises(TypeError, match="database alias"):
        DjangoBinding(Order).adapter_for(object())


def test_one_actor_per_row_serializes_the_threads_of_a_process(
    alias: str, runtime: Runtime
) -> None:
    spec = MachineBuilder("off", events=["toggle: off -> on", "toggle: on -> off"])

    @spec.on_enter(source="off|on")
    def count(ctx):  # type: ignore[no-untyped-def]
        return {"amount": ctx.data.amount + 1}

    binding = DjangoBinding(Order, state="status", version="version")
    with RowMachines(spec, binding, alias, runtime=runtime) as lights:
        key = lights.create().key
        errors: list[BaseException] = []

        def toggle() -> None:
            try:
                for _ in range(10):
                    lights.trigger(key, "toggle")
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=toggle) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(t.is_alive() for t in threads)
        if errors:
            raise errors[0]
        row = Order.objects.using(alias).get(pk=key)
        assert (row.status, row.version, row.amount) == ("off", 40, 40.0)


def test_postgresql_nowait_and_skip_locked_refuse_a_locked_row_at_once(
    pg_alias: str, runtime: Runtime
) -> None:
    with order_machines(pg_alias, runtime) as rows:
        key = rows.create().key
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        try:
            with transaction.atomic(using=pg_alias):
                list(Order.objects.using(pg_alias).select_for_update().filter(pk=key))
                locked.set()
                release.wait(20)
        finally:
            connections.close_all()
            done.set()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        for lock, reason in (("nowait", "lock not available"), ("skip_locked", "SKIP LOCKED")):
            with order_machines(pg_alias, runtime, lock=lock) as rows:
                with pytest.raises(RowBusy, match=reason) as busy:
                    rows.transition(key, "paid")
                assert (busy.value.table, busy.value.row) == ("shop_order", key)
        with (
            order_machines(pg_alias, runtime, lock_timeout=0.2) as rows,
            pytest.raises(RowBusy, match="lock not available"),
        ):
            rows.transition(key, "paid")
    finally:
        release.set()
        holder.join(20)
    assert done.is_set()
    assert Order.objects.using(pg_alias).get(pk=key).status == "pending"


def test_sqlite_waits_for_the_write_lock_then_says_row_busy_never_database_is_locked(
    sqlite_alias: str, runtime: Runtime
) -> None:
    with order_machines(sqlite_alias, runtime) as rows:
        key = rows.create().key
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_the_database() -> None:
        try:
            with transaction.atomic(using=sqlite_alias):
                Order.objects.using(sqlite_alias).filter(pk=key).update(note="mine")
                locked.set()
                release.wait(20)
        finally:
            connections.close_all()
            done.set()

    holder = threading.Thread(target=hold_the_database)
    holder.start()
    try:
        assert locked.wait(10)
        adapter = DjangoAdapter(sqlite_alias, busy_timeout=0.2)
        binding = DjangoBinding(Order, state="status", version="version")
        spec = MachineSpec("pending", ORDERS)
        with RowMachines(spec, binding, adapter, runtime=runtime) as rows:
            with pytest.raises(RowBusy, match="busy timeout") as busy:
                rows.transition(key, "paid")
            assert "database is locked" not in str(busy.value)
    finally:
        release.set()
        holder.join(20)
    assert done.is_set()
    with order_machines(sqlite_alias, runtime) as rows:
        assert rows.transition(key, "paid").state == "paid"
