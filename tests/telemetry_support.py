"""OpenTelemetry providers for one test: the SDK's in-memory metric reader and
span exporter, on providers of the test's own that its runtimes are given
(``Runtime(**telemetry.providers)``), as OpenTelemetry's instrumentation
guidelines ask a library to accept. Nothing global is set: the API lets a
process set each global provider once (tests of the global providers run in a
process of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Telemetry:
    reader: InMemoryMetricReader | None
    spans: InMemorySpanExporter | None
    meter_provider: MeterProvider | None
    tracer_provider: TracerProvider | None

    @property
    def providers(self) -> dict[str, Any]:
        """The ``Runtime`` arguments that report to these providers."""
        return {"meter_provider": self.meter_provider, "tracer_provider": self.tracer_provider}

    def tracer(self, name: str) -> Any:
        """A tracer of the test's TracerProvider (for the caller's spans)."""
        assert self.tracer_provider is not None
        return self.tracer_provider.get_tracer(name)

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
    reader = InMemoryMetricReader() if metered else None
    meter_provider = MeterProvider(metric_readers=[reader]) if reader is not None else None
    exporter = InMemorySpanExporter() if traced else None
    tracer_provider = None
    if exporter is not None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield Telemetry(reader, exporter, meter_provider, tracer_provider)
    finally:
        if meter_provider is not None:
            meter_provider.shutdown()
        if tracer_provider is not None:
            tracer_provider.shutdown()
