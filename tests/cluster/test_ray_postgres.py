"""`RayRuntime` over a `PostgresStore` on a real local Ray cluster: one cluster for the module.

The store is a schema of its own on the server of ``STATEWARD_PG_URL`` (the
module skips without it; CI always sets it), opened with a URL that carries a
password (the test server trusts local logins, so any password connects): the
shards open the same store from its recipe, and the password must show
nowhere, neither on the client nor in what Ray records of the shards.

Ray is installed without its dashboard here, so ``ray.util.state.list_actors``
and ``list_tasks`` cannot run: the test reads what they list from where they
read it, Ray's control store (GCS): its actor table (every field, raw) and its
task events (each task's description, with its runtime environment).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import ray_specs
from pg_support import drop_pg_schema, pg_url
from ray_cluster import local_cluster

from stateward.actors import ActorCrashed, StateMachine, StoreWriteError
from stateward.actors.stores import PostgresStore

ray = pytest.importorskip("ray")

from stateward.actors.ray import RayRuntime  # noqa: E402

HERE = Path(__file__).resolve().parent
#: The password of the store's URL: it must show nowhere.
SECRET = "Ray-Pg-S3cret-Pw"


def with_password(url: str) -> str:
    """``url`` with `SECRET` as its password."""
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "postgres"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{SECRET}@{parts.hostname or 'localhost'}{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def pg_store() -> Iterator[tuple[str, str]]:
    """``(url with the password, schema)``: a schema of the module's own, dropped at its end."""
    url = pg_url()
    schema = f"sw_ray_{uuid.uuid4().hex[:12]}"
    try:
        yield with_password(url), schema
    finally:
        drop_pg_schema(url, schema)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster for the module (`ray_cluster.local_cluster`); its folder."""
    with local_cluster(tmp_path_factory.mktemp("ray")) as folder:
        yield folder


#: The shards' lease: long, so that no renewal (every third of it) runs while a
#: test cuts the shards' connections and expects the next commit to find it cut.
LEASE = 600.0


def open_client(pg_store: tuple[str, str]) -> RayRuntime:
    url, schema = pg_store
    store = PostgresStore(url, schema=schema, durability="batched", lease_seconds=LEASE)
    # A shard is declared dead only after longer than its lease (RayRuntime checks).
    return RayRuntime(store, shards=2, shard_timeout=LEASE + 60)


@pytest.fixture(scope="module")
def clients(cluster: Path, pg_store: tuple[str, str]) -> Iterator[tuple[RayRuntime, RayRuntime]]:
    """Two clients of the same 2 shards (found by name: the second client's
    shards are the first's), for the module; each test uses names of its own."""
    first = open_client(pg_store)
    second = open_client(pg_store)
    try:
        yield first, second
    finally:
        second.shutdown()
        first.shutdown(stop_shards=True)


def stored_versions(pg_store: tuple[str, str], prefix: str) -> dict[str, int]:
    """The version of each actor named ``prefix...`` as PostgreSQL holds it."""
    url, schema = pg_store
    reader = PostgresStore(url, schema=schema)
    try:
        return {a.name: a.version for a in reader.actors() if a.name.startswith(prefix)}
    finally:
        reader.close()


def test_transitions_from_two_clients_are_committed_to_postgresql_by_the_shards(
    clients: tuple[RayRuntime, RayRuntime], pg_store: tuple[str, str]
) -> None:
    """Each client drives its own machines from a thread of its own, and both
    drive one shared machine in turn: every transition is in PostgreSQL."""
    first, second = clients
    errors: list[BaseException] = []
    rounds = 5

    def drive(runtime: RayRuntime, owner: str) -> None:
        try:
            machines = [
                StateMachine(ray_specs.ORDER, name=f"pg-{owner}-{i}", runtime=runtime)
                for i in range(4)
            ]
            for _ in range(rounds):
                replies = [m.request_transition("review") for m in machines]
                assert [r.result(30).state for r in replies] == ["review"] * 4
                replies = [m.request_transition("draft") for m in machines]
                assert [r.result(30).state for r in replies] == ["draft"] * 4
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=drive, args=(first, "a")),
        threading.Thread(target=drive, args=(second, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()
    if errors:
        raise errors[0]

    shared_a = StateMachine(ray_specs.ORDER, name="pg-shared", runtime=first)
    assert shared_a.transition("review").version == 1
    shared_b = StateMachine(ray_specs.ORDER, name="pg-shared", runtime=second)
    assert (shared_b.current_state, shared_b.version) == ("review", 1)
    assert shared_b.transition("published").version == 2

    expected = {f"pg-{owner}-{i}": 2 * rounds for owner in "ab" for i in range(4)}
    assert stored_versions(pg_store, "pg-") == {**expected, "pg-shared": 2}


def test_the_shards_hold_their_names_under_leases_in_postgresql(
    clients: tuple[RayRuntime, RayRuntime], pg_store: tuple[str, str]
) -> None:
    """Every owner row names a shard's runtime that holds a lease, renewed by
    the shard; a name the shards hold cannot be opened elsewhere meanwhile."""
    first, _ = clients
    StateMachine(ray_specs.ORDER, name="pg-leased", runtime=first).transition("review")
    _, schema = pg_store
    with psycopg.connect(pg_url().replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT o.name, l.epoch, l.expires - extract(epoch FROM clock_timestamp())::float8 "
            f"FROM {schema}.owners o JOIN {schema}.leases l ON l.holder = o.runtime_id "
            "WHERE o.name = 'pg-leased'"
        ).fetchall()
    assert len(rows) == 1
    _, epoch, left = rows[0]
    assert epoch >= 1 and LEASE - 120 < left <= LEASE  # the shards' lease_seconds


def everything_ray_shows(cluster: Path) -> list[str]:
    """What Ray records of the cluster's actors and tasks: its actor table
    (each entry raw, as the control store holds it, and as listed), the names
    of its named actors, its task events (each task's description and runtime
    environment), the job table, and every file in the cluster's folder."""
    from ray._private import state

    global_state = state.state
    accessor = global_state._connect_and_get_accessor()
    shown = [repr(entry) for entry in accessor.get_actor_table(None, None)]
    shown.append(repr(global_state.actor_table(None)))
    shown.append(repr(ray.util.list_named_actors(all_namespaces=True)))
    shown.append(repr(global_state.job_table()))
    deadline = time.monotonic() + 30
    events: list[Any] = []
    while time.monotonic() < deadline:  # task events reach the control store every second
        events = global_state._get_all_task_events()
        if any("Shard" in str(event) for event in events):
            break
        time.sleep(0.2)
    assert any("Shard" in str(event) for event in events), "no task event of a shard arrived"
    shown += [str(event) for event in events]
    shown += [repr(event.SerializeToString()) for event in events]
    for file in cluster.rglob("*"):
        if file.is_file() and not file.is_symlink():
            try:
                shown.append(repr(file.read_bytes()))
            except OSError:
                continue  # a socket or a file that went away meanwhile
    return shown


def test_the_password_shows_in_no_ray_record_error_repr_stats_or_log(
    clients: tuple[RayRuntime, RayRuntime],
    pg_store: tuple[str, str],
    cluster: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = clients
    machine = StateMachine(ray_specs.ORDER, name="pg-secret", runtime=first)
    machine.transition("review")
    # A commit that fails on a shard (its connection is cut): the error comes
    # back through Ray, with the server's words in it, and no password.
    _, schema = pg_store
    with psycopg.connect(pg_url().replace("+psycopg", ""), autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (f"stateward:{schema}",),
        ).fetchall()
        # A backend listed here may be ending on its own (a connection its
        # client closed is still listed for a moment): pg_terminate_backend
        # then finds no such backend and returns False. What must hold: some
        # backend was terminated, and every one listed is gone (below); the
        # shard's next commit finds its connection cut (the transition fails).
        assert ended and any(done for _, done in ended), ended
        pids = [pid for pid, _ in ended]
        deadline = time.monotonic() + 10
        left = None
        while time.monotonic() < deadline:  # bounded: the ended processes go at once
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()
            if left == (0,):
                break
            time.sleep(0.05)
        assert left == (0,), f"{left} of the backends {pids} still run"
    with pytest.raises((ActorCrashed, StoreWriteError)) as failed:
        machine.transition("published")
    said = "".join(traceback.format_exception(failed.value)) + repr(failed.value)
    assert "connection" in said  # the server's words did travel back
    shown = [said]
    shown += [repr(first), repr(second), repr(first.stats()), repr(second.stats())]
    shown += [repr(first._client_store), str(first._client_store.url)]
    shown += [repr(link.actor) for link in first._links]
    shown += everything_ray_shows(cluster)
    shown.append(caplog.text)
    for text in shown:
        assert SECRET not in text
    # What was scanned is real: the shards' actor names, their class and the
    # cluster's runtime environment (its PYTHONPATH) are in it.
    assert any("stateward-shard-" in text for text in shown)
    assert any("Shard" in text for text in shown)
    assert any(str(HERE) in text for text in shown)
