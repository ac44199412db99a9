"""What happens when a shard dies, on a real local Ray cluster (one for the module).

- A shard's worker process killed with SIGKILL while 4 client threads drive 50
  machines: the client declares it dead, a replacement (the next generation)
  recovers the actors from the store, and the requests whose outcome was
  unknown are sent again with the same ids: every request is answered once,
  nothing acknowledged is lost, nothing is applied twice, and each client's
  requests to one machine are applied in the order sent.
- A zombie shard (paused with SIGSTOP, declared dead and replaced, then
  resumed) commits nothing: its lease was taken over.

Each test has a store and a client of its own (their shards get killed). The
store is a fixture with one parameter per kind of store the shards can open.
CI-sized counts; ``STATEWARD_RAY_FAILURE_ROUNDS`` (default 4) sets how many
requests each thread sends to each machine in the SIGKILL test, for a longer
local run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import ray_specs
from pg_support import drop_pg_schema, pg_url
from ray_cluster import local_cluster

from stateward.actors import (
    ActorOwned,
    LeaseLost,
    PostgresStore,
    Runtime,
    SQLiteStore,
    StateMachine,
    Store,
)
from stateward.core import ImmutableState, InvalidArgument
from stateward.core._messages import Move

ray = pytest.importorskip("ray")

from stateward.actors.ray import RayRuntime  # noqa: E402
from stateward.actors.ray._link import pickled  # noqa: E402
from stateward.actors.ray._paths import store_recipe  # noqa: E402
from stateward.actors.ray._shard import Shard  # noqa: E402

ROUNDS = int(os.environ.get("STATEWARD_RAY_FAILURE_ROUNDS", "4"))
THREADS = 4
MACHINES = 50


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster for the module (`ray_cluster.local_cluster`); its folder."""
    with local_cluster(tmp_path_factory.mktemp("ray")) as folder:
        yield folder


#: A store the shards share, by kind: ``make_store(**options)`` opens it (each
#: call a new store object on the same data): a SQLite file (one node), or a
#: schema of its own on the PostgreSQL server (dropped at the test's end).
@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        yield lambda **options: SQLiteStore(path, **options)
        return
    url = pg_url()
    schema = f"sw_rayfail_{uuid.uuid4().hex[:12]}"
    yield lambda **options: PostgresStore(url, schema=schema, **options)
    drop_pg_schema(url, schema)


@pytest.fixture
def clients(cluster: Path) -> Iterator[list[RayRuntime]]:
    """The test's `RayRuntime` clients, shut down with their shards at its
    end whatever happened (a test appends each one it makes)."""
    made: list[RayRuntime] = []
    yield made
    for runtime in made:
        if not runtime.closed:
            runtime.shutdown(stop_shards=True)


def _recovered(make_store: Callable[..., Store], names: list[str]) -> dict[str, Any]:
    """Each machine's snapshot as the store holds it, read by a runtime of
    this process once the shards are gone."""
    with Runtime("check", store=make_store()) as local:
        return {
            name: StateMachine(ray_specs.LEDGER, name=name, runtime=local).snapshot
            for name in names
        }


def _recovered_as(make_store: Callable[..., Store], spec: Any, name: str) -> Any:
    with Runtime("check", store=make_store()) as local:
        return StateMachine(spec, name=name, runtime=local).snapshot


def _log(snapshot: Any) -> list[tuple[int, int]]:
    return [(entry[0], entry[1]) for entry in snapshot.data.get("log", ())]


@pytest.mark.parametrize("kill", ["from-outside", "mid-batch"])
def test_a_killed_shard_is_replaced_and_every_request_is_applied_once_in_order(
    clients: list[RayRuntime], make_store: Callable[..., Store], tmp_path: Path, kill: str
) -> None:
    """``from-outside``: the test SIGKILLs shard 0's process (its pid from the
    shard) once a quarter of the requests were answered, while the threads
    send the next rounds. ``mid-batch``: a request in the middle of thread
    0's second round carries a payload whose hook SIGKILLs its shard's process
    before it commits, while the other machines of that Ray call commit
    theirs (``workers=0``: each machine on a thread of its own, each commit
    durable at once): those are applied by the dead shard and not answered,
    and their retries must not apply them again."""
    runtime = RayRuntime(make_store(), shards=2, workers=0)
    clients.append(runtime)
    names = [f"kill-{i}" for i in range(MACHINES)]
    machines = [StateMachine(ray_specs.LEDGER, name=name, runtime=runtime) for name in names]
    links = list(runtime._links)
    pid = ray.get(links[0].actor.pid.remote(), timeout=30)
    die = str(tmp_path / "died")
    total = THREADS * MACHINES * ROUNDS
    lock = threading.Lock()
    answered = [0]
    calls: dict[int, int] = {}  # done-callback calls, by reply
    quarter = threading.Event()
    killed = threading.Event()

    def count(reply: Any) -> None:
        with lock:
            calls[id(reply)] = calls.get(id(reply), 0) + 1
            answered[0] += 1
            if answered[0] >= total // 4:
                quarter.set()

    start = threading.Barrier(THREADS + 1)
    outcomes: list[tuple[int, int, int, BaseException | None]] = []
    failures: list[BaseException] = []
    kept: list[Any] = []  # the replies, alive until their callbacks are counted

    def drive(thread: int) -> None:
        try:
            rng = random.Random(16 + thread)
            sent = []
            start.wait(30)
            for number in range(ROUNDS):
                if number == ROUNDS - 1:  # the last round at least is sent after the kill
                    assert killed.wait(120), "the shard was not killed in time"
                order = list(range(MACHINES))
                rng.shuffle(order)
                for position, i in enumerate(order):
                    payload: dict[str, Any] = {"by": [thread, number]}
                    if kill == "mid-batch" and (thread, number, position) == (0, 1, MACHINES // 2):
                        payload["die_once"] = die
                        killed.set()
                    reply = machines[i].request_transition("open", payload)
                    reply.add_done_callback(count)
                    sent.append((i, number, reply))
                if number == 0:
                    for _, _, reply in sent:  # so that later rounds are sent around the kill
                        reply.exception(120)
            for i, number, reply in sent:
                error = reply.exception(120)
                outcomes.append((thread, i, number, error))
            kept.extend(reply for _, _, reply in sent)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=drive, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait(30)
    if kill == "from-outside":
        assert quarter.wait(120), "a quarter of the requests was not answered in time"
        os.kill(pid, signal.SIGKILL)
        killed.set()
    for thread in threads:
        thread.join(300)
        assert not thread.is_alive()
    if failures:
        raise failures[0]
    assert sum(link.replacements for link in links) == 1, "the killed shard was not replaced"
    assert len(outcomes) == total
    assert sorted(calls.values()) == [1] * total, "a request was answered more than once"
    errors = [error for *_, error in outcomes if error is not None]
    assert errors == [], errors[:3]
    runtime.shutdown(stop_shards=True)

    stored = _recovered(make_store, names)
    for name in names:
        log = _log(stored[name])
        assert stored[name].version == THREADS * ROUNDS == len(log), (name, log)
        for thread in range(THREADS):
            applied = [number for who, number in log if who == thread]
            # Once each, in the order sent, none lost: exactly 0, 1, ..., ROUNDS - 1.
            assert applied == list(range(ROUNDS)), (name, thread, log)


def _until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait (bounded) until ``condition()`` holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds:g} s"
        threading.Event().wait(0.01)


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


@pytest.mark.parametrize("found_by", ["a poll", "a call"])
def test_requests_whose_answers_were_deferred_are_sent_again_when_their_shard_dies(
    clients: list[RayRuntime], make_store: Callable[..., Store], tmp_path: Path, found_by: str
) -> None:
    """Two requests to one machine whose answers the shard deferred (the
    first one's hook waits for a file, then kills the shard's process before
    it commits; the second waits behind it): their batches were answered, so
    no call of the link fails. Whether a request is deferred is a matter of
    timing (under load, any batch that makes no progress for 0.2 s): the
    death must be handled as for a batch in flight. The shard's death is
    found by the follow thread's poll (``a poll``: the link is idle), or by
    the link's next call, for another machine (``a call``: polls are off).
    Either way the shard is replaced once, and both requests are sent again
    with their ids, before that call's, in the order sent: each is applied
    once, in order, and answered with its result, not an error."""
    runtime = RayRuntime(make_store(), shards=1, workers=0)
    clients.append(runtime)
    machine = StateMachine(ray_specs.LEDGER, name="deferred", runtime=runtime)
    other = StateMachine(ray_specs.LEDGER, name="other", runtime=runtime)
    link, follower = runtime._links[0], runtime._follower
    pid = ray.get(link.actor.pid.remote(), timeout=30)
    go, died = tmp_path / "go", tmp_path / "died"
    with contextlib.ExitStack() as polls:
        if found_by == "a call":
            polls.enter_context(mock.patch.object(follower, "_poll"))
        first = machine.request_transition(
            "open", {"by": [0, 0], "die_after": [str(go), str(died)]}
        )
        _until(lambda: len(follower.deferred[0]) == 1, "the first answer was not deferred")
        second = machine.request_transition("open", {"by": [0, 1]})
        _until(lambda: len(follower.deferred[0]) == 2, "the second answer was not deferred")
        go.touch()
        _until(lambda: died.exists() and _process_gone(pid), "the shard did not die")
        if found_by == "a call":
            assert other.transition("open", {"by": [1, 0]}, timeout=120).version == 1
        assert first.result(120).version == 1
        assert second.result(120).version == 2
    assert link.replacements == 1
    assert _log(machine.snapshot) == [(0, 0), (0, 1)]
    runtime.shutdown(stop_shards=True)
    stored = _recovered(make_store, ["deferred"])["deferred"]
    assert stored.version == 2 and _log(stored) == [(0, 0), (0, 1)]


def test_a_zombie_shard_commits_nothing_after_its_replacement_took_over(
    clients: list[RayRuntime], make_store: Callable[..., Store]
) -> None:
    """The shard is paused (SIGSTOP) and the kill that would end it does not
    reach it (a partition: `ShardSet.kill` does nothing here). The client
    declares it dead after ``shard_timeout``, its replacement claims the
    machine once the paused shard's lease has expired, and applies the
    request. Resumed (SIGCONT), the zombie runs what it had in flight: each
    fails with `LeaseLost`, and the store holds the replacement's commits only."""
    runtime = RayRuntime(make_store(lease_seconds=1.5), shards=1, shard_timeout=5)
    clients.append(runtime)
    machine = StateMachine(ray_specs.LEDGER, name="zombie-1", runtime=runtime)
    assert machine.transition("open", {"by": [0, 0]}).version == 1
    # A second client that is idle while the shard is replaced: it still sends to the zombie.
    stale = RayRuntime(make_store(lease_seconds=1.5), shards=1, shard_timeout=5)
    clients.append(stale)
    other = StateMachine(ray_specs.LEDGER, name="zombie-1", runtime=stale)
    assert stale._links[0].actor == runtime._links[0].actor
    zombie = runtime._links[0].actor
    pid = ray.get(zombie.pid.remote(), timeout=30)
    by_hand = Move(("open", None, ImmutableState({"by": [9, 9]})))
    op = ("call", "zombie-1", pickled(by_hand, "test"), "test:1", "machine", None)
    os.kill(pid, signal.SIGSTOP)
    try:
        with mock.patch.object(runtime._shards, "kill"):  # the kill does not reach it
            stuck = zombie.run.remote([op], False)  # waits in the paused shard's queue
            snapshot = machine.transition("open", {"by": [0, 1]}, timeout=60)
        assert runtime._links[0].replacements == 1 and runtime._links[0].actor != zombie
        assert snapshot.version == 2 and _log(snapshot) == [(0, 0), (0, 1)]
    finally:
        os.kill(pid, signal.SIGCONT)
    ((ok, error),) = ray.get(stuck, timeout=30)[0]
    assert not ok and isinstance(error, LeaseLost), error
    assert machine.transition("open", {"by": [0, 2]}).version == 3
    # The zombie answers the stale client LeaseLost: that client declares it
    # dead in turn (and kills it), finds the replacement and is answered there.
    assert other.transition("open", {"by": [1, 0]}).version == 4
    assert stale._links[0].replacements == 1
    assert stale._links[0].actor == runtime._links[0].actor != zombie
    stale.shutdown()
    runtime.shutdown(stop_shards=True)
    stored = _recovered(make_store, ["zombie-1"])["zombie-1"]
    assert stored.version == 4
    assert _log(stored) == [(0, 0), (0, 1), (0, 2), (1, 0)]


def test_what_a_shard_applied_before_it_died_is_answered_and_not_applied_again(
    clients: list[RayRuntime], make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """One batch to one machine, in one Ray call: a transition that fails, one
    that commits, and one whose hook kills the shard's process before it
    commits. Sent again to the replacement with the same ids, the committed
    one is answered from the store (not applied again), the failed one is
    not retried into success (it would succeed now), and the third is
    applied once. ``workers=0``: each actor on a thread of its own, so each
    commit is durable before the next request of that actor runs."""
    runtime = RayRuntime(make_store(), shards=1, workers=0)
    clients.append(runtime)
    machine = StateMachine(ray_specs.FLIP, name="flip", runtime=runtime)
    link = runtime._links[0]
    die = str(tmp_path / "died")
    with link.ready:  # the link's sender waits: the three leave in one call
        failing = machine.request_transition("x", {"n": 1})  # x -> x: invalid
        committed = machine.request_transition("y", {"n": 2})
        killing = machine.request_transition("y", {"n": 3, "die_once": die})
    assert killing.result(60).version == 2
    assert os.path.exists(die) and link.replacements == 1
    error = failing.exception(10)
    assert error is not None and "was not applied" in str(error), error
    assert committed.result(10).state == "y"
    assert list(machine.snapshot.data["log"]) == [2, 3]
    runtime.shutdown(stop_shards=True)
    stored = _recovered_as(make_store, ray_specs.FLIP, "flip")
    assert (stored.state, stored.version, list(stored.data["log"])) == ("y", 2, [2, 3])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shard_timeout": 0}, "'shard_timeout' must be a number of seconds > 0"),
        ({"shard_timeout": float("inf")}, "'shard_timeout' must be a number of seconds > 0"),
        ({"shard_timeout": "30"}, "'shard_timeout' must be a number of seconds > 0"),
        ({"shard_timeout": True}, "'shard_timeout' must be a number of seconds > 0"),
        ({"shard_timeout": 10}, r"longer than the store's lease_seconds \(15 s\)"),
        ({"shards": 0}, "'shards' must be an int >= 1"),
        ({"shards": 2.0}, "'shards' must be an int >= 1"),
    ],
)
def test_a_shard_timeout_that_is_not_longer_than_the_lease_is_refused(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    """Bad ``shards`` and ``shard_timeout`` too: an `InvalidArgument` (a
    `TypeError` or `ValueError`) naming the argument, before any shard starts."""
    store = SQLiteStore(tmp_path / "s.db", lease_seconds=15)
    with pytest.raises(InvalidArgument, match=message):
        RayRuntime(store, **options)
    store.close()


def test_a_store_in_snapshot_mode_is_refused_since_it_keeps_no_request_ids(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "s.db", durability="snapshot")
    with pytest.raises(ValueError, match="no request id is kept"):
        RayRuntime(store)
    store.close()


def test_a_replacement_waits_for_a_live_owners_lease_then_gives_up_with_actor_owned(
    tmp_path: Path,
) -> None:
    """A shard claims a name another runtime holds (the shard it replaces,
    paused): it tries again until twice the lease has passed, then raises
    `ActorOwned`; once the holder is gone, the same shard claims it."""
    path = tmp_path / "s.db"
    holder = Runtime("holder", store=SQLiteStore(path, lease_seconds=0.5))
    StateMachine(ray_specs.LEDGER, name="held", runtime=holder).transition("open", {"by": [0, 0]})
    shard = Shard(0, store_recipe(SQLiteStore(path, lease_seconds=0.5)), 0)
    try:
        definition = ("ray_specs", "LEDGER")
        started = time.monotonic()
        with pytest.raises(ActorOwned):
            shard._create("held", "machine", definition, None)
        assert time.monotonic() - started >= 2 * 0.5  # it kept trying that long
        holder.shutdown()
        assert shard._create("held", "machine", definition, None).version == 1
    finally:
        holder.shutdown()
        shard.close()
