"""The metrics stateward reports: their names, instruments, units, labels and
meanings, in one table (`METRICS`), which the docs' table is checked against."""

from __future__ import annotations

__all__ = ["BATCH_BUCKETS", "DESCRIPTIONS", "METRICS", "UNITS"]

#: The batch-size histogram's bucket bounds, in commits per write.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

#: Every metric: (name, instrument, unit, labels, description). The docs'
#: table (docs/howto/operations.md) is checked against it.
METRICS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "stateward.messages",
        "counter",
        "{message}",
        "runtime, kind, supervisor",
        "requests handled, successful or not, by the live actors",
    ),
    (
        "stateward.failures",
        "counter",
        "{message}",
        "runtime, kind, supervisor",
        "requests whose operation raised (refusals included)",
    ),
    (
        "stateward.refusals",
        "counter",
        "{message}",
        "runtime, kind, supervisor",
        "requests refused for their content (bad input, an invalid transition)",
    ),
    (
        "stateward.restarts",
        "counter",
        "{restart}",
        "runtime, kind, supervisor",
        "restarts the actors' supervisors decided on",
    ),
    (
        "stateward.hook_errors",
        "counter",
        "{error}",
        "runtime, kind, supervisor",
        "after-commit hooks, observers and callbacks that raised",
    ),
    (
        "stateward.supervisor.events",
        "counter",
        "{event}",
        "runtime, supervisor, event",
        "supervision events: started, failed, restarted, stopped, escalated, gave_up",
    ),
    (
        "stateward.queue.depth",
        "gauge",
        "{message}",
        "runtime, kind, supervisor",
        "requests waiting in the actors' mailboxes",
    ),
    (
        "stateward.mailboxes.full",
        "gauge",
        "{actor}",
        "runtime, kind, supervisor",
        "actors whose mailbox is at its limit",
    ),
    (
        "stateward.actors",
        "gauge",
        "{actor}",
        "runtime, kind, supervisor, state",
        "live actors, state active or passivated",
    ),
    ("stateward.workers", "gauge", "{thread}", "runtime", "pooled worker threads"),
    (
        "stateward.workers.busy",
        "gauge",
        "{thread}",
        "runtime",
        "pooled worker threads running a turn now",
    ),
    (
        "stateward.errors",
        "counter",
        "{error}",
        "runtime",
        "errors that had no caller to go to (Runtime.errors)",
    ),
    (
        "stateward.transition.duration",
        "histogram",
        "s",
        "runtime, kind, outcome",
        "how long a request ran, from its turn to its commit (outcome: ok, refused, "
        "failed, crashed, fenced, suspended)",
    ),
    (
        "stateward.store.commit.duration",
        "histogram",
        "s",
        "runtime",
        "how long a database store took to write one batch of commits",
    ),
    (
        "stateward.store.commit.batch_size",
        "histogram",
        "{commit}",
        "runtime",
        "commits written together in one store write",
    ),
)

DESCRIPTIONS = {name: description for name, _, _, _, description in METRICS}
UNITS = {name: unit for name, _, unit, _, _ in METRICS}
