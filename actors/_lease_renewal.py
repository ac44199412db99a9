"""Renewing a runtime's lease on its store, from the runtime's timer.

A store with leases (`SQLiteStore`; see ``stores/_leases.py``) gives each
runtime that owns names in it a lease that lasts ``store.lease_seconds``
unless renewed. `LeaseRenewal` renews it every third of that on the runtime's
timer thread, and gives it up when the runtime shuts down (its names can be
claimed at once). A store without ``renew_lease`` (the memory store) is left
alone: its owners are runtimes of this process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ._clock import Cancel, Timer
from ._errors import LeaseLost

logger = logging.getLogger("stateward.actors")


class LeaseRenewal:
    """Renews runtime ``runtime_id``'s lease on ``store`` until `end`."""

    def __init__(self, store: Any, runtime_id: str, timer: Timer, runtime: str) -> None:
        self._renew = getattr(store, "renew_lease", None)
        self._end = getattr(store, "end_lease", None)
        self._runtime_id = runtime_id
        self._timer = timer
        self._runtime = runtime
        self._lock = threading.Lock()
        self._next: Cancel | None = None
        self._ended = False
        self.interval = float(getattr(store, "lease_seconds", 0.0)) / 3
        if self._renew is not None and self.interval > 0:
            self._schedule()

    def _schedule(self) -> None:
        with self._lock:
            if not self._ended:
                self._next = self._timer.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        """On the timer's thread: renew, then schedule the next renewal. A
        lease that was taken over is not renewed again: the runtime's commits
        to that store raise `LeaseLost` from then on."""
        assert self._renew is not None
        try:
            self._renew(self._runtime_id)
        except LeaseLost as exc:
            logger.error("runtime %s: %s", self._runtime, exc)
            return
        except Exception:  # a locked or closed store: try again next time
            logger.exception("runtime %s: renewing its store lease failed", self._runtime)
        self._schedule()

    def end(self) -> None:
        """Stop renewing and give the lease up (the runtime shuts down)."""
        with self._lock:
            self._ended = True
            if self._next is not None:
                self._next.cancel()
        if self._end is not None:
            try:
                self._end(self._runtime_id)
            except Exception:
                logger.exception("runtime %s: giving its store lease up failed", self._runtime)
