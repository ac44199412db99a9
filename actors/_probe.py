"""Timing and tracing each request, when the application asked for either.

A runtime with nothing to record has no probe (``runtime.probe`` is None)
and `Cell.process` runs the request directly: one attribute read per
message. Whether there is one is decided when the runtime is made (a
MeterProvider or TracerProvider configured by then: `_telemetry`) and when
`Runtime.serve_metrics` starts an endpoint, never per message.

With a probe, each request runs inside `Probe.process`: timed into the
transition-latency histograms, and, with a tracer, inside a span that is a
child of the sender's current span (the request runs in a copy of its
sender's context, `Reply.context`, whatever thread runs it), current while
the behaviour and its hooks run, so that what they send is traced under it.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

from ._cell import FENCED, REFUSALS, SUSPENDED

__all__ = ["Latencies", "Probe", "outcome_of"]

#: The histograms' bucket bounds for a transition's latency, in seconds:
#: from 10 µs (a transition on a memory store) to 10 s (a slow hook).
LATENCY_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


class Latencies:
    """A runtime's own histogram of request latencies, by (kind, outcome) or
    (kind, outcome, actor): a bisect and two additions under a lock per
    request, where the OpenTelemetry SDK's ``Histogram.record`` costs several
    microseconds. `Runtime.serve_metrics` exports it as it is."""

    __slots__ = ("bounds", "lock", "series")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.lock = threading.Lock()
        #: Per key: the count in each bucket (the last: above every bound), then the sum.
        self.series: dict[tuple[str, ...], list[float]] = {}

    def record(self, key: tuple[str, ...], value: float) -> None:
        with self.lock:
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = [0] * (len(self.bounds) + 2)
            series[bisect.bisect_left(self.bounds, value)] += 1
            series[-1] += value

    def snapshot(self) -> list[tuple[tuple[str, ...], list[float]]]:
        """Each key's bucket counts and sum, copied."""
        with self.lock:
            return [(key, list(series)) for key, series in self.series.items()]


def outcome_of(cell: Any, result: object, failures: int) -> str:
    """What became of a request that `Cell.process` has just run: ``ok`` (run,
    committed or staged for its worker's batch), ``refused`` (bad input or a
    veto: `REFUSALS`), ``failed`` (its operation raised; the caller got the
    error), ``crashed`` (it crashed the actor), ``fenced`` (its incarnation
    was fenced off: nothing committed) or ``suspended`` (it awaits)."""
    if result is None:
        if cell.failures == failures:
            return "ok"
        return "refused" if isinstance(cell.last_error, REFUSALS) else "failed"
    if result is FENCED:
        return "fenced"
    if result is SUSPENDED:
        return "suspended"
    return "crashed"


def state_of(snapshot: Any) -> str | None:
    """A machine snapshot's state (other kinds have none)."""
    state = getattr(snapshot, "state", None)
    return state if isinstance(state, str) else None


class Probe:
    """Times (and traces) each request of one runtime's actors.

    ``record`` are the histograms' ``record`` methods (one per metrics
    pipeline: the application's MeterProvider, each `serve_metrics`
    endpoint); ``tracer`` is an OpenTelemetry tracer, or None.
    """

    __slots__ = ("latencies", "per_actor", "record", "tracer")

    def __init__(
        self,
        record: tuple[Callable[..., Any], ...],
        tracer: Any,
        per_actor: bool,
        latencies: Latencies,
    ) -> None:
        self.record = record
        self.tracer = tracer
        self.per_actor = per_actor
        self.latencies = latencies

    def process(
        self, cell: Any, message: Any, generation: int, resume: Any
    ) -> BaseException | None:
        """Run ``message`` through ``cell.run``, timed, in a span if tracing."""
        tracer = self.tracer
        if tracer is None or resume is not None:  # a resumed request has its span
            failures = cell.failures
            started = time.perf_counter()
            result: BaseException | None = cell.process(message, generation, resume, True)
            self._time(cell, time.perf_counter() - started, outcome_of(cell, result, failures))
            return result
        traced: BaseException | None = self._traced(tracer, cell, message, generation)
        return traced

    def _time(self, cell: Any, elapsed: float, outcome: str) -> None:
        per_actor = self.per_actor
        key = (cell.kind, outcome, cell.name) if per_actor else (cell.kind, outcome)
        self.latencies.record(key, elapsed)
        if self.record:  # the application's MeterProvider: the SDK's histogram
            attributes = {"runtime": cell.runtime.name, "kind": cell.kind, "outcome": outcome}
            if per_actor:
                attributes["actor"] = cell.name
            for record in self.record:
                record(elapsed, attributes)

    def _traced(self, tracer: Any, cell: Any, message: Any, generation: int) -> Any:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        context = message.context  # the sender's, copied: its span is the parent
        old = cell.staged
        if old is None:
            old = cell.snapshot
        event = message.describe()
        attributes: dict[str, Any] = {
            "stateward.actor": cell.name,
            "stateward.kind": cell.kind,
            "stateward.event": event,
        }
        before = state_of(old)
        if before is not None:
            attributes["stateward.from"] = before
        parent = context.run(otel_context.get_current)
        span = tracer.start_span(f"stateward {cell.kind} {message.request.call}", parent)
        span.set_attributes(attributes)
        token = context.run(otel_context.attach, trace.set_span_in_context(span, parent))
        failures = cell.failures
        started = time.perf_counter()
        outcome = "crashed"
        try:
            result = cell.process(message, generation, None, True)
            outcome = outcome_of(cell, result, failures)
            return result
        finally:
            self._time(cell, time.perf_counter() - started, outcome)
            context.run(otel_context.detach, token)
            self._end(span, cell, outcome)

    @staticmethod
    def _end(span: Any, cell: Any, outcome: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        new = cell.staged
        if new is None:
            new = cell.snapshot
        span.set_attribute("stateward.outcome", outcome)
        if new is not None:
            span.set_attribute("stateward.version", cell.version_of(new))
            after = state_of(new)
            if after is not None:
                span.set_attribute("stateward.to", after)
        if outcome in ("failed", "crashed"):
            error = cell.last_error
            span.set_status(Status(StatusCode.ERROR, repr(error)))
            if error is not None:
                span.record_exception(error)
        span.end()
