"""`RayRuntime` on a real local Ray cluster: one cluster for the module.

The cluster keeps its files in a pytest temporary folder and writes nothing to
the home directory (``RAY_AUTH_MODE=disabled``). One SQLite store and one
client with 2 shards serve the module (each test uses names of its own); the
shards are shut down and killed at the module's end.
"""

from __future__ import annotations

import asyncio
import functools
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray_specs
from ray_cluster import local_cluster

from stateward.actors import ActorStopped, DuplicateActorName, StateMachine, StateManager
from stateward.actors.stores import SQLiteStore
from stateward.core import DefinitionMismatch, InvalidTransition, TransitionRejected

ray = pytest.importorskip("ray")

from stateward.actors.ray import NotPicklable, RayRuntime, SpecNotImportable  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster for the module (`ray_cluster.local_cluster`); its folder."""
    with local_cluster(tmp_path_factory.mktemp("ray")) as folder:
        yield folder


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "shared.db"


@pytest.fixture(scope="module")
def runtime(cluster: Path, store_path: Path) -> Iterator[RayRuntime]:
    """One client and its 2 shards for the module (a shard is a worker process:
    starting one costs about a second); each test uses names of its own."""
    runtime = RayRuntime(SQLiteStore(store_path), shards=2)
    yield runtime
    runtime.shutdown(stop_shards=True)


def test_the_cluster_keeps_its_files_in_the_temporary_folder(cluster: Path) -> None:
    assert any(cluster.glob("session_*")), list(cluster.iterdir())


def test_a_transition_round_trips_through_its_shard(runtime: RayRuntime) -> None:
    machine = StateMachine(ray_specs.ORDER, name="doc-1", runtime=runtime)
    assert machine.current_state == "draft"
    snapshot = machine.transition("review")
    assert (snapshot.state, snapshot.version) == ("review", 1)
    assert machine.current_state == "review"  # the answer's snapshot is published here
    with pytest.raises(InvalidTransition, match="published"):
        machine.transition("review")  # not from review: the shard's error, as raised there
    reply = machine.request_transition("published")
    assert reply.result(10).state == "published"

    async def awaited() -> tuple[str, str]:
        other = StateMachine(ray_specs.ORDER, name="doc-2", runtime=runtime)
        first = await other.atransition("review")
        second = await other.request_transition("draft")
        return first.state, second.state

    assert asyncio.run(awaited()) == ("review", "draft")


def test_a_builders_guard_runs_on_the_shard(runtime: RayRuntime) -> None:
    payment = StateMachine(ray_specs.PAYMENTS, name="payment-1", runtime=runtime)
    with pytest.raises(TransitionRejected):
        payment.transition("paid", {"amount": 0})
    assert payment.transition("paid", {"amount": 5}).state == "paid"


def test_pipelined_requests_from_four_threads_run_in_each_threads_order(
    runtime: RayRuntime,
) -> None:
    """4 threads each pipeline 50 ``request_modify`` calls to one manager
    (and to 7 machines' shards meanwhile, so batches mix actors)."""
    manager = StateManager({}, name="ledger", runtime=runtime)
    machines = [StateMachine(ray_specs.ORDER, name=f"m-{i}", runtime=runtime) for i in range(7)]
    calls_before = sum(link.calls for link in runtime._links)
    rng = random.Random(16)
    plans = [[rng.randrange(7) for _ in range(50)] for _ in range(4)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def drive(thread: int) -> None:
        try:
            start.wait(5)
            replies = []
            for number, other in enumerate(plans[thread]):
                replies.append(manager.request_modify(_bound(thread, number)))
                if number % 10 == 0:
                    replies.append(machines[other].request_transition("review"))
            for reply in replies:
                reply.exception(30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    if errors:
        raise errors[0]
    state = manager.modify(lambda state: dict(state))  # one more round trip: the latest state
    assert {key: state[key] for key in ("t0", "t1", "t2", "t3")} == dict.fromkeys(
        ("t0", "t1", "t2", "t3"), 49
    )
    assert state["inversions"] == 0
    assert manager.version == 201
    calls = sum(link.calls for link in runtime._links) - calls_before
    assert calls <= 221 // 10  # coalesced: 221 requests, at least 10 a Ray call on average


def _bound(thread: int, number: int) -> Any:
    return functools.partial(ray_specs.record, thread, number)


def test_a_spec_the_workers_cannot_import_is_a_clear_error(
    runtime: RayRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "only_on_the_client.py").write_text(
        "from stateward.core import MachineSpec\nSPEC = MachineSpec('a', {'a': ['b'], 'b': []})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_on_the_client  # type: ignore[import-not-found]

    with pytest.raises(SpecNotImportable, match=r"only_on_the_client\.SPEC cannot be imported"):
        StateMachine(only_on_the_client.SPEC, name="nowhere", runtime=runtime)
    local = type(ray_specs.ORDER)("a", {"a": ["b"], "b": []})
    with pytest.raises(SpecNotImportable, match="module level"):
        StateMachine(local, name="local", runtime=runtime)
    assert isinstance(SpecNotImportable("x"), ImportError)
    # The shard lives on: a good definition still works.
    assert StateMachine(ray_specs.ORDER, name="fine", runtime=runtime).transition("review")
    monkeypatch.delitem(sys.modules, "only_on_the_client")


def test_a_modify_function_that_cannot_pickle_is_refused_before_sending(
    runtime: RayRuntime,
) -> None:
    manager = StateManager({"n": 1}, name="counter", runtime=runtime)
    lock = threading.Lock()
    with pytest.raises(NotPicklable, match="cannot be pickled"):
        manager.modify(lambda state: {"n": state["n"] + 1, "lock": lock})
    assert manager.modify(lambda state: {"n": state["n"] + 1})["n"] == 2  # by value: a lambda


def test_a_second_client_sees_the_state_on_the_same_shards(
    runtime: RayRuntime, store_path: Path
) -> None:
    StateMachine(ray_specs.ORDER, name="shared", runtime=runtime).transition("review")
    second = RayRuntime(SQLiteStore(store_path), shards=2)
    try:
        seen = StateMachine(ray_specs.ORDER, name="shared", runtime=second)
        assert (seen.current_state, seen.version) == ("review", 1)
        assert seen.transition("published").version == 2
        StateManager({}, name="settings", runtime=runtime)
        with pytest.raises(DefinitionMismatch, match="as a manager"):
            StateMachine(ray_specs.ORDER, name="settings", runtime=second)
    finally:
        second.shutdown()


def test_a_statecharts_configuration_and_history_travel_through_its_shard(
    runtime: RayRuntime, store_path: Path
) -> None:
    machine = StateMachine(ray_specs.CHART, name="chart-1", runtime=runtime)
    assert machine.configuration == {"off"}
    machine.trigger("power")
    assert machine.trigger("work").configuration == {"on", "busy"}
    assert machine.trigger("off").configuration == {"off"}
    assert machine.history[-1].configuration_before == {"on", "busy"}
    second = RayRuntime(SQLiteStore(store_path), shards=2)
    try:
        seen = StateMachine(ray_specs.CHART, name="chart-1", runtime=second)
        assert seen.trigger("resume").configuration == {"on", "busy"}  # the memory travelled
    finally:
        second.shutdown()


def test_a_client_behind_another_reads_the_whole_history_after_its_next_answer(
    runtime: RayRuntime, store_path: Path
) -> None:
    """Each answer brings the history records this client lacks (or the whole
    snapshot when it lacks more than the history keeps): its reads then hold
    every kept record as the shard has it, another client's included."""
    mine = StateMachine(ray_specs.SHORT_HISTORY, name="short-history", runtime=runtime)
    second = RayRuntime(SQLiteStore(store_path), shards=2)
    try:
        other = StateMachine(ray_specs.SHORT_HISTORY, name="short-history", runtime=second)
        for behind in (5, 1):  # more than the 3 kept records, then fewer
            for _ in range(behind):
                other.transition("a", {"by": "other"})
            answer = mine.transition("a", {"by": "mine"})
            assert mine.snapshot == answer and mine.version == other.version + 1
            assert [r.version for r in mine.history] == list(
                range(answer.version - 2, answer.version + 1)
            )
            assert list(mine.history[:2]) == list(other.history[1:])  # the other's, as recorded
            assert mine.history[2].payload_keys == ("by",)
    finally:
        second.shutdown()


def test_stop_ends_this_clients_handle_and_not_the_shards_actor(runtime: RayRuntime) -> None:
    machine = StateMachine(ray_specs.ORDER, name="kept", runtime=runtime)
    machine.transition("review")
    with pytest.raises(DuplicateActorName):
        StateMachine(ray_specs.ORDER, name="kept", runtime=runtime)
    machine.stop()
    assert not machine.alive
    with pytest.raises(ActorStopped):
        machine.transition("published")
    again = StateMachine(ray_specs.ORDER, name="kept", runtime=runtime)
    assert again.current_state == "review"
