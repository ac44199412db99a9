"""Metrics through OpenTelemetry: what a runtime reports, and to whom.

stateward is instrumented with the OpenTelemetry API (the ``otel`` extra), as a
library is: nothing is recorded until the application configures a
MeterProvider (or a TracerProvider, for spans: `_probe`), globally or for one
runtime (``Runtime(meter_provider=..., tracer_provider=...)``), and a runtime
with neither records nothing per message. Most metrics are *observable*: their
callbacks read, at collection time, the counters the runtime keeps anyway
(`Cell`'s messages, failures, restarts; mailbox depths; the supervision event
counts), so they cost a message nothing. Only the latency histograms are
recorded per message, and only by a runtime that has somewhere to send them
(`Probe`); that is decided when the runtime is made, when a global provider
is set later (`_otel_globals`) and when an endpoint starts
(`Runtime.serve_metrics`), never per message.

A `Pipeline` is one set of instruments on one MeterProvider: the
application's global one (made once, reading every live runtime that follows
it), a runtime's own, or an endpoint's own (reading its runtime only).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._clock import SystemClock
from ._metrics_table import BATCH_BUCKETS, DESCRIPTIONS, METRICS
from ._metrics_table import UNITS as _UNITS
from ._otel_globals import (
    FIRST_INTERVAL,
    LAST_INTERVAL,
    api_installed,
    global_meter_provider,
    global_tracer_provider,
)
from ._probe import LATENCY_BUCKETS, Latencies, Probe

__all__ = ["METRICS", "Pipeline", "Telemetry", "global_pipeline"]


def _tracer(provider: Any) -> Any:
    """stateward's tracer of ``provider``, or None for no provider."""
    return None if provider is None else provider.get_tracer("stateward")


_global_lock = threading.Lock()
_global: list[Pipeline] = []


def global_pipeline(provider: Any) -> Pipeline:
    """The pipeline on the application's global MeterProvider ``provider``
    (made on first use), reading every runtime that follows it. The API sets
    the global provider once, so there is one such pipeline per process."""
    with _global_lock:
        if not _global or _global[0].provider is not provider:
            _global[:] = [Pipeline(provider, _following_runtimes)]
        return _global[0]


def _labels(runtime: Any, cell: Any) -> dict[str, Any]:
    supervisor = cell.supervisor
    labels = {
        "runtime": runtime.name,
        "kind": cell.kind,
        "supervisor": "" if supervisor is None else supervisor.name,
    }
    if runtime.per_actor_metrics:
        labels["actor"] = cell.name
    return labels


class Pipeline:
    """One set of stateward instruments on one MeterProvider, reading the
    runtimes that ``runtimes()`` returns at each collection."""

    def __init__(
        self, provider: Any, runtimes: Callable[[], Iterable[Any]], transitions: bool = True
    ) -> None:
        from opentelemetry.metrics import Observation

        self._observation = Observation
        self.runtimes = runtimes
        meter = provider.get_meter("stateward")
        self.provider = provider
        fields = {
            "stateward.messages": lambda cell: cell.messages,
            "stateward.failures": lambda cell: cell.failures,
            "stateward.refusals": lambda cell: cell.refusals,
            "stateward.restarts": lambda cell: cell.restarts,
            "stateward.hook_errors": lambda cell: cell.hook_errors,
        }
        for name, read in fields.items():
            meter.create_observable_counter(
                name, [self._per_cell(read, retired=True)], _UNITS[name], DESCRIPTIONS[name]
            )
        self._gauge(meter, "stateward.queue.depth", self._per_cell(_depth))
        self._gauge(meter, "stateward.mailboxes.full", self._per_cell(_full))
        self._gauge(meter, "stateward.actors", self._actors)
        self._gauge(meter, "stateward.workers", self._per_runtime(lambda rt: rt.workers))
        self._gauge(meter, "stateward.workers.busy", self._per_runtime(_busy))
        for name, callback in (
            ("stateward.supervisor.events", self._events),
            ("stateward.errors", self._per_runtime(lambda rt: rt.error_count)),
        ):
            meter.create_observable_counter(name, [callback], _UNITS[name], DESCRIPTIONS[name])
        #: The SDK's histogram of request latencies; None for an endpoint,
        #: which exports the runtime's own (`Latencies`) instead.
        self.transition = (
            self._histogram(meter, "stateward.transition.duration", LATENCY_BUCKETS)
            if transitions
            else None
        )
        self.commit = self._histogram(meter, "stateward.store.commit.duration", LATENCY_BUCKETS)
        self.batch = self._histogram(meter, "stateward.store.commit.batch_size", BATCH_BUCKETS)

    @staticmethod
    def _gauge(meter: Any, name: str, callback: Callable[[Any], Any]) -> None:
        meter.create_observable_gauge(name, [callback], _UNITS[name], DESCRIPTIONS[name])

    @staticmethod
    def _histogram(meter: Any, name: str, buckets: tuple[float, ...]) -> Any:
        return meter.create_histogram(
            name,
            _UNITS[name],
            DESCRIPTIONS[name],
            explicit_bucket_boundaries_advisory=buckets,
        )

    def _live(self) -> Iterator[Any]:
        for runtime in list(self.runtimes()):
            if not runtime.closed:
                yield runtime

    def _per_cell(
        self, read: Callable[[Any], int], retired: bool = False
    ) -> Callable[[Any], list[Any]]:
        """A callback summing ``read(cell)`` over the live actors, by label set
        (and, for a counter, ``retired``, over those that stopped for good)."""
        observation = self._observation

        def callback(options: Any) -> list[Any]:
            sums: dict[tuple[tuple[str, Any], ...], int] = collections.defaultdict(int)
            for runtime in self._live():
                for labels, counts in runtime._telemetry.retired_cells() if retired else ():
                    sums[labels] += read(counts)
                for handle in runtime:
                    cell = handle._cell
                    sums[tuple(_labels(runtime, cell).items())] += read(cell)
            return [observation(value, dict(labels)) for labels, value in sums.items()]

        return callback

    def _per_runtime(self, read: Callable[[Any], int]) -> Callable[[Any], list[Any]]:
        observation = self._observation

        def callback(options: Any) -> list[Any]:
            return [observation(read(rt), {"runtime": rt.name}) for rt in self._live()]

        return callback

    def _actors(self, options: Any) -> list[Any]:
        counts: dict[tuple[tuple[str, Any], ...], int] = collections.defaultdict(int)
        for runtime in self._live():
            for handle in runtime:
                cell = handle._cell
                labels = _labels(runtime, cell)
                labels["state"] = "passivated" if cell.passive else "active"
                counts[tuple(labels.items())] += 1
        return [self._observation(value, dict(labels)) for labels, value in counts.items()]

    def _events(self, options: Any) -> list[Any]:
        observations = []
        for runtime in self._live():
            for (supervisor, kind), count in runtime._supervisor_event_counts().items():
                labels = {"runtime": runtime.name, "supervisor": supervisor, "event": kind}
                observations.append(self._observation(count, labels))
        return observations

    def shutdown(self) -> None:
        """End an endpoint's own MeterProvider (never the application's)."""
        self.provider.shutdown()


def _depth(cell: Any) -> int:
    return int(cell.mailbox.qsize())


def _full(cell: Any) -> int:
    limit = cell.room_limit()
    return int(limit is not None and cell.mailbox.qsize() >= limit)


def _busy(runtime: Any) -> int:
    busy = 0
    for handle in runtime:
        running = handle._cell.running
        worker = getattr(running, "worker", None)
        busy += bool(getattr(worker, "busy", False))
    return busy


class Telemetry:
    """A runtime's metrics pipelines and tracer, and the probe and store
    observer they call for: rebuilt whenever one is added or removed.

    ``meter_provider`` and ``tracer_provider`` are the runtime's own (the
    ``Runtime`` arguments); each one not given follows the application's
    global provider, taken when the runtime is made if it is set by then,
    else as soon as it is set (`_otel_globals.Watcher`).
    """

    def __init__(
        self, runtime: Any, meter_provider: Any = None, tracer_provider: Any = None
    ) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self.pipelines: list[Pipeline] = []
        self._retired: dict[tuple[str, str], _Retired] = {}
        #: Request latencies, recorded while there is a probe (`Probe`).
        self.latencies = Latencies(LATENCY_BUCKETS)
        self.tracer = _tracer(tracer_provider)
        if meter_provider is not None:
            self.pipelines.append(Pipeline(meter_provider, lambda: (runtime,)))
        #: Whether it waits for the global MeterProvider, TracerProvider.
        self.follows_meter = meter_provider is None and api_installed()
        self.follows_tracer = tracer_provider is None and api_installed()
        #: Whether the global pipeline reads this runtime (see `follow_globals`).
        self.global_meter = False
        #: Whether a look for the global providers is pending on the timer.
        self.watched = False
        self.follow_globals()
        with self._lock:
            self._apply()

    def started(self) -> None:
        """An actor of the runtime started (not per message): while a global
        provider is awaited, look for it on the runtime's timer."""
        if not self.watched and (self.follows_meter or self.follows_tracer):
            self._look_later(FIRST_INTERVAL)

    def _look_later(self, delay: float) -> None:
        # Only on the system clock: a ManualClock's time moves only when a
        # test says so (such a runtime takes the providers set when it is made).
        timer = self.runtime.timer
        if not isinstance(timer, SystemClock):
            return
        with self._lock:
            if self.watched:
                return
            self.watched = True
        timer.call_later(delay, lambda: self._look(delay))

    def _look(self, delay: float) -> None:
        """On the timer's thread: take the global providers if they are set;
        look again later while one is awaited and the runtime has actors."""
        done = self.follow_globals()
        with self._lock:
            self.watched = False
        runtime = self.runtime
        if not done and not runtime.closed and runtime._actors:
            self._look_later(min(delay * 2, LAST_INTERVAL))

    def follow_globals(self) -> bool:
        """Take the global providers that are set now, if this runtime
        follows them; True once it waits for none.
        Called when the runtime is made, then by `_look`."""
        with self._lock:
            changed = False
            if self.follows_meter:
                provider = global_meter_provider()
                if provider is not None:
                    self.follows_meter = False
                    self.global_meter = True
                    self.pipelines.append(global_pipeline(provider))
                    changed = True
            if self.follows_tracer:
                provider = global_tracer_provider()
                if provider is not None:
                    self.follows_tracer = False
                    self.tracer = _tracer(provider)
                    changed = True
            if changed:
                self._apply()
            return not (self.follows_meter or self.follows_tracer)

    def retire(self, cell: Any) -> None:
        """``cell`` stopped for good: keep its counts, so that the counters
        never go down (they are summed by label set, without ``actor``)."""
        supervisor = cell.supervisor
        key = (cell.kind, "" if supervisor is None else supervisor.name)
        with self._lock:
            retired = self._retired.get(key)
            if retired is None:
                retired = self._retired[key] = _Retired()
            retired.messages += cell.messages
            retired.failures += cell.failures
            retired.refusals += cell.refusals
            retired.restarts += cell.restarts
            retired.hook_errors += cell.hook_errors

    def retired_cells(self) -> list[tuple[tuple[tuple[str, Any], ...], Any]]:
        """The retired counts, as (label set, counts read like a cell's)."""
        name = self.runtime.name
        with self._lock:
            items = list(self._retired.items())
        found = []
        for (kind, supervisor), counts in items:
            labels = {"runtime": name, "kind": kind, "supervisor": supervisor}
            if self.runtime.per_actor_metrics:
                labels["actor"] = ""
            found.append((tuple(labels.items()), counts))
        return found

    def add(self, pipeline: Pipeline) -> None:
        with self._lock:
            self.pipelines.append(pipeline)
            self._apply()

    def remove(self, pipeline: Pipeline) -> None:
        with self._lock:
            if pipeline in self.pipelines:
                self.pipelines.remove(pipeline)
            self._apply()

    def _apply(self) -> None:
        runtime = self.runtime
        pipelines = tuple(self.pipelines)
        labels = {"runtime": runtime.name}
        records = tuple(p.transition.record for p in pipelines if p.transition is not None)
        if pipelines or self.tracer is not None:
            probe = Probe(records, self.tracer, runtime.per_actor_metrics, self.latencies)
            runtime.probe = probe
        else:
            runtime.probe = None
        store = runtime.store
        if hasattr(store, "write_observer"):
            store.write_observer = _commit_observer(pipelines, labels) if pipelines else None


class _Retired:
    """The summed counts of the actors of one label set that stopped for good."""

    __slots__ = ("failures", "hook_errors", "messages", "refusals", "restarts")

    def __init__(self) -> None:
        self.messages = self.failures = self.refusals = self.restarts = self.hook_errors = 0


def _commit_observer(
    pipelines: tuple[Pipeline, ...], labels: dict[str, Any]
) -> Callable[[int, float], None]:
    def observe(size: int, elapsed: float) -> None:
        for pipeline in pipelines:
            pipeline.commit.record(elapsed, labels)
            pipeline.batch.record(size, labels)

    return observe


#: Set by the runtime module: the live runtimes, for the global pipeline.
_runtimes: list[Callable[[], Iterable[Any]]] = []


def _following_runtimes() -> Iterable[Any]:
    """The live runtimes that report to the global MeterProvider."""
    runtimes = _runtimes[0]() if _runtimes else ()
    return [runtime for runtime in runtimes if runtime._telemetry.global_meter]


def set_runtimes(source: Callable[[], Iterable[Any]]) -> None:
    """Register where the global pipeline finds the live runtimes."""
    _runtimes[:] = [source]
