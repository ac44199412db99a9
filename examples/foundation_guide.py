"""provide-foundation's state guide, run on stateward.

The guide's three example classes (a document workflow, an application state
with a logging observer, and a runtime-adjustable config) appear below exactly
as the guide writes them. Only their imports differ: the state classes come from
``stateward.actors``, and ``logger`` / ``get_hub`` come from a tiny local
stand-in (``examples/_guide_support.py``), since stateward does not depend on
provide.foundation. One method is rewritten: ``rollback_to_version`` now calls
``ConfigManager.rollback``, which records the rollback as a new version.

The last part shows why ``StateManager.modify`` exists: the guide's
``increment_connections`` reads the state, then writes a value computed from
it. Two threads can read the same value in between, so increments get lost.

The classes create their actors without ``runtime=``, so they live in the
default runtime, which drains and stops them when the interpreter exits.

Run it with ``python examples/foundation_guide.py``.
"""

# The guide's DynamicConfig.update_log_level assigns ``hub = get_hub()`` and never
# uses it; the class is kept as written, so that one lint rule is off here.
# ruff: noqa: F841

from __future__ import annotations

import threading
from collections.abc import Callable

# The guide's imports, pointed at stateward and at the local stand-in. In the
# guide these read: from provide.foundation.state import StateMachine (and
# StateManager, ConfigManager), and from provide.foundation import logger, get_hub.
from _guide_support import get_hub, logger

from stateward.actors import ConfigManager, StateMachine, StateManager

# ---------------------------------------------------------------------------------
# The guide's classes, unchanged.
# ---------------------------------------------------------------------------------


class Document:
    def __init__(self, doc_id: str):
        self.doc_id = doc_id
        self.machine = StateMachine(
            initial_state="draft",
            transitions={
                "draft": ["submitted"],
                "submitted": ["reviewing"],
                "reviewing": ["approved", "rejected"],
                "approved": ["published"],
                "rejected": ["draft"],
                "published": [],
            },
        )

    def submit(self):
        """Submit document for review."""
        if self.machine.can_transition("submitted"):
            self.machine.transition("submitted")
            logger.info("document_submitted", doc_id=self.doc_id)
        else:
            raise ValueError("Cannot submit from current state")

    def review(self):
        """Start review process."""
        self.machine.transition("reviewing")
        logger.info("document_review_started", doc_id=self.doc_id)

    def approve(self):
        """Approve document."""
        self.machine.transition("approved")
        logger.info("document_approved", doc_id=self.doc_id)

    def publish(self):
        """Publish approved document."""
        self.machine.transition("published")
        logger.info("document_published", doc_id=self.doc_id)


class ApplicationState:
    def __init__(self):
        self.manager = StateManager(
            initial_state={
                "initialized": False,
                "connections": 0,
                "errors": 0,
                "status": "starting",
            }
        )

        # Log state changes
        self.manager.add_observer(self._log_state_change)

    def _log_state_change(self, old_state, new_state):
        """Log all state changes."""
        logger.info("app_state_changed", old=old_state, new=new_state)

    def mark_initialized(self):
        """Mark application as initialized."""
        self.manager.update_state({"initialized": True, "status": "ready"})

    def increment_connections(self):
        """Increment connection count."""
        current = self.manager.get_state()
        self.manager.update_state({"connections": current["connections"] + 1})

    def record_error(self):
        """Record an error."""
        current = self.manager.get_state()
        self.manager.update_state({"errors": current["errors"] + 1})

    def get_health(self) -> dict:
        """Get application health status."""
        state = self.manager.get_state()
        return {
            "status": state["status"],
            "initialized": state["initialized"],
            "connections": state["connections"],
            "errors": state["errors"],
        }


class DynamicConfig:
    def __init__(self):
        self.manager = ConfigManager(
            initial_config={
                "log_level": "INFO",
                "max_connections": 100,
                "cache_ttl": 300,
                "features": {
                    "auth_enabled": True,
                    "metrics_enabled": False,
                },
            }
        )

    def update_log_level(self, level: str):
        """Update log level at runtime."""
        self.manager.update_config({"log_level": level})

        # Apply to Foundation logger
        hub = get_hub()
        logger.info("log_level_changed", new_level=level)

    def enable_feature(self, feature: str):
        """Enable a feature flag."""
        config = self.manager.get_config()
        features = config["features"].copy()
        features[f"{feature}_enabled"] = True
        self.manager.update_config({"features": features})
        logger.info("feature_enabled", feature=feature)

    # The one rewritten method. The guide re-applied an old config through
    # update_config; ConfigManager.rollback does it as one message and records
    # which version was restored.
    def rollback_to_version(self, version: int):
        """Rollback to previous configuration version."""
        self.manager.rollback(version)
        logger.info("config_rolled_back", version=version)


# ---------------------------------------------------------------------------------
# Driving them.
# ---------------------------------------------------------------------------------


def document_workflow() -> None:
    print("1. Document workflow: a StateMachine behind four methods")
    doc = Document("doc_001")
    print(f"  {doc.doc_id} starts as {doc.machine.current_state!r}")
    for step in (doc.submit, doc.review, doc.approve, doc.publish):
        step()
        print(f"  after {step.__name__}(): {doc.machine.current_state!r}")
    path = [doc.machine.history[0].from_state] + [r.to_state for r in doc.machine.history]
    print(f"  {doc.doc_id} path: {' -> '.join(path)}")

    # The guide's own check: submit() refuses unless the machine allows it.
    try:
        doc.submit()
    except ValueError as err:
        print(f"  submit() again on a published document: ValueError: {err}")

    # A move the table does not allow raises InvalidTransition, which is a
    # ValueError, so the guide's `except ValueError` catches it; the message
    # names the state, the target and what is allowed.
    fresh = Document("doc_002")
    try:
        fresh.publish()
    except ValueError as err:
        print(f"  publish() on a draft: {type(err).__name__}: {err}")


def application_state() -> None:
    print()
    print("2. ApplicationState: a StateManager whose observer logs every change")
    app = ApplicationState()
    app.mark_initialized()
    app.increment_connections()
    app.increment_connections()
    app.record_error()
    print(f"  health: {app.get_health()}")
    print(f"  version: {app.manager.version} (one per update_state call)")


def dynamic_config() -> None:
    print()
    print("3. DynamicConfig: versioned configuration, history, rollback and diff")
    config = DynamicConfig()
    config.update_log_level("DEBUG")
    config.enable_feature("metrics")
    config.rollback_to_version(0)

    manager = config.manager
    print("  history:")
    for change in manager.get_history():
        reason = change.metadata.get("reason")
        note = f"  ({reason})" if reason else ""
        print(f"    v{change.version}: {change.changes.to_dict()}{note}")
    current = manager.get_version()
    print(
        f"  v{current} config equals v0: {manager.get_config() == manager.get_history()[0].config}"
    )
    diff = manager.diff(current - 1, current)
    print(f"  diff v{current - 1} -> v{current}: {diff.changed.to_dict()}")


def run_from_threads(action: Callable[[], object], threads: int, per_thread: int) -> None:
    """Call ``action`` ``per_thread`` times from each of ``threads`` threads at once."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(per_thread):
                action()
        except BaseException as exc:  # re-raised below, in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join(timeout=120)
    if any(worker_thread.is_alive() for worker_thread in workers):
        raise RuntimeError("a worker thread did not finish within 120 s")
    if errors:
        raise errors[0]


def why_modify() -> None:
    threads, per_thread = 8, 500
    expected = threads * per_thread
    print()
    print("4. Why modify() exists: read-then-update from many threads loses updates")
    print("   (the observers are removed here, so the run does not log 4,000 lines)")

    # Two threads, each reading the count before either writes (a barrier
    # holds them between read and write): the interleaving that loses an update,
    # made to happen every time.
    pair = ApplicationState()
    pair.manager.remove_observer(pair._log_state_change)
    both_read = threading.Barrier(2, timeout=30)

    def read_wait_write() -> None:
        current = pair.manager.get_state()
        both_read.wait()
        pair.manager.update_state({"connections": current["connections"] + 1})

    run_from_threads(read_wait_write, 2, 1)
    got = pair.manager.get_state().connections
    print("  two threads read the count, then each writes count + 1:")
    print(f"    connections = {got} after 2 increments: the second write overwrote the first")

    racy = ApplicationState()
    racy.manager.remove_observer(racy._log_state_change)
    run_from_threads(racy.increment_connections, threads, per_thread)
    got = racy.manager.get_state().connections
    print(f"  increment_connections() from {threads} threads x {per_thread}:")
    print(
        f"    {racy.manager.version} updates committed, connections = {got}, "
        f"{expected - got} increments lost"
    )
    if got < expected:
        print("    (a write between another thread's read and write was overwritten;")
        print("    how many are lost varies from run to run)")
    else:
        print("    (none this time: no thread wrote between another's read and write;")
        print("    whether and how many are lost varies from run to run)")

    exact = ApplicationState()
    exact.manager.remove_observer(exact._log_state_change)

    def increment_atomically() -> None:
        # The function runs inside the actor, between two other messages:
        # nothing can change the state between its read and its write.
        exact.manager.modify(lambda s: s.update(connections=s.connections + 1))

    run_from_threads(increment_atomically, threads, per_thread)
    got = exact.manager.get_state().connections
    assert got == expected, (got, expected)
    print(f"  manager.modify(...) from {threads} threads x {per_thread}:")
    print(f"    connections = {got} (exact, 0 lost)")


if __name__ == "__main__":
    document_workflow()
    application_state()
    dynamic_config()
    why_modify()
