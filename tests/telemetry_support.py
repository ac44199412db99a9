"""OpenTelemetry providers for one test: the SDK's in-memory metric reader and
span exporter, installed as the global providers, and taken out afterwards
(the API lets a process set each global provider once: the fixture resets the
API's own once-guards, as OpenTelemetry's test utilities do)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


def _reset_globals() -> None:
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@dataclass
class Telemetry:
    reader: InMemoryMetricReader | None
    spans: InMemorySpanExporter | None

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """The data points of metric ``name``: (attributes, value or histogram point)."""
        assert self.reader is not None
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = point if hasattr(point, "bucket_counts") else point.value
                            found.append((dict(point.attributes), value))
        return found

    def value(self, name: str, **labels: Any) -> Any:
        """The one point of ``name`` whose attributes include ``labels``."""
        matching = [
            value
            for attributes, value in self.points(name)
            if all(attributes.get(k) == v for k, v in labels.items())
        ]
        assert len(matching) == 1, (name, labels, self.points(name))
        return matching[0]


def install(*, metered: bool = True, traced: bool = True) -> Iterator[Telemetry]:
    _reset_globals()
    reader = InMemoryMetricReader() if metered else None
    meter_provider = MeterProvider(metric_readers=[reader]) if reader is not None else None
    exporter = InMemorySpanExporter() if traced else None
    tracer_provider = None
    if exporter is not None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        metrics.set_meter_provider(meter_provider)
    try:
        yield Telemetry(reader, exporter)
    finally:
        _reset_globals()
        if meter_provider is not None:
            meter_provider.shutdown()
        if tracer_provider is not None:
            tracer_provider.shutdown()
