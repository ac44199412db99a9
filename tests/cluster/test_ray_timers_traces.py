"""Durable timers and transition spans on Ray shards, on a real local Ray
cluster (one for the module, its workers tracing to a file: `ray_timed`).

- A machine's timers are armed by the runtime of the shard that hosts it:
  a state timeout fires there once; one cancelled (its state left) never
  fires; when the shard is killed and replaced, the replacement recovers the
  machines with a pending timer and arms them, though no request comes for
  them, and the timer fires once.
- A transition's span on the shard is a child of the caller's span in the
  driver (the trace context travels with the request).

The shard's clock cannot be driven from here, so the timers are real and
short, and every wait is bounded (generous, for a loaded machine).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray_timed
from ray_cluster import local_cluster

from stateward.actors import ManualClock, Runtime, StateMachine, StateManager, serve_timers
from stateward.actors.stores import SQLiteStore

ray = pytest.importorskip("ray")

from stateward.actors.ray import RayRuntime  # noqa: E402

#: How long a test waits for what a shard does, at most.
WAIT = 30.0


@pytest.fixture(scope="module")
def spans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spans") / "spans.jsonl"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, spans_file: Path) -> Iterator[Path]:
    """A local cluster whose workers trace to ``spans_file``
    (`ray_timed.install_tracing`), when the OpenTelemetry SDK is installed."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        hook = None
    else:
        hook = "ray_timed.install_tracing"
    env = {ray_timed.SPANS: str(spans_file)}
    with local_cluster(tmp_path_factory.mktemp("ray"), env, hook) as folder:
        yield folder


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "timed.db"


@pytest.fixture(scope="module")
def runtime(cluster: Path, store_path: Path) -> Iterator[RayRuntime]:
    """One client and its one shard (every machine of the module on it)."""
    runtime = RayRuntime(SQLiteStore(store_path), shards=1)
    yield runtime
    runtime.shutdown(stop_shards=True)


def _events(machine: StateMachine) -> list[str]:
    return [record.event for record in machine.history]


def _pending(store_path: Path) -> set[str]:
    """The names the store holds a pending timer of, read from its index."""
    store = SQLiteStore(store_path)
    try:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        return {name for name, _ in store.due_timers(later)}
    finally:
        store.close()


def test_a_state_timeout_fires_once_on_the_shard(runtime: RayRuntime) -> None:
    order = StateMachine(ray_timed.TIMED, name="timed-1", runtime=runtime)
    assert order.current_state == "pending" and len(order.snapshot.timers) == 1
    expired = order.wait_until("cancelled", timeout=WAIT)
    assert (expired.version, expired.timers) == (1, ())
    assert _events(order) == ["expire"]


def test_a_cancelled_state_timeout_never_fires(runtime: RayRuntime, store_path: Path) -> None:
    order = StateMachine(ray_timed.PAYABLE, name="timed-paid", runtime=runtime)
    paid = order.trigger("pay")  # leaves "pending": its timeout is cancelled
    assert (paid.state, paid.timers) == ("paid", ())
    # A later order on the same shard times out after the paid one would have.
    later = StateMachine(ray_timed.PAYABLE, name="timed-later", runtime=runtime)
    later.wait_until("cancelled", timeout=WAIT)
    shipped = order.trigger("ship")
    assert (shipped.state, shipped.version) == ("shipped", 2)
    assert _events(order) == ["pay", "ship"]
    assert "timed-paid" not in _pending(store_path)


def test_a_replaced_shard_arms_the_timers_of_the_machines_it_did_not_recover_yet(
    runtime: RayRuntime, store_path: Path
) -> None:
    order = StateMachine(ray_timed.SLOW, name="slow-1", runtime=runtime)
    bystander = StateManager({}, name="slow-bystander", runtime=runtime)
    link = runtime._links[0]
    replacements = link.replacements
    os.kill(ray.get(link.actor.pid.remote(), timeout=WAIT), signal.SIGKILL)
    # The shard died with the timeout pending (it commits nothing any more).
    assert "slow-1" in _pending(store_path)
    # A request for another actor finds the shard dead: it is replaced, and
    # the replacement is told which of this client's machines it hosts.
    assert bystander.update_state({"after": "kill"}) == {"after": "kill"}
    assert link.replacements == replacements + 1
    expired = order.wait_until("cancelled", timeout=WAIT)
    assert (expired.version, expired.timers) == (1, ())
    assert _events(order) == ["expire"]
    assert "slow-1" not in _pending(store_path)


def test_serve_timers_on_a_ray_runtime_starts_the_stored_machines_whose_timers_fall_due(
    runtime: RayRuntime, store_path: Path
) -> None:
    """After a reboot, a machine with a pending timer lives only in the store:
    `serve_timers` on the client places it on its shard, which arms it."""
    still = ManualClock()  # its timer never fires here: this clock stands still
    store = SQLiteStore(store_path)
    with Runtime("before", timer=still, clock=still.wall_clock, store=store) as before:
        StateMachine(ray_timed.TIMED, name="boot-1", runtime=before)
    assert "boot-1" in _pending(store_path)
    booted = RayRuntime(SQLiteStore(store_path), shards=1)  # a client after the reboot
    try:
        service = serve_timers(booted, {"boot-": ray_timed.TIMED}, every=60)
        assert _started(service, "boot-1"), service.started
        # Another client finds it on its shard: its timeout fired there.
        order = StateMachine(ray_timed.TIMED, name="boot-1", runtime=runtime)
        expired = order.wait_until("cancelled", timeout=WAIT)
        assert (expired.version, expired.timers) == (1, ())
        assert _events(order) == ["expire"]
    finally:
        booted.shutdown()  # its timer thread with it (the service is closed too)


def _started(service: Any, name: str) -> bool:
    """Whether ``service`` started ``name`` within the bounded wait."""
    deadline = time.monotonic() + WAIT
    while name not in service.started and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    return name in service.started


def _spans(path: Path, actor: str) -> list[dict[str, Any]]:
    """The finished spans of ``actor`` the shards wrote, once there are some
    (bounded wait: a span is written when it ends, after the answer)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = []
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            found = [
                span
                for span in map(json.loads, lines)
                if span["attributes"].get("stateward.actor") == actor
            ]
        if found or time.monotonic() > deadline:
            return found
        threading.Event().wait(0.02)  # polled: the shard writes it when the span ends


def test_a_transition_span_on_the_shard_is_a_child_of_the_callers_span(
    runtime: RayRuntime, spans_file: Path
) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk.TracerProvider().get_tracer("driver")  # not the global provider
    order = StateMachine(ray_timed.PAYABLE, name="traced-1", runtime=runtime)
    with tracer.start_as_current_span("checkout") as parent:
        order.trigger("pay")
    spans = _spans(spans_file, "traced-1")
    assert len(spans) == 1, spans
    span = spans[0]
    assert span["trace_id"] == parent.get_span_context().trace_id
    assert span["parent_id"] == parent.get_span_context().span_id
    attributes = span["attributes"]
    assert attributes["stateward.kind"] == "machine"
    assert attributes["stateward.from"] == "pending"
    assert attributes["stateward.to"] == "paid"
    assert attributes["stateward.version"] == 1
    assert attributes["stateward.outcome"] == "ok"
    assert "pay" in attributes["stateward.event"]
