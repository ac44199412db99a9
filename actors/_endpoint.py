"""`Runtime.serve_metrics`: a Prometheus endpoint of one runtime.

The endpoint has a MeterProvider of its own (the OpenTelemetry SDK) with
stateward's instruments (`_telemetry.Pipeline`) reading this runtime only,
so it works whether or not the application configured one. At each scrape
its reader collects, and the collected points are handed to prometheus_client
(as metric families), which writes the Prometheus text format. Both come with
the ``prometheus`` extra.

Paths: ``/healthz`` answers 200 ``ok`` or 503 with the reasons
(`Runtime.health`), for a readiness probe; any other path answers the
metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from stateward.core import ArgumentTypeError, ArgumentValueError

from ._health import health_of
from ._metrics_table import DESCRIPTIONS as _DESCRIPTIONS
from ._telemetry import Pipeline

__all__ = ["MetricsEndpoint", "serve_metrics"]

_MISSING = (
    "Runtime.serve_metrics needs the OpenTelemetry SDK and prometheus_client: "
    "pip install 'stateward[prometheus]'"
)


class MetricsEndpoint:
    """A running metrics endpoint (`Runtime.serve_metrics`).

    Attributes:
        host: the address it listens on.
        port: the port it is bound to (the one picked, when asked for 0).
        url: ``http://host:port/metrics``.
    """

    def __init__(self, runtime: Any, server: WSGIServer, pipeline: Pipeline) -> None:
        self._runtime = runtime
        self._server = server
        self._pipeline = pipeline
        address: Any = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self.url = f"http://{_netloc(self.host)}:{self.port}/metrics"
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"stateward:{runtime.name}:metrics",
            daemon=True,
        )
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop serving and free the port (the runtime's shutdown does it too)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._runtime._telemetry.remove(self._pipeline)
        self._pipeline.shutdown()
        self._runtime._endpoint_closed(self)

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<MetricsEndpoint {self.url} {state}>"


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_metrics(runtime: Any, port: int, host: str) -> MetricsEndpoint:
    """Start `runtime`'s endpoint on ``host:port`` (see `Runtime.serve_metrics`)."""
    if type(port) is not int:
        raise ArgumentTypeError(
            "Runtime.serve_metrics",
            "port",
            "an int (0 picks a free port)",
            port,
            "Pass port=9464, say, or port=0 for any free port.",
            outcome="nothing is served",
        )
    if not 0 <= port <= 65535:
        raise ArgumentValueError(
            "Runtime.serve_metrics",
            "port",
            "between 0 and 65535 (0 picks a free port)",
            port,
            outcome="nothing is served",
        )
    if not isinstance(host, str) or not host:
        raise ArgumentTypeError(
            "Runtime.serve_metrics",
            "host",
            "an address to listen on, as a str",
            host,
            "Pass host='127.0.0.1' (the default) or host='0.0.0.0' for every interface.",
            outcome="nothing is served",
        )
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from prometheus_client import CollectorRegistry, make_wsgi_app
    except ImportError as exc:
        raise ImportError(f"{_MISSING} ({exc})") from None
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline = Pipeline(provider, lambda: (runtime,), transitions=False)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(reader, runtime))
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            health = health_of(runtime)
            status = "200 OK" if health.ok else "503 Service Unavailable"
            body = (health.describe() + "\n").encode()
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        return metrics_app(environ, start_response)

    try:
        server = make_server(host, port, app, _ThreadingServer, _QuietHandler)
    except OSError as exc:
        provider.shutdown()
        raise OSError(
            exc.errno,
            f"Runtime.serve_metrics cannot listen on {host}:{port}: {exc.strerror}; "
            "pick another port, or port=0 for any free one",
        ) from None
    endpoint = MetricsEndpoint(runtime, server, pipeline)
    runtime._telemetry.add(pipeline)
    return endpoint


class _ThreadingServer(WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        )
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (a scrape every few seconds would flood stderr)."""


class _Collector:
    """Hands what the endpoint's reader collects to prometheus_client."""

    def __init__(self, reader: Any, runtime: Any) -> None:
        self.reader = reader
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        yield self._latencies(HistogramMetricFamily)
        data = self.reader.get_metrics_data()
        if data is None:
            return
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    name = prometheus_name(metric.name, metric.unit)
                    points = list(metric.data.data_points)
                    labels = sorted({key for point in points for key in point.attributes})
                    if isinstance(metric.data, Histogram):
                        family: Any = HistogramMetricFamily(
                            name, metric.description, labels=labels, unit=""
                        )
                        for point in points:
                            family.add_metric(_values(point, labels), _buckets(point), point.sum)
                    elif isinstance(metric.data, Sum) and metric.data.is_monotonic:
                        family = CounterMetricFamily(name, metric.description, labels=labels)
                        for point in points:
                            family.add_metric(_values(point, labels), point.value)
                    elif isinstance(metric.data, (Sum, Gauge)):
                        family = GaugeMetricFamily(name, metric.description, labels=labels)
                        for point in points:
                            family.add_metric(_values(point, labels), point.value)
                    else:  # pragma: no cover - stateward makes no other kind
                        continue
                    yield family

    def _latencies(self, family_type: Any) -> Any:
        """The runtime's own latency histogram (`Latencies`) as a family."""
        runtime = self.runtime
        latencies = runtime._telemetry.latencies
        labels = ["runtime", "kind", "outcome"]
        if runtime.per_actor_metrics:
            labels.append("actor")
        name = "stateward.transition.duration"
        family = family_type(prometheus_name(name, "s"), _DESCRIPTIONS[name], labels=labels)
        bounds = latencies.bounds
        for key, series in latencies.snapshot():
            if len(key) + 1 != len(labels):
                continue  # recorded before per-actor labels were switched
            buckets, total = [], 0.0
            for bound, count in zip(bounds, series, strict=False):
                total += count
                buckets.append((_le(bound), total))
            buckets.append(("+Inf", total + series[len(bounds)]))
            family.add_metric([runtime.name, *key], buckets, series[-1])
        return family


def prometheus_name(name: str, unit: str) -> str:
    """``stateward.transition.duration`` in seconds: ``stateward_transition_duration_seconds``."""
    base = name.replace(".", "_")
    return f"{base}_seconds" if unit == "s" else base


def _values(point: Any, labels: list[str]) -> list[str]:
    return [str(point.attributes.get(key, "")) for key in labels]


def _buckets(point: Any) -> list[tuple[str, float]]:
    """OpenTelemetry's per-bucket counts as Prometheus' cumulative ``le`` buckets."""
    buckets = []
    total = 0
    for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
        total += count
        buckets.append((_le(bound), total))
    buckets.append(("+Inf", point.count))
    return buckets


def _le(bound: float) -> str:
    return repr(float(bound))
