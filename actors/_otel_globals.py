"""The application's global OpenTelemetry providers, noticed whenever they are set.

The OpenTelemetry API lets an application set its global MeterProvider and
TracerProvider once, at any time; until then, ``get_meter_provider()`` and
``get_tracer_provider()`` return the API's own proxies, whose instruments and
tracers do nothing but still cost a call per use. A runtime must cost a
message nothing while nothing is configured, so it keeps no proxy on the
message path: it takes the real provider once there is one (`_telemetry`).

Applications often configure the SDK after building their objects, and the
API calls nobody back when a provider is set. So while some runtime follows
a global provider that is not set yet, one process-wide thread (`Watcher`)
looks again, every `FIRST_INTERVAL` seconds at first and then less often, up
to every `LAST_INTERVAL` seconds; it ends when no runtime waits any more (none
has actors, or both providers were found: the API sets each one once). A
runtime made with its own providers (``Runtime(meter_provider=...,
tracer_provider=...)``), or made once they are set, never waits.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Watcher", "api_installed", "global_meter_provider", "global_tracer_provider"]

#: How long the watcher waits before its first look, then doubled each look.
FIRST_INTERVAL = 0.05
#: The longest it waits between two looks.
LAST_INTERVAL = 2.0

_installed: list[bool] = []


def api_installed() -> bool:
    """Whether the OpenTelemetry API can be imported (looked up once)."""
    if not _installed:
        try:
            import opentelemetry.metrics
            import opentelemetry.trace  # noqa: F401
        except ImportError:
            _installed.append(False)
        else:
            _installed.append(True)
    return _installed[0]


def _configured(provider: object) -> bool:
    """Whether ``provider`` is an application's, not the API's own (a proxy or no-op)."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry.metrics", "opentelemetry.trace"))


def global_meter_provider() -> Any:
    """The application's global MeterProvider, or None while none is set
    (or the OpenTelemetry API is not installed)."""
    if not api_installed():
        return None
    from opentelemetry import metrics

    provider = metrics.get_meter_provider()
    return provider if _configured(provider) else None


def global_tracer_provider() -> Any:
    """The application's global TracerProvider, or None while none is set
    (or the OpenTelemetry API is not installed)."""
    if not api_installed():
        return None
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return provider if _configured(provider) else None


class Follower(Protocol):
    """What waits for a global provider (a runtime's `_telemetry.Telemetry`)."""

    #: Whether the watcher looks for it now (set by the watcher, under its lock).
    watched: bool

    def follow_globals(self) -> bool:
        """Take the global providers set by now; True once it waits for none."""


class Watcher:
    """Looks for the global providers on behalf of the followers still waiting
    for one, on a daemon thread of its own that runs only while one waits: a
    runtime waits while it has actors (an idle runtime, like an idle pool,
    holds no thread; its next actor looks again)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: weakref.WeakSet[Any] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._interval = FIRST_INTERVAL

    def watch(self, follower: Follower) -> None:
        """Look for ``follower`` until `Follower.follow_globals` says it waits
        for nothing more, or `unwatch` is called."""
        with self._cond:
            self._waiting.add(follower)
            follower.watched = True
            self._interval = FIRST_INTERVAL  # new work: look soon
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="stateward:telemetry", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def unwatch(self, follower: Follower, unless: Callable[[], bool] | None = None) -> None:
        """Stop looking for ``follower``, unless ``unless()`` says otherwise
        (asked under the watcher's lock, so that it cannot race `watch`)."""
        with self._cond:
            if unless is not None and unless():
                return
            self._waiting.discard(follower)
            follower.watched = False
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    self._thread = None
                    return
                self._cond.wait(self._interval)
                self._interval = min(self._interval * 2, LAST_INTERVAL)
                waiting = list(self._waiting)
            if global_meter_provider() is None and global_tracer_provider() is None:
                continue
            for follower in waiting:
                if follower.follow_globals():
                    self.unwatch(follower)


#: The process's watcher.
WATCHER = Watcher()
