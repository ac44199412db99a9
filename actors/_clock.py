"""Monotonic time and timers for supervision: restart backoff and handler deadlines.

`Timer` is what the actors need of time: a monotonic clock and delayed
callbacks (``Runtime(timer=...)``). It is not the *wall* clock that stamps
histories with UTC datetimes (``Runtime(clock=...)``, from core): the two are
unrelated and named apart on purpose.

`SystemClock` is the real one: a single timer thread per runtime, started on
first use and ended once nothing has been pending for a second. `ManualClock`
is for tests: time stands still until `advance` moves it, and due callbacks
then run in the caller's thread, in time order. Nothing in stateward sleeps
to wait for time; it asks its clock to call back later.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("stateward.actors")

#: Where a `ManualClock`'s wall clock starts by default.
_WALL_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class Cancel(Protocol):
    """What `Timer.call_later` returns."""

    def cancel(self) -> None:
        """Stop the callback from running, if it has not run yet."""


class Timer(Protocol):
    """Monotonic time and delayed callbacks: what ``Runtime(timer=...)`` takes
    (`SystemClock` or `ManualClock`)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def call_later(self, delay: float, fn: Callable[[], Any]) -> Cancel:
        """Call ``fn()`` once, ``delay`` seconds from now, on the clock's own thread."""

    def close(self) -> None:
        """Drop pending callbacks and stop any thread; later calls are ignored."""


class _Entry:
    __slots__ = ("cancelled", "fn", "heap", "when")

    def __init__(self, when: float, fn: Callable[[], Any]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False
        self.heap: _Heap | None = None

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            heap = self.heap
            if heap is not None:
                heap.dropped()


#: A heap holding at least this many cancelled entries, and more cancelled
#: than live ones, is rebuilt without them.
_COMPACT_AT = 1024


class _Heap:
    """Pending callbacks in time order; shared by both clocks.

    A cancelled entry stays in place until it comes to the top, which for a
    long delay may be hours: a runtime that arms and cancels timers all the
    time (durable timers re-armed by each commit) would pile them up. So the
    heap counts them (`dropped`, from any thread, taking no lock: a cancel
    must never wait for a clock that runs callbacks), and the next `push`
    (under the clock's lock) rebuilds it without them once they outnumber
    the live ones: memory stays proportional to the callbacks pending, at an
    amortized O(1) per cancel. The count is a hint (a cancel racing another
    may go uncounted), never a correctness matter.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[float, int, _Entry]] = []
        self.order = itertools.count()
        self.cancelled = 0

    def push(self, entry: _Entry) -> None:
        if self.cancelled >= _COMPACT_AT and 2 * self.cancelled > len(self.entries):
            self.entries = [item for item in self.entries if not item[2].cancelled]
            heapq.heapify(self.entries)
            self.cancelled = 0
        entry.heap = self
        heapq.heappush(self.entries, (entry.when, next(self.order), entry))

    def dropped(self) -> None:
        """An entry of this heap was cancelled (by any thread)."""
        self.cancelled += 1

    def pop_due(self, now: float) -> _Entry | None:
        while self.entries and self.entries[0][0] <= now:
            entry = heapq.heappop(self.entries)[2]
            entry.heap = None  # out of the heap: a late cancel counts nothing
            if not entry.cancelled:
                return entry
            self.cancelled = max(0, self.cancelled - 1)
        return None

    def next_time(self) -> float | None:
        while self.entries and self.entries[0][2].cancelled:
            heapq.heappop(self.entries)[2].heap = None
            self.cancelled = max(0, self.cancelled - 1)
        return self.entries[0][0] if self.entries else None


def _run(entry: _Entry) -> None:
    try:
        entry.fn()
    except Exception:
        logger.exception("a timer callback raised")


#: Seconds the timer thread waits with nothing pending before it ends.
IDLE_EXIT = 1.0


class SystemClock:
    """`time.monotonic` and a timer thread (a daemon, started on first use,
    ended after `IDLE_EXIT` seconds with nothing pending: an idle runtime
    holds no thread)."""

    def __init__(self, name: str = "stateward") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap = _Heap()
        self._thread: threading.Thread | None = None
        self._closed = False

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], Any]) -> Cancel:
        entry = _Entry(time.monotonic() + max(0.0, delay), fn)
        with self._cond:
            if self._closed:
                entry.cancelled = True
                return entry
            self._heap.push(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"stateward:{self._name}:timers", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return entry

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    entry = self._heap.pop_due(time.monotonic())
                    if entry is not None:
                        break
                    next_time = self._heap.next_time()
                    if next_time is None:  # nothing pending: end once idle a while
                        if not self._cond.wait(IDLE_EXIT) and self._heap.next_time() is None:
                            self._thread = None  # the next call_later starts another
                            return
                        continue
                    self._cond.wait(max(0.0, next_time - time.monotonic()))
            _run(entry)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.entries.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)


class ManualClock:
    """A clock for tests: it moves only when told to, and never sleeps.

    ``advance(seconds)`` moves time forward and runs every callback that falls
    due, in time order, in the calling thread. ``delays`` records every delay
    asked of `call_later`, so a test can check a backoff schedule.

    `wall_clock` is a wall clock that follows it: ``wall`` (a UTC datetime)
    plus the time advanced since. ``Runtime(timer=clock, clock=clock.wall_clock)``
    keeps the two consistent, as durable timers need (their due times are
    wall-clock times, armed on the monotonic timer).
    """

    def __init__(self, start: float = 1000.0, wall: datetime.datetime | None = None) -> None:
        self._start = start
        self._wall = wall if wall is not None else _WALL_START
        self._now = start
        self._lock = threading.RLock()
        self._heap = _Heap()
        self.delays: list[float] = []
        self._closed = False

    def monotonic(self) -> float:
        return self._now

    def wall_clock(self) -> datetime.datetime:
        """The wall-clock time that goes with `monotonic`: ``wall`` plus the
        time advanced since the clock was made (a timezone-aware UTC datetime)."""
        return self._wall + datetime.timedelta(seconds=self._now - self._start)

    def call_later(self, delay: float, fn: Callable[[], Any]) -> Cancel:
        entry = _Entry(self._now + max(0.0, delay), fn)
        with self._lock:
            self.delays.append(delay)
            if self._closed:
                entry.cancelled = True
            else:
                self._heap.push(entry)
        return entry

    def pending(self) -> int:
        """How many callbacks are waiting."""
        with self._lock:
            return sum(1 for _, _, e in self._heap.entries if not e.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running what falls due on the way."""
        with self._lock:
            target = self._now + seconds
            while True:
                next_time = self._heap.next_time()
                if next_time is None or next_time > target:
                    break
                self._now = max(self._now, next_time)
                entry = self._heap.pop_due(self._now)
                if entry is not None:
                    _run(entry)
            self._now = target

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._heap.entries.clear()
