"""``stateward top URL``: a live view of a daemon's metrics endpoint
(`Runtime.serve_metrics`): rates, restarts, queue depths, the busiest actors.

It scrapes the endpoint every ``--interval`` seconds and prints a view of the
change since the previous scrape: redrawn in place on a terminal, one block of
plain lines per scrape otherwise; Ctrl-C stops it. ``--once`` scrapes twice,
``--interval`` apart, prints one view and exits (for scripts). The text is
parsed with prometheus_client's parser (the ``prometheus`` extra).
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ._demo_args import positive_float
from ._usage import NotFound, UsageError

#: How long one scrape may take, in seconds.
SCRAPE_TIMEOUT = 10.0
#: How many of the busiest actors the view lists (per-actor labels on).
BUSIEST = 10
#: On a terminal: cursor home, then clear the screen.
_REDRAW = "\x1b[H\x1b[2J"

Labels = tuple[tuple[str, str], ...]


class ScrapeError(NotFound):
    """The URL did not answer, or answered with no stateward metrics (exit 1)."""


@dataclass
class Scrape:
    """One scrape: each sample's value by (metric name, labels), and when."""

    at: float
    values: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """The samples of ``name`` summed by the values of ``keys``."""
        sums: dict[tuple[str, ...], float] = defaultdict(float)
        for (sample, labels), value in self.values.items():
            if sample == name:
                found = dict(labels)
                sums[tuple(found.get(key, "") for key in keys)] += value
        return sums


def add_top_parser(commands: Any) -> argparse.ArgumentParser:
    top: argparse.ArgumentParser = commands.add_parser(
        "top",
        help="a live view of a daemon's metrics endpoint",
        description="Scrape a stateward metrics endpoint (Runtime.serve_metrics) every "
        "--interval seconds and show message rates, failures, restarts, queue depths and "
        "the busiest actors (with per_actor_metrics=True). Ctrl-C stops it.",
    )
    top.add_argument("url", metavar="URL", help="for example http://127.0.0.1:9464/metrics")
    top.add_argument(
        "--interval",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between scrapes (default 2)",
    )
    top.add_argument(
        "--once",
        action="store_true",
        help="scrape twice, --interval apart, print one view and exit",
    )
    return top


def run_top(args: argparse.Namespace, out: TextIO) -> int:
    interval = args.interval
    url = _metrics_url(args.url)
    wait = threading.Event()  # never set: waits the interval
    redraw = not args.once and out.isatty()
    previous = scrape(url)
    try:
        while True:
            wait.wait(interval)
            current = scrape(url)
            view = render(url, previous, current)
            out.write((_REDRAW if redraw else "") + view + ("" if redraw else "\n"))
            out.flush()
            if args.once:
                return 0
            previous = current
    except KeyboardInterrupt:
        out.write("\n")
        return 0


def _metrics_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"URL must be an http:// address, such as http://127.0.0.1:9464/metrics, got {url!r}"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urllib.parse.urlunsplit(parts)


def scrape(url: str) -> Scrape:
    """Read ``url`` and parse it as Prometheus text."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        raise ScrapeError(
            "stateward top parses Prometheus text with prometheus_client: "
            "pip install 'stateward[prometheus]'"
        ) from None
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
            body = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ScrapeError(
            f"cannot read {url}: {reason}. Is the daemon running, and serving its "
            "metrics there (runtime.serve_metrics(port))?"
        ) from None
    result = Scrape(time.monotonic())
    try:
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                result.values[sample.name, labels] = float(sample.value)
    except ValueError as exc:
        raise ScrapeError(
            f"{url} did not answer with Prometheus text ({exc}); point stateward top at "
            "a stateward metrics endpoint (runtime.serve_metrics)"
        ) from None
    if not any(name.startswith("stateward_") for name, _ in result.values):
        raise ScrapeError(
            f"{url} answered with no stateward metrics; point stateward top at a stateward "
            "metrics endpoint (runtime.serve_metrics)"
        )
    return result


def _rate(now: float, before: float, seconds: float) -> float:
    return max(0.0, now - before) / seconds  # a restarted daemon starts from 0


def render(url: str, previous: Scrape, current: Scrape) -> str:
    """The view of what changed between two scrapes."""
    seconds = max(current.at - previous.at, 1e-9)
    lines = [f"stateward top  {url}  over {seconds:.1f} s  at {time.strftime('%H:%M:%S')}"]
    workers = current.by("stateward_workers", "runtime")
    busy = current.by("stateward_workers_busy", "runtime")
    actors = current.by("stateward_actors", "runtime", "state")
    errors_now = current.by("stateward_errors_total", "runtime")
    for (runtime,) in sorted(workers):
        active = actors.get((runtime, "active"), 0)
        passive = actors.get((runtime, "passivated"), 0)
        lines.append(
            f"runtime {runtime}: {int(active + passive):,} actors ({int(active):,} active, "
            f"{int(passive):,} passivated); workers {int(busy.get((runtime,), 0))}/"
            f"{int(workers[runtime,])} busy; {int(errors_now.get((runtime,), 0)):,} errors"
        )
    keys = ("runtime", "kind", "supervisor")
    rates = {}
    for metric in ("messages", "failures", "refusals", "restarts"):
        name = f"stateward_{metric}_total"
        now, before = current.by(name, *keys), previous.by(name, *keys)
        rates[metric] = {k: _rate(v, before.get(k, 0.0), seconds) for k, v in now.items()}
    restarts = current.by("stateward_restarts_total", *keys)
    queued = current.by("stateward_queue_depth", *keys)
    full = current.by("stateward_mailboxes_full", *keys)
    lines.append("")
    header = (
        "runtime",
        "kind",
        "supervisor",
        "msgs/s",
        "fail/s",
        "refused/s",
        "restarts",
        "queued",
        "full",
    )
    rows: list[tuple[str, ...]] = [header]
    for key in sorted(rates["messages"]):
        rows.append(
            (
                *key,
                f"{rates['messages'][key]:,.1f}",
                f"{rates['failures'].get(key, 0.0):,.1f}",
                f"{rates['refusals'].get(key, 0.0):,.1f}",
                f"{int(restarts.get(key, 0)):,}",
                f"{int(queued.get(key, 0)):,}",
                f"{int(full.get(key, 0)):,}",
            )
        )
    lines += _table(rows)
    lines += _latency(previous, current)
    lines += _busiest(previous, current, seconds)
    return "\n".join(lines) + "\n"


def _latency(previous: Scrape, current: Scrape) -> list[str]:
    """The median and 99th percentile of the requests since the last scrape,
    as the bucket bounds they fall under."""
    name = "stateward_transition_duration_seconds_bucket"
    now = current.by(name, "le")
    before = previous.by(name, "le")
    buckets = sorted(
        ((float(le), count - before.get((le,), 0.0)) for (le,), count in now.items()),
    )
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return ["", "latency: no requests since the last scrape"]
    shown = []
    for quantile in (0.5, 0.99):
        bound = next(le for le, count in buckets if count >= quantile * total)
        shown.append(f"p{int(quantile * 100)} <= {_seconds(bound)}")
    return ["", f"latency of {int(total):,} requests: {', '.join(shown)}"]


def _seconds(bound: float) -> str:
    if bound == float("inf"):
        return "more than the largest bucket"
    if bound < 0.001:
        return f"{bound * 1e6:g} us"
    if bound < 1:
        return f"{bound * 1e3:g} ms"
    return f"{bound:g} s"


def _busiest(previous: Scrape, current: Scrape, seconds: float) -> list[str]:
    name = "stateward_messages_total"
    now = current.by(name, "runtime", "actor")
    if not any(actor for _, actor in now):
        return ["", "busiest actors: run the runtime with per_actor_metrics=True to see them"]
    before = previous.by(name, "runtime", "actor")
    queued = current.by("stateward_queue_depth", "runtime", "actor")
    ranked = sorted(
        ((_rate(v, before.get(k, 0.0), seconds), k) for k, v in now.items() if k[1]),
        key=lambda item: (-item[0], item[1]),
    )[:BUSIEST]
    rows: list[tuple[str, ...]] = [("runtime", "actor", "msgs/s", "queued")]
    rows += [
        (runtime, actor, f"{rate:,.1f}", f"{int(queued.get((runtime, actor), 0)):,}")
        for rate, (runtime, actor) in ranked
    ]
    return ["", "busiest actors:", *_table(rows)]


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text_columns = 3 if len(rows[0]) > 4 else 2
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
