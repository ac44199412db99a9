"""One conformance suite for every store: what the runtime relies on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stateward.actors import (
    ActorCrashed,
    ActorOwned,
    ConfigManager,
    ManualClock,
    MemoryStore,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Store,
    Supervisor,
    serve_timers,
)
from stateward.core import DefinitionMismatch, ImmutableState, MachineBuilder

StoreFactory = Callable[[], Store]


def flow() -> MachineBuilder:
    builder = MachineBuilder(
        "idle", {"idle": ["busy"], "busy": ["idle", "done"], "done": []}, history_limit=5
    )

    @builder.on_enter("busy")
    def count(ctx):
        return {"jobs": ctx.data.get("jobs", 0) + 1, "last": ctx.payload.get("job")}

    return builder


@pytest.fixture(
    params=[
        "memory",
        "sqlite-strict",
        "sqlite-batched",
        "sqlite-snapshot",
        "postgres-strict",
        "postgres-batched",
    ]
)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of stores that all see the same stored data (one file, one
    memory, or one PostgreSQL schema, fresh for each test: see ``pg_schema``)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    mode = request.param.split("-")[1]
    if request.param.startswith("postgres"):
        url, schema = request.getfixturevalue("pg_schema")
        yield lambda: PostgresStore(url, durability=mode, schema=schema, snapshot_every=3)
        return
    path = tmp_path / "state.db"
    yield lambda: SQLiteStore(path, durability=mode, snapshot_every=3, snapshot_interval=0.01)


def test_a_new_actor_is_recorded_and_recovered_by_name_after_shutdown(
    make_store: StoreFactory,
) -> None:
    with Runtime("one", store=make_store()) as runtime:
        machine = StateMachine(flow(), name="worker", runtime=runtime)
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        config = ConfigManager({"level": "INFO"}, name="config", runtime=runtime)
        assert not machine.recovered and not counter.recovered
        for job in range(7):
            machine.transition("busy", {"job": job})
            machine.transition("idle")
        for _ in range(10):
            counter.modify(lambda s: s.update(n=s.n + 1))
        config.update_config({"level": "DEBUG"}, {"by": "ops"})
        config.rollback(0)
        expected_machine = machine.snapshot
    with Runtime("two", store=make_store()) as runtime:
        machine = StateMachine(flow(), name="worker", runtime=runtime)
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        config = ConfigManager({"level": "INFO"}, name="config", runtime=runtime)
        assert machine.recovered and counter.recovered and config.recovered
        assert machine.snapshot.state == expected_machine.state == "idle"
        assert machine.version == 14 and machine.data == {"jobs": 7, "last": 6}
        assert [(r.version, r.to_state) for r in machine.history] == [
            (r.version, r.to_state) for r in expected_machine.history
        ]
        assert counter.get_state() == {"n": 10} and counter.version == 10
        history = config.get_history()
        assert [h.version for h in history] == [0, 1, 2]
        assert history[1].metadata == {"by": "ops"} and history[2].rollback_of == 0
        assert config.get_config() == {"level": "INFO"}
        # It goes on from where it was.
        assert counter.modify(lambda s: s.update(n=s.n + 1)) == {"n": 11}


def test_a_supervisor_restart_recovers_through_the_store(make_store: StoreFactory) -> None:
    with Runtime("restart", store=make_store()) as runtime:
        sup = Supervisor("s", runtime=runtime, max_restarts=5)
        counter = StateManager(
            {"n": 0}, name="c", runtime=runtime, supervisor=sup, on_error="restart"
        )
        for _ in range(4):
            counter.modify(lambda s: s.update(n=s.n + 1))

        def boom(state: ImmutableState) -> ImmutableState:
            raise RuntimeError("boom")

        with pytest.raises(ActorCrashed):
            counter.modify(boom)
        assert counter.modify(lambda s: s.update(n=s.n + 1)) == {"n": 5}
        assert counter.restarts == 1 and counter.version == 5


def test_a_second_runtime_cannot_open_a_live_actor_but_can_after_it_stops(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    with Runtime("first", store=store) as first:
        owner = StateManager({"n": 0}, name="shared", runtime=first)
        second = Runtime(
            "second", store=make_store() if not isinstance(store, MemoryStore) else store
        )
        try:
            with pytest.raises(ActorOwned, match="'shared' is already open in this store"):
                StateManager({"n": 0}, name="shared", runtime=second)
            owner.update_state({"n": 5})
            owner.stop()
            taken = StateManager({"n": 0}, name="shared", runtime=second)
            assert taken.recovered and taken.get_state() == {"n": 5}
        finally:
            second.shutdown()


def test_a_stored_actor_of_another_kind_or_definition_is_refused(
    make_store: StoreFactory,
) -> None:
    with Runtime("kinds", store=make_store()) as runtime:
        StateMachine(flow(), name="thing", runtime=runtime).transition("busy")
        runtime.get("thing").stop()
        with pytest.raises(DefinitionMismatch, match="stored as a machine, not a manager"):
            StateManager({}, name="thing", runtime=runtime)
        renamed = MachineBuilder("idle", {"idle": ["working"], "working": ["idle"]})
        with pytest.raises(DefinitionMismatch, match=r"state 'busy'.* not a state of the machine"):
            StateMachine(renamed, name="thing", runtime=runtime)
        assert "thing" not in runtime


def test_a_config_history_limit_survives_recovery(make_store: StoreFactory) -> None:
    with Runtime("limited", store=make_store()) as runtime:
        config = ConfigManager({"n": 0}, name="cfg", runtime=runtime, history_limit=2)
        for n in range(1, 5):
            config.update_config({"n": n})
        assert [h.version for h in config.get_history()] == [3, 4]
    with Runtime("limited-again", store=make_store()) as runtime:
        config = ConfigManager({"n": 0}, name="cfg", runtime=runtime, history_limit=2)
        assert [h.version for h in config.get_history()] == [3, 4]
        assert config.get_config() == {"n": 4}


def timed_orders() -> MachineBuilder:
    builder = MachineBuilder(
        "pending",
        events={
            "pay": "pending -> paid",
            "expire": "pending -> cancelled",
            "ship": "paid -> shipped",
        },
        timeouts={"pending": (1800, "expire")},
    )

    @builder.on_enter("paid")
    def remind(ctx):
        ctx.start_timer("ship-by", 60, "ship")

    @builder.on_exit("paid")
    def shipped(ctx):
        ctx.cancel_timer("ship-by")

    return builder


def test_the_index_of_due_timers_follows_each_commit(make_store: StoreFactory) -> None:
    """Each machine's earliest due time, as of its last durable commit:
    ``due_timers(before)`` lists those due by then, soonest first."""
    clock = ManualClock()
    start = clock.wall_clock()
    with Runtime("timers", store=make_store(), timer=clock, clock=clock.wall_clock) as runtime:
        StateMachine(timed_orders(), name="waiting", runtime=runtime)
        paid = StateMachine(timed_orders(), name="paid", runtime=runtime)
        paid.trigger("pay")  # its timeout goes, its named timer comes
        shipped = StateMachine(timed_orders(), name="shipped", runtime=runtime)
        shipped.trigger("pay")
        shipped.trigger("ship")  # no timer left
        StateManager({"n": 0}, name="counter", runtime=runtime).update_state({"n": 1})
    store = make_store()
    try:

        def at(**delta: float) -> dt.datetime:
            return start + dt.timedelta(**delta)

        assert store.due_timers(at(seconds=59)) == []
        assert store.due_timers(at(seconds=60)) == [("paid", at(seconds=60))]
        assert store.due_timers(at(hours=1)) == [
            ("paid", at(seconds=60)),
            ("waiting", at(seconds=1800)),
        ]
    finally:
        store.close()


def test_serve_timers_starts_stored_machines_whose_timers_fall_due(
    make_store: StoreFactory,
) -> None:
    """After a reboot, a machine no one has touched is started when its
    timer falls due (an overdue one at once), by the prefix of its name."""
    first = ManualClock()
    with Runtime("before", store=make_store(), timer=first, clock=first.wall_clock) as runtime:
        StateMachine(timed_orders(), name="order-late", runtime=runtime)
        later = StateMachine(timed_orders(), name="order-later", runtime=runtime)
        later.trigger("pay")  # due in 60 s from now
        StateMachine(timed_orders(), name="other-1", runtime=runtime)  # no prefix matches
    # 30 minutes on: order-late's timeout is overdue, order-later's named timer too
    then = ManualClock(wall=first.wall_clock() + dt.timedelta(seconds=1800))
    with Runtime("after", store=make_store(), timer=then, clock=then.wall_clock) as runtime:
        service = serve_timers(runtime, {"order-": timed_orders().build()}, every=30)
        then.advance(0)
        assert sorted(service.started) == ["order-late", "order-later"]
        assert runtime.get("order-late").wait_until("cancelled", timeout=10).version == 1
        assert runtime.get("order-later").wait_until("shipped", timeout=10).version == 2
        assert "other-1" not in runtime
        service.close()
