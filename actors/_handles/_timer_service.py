"""`serve_timers`: machines whose timers fall due are activated though no one touched them.

A live machine's timers are armed by its runtime (`actors._timers`), a
passivated one's too: its handle exists. After a reboot, though, a machine
exists only in the store until something makes a handle for it. The store
keeps an index of each machine's earliest due time (``Store.due_timers``),
and `serve_timers` reads it: every ``every`` seconds (and once at once) it
asks for the machines due within the next ``every`` seconds, and when one
falls due it starts its handle, which recovers it from the store and arms
its timers (an overdue one fires at once).

Which definition a stored name uses is the caller's registration: a mapping
from name prefix to `MachineSpec` (or `MachineBuilder`), the longest
matching prefix winning (``{"order-": orders, "order-vip-": vip_orders}``).
A stored name that matches no prefix is left alone (and logged once).
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import threading
from collections.abc import Mapping

from stateward.core import ArgumentTypeError, ArgumentValueError, MachineBuilder, MachineSpec

from .._clock import Cancel
from .._errors import DuplicateActorName, RuntimeStopped
from .._runtime import Runtime
from ._machine import StateMachine

logger = logging.getLogger("stateward.actors")


class _NotYet:
    __slots__ = ()

    def cancel(self) -> None:
        pass


_NOT_YET = _NotYet()

__all__ = ["TimerService", "serve_timers"]


class TimerService:
    """Starts the stored machines whose timers fall due (see `serve_timers`).

    Attributes:
        started: the names of the machines it started, in order.
    """

    def __init__(
        self, runtime: Runtime, specs: dict[str, MachineSpec | MachineBuilder], every: float
    ) -> None:
        self.runtime = runtime
        self.every = every
        self._specs = sorted(specs.items(), key=lambda item: -len(item[0]))
        self._lock = threading.Lock()
        self._closed = False
        self._armed: dict[str, Cancel] = {}
        self._scan_timer: Cancel | None = None
        self._unknown: set[str] = set()
        self.started: list[str] = []

    def _spec_for(self, name: str) -> MachineSpec | MachineBuilder | None:
        for prefix, spec in self._specs:
            if name.startswith(prefix):
                return spec
        return None

    def scan(self) -> None:
        """Look for machines due within the next ``every`` seconds: start
        those due now, arm the others; then look again in ``every`` seconds."""
        runtime = self.runtime
        if self._closed or runtime.closed:
            return
        now = runtime.clock()
        horizon = now + datetime.timedelta(seconds=self.every)
        try:
            due = runtime._durable_store().due_timers(horizon)
        except Exception:
            logger.exception("serve_timers: reading the timers due from the store failed")
            due = []
        to_arm: list[tuple[str, float]] = []
        for name, when in due:
            if name in runtime:
                continue  # live or passivated here: its runtime arms its timers
            if self._spec_for(name) is None:
                if name not in self._unknown:
                    self._unknown.add(name)
                    logger.warning(
                        "serve_timers: stored machine %r has a timer due and matches no "
                        "registered prefix; it is left alone",
                        name,
                    )
                continue
            with self._lock:
                if self._closed or name in self._armed:
                    continue
                self._armed[name] = _NOT_YET  # armed below, outside the lock
            to_arm.append((name, max(0.0, (when - now).total_seconds())))
        # The timer is asked outside the lock: a ManualClock runs due
        # callbacks (which take it) holding its own.
        for name, delay in to_arm:
            cancel = runtime.timer.call_later(delay, functools.partial(self._start, name))
            with self._lock:
                if self._armed.get(name) is _NOT_YET:
                    self._armed[name] = cancel
                    continue
            cancel.cancel()  # closed meanwhile (a start meanwhile finds the handle live)
        scan = runtime.timer.call_later(self.every, self.scan)
        with self._lock:
            if not self._closed:
                self._scan_timer = scan
                return
        scan.cancel()

    def _start(self, name: str) -> None:
        with self._lock:
            self._armed.pop(name, None)
            if self._closed:
                return
        spec = self._spec_for(name)
        runtime = self.runtime
        if spec is None or name in runtime or runtime.closed:
            return
        try:
            StateMachine(spec, name=name, runtime=runtime)
        except (DuplicateActorName, RuntimeStopped):
            return  # made by someone else meanwhile, or shutting down
        except Exception:
            logger.exception("serve_timers: starting machine %r failed", name)
            return
        with self._lock:
            self.started.append(name)

    def close(self) -> None:
        """Stop looking; machines already started go on."""
        with self._lock:
            self._closed = True
            armed, self._armed = list(self._armed.values()), {}
            scan, self._scan_timer = self._scan_timer, None
        for cancel in armed:
            cancel.cancel()
        if scan is not None:
            scan.cancel()


def serve_timers(
    runtime: Runtime,
    specs: Mapping[str, MachineSpec | MachineBuilder],
    *,
    every: float = 60.0,
) -> TimerService:
    """Start, when their timers fall due, the machines of ``runtime``'s store
    that have no handle here (after a reboot, say); see the module.

    Args:
        runtime: its store must keep the index of due timers (``due_timers``:
            every store of stateward does).
        specs: the definition of the stored machines by name prefix; the
            longest matching prefix wins.
        every: how often, in seconds, the index is read (each read arms what
            falls due before the next).

    Returns:
        The `TimerService`; ``close()`` stops it (the runtime's shutdown does too).

    Raises:
        InvalidArgument: a store without ``due_timers``, ``specs`` not a
            mapping of str prefixes to specs or builders, or ``every`` not
            a finite number of seconds > 0.
    """
    store = runtime._durable_store()
    if not callable(getattr(store, "due_timers", None)):
        raise ArgumentValueError(
            "serve_timers",
            "runtime",
            "a runtime whose store keeps an index of due timers (due_timers)",
            store,
            "Use MemoryStore, SQLiteStore or PostgresStore, or give your store due_timers()",
        )
    if not isinstance(specs, Mapping) or not all(
        isinstance(prefix, str) and isinstance(spec, MachineSpec | MachineBuilder)
        for prefix, spec in specs.items()
    ):
        raise ArgumentTypeError(
            "serve_timers",
            "specs",
            "a mapping of name prefixes (str) to MachineSpec or MachineBuilder",
            specs,
            "Pass {'order-': orders_spec}, say",
        )
    if isinstance(every, bool) or not isinstance(every, int | float) or not 0 < every < math.inf:
        raise ArgumentValueError(
            "serve_timers", "every", "a finite number of seconds > 0", every, "Pass every=60"
        )
    service = TimerService(runtime, dict(specs), float(every))
    service.scan()
    return service
