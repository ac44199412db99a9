"""Durable timers on the actors: each machine's pending timers armed on the runtime's `Timer`.

A machine's pending timers are in its snapshot (`MachineSnapshot.timers`,
see `stateward.core._timers`). `MachineTimers` (one per runtime) keeps each of
them armed as one callback on the runtime's `Timer`: the one heap and the one
thread a `SystemClock` has for the whole runtime, so a hundred thousand
machines with a pending timeout cost a hundred thousand heap entries, and no
thread each. It arms (`arm`) what a snapshot holds and cancels what it no
longer holds:

- after every commit that changed a machine's timers (the machine's
  behaviour adds it as the last of the commit's after-commit work);
- when an actor starts (`Runtime._start`: its recovery after a reboot, or a
  creation with an initial state timeout), is restarted after a crash or
  activated after a passivation (`Incarnation._start`).

A timer whose due time has passed (one due while the process was down)
fires at once. Firing sends the machine a `Fire` message naming the timer's
id, through its mailbox (never refused for a ``mailbox_limit``: a due timer
is not a caller to push back on): the machine, activated if it was
passivated, drops it unless its snapshot still holds that exact timer, and
otherwise runs the transition by its event (`stateward.core._timer_fire`).
A passivated machine keeps its timers armed here: it has no cell snapshot in
memory, and its timer activates it when due.

Due times are UTC datetimes from the runtime's wall clock
(``Runtime(clock=...)``); the delay armed on the `Timer` is the due time
less that clock's now. A test that drives time with a `ManualClock` makes
the wall clock follow it (``Runtime(timer=manual, clock=manual.wall_clock)``),
so that advancing one advances the other.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from stateward.core._timer_fire import Fire, TimerFiring

from ._clock import Cancel
from ._reply import Reply
from ._stats import ErrorReport

logger = logging.getLogger("stateward.actors")

__all__ = ["MachineTimers"]


class _InFlight:
    """The mark of a timer whose `Fire` was sent and not yet answered."""

    __slots__ = ()

    def cancel(self) -> None:
        pass


_IN_FLIGHT = _InFlight()


class _Slot:
    """An armed timer's place, taken before the `Timer` is asked (outside
    the lock): a cancel that comes first cancels the callback once bound."""

    __slots__ = ("cancelled", "handle")

    def __init__(self) -> None:
        self.handle: Cancel | None = None
        self.cancelled = False

    def bind(self, handle: Cancel) -> None:
        self.handle = handle
        if self.cancelled:
            handle.cancel()

    def cancel(self) -> None:
        self.cancelled = True
        handle = self.handle
        if handle is not None:
            handle.cancel()


class MachineTimers:
    """Arms the pending timers of one runtime's machines (see the module)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        #: By actor name: its cell, and each armed timer's callback by timer id.
        self._armed: dict[str, tuple[Any, dict[str, Cancel]]] = {}
        #: How many timers have been sent to their machine, in all.
        self.fired = 0

    def arm(self, cell: Any, snapshot: Any) -> None:
        """Arm what ``snapshot`` (``cell``'s newest) holds, cancel the rest.

        The `Timer` is called outside this object's lock: a `ManualClock`
        runs due callbacks (`_due`, which takes that lock) holding its own.
        """
        timers = getattr(snapshot, "timers", ())
        name = cell.name
        if not timers and name not in self._armed:
            return  # most actors: nothing armed, nothing to arm
        wanted = {t.id: t for t in timers}
        to_cancel: list[Cancel] = []
        to_arm: list[tuple[str, Any, _Slot]] = []
        with self._lock:
            entry = self._armed.get(name)
            if entry is not None and entry[0] is not cell:  # another actor of that name before
                to_cancel += entry[1].values()
                entry = None
            armed = {} if entry is None else entry[1]
            for timer_id in [i for i in armed if i not in wanted]:
                to_cancel.append(armed.pop(timer_id))
            for timer_id, timer in wanted.items():
                if timer_id not in armed:
                    slot = armed[timer_id] = _Slot()
                    to_arm.append((timer_id, timer, slot))
            if armed:
                self._armed[name] = (cell, armed)
            else:
                self._armed.pop(name, None)
        for cancel in to_cancel:
            cancel.cancel()
        if to_arm:
            now = self.runtime.clock()
            call_later = self.runtime.timer.call_later
            for timer_id, timer, slot in to_arm:
                delay = max(0.0, (timer.due - now).total_seconds())
                slot.bind(call_later(delay, functools.partial(self._due, cell, timer_id)))

    def disarm(self, cell: Any) -> None:
        """Cancel every timer of ``cell`` (its actor stopped for good)."""
        with self._lock:
            entry = self._armed.get(cell.name)
            if entry is None or entry[0] is not cell:
                return
            del self._armed[cell.name]
        for cancel in entry[1].values():
            cancel.cancel()

    def pending(self) -> int:
        """How many timers are armed or in flight, over every machine."""
        with self._lock:
            return sum(len(armed) for _, armed in self._armed.values())

    def _due(self, cell: Any, timer_id: str) -> None:
        """A timer fell due (on the timer's thread): send it to its machine."""
        with self._lock:
            entry = self._armed.get(cell.name)
            if entry is None or entry[0] is not cell or timer_id not in entry[1]:
                return  # disarmed meanwhile
            entry[1][timer_id] = _IN_FLIGHT
            self.fired += 1
        reply: Reply[Any] = Reply(cell, Fire((timer_id,)))
        reply.add_done_callback(functools.partial(self._answered, cell, timer_id))
        cell.mailbox.put(reply)  # a closed mailbox answers it as refused

    def _answered(self, cell: Any, timer_id: str, reply: Reply[Any]) -> None:
        """The machine has run the `Fire`: report a refusal; when it failed
        outright (a crash, a stop), forget it and arm what the machine holds now."""
        error = reply.exception(0)
        if error is None:
            firing = reply.result(0)
            if isinstance(firing, TimerFiring) and firing.error is not None:
                self._report(cell, firing, firing.error)
            with self._lock:
                self._settle(cell, timer_id)
            return
        with self._lock:
            self._settle(cell, timer_id)
        if (
            not cell.is_stopped
            and cell.mailbox.closed_reason is None  # stopping: its timers go with it
            and cell.snapshot is not None
        ):
            self.arm(cell, cell.snapshot)  # still pending, if it did not commit

    def _settle(self, cell: Any, timer_id: str) -> None:
        entry = self._armed.get(cell.name)
        if entry is not None and entry[0] is cell and entry[1].get(timer_id) is _IN_FLIGHT:
            del entry[1][timer_id]
            if not entry[1]:
                del self._armed[cell.name]

    def _report(self, cell: Any, firing: TimerFiring, error: BaseException) -> None:
        timer = firing.timer
        label = "timer" if timer is None else f"timer {timer.id} (event {timer.event!r})"
        logger.warning(
            "actor %r: %s fired, and its event's transition did not happen (the timer is "
            "used up): %r",
            cell.name,
            label,
            error,
        )
        self.runtime._report(ErrorReport(cell.name, "timer", label, error))
