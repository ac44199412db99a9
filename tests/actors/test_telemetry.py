"""Metrics and traces through OpenTelemetry: nothing per message until the
application configures a provider; then counters read at collection time, a
latency histogram per outcome, store commit latency and batch sizes, and a
span per transition that is a child of the caller's span whichever thread
runs it. Checked with the SDK's in-memory reader and span exporter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import TOGGLE
from telemetry_support import Telemetry, install

from stateward.actors import (
    ActorCrashed,
    ManualClock,
    Runtime,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.core import ImmutableState, InvalidTransition

WAIT = 10.0


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """A MeterProvider and a TracerProvider of the SDK, in memory, for the runtimes."""
    yield from install()


@pytest.fixture
def metered() -> Iterator[Telemetry]:
    """A MeterProvider only (no tracing)."""
    yield from install(traced=False)


def boom(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def test_a_runtime_made_with_no_provider_configured_has_no_probe_on_the_message_path() -> None:
    with Runtime("plain") as rt:
        machine = StateMachine("a", TOGGLE, runtime=rt)
        machine.transition("b")
        assert rt.probe is None
        assert getattr(rt.store, "write_observer", None) is None


#: Run in a process of its own: the API sets each global provider once per process.
LATE_PROVIDERS = """
import time

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stateward.actors import Runtime, StateMachine


def points(reader, name):
    data = reader.get_metrics_data()
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


with Runtime("early") as rt:
    door = StateMachine("a", {"a": ["b"], "b": ["a"]}, name="door", runtime=rt)
    door.transition("b")
    assert rt.probe is None  # nothing configured: nothing per message
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # The daemon goes on serving requests; they are traced once it noticed.
    sent, deadline = 1, time.monotonic() + 10
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        door.transition("a" if sent % 2 else "b")
        sent += 1
    assert exporter.get_finished_spans(), f"no span after {sent} requests in 10 s"
    for _ in range(3):  # from then on, every request
        door.transition("a" if sent % 2 else "b")
        sent += 1
    spans = exporter.get_finished_spans()
    (histogram,) = points(reader, "stateward.transition.duration")
    (messages,) = points(reader, "stateward.messages")
    print(len(spans) >= 4, histogram.count == len(spans), messages.value == sent)
"""


def test_global_providers_set_after_the_runtime_is_made_are_used_from_then_on() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LATE_PROVIDERS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"], result.stdout


def test_a_runtime_awaiting_a_provider_holds_no_thread_once_its_actors_are_gone() -> None:
    """It looks for a provider set later on its timer while it has actors; an
    idle runtime (the default one, say, never shut down) keeps no thread."""
    before = set(threading.enumerate())
    rt = Runtime("awaiting")
    try:
        machine = StateMachine("a", TOGGLE, runtime=rt)
        machine.transition("b")
        assert rt.probe is None
        machine.stop()
        started = [t for t in threading.enumerate() if t not in before]
        for thread in started:
            thread.join(WAIT)
        assert not [t.name for t in started if t.is_alive()]
    finally:
        rt.shutdown()


def test_a_provider_argument_that_is_not_a_provider_is_refused() -> None:
    with pytest.raises(TypeError, match=r"meter_provider.*get_meter"):
        Runtime(meter_provider="prometheus")
    with pytest.raises(TypeError, match=r"tracer_provider.*get_tracer"):
        Runtime(tracer_provider=object())


def test_a_runtime_given_providers_reports_to_them_only(telemetry: Telemetry) -> None:
    with Runtime("own", **telemetry.providers) as rt, Runtime("other") as other:
        StateMachine("a", TOGGLE, runtime=rt).transition("b")
        StateMachine("a", TOGGLE, runtime=other).transition("b")
        assert other.probe is None
        assert telemetry.value("stateward.messages", runtime="own") == 1
        runtimes = {labels["runtime"] for labels, _ in telemetry.points("stateward.messages")}
        assert runtimes == {"own"}
    assert [s.attributes["stateward.kind"] for s in _spans(telemetry)] == ["machine"]


def test_counters_per_kind_and_supervisor_are_read_at_collection(
    metered: Telemetry, each_host: str
) -> None:
    clock = ManualClock()
    with Runtime("counted", timer=clock, **metered.providers) as rt:
        sup = Supervisor("workers", runtime=rt, max_restarts=1, within=60.0)
        machine = StateMachine("a", TOGGLE, runtime=rt)
        manager = StateManager({"n": 0}, runtime=rt, supervisor=sup, on_error="restart")
        machine.transition("b")
        with pytest.raises(InvalidTransition):
            machine.transition("b")
        with pytest.raises(ActorCrashed):
            manager.modify(boom)
        with pytest.raises(ActorCrashed):
            manager.modify(boom)  # a second restart within 60 s: the supervisor gives up

        machines = {"runtime": "counted", "kind": "machine", "supervisor": "root"}
        managers = {"runtime": "counted", "kind": "manager", "supervisor": "workers"}
        assert metered.value("stateward.messages", **machines) == 2
        assert metered.value("stateward.failures", **machines) == 1
        assert metered.value("stateward.refusals", **machines) == 1
        assert metered.value("stateward.restarts", **machines) == 0
        assert metered.value("stateward.messages", **managers) == 2
        assert metered.value("stateward.failures", **managers) == 2
        assert metered.value("stateward.refusals", **managers) == 0
        assert metered.value("stateward.restarts", **managers) >= 1
        gave_up = {"runtime": "counted", "event": "gave_up"}
        assert metered.value("stateward.supervisor.events", supervisor="workers", **gave_up) == 1
        escalated = {"runtime": "counted", "event": "escalated", "supervisor": "workers"}
        assert metered.value("stateward.supervisor.events", **escalated) == 1
        started = {"runtime": "counted", "event": "started"}  # no subscriber: counted alone
        assert metered.value("stateward.supervisor.events", supervisor="workers", **started) == 1
        assert metered.value("stateward.supervisor.events", supervisor="root", **started) == 2
        assert all("actor" not in labels for labels, _ in metered.points("stateward.messages"))


def test_transition_latency_is_a_histogram_by_outcome(metered: Telemetry, each_host: str) -> None:
    with Runtime("timed", **metered.providers) as rt:
        machine = StateMachine("a", TOGGLE, runtime=rt)
        for target in ("b", "a", "b"):
            machine.transition(target)
        with pytest.raises(InvalidTransition):
            machine.transition("b")
        ok = metered.value("stateward.transition.duration", kind="machine", outcome="ok")
        refused = metered.value("stateward.transition.duration", outcome="refused")
        assert (ok.count, refused.count) == (3, 1)
        assert 0 < ok.sum < WAIT and ok.explicit_bounds[0] == 0.00001


def test_queue_depth_full_mailboxes_and_busy_workers_are_gauges(metered: Telemetry) -> None:
    entered, gate = threading.Event(), threading.Event()

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert gate.wait(WAIT)
        return state

    with Runtime("gauged", workers=2, **metered.providers) as rt:
        manager = StateManager({"n": 0}, runtime=rt, mailbox_limit=2)
        first = manager.request_modify(hold)
        assert entered.wait(WAIT)
        queued = [manager.request_modify(lambda s: s) for _ in range(2)]
        labels = {"runtime": "gauged", "kind": "manager"}
        assert metered.value("stateward.queue.depth", **labels) == 2
        assert metered.value("stateward.mailboxes.full", **labels) == 1
        assert metered.value("stateward.workers", runtime="gauged") == 2
        assert metered.value("stateward.workers.busy", runtime="gauged") == 1
        gate.set()
        for reply in [first, *queued]:
            reply.result(WAIT)
        assert metered.value("stateward.queue.depth", **labels) == 0
        assert metered.value("stateward.workers.busy", runtime="gauged") == 0


def test_active_and_passivated_actors_are_counted(metered: Telemetry, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with Runtime(
        "virtual", store=store, idle_after=60, timer=ManualClock(), **metered.providers
    ) as rt:
        machines = [StateMachine("a", TOGGLE, name=f"m{i}", runtime=rt) for i in range(3)]
        machines[0].transition("b")
        assert rt.passivate_idle() == 3
        machines[1].transition("b")  # activates it again
        assert metered.value("stateward.actors", kind="machine", state="passivated") == 2
        assert metered.value("stateward.actors", kind="machine", state="active") == 1


def test_store_commit_latency_and_batch_sizes_are_recorded(
    metered: Telemetry, tmp_path: Path, each_host: str
) -> None:
    with Runtime("stored", store=SQLiteStore(tmp_path / "s.db"), **metered.providers) as rt:
        machine = StateMachine("a", TOGGLE, runtime=rt)
        for target in ("b", "a", "b", "a"):
            machine.transition(target)
        latency = metered.value("stateward.store.commit.duration", runtime="stored")
        sizes = metered.value("stateward.store.commit.batch_size", runtime="stored")
        assert latency.count == sizes.count >= 1
        assert sizes.sum == 4  # every commit written once, however they were grouped
        assert 0 < latency.sum < WAIT


def test_per_actor_labels_are_opt_in(metered: Telemetry) -> None:
    with Runtime("labelled", per_actor_metrics=True, **metered.providers) as rt:
        for name in ("door", "gate"):
            StateMachine("a", TOGGLE, name=name, runtime=rt).transition("b")
        assert metered.value("stateward.messages", actor="door") == 1
        assert metered.value("stateward.transition.duration", actor="gate").count == 1


def test_per_actor_metrics_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="per_actor_metrics"):
        Runtime(per_actor_metrics="yes")  # type: ignore[arg-type]


# -- traces -----------------------------------------------------------------------------------


def _spans(telemetry: Telemetry) -> list[Any]:
    assert telemetry.spans is not None
    return list(telemetry.spans.get_finished_spans())


def test_a_transition_span_is_a_child_of_the_callers_span_on_every_host(
    telemetry: Telemetry, each_host: str
) -> None:
    tracer = telemetry.tracer("test")
    with Runtime("traced", **telemetry.providers) as rt:
        machine = StateMachine("a", TOGGLE, name="door", runtime=rt)
        with tracer.start_as_current_span("request") as caller:
            machine.transition("b")
            replies = [machine.request_transition(t) for t in ("a", "b")]  # queued: a worker
            for reply in replies:
                reply.result(WAIT)
        with pytest.raises(InvalidTransition):
            machine.transition("b")
    spans = [s for s in _spans(telemetry) if s.name.startswith("stateward")]
    assert len(spans) == 4
    parent = caller.get_span_context().span_id
    assert [s.parent.span_id if s.parent else None for s in spans] == [parent] * 3 + [None]
    first, *_, refused = spans
    assert dict(first.attributes) == {
        "stateward.actor": "door",
        "stateward.kind": "machine",
        "stateward.event": "transition('b')",
        "stateward.from": "a",
        "stateward.to": "b",
        "stateward.version": 1,
        "stateward.outcome": "ok",
    }
    assert refused.attributes["stateward.outcome"] == "refused"
    assert {s.context.trace_id for s in spans[:3]} == {caller.get_span_context().trace_id}


def test_what_a_hook_sends_is_traced_under_the_transition(telemetry: Telemetry) -> None:
    with Runtime("nested", **telemetry.providers) as rt:
        audit = StateManager({"n": 0}, name="audit", runtime=rt)
        machine = StateMachine("a", TOGGLE, name="door", runtime=rt)
        machine.add_observer(lambda old, new: audit.request_modify(lambda s: s))
        with telemetry.tracer("test").start_as_current_span("request"):
            machine.transition("b")
        audit.modify(lambda s: s)  # after the observer's request
    by_actor = {}
    for span in _spans(telemetry):
        by_actor.setdefault(span.attributes.get("stateward.actor"), []).append(span)
    door, audit_spans = by_actor["door"][0], by_actor["audit"]
    assert audit_spans[0].parent.span_id == door.context.span_id


def test_an_awaited_call_is_traced_under_the_awaiting_tasks_span(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer("test")

    async def main(machine: StateMachine) -> int:
        with tracer.start_as_current_span("handler") as span:
            await machine.atransition("b")
            return span.get_span_context().span_id

    with Runtime("async", **telemetry.providers) as rt:
        machine = StateMachine("a", TOGGLE, runtime=rt)
        parent = asyncio.run(main(machine))
    (span,) = [s for s in _spans(telemetry) if s.name.startswith("stateward")]
    assert span.parent.span_id == parent


def test_a_crash_ends_its_span_with_an_error_status(telemetry: Telemetry) -> None:
    with Runtime("crashing", **telemetry.providers) as rt:
        manager = StateManager({"n": 0}, runtime=rt, on_error="restart")
        with pytest.raises(ActorCrashed):
            manager.modify(boom)
    (span,) = _spans(telemetry)
    assert span.attributes["stateward.outcome"] == "crashed"
    assert span.status.status_code.name == "ERROR" and "boom" in span.status.description
