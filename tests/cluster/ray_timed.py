"""What `test_ray_timers_traces` runs on its shards: machines with state
timeouts, and a worker setup hook that installs an OpenTelemetry SDK
TracerProvider whose finished spans go, one JSON line each, to the file
named by ``STATEWARD_TEST_SPANS`` (importable as ``ray_timed``: the test
cluster puts this folder on its workers' PYTHONPATH)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from stateward.core import MachineSpec

#: An order that expires 0.2 s after it is placed, unless paid first.
TIMED = MachineSpec(
    "pending",
    events={"pay": "pending -> paid", "expire": "pending -> cancelled"},
    timeouts={"pending": (0.2, "expire")},
)

#: An order with time to pay (2 s), then to ship.
PAYABLE = MachineSpec(
    "pending",
    events={"pay": "pending -> paid", "ship": "paid -> shipped", "expire": "pending -> cancelled"},
    timeouts={"pending": (2, "expire")},
)

#: The same, expiring after 4 s: long enough to kill its shard before it falls due.
SLOW = MachineSpec(
    "pending",
    events={"pay": "pending -> paid", "expire": "pending -> cancelled"},
    timeouts={"pending": (4, "expire")},
)

#: The environment variable naming the file finished spans are written to.
SPANS = "STATEWARD_TEST_SPANS"


def install_tracing() -> None:
    """The workers' setup hook: the global TracerProvider, exporting each
    finished span at once to the file `SPANS` names."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    path = os.environ[SPANS]
    lock = threading.Lock()

    class ToFile(SpanExporter):  # type: ignore[misc]
        """Appends each span as a JSON line: name, ids, parent, attributes."""

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            lines = "".join(json.dumps(_fields(span)) + "\n" for span in spans)
            with lock, open(path, "a", encoding="utf-8") as file:
                file.write(lines)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ToFile()))
    trace.set_tracer_provider(provider)


def _fields(span: Any) -> dict[str, Any]:
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent_id": None if parent is None else parent.span_id,
        "attributes": dict(span.attributes or {}),
    }
