"""`RayRuntime` under bad input and awkward timing: each mistake gets a clear
`StatewardError` (or the documented error), nothing is lost, and no shard
is crashed by it.

One local Ray cluster for the module (see ``ray_cluster``) and one client
with 2 shards; a test that needs a store or client of its own makes it and
shuts it down.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import ray_adversarial_specs as adv
import ray_specs

from stateward.actors import ActorTimeout, DuplicateActorName, StateMachine, StateManager
from stateward.actors.stores import SQLiteStore
from stateward.core import ArgumentTypeError, ArgumentValueError, UnencodableValueError

ray = pytest.importorskip("ray")

from stateward.actors.ray import RayRuntime, ShardUnavailable, SpecNotImportable  # noqa: E402

WAIT = 30.0


@pytest.fixture(scope="module")
def runtime(ray_client: RayRuntime) -> RayRuntime:
    """The module's client (conftest's ``ray_client``)."""
    return ray_client


def _shard_actors(store_path: Path) -> list[str]:
    """The named shard actors Ray lists for the store at ``store_path``."""
    import hashlib

    key = hashlib.sha256(str(store_path.resolve()).encode()).hexdigest()[:16]
    named = ray.util.list_named_actors(all_namespaces=True)
    return [entry["name"] for entry in named if f"-{key}-" in entry["name"]]


def test_a_bad_workers_argument_is_refused_before_any_shard_starts(
    runtime: RayRuntime, tmp_path: Path
) -> None:
    path = tmp_path / "workers.db"
    with pytest.raises(ArgumentTypeError, match="'workers' must be an int >= 0"):
        RayRuntime(SQLiteStore(path), shards=1, workers="2")  # type: ignore[arg-type]
    with pytest.raises(ArgumentValueError, match="'workers' must be an int >= 0"):
        RayRuntime(SQLiteStore(path), shards=1, workers=-1)
    assert _shard_actors(path) == []
    client = RayRuntime(SQLiteStore(path), shards=1)  # the name of its shard is free
    try:
        assert StateManager({}, name="w", runtime=client).update_state({"ok": 1})["ok"] == 1
    finally:
        client.shutdown(stop_shards=True)


def test_a_shard_that_failed_to_start_does_not_block_the_next_client(
    runtime: RayRuntime, tmp_path: Path
) -> None:
    """A shard whose start fails (here: its store's folder is gone on the
    worker) is reported as such, and its Ray name is freed: once the cause is
    fixed, the next client starts the shard and works."""
    folder = tmp_path / "gone"
    folder.mkdir()
    store = SQLiteStore(folder / "s.db")
    store.close()
    (folder / "s.db").unlink()
    folder.rmdir()
    with pytest.raises(ShardUnavailable, match="failed to start"):
        RayRuntime(store, shards=1)
    folder.mkdir()
    client = RayRuntime(SQLiteStore(folder / "s.db"), shards=1)
    try:
        order = StateMachine(ray_specs.ORDER, name="after", runtime=client)
        assert order.transition("review").state == "review"
    finally:
        client.shutdown(stop_shards=True)


def test_a_client_with_another_shard_count_on_the_same_store_is_refused(
    runtime: RayRuntime, store_path: Path
) -> None:
    """A name goes to shard ``crc32(name) % shards``: two shard counts on one
    store would put one name on two shards, whose leases would fight over it."""
    StateMachine(ray_specs.ORDER, name="counted", runtime=runtime).transition("review")
    with pytest.raises(ArgumentValueError, match=r"'shards' must be 2 .*got 3.*Pass shards=2"):
        RayRuntime(SQLiteStore(store_path), shards=3)
    assert _shard_actors(store_path)  # the test sees the shards of this store ...
    assert not [name for name in _shard_actors(store_path) if "-3-" in name]  # ... none for 3
    second = RayRuntime(SQLiteStore(store_path), shards=2)  # the same count is fine
    try:
        assert StateMachine(ray_specs.ORDER, name="counted", runtime=second).version == 1
    finally:
        second.shutdown()


def test_a_modify_function_whose_module_the_worker_lacks_is_a_clear_error(
    runtime: RayRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client_side_functions.py").write_text(
        "def bump(state):\n    return {'n': state.get('n', 0) + 1}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import client_side_functions  # type: ignore[import-not-found]

    manager = StateManager({"n": 0}, name="modified", runtime=runtime)
    with pytest.raises(SpecNotImportable, match="client_side_functions") as caught:
        manager.modify(client_side_functions.bump)
    assert isinstance(caught.value, ImportError)
    assert "every node" in str(caught.value)
    assert manager.modify(lambda state: {"n": state["n"] + 1})["n"] == 1  # the actor lives on
    monkeypatch.delitem(sys.modules, "client_side_functions")


def test_an_error_whose_fields_cannot_pickle_comes_back_as_its_own_class(
    runtime: RayRuntime,
) -> None:
    """As locally: a value that cannot be stored is an `UnencodableValueError`
    (its ``value_type``, a lock's class, cannot pickle: it comes back as text)."""
    manager = StateManager({"n": 0}, name="unencodable", runtime=runtime)
    with pytest.raises(UnencodableValueError, match="lock cannot be stored") as caught:
        manager.modify(adv.return_a_lock)
    assert caught.value.path == "lock" and "lock" in str(caught.value.value_type)
    assert manager.update_state({"n": 1})["n"] == 1 and manager.version == 1


def test_an_exception_that_cannot_pickle_says_the_request_failed_on_the_shard(
    runtime: RayRuntime,
) -> None:
    manager = StateManager({"n": 0}, name="odd-error", runtime=runtime)
    with pytest.raises(ShardUnavailable, match="NeedsTwoArguments: refused on purpose") as caught:
        manager.modify(adv.raise_needs_two_arguments)
    assert "failed on the shard" in str(caught.value) and "nothing" in str(caught.value)
    assert manager.version == 0 and manager.update_state({"n": 2})["n"] == 2


def test_a_caller_timeout_while_its_request_is_on_the_shard_lets_it_complete(
    runtime: RayRuntime,
) -> None:
    """docs/cluster.md, "Timeouts": the wait ends with `ActorTimeout`
    (``started=True``); the request runs once and its commit shows in the
    next answer."""
    manager = StateManager({"n": 0}, name="timed-out", runtime=runtime)
    with pytest.raises(ActorTimeout) as caught:
        manager.modify(adv.slow_increment(1.0), timeout=0.2)
    assert caught.value.started is True
    manager.wait_until(lambda state: state.get("n") == 1, timeout=WAIT)
    assert manager.version == 1  # applied once


def _until_sent(manager: StateManager) -> None:
    """Wait (bounded) until the link of ``manager``'s shard has taken all it queued."""
    for _ in range(500):
        if not manager._cell.mailbox.qsize():  # type: ignore[attr-defined]
            return
        threading.Event().wait(0.01)
    raise AssertionError("the request was not sent within 5 s")


def test_a_request_still_queued_on_the_client_when_its_wait_times_out_is_never_sent(
    runtime: RayRuntime,
) -> None:
    """docs/cluster.md, "Timeouts". The first request keeps its shard's link
    busy (its batch waits 0.2 s on the shard before deferring it); the second,
    queued behind it, times out after 0.01 s and is withdrawn: the third,
    sent after it, runs next."""
    manager = StateManager({"n": 0}, name="withdrawn", runtime=runtime)
    running = manager.request_modify(adv.slow_increment(1.0))
    _until_sent(manager)
    with pytest.raises(ActorTimeout) as caught:
        manager.modify(lambda state: {"n": 1000}, timeout=0.01)
    assert caught.value.started is False
    assert running.result(WAIT)["n"] == 1
    assert manager.update_state({"after": True}) == {"n": 1, "after": True}
    assert manager.version == 2


def test_an_awaited_request_cancelled_in_flight_completes_and_one_still_queued_is_withdrawn(
    runtime: RayRuntime,
) -> None:
    manager = StateManager({"n": 0}, name="cancelled", runtime=runtime)

    async def scenario() -> None:
        running = asyncio.ensure_future(manager.amodify(adv.slow_increment(1.0)))
        await asyncio.sleep(0)  # it is queued on its shard's link
        _until_sent(manager)
        queued = asyncio.ensure_future(manager.amodify(lambda state: {"n": 1000}))
        await asyncio.sleep(0)  # queued behind the batch out (0.2 s at least)
        assert manager._cell.mailbox.qsize() == 1  # type: ignore[attr-defined]
        queued.cancel()  # not sent yet: withdrawn
        running.cancel()  # on its shard: it completes there
        for task in (running, queued):
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    manager.wait_until(lambda state: state.get("n") == 1, timeout=WAIT)
    assert manager.update_state({"after": True}) == {"n": 1, "after": True}
    assert manager.version == 2  # the cancelled one ran once; the withdrawn one never


def test_shutdown_answers_what_is_queued(store_path: Path, runtime: RayRuntime) -> None:
    client = RayRuntime(SQLiteStore(store_path), shards=2)
    manager = StateManager({"n": 0}, name="drained", runtime=client)
    replies = [manager.request_modify(adv.add_one) for _ in range(50)]
    client.shutdown(timeout=WAIT)
    assert sorted(reply.result(0)["n"] for reply in replies) == list(range(1, 51))
    assert StateManager({}, name="drained", runtime=runtime).version == 50


def test_shutdown_twice_and_calls_after_shutdown_are_clear(
    store_path: Path, runtime: RayRuntime
) -> None:
    from stateward.actors import ActorStopped

    client = RayRuntime(SQLiteStore(store_path), shards=2)
    order = StateMachine(ray_specs.ORDER, name="after-shutdown", runtime=client)
    client.shutdown()
    client.shutdown()  # a second shutdown does nothing
    with pytest.raises(ActorStopped, match="shut down"):
        order.transition("review")
    with pytest.raises(ActorStopped, match="shut down"):
        StateMachine(ray_specs.ORDER, name="after-shutdown-2", runtime=client)
    assert StateMachine(ray_specs.ORDER, name="after-shutdown", runtime=runtime).version == 0


def test_a_spec_module_that_raises_on_the_worker_is_a_clear_error(runtime: RayRuntime) -> None:
    import ray_raises_on_workers

    with pytest.raises(SpecNotImportable, match="RuntimeError: this module refuses to import"):
        StateMachine(ray_raises_on_workers.SPEC, name="raises-on-import", runtime=runtime)
    with pytest.raises(SpecNotImportable):  # again: a failed import is not cached as a success
        StateMachine(ray_raises_on_workers.SPEC, name="raises-on-import", runtime=runtime)
    assert StateMachine(ray_specs.ORDER, name="after-import", runtime=runtime).version == 0


def test_many_threads_of_two_clients_creating_one_name_get_one_actor(
    runtime: RayRuntime, store_path: Path
) -> None:
    """Each client gets one handle (the others `DuplicateActorName`); both
    reach the same actor on its shard, whose state both see."""
    second = RayRuntime(SQLiteStore(store_path), shards=2)
    clients = [runtime, second] * 4
    start = threading.Barrier(len(clients))
    made: list[tuple[int, Any]] = []
    refused: list[BaseException] = []
    failures: list[BaseException] = []

    def create(index: int) -> None:
        try:
            start.wait(WAIT)
            handle = StateMachine(ray_specs.ORDER, name="raced", runtime=clients[index])
            made.append((index % 2, handle))
        except DuplicateActorName as exc:
            refused.append(exc)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(clients))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in threads)
        if failures:
            raise failures[0]
        assert sorted(client for client, _ in made) == [0, 1] and len(refused) == 6
        first, other = (handle for _, handle in sorted(made, key=lambda pair: pair[0]))
        assert first.transition("review").version == 1
        assert other.transition("published").version == 2  # the same actor
    finally:
        second.shutdown()


def test_reads_on_a_client_make_no_ray_call(runtime: RayRuntime) -> None:
    order = StateMachine(ray_specs.ORDER, name="read-only", runtime=runtime)
    order.transition("review")
    calls = [link.calls for link in runtime._links]
    for _ in range(100):
        assert order.current_state == "review" and order.version == 1
        assert order.snapshot.state == "review" and len(order.history) == 1
    assert [link.calls for link in runtime._links] == calls


def test_a_bad_address_or_shutdown_timeout_is_refused_and_changes_nothing(
    runtime: RayRuntime, store_path: Path
) -> None:
    with pytest.raises(ArgumentTypeError, match="'address' must be"):
        RayRuntime(SQLiteStore(store_path), shards=2, address=6379)  # type: ignore[arg-type]
    client = RayRuntime(SQLiteStore(store_path), shards=2)
    try:
        order = StateMachine(ray_specs.ORDER, name="bad-shutdown", runtime=client)
        with pytest.raises(ArgumentTypeError, match="'timeout' must be"):
            client.shutdown("soon")  # type: ignore[arg-type]
        with pytest.raises(ArgumentValueError, match="'timeout' must be"):
            client.shutdown(-1)
        assert order.transition("review").version == 1  # still running
    finally:
        client.shutdown(None)  # None: the default timeout, as for a `Runtime`
    assert client.closed


SECOND_PROCESS = """
import os
import sys

import ray
import ray_specs

from stateward.actors import StateMachine
from stateward.actors.ray import RayRuntime
from stateward.actors.stores import SQLiteStore

ray.init(address=sys.argv[2], runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
runtime = RayRuntime(
    SQLiteStore(sys.argv[1], lease_seconds=2), shards=2, address=sys.argv[2], shard_timeout=5
)
order = StateMachine(ray_specs.ORDER, name="two-processes", runtime=runtime)
print("found", order.current_state, order.version, flush=True)
print("moved", order.transition("published").version, flush=True)
runtime.shutdown()
"""


def test_a_client_in_another_process_finds_the_same_shards(
    runtime: RayRuntime, store_path: Path
) -> None:
    """Named Ray actors live in a namespace, and each driver that does not name
    one gets an anonymous namespace of its own: the shards are placed in a
    fixed namespace, so that a client process finds those another started."""
    import os
    import subprocess

    order = StateMachine(ray_specs.ORDER, name="two-processes", runtime=runtime)
    order.transition("review")
    here = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]),
    }
    address = ray.get_runtime_context().gcs_address
    done = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, str(store_path), address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:2] == ["found review 1", "moved 2"], done.stdout
    order.wait_until("published", timeout=WAIT)
