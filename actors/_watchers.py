"""Watching an actor's commits without ever blocking it: waiting for a
committed snapshot that matches (``wait_until`` / ``await_until``) and
streams of committed snapshots (`_change_stream.ChangeStream`, from
``changes()``).

A cell with no watcher pays nothing for this. Its `Watchers`, made by its
first subscriber and kept in the cell's rarely set fields (`Extra`), is one
of the cell's observers only while a watch is subscribed: a commit with no
watcher runs exactly the code it ran before. With some, the actor calls
`Watchers` after each commit, on its turn, like any observer, and each watch
takes the commit without waiting for anyone:

- a stream's watch (`ChangeStream`) keeps only the latest committed value
  and how many commits it has been offered, as one pair written in one
  assignment and read by its consumer with no lock: a slow consumer skips to
  the latest value and learns how many it missed;
- a waiter's watch (`Until`) tests each committed value with its predicate,
  there on the actor's turn, so that no commit goes untested: what it keeps
  is the first committed value that matches (or the predicate's error, which
  goes to the waiter alone), and it unsubscribes;

then it signals its consumer: sets a `threading.Event` (a thread), or
schedules one wake-up on the consumer's event loop with
``call_soon_threadsafe`` (a task; at most one wake-up pending per watch).
When the actor stops (`CellState.mark_stopped`), `Watchers.end` ends every
watch: a stream ends after its last value, a waiter gets `ActorStopped`.

Watches are held weakly: a stream whose consumer dropped it (a ``break``
out of a ``for`` loop) unsubscribes at the next commit.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ._context import current_cell
from ._errors import SelfCallError, WaitTimeout

__all__ = ["Until", "Watch", "Watchers"]

#: Nothing tested yet (`Until`).
_NOTHING: Any = object()


class Watchers:
    """A cell's watches, and the observer that offers them each commit.

    Made once per cell, by its first subscriber; ``watches`` (weak
    references) and ``installed`` change under the cell's observer lock.
    """

    __slots__ = ("_cell", "installed", "value_of", "watches")

    def __init__(self, cell: Any, value_of: Callable[[Any], Any]) -> None:
        self._cell = cell
        #: The cell's snapshot -> the value its watchers see.
        self.value_of = value_of
        self.watches: tuple[weakref.ref[Watch], ...] = ()
        #: Whether it is one of the cell's observers now.
        self.installed = False

    def __call__(self, before: Any, after: Any) -> None:
        """Offer the commit just published to every watch (an observer: on
        the actor's turn, right after the commit). The observers' views are
        not what watchers see (a config's is its config, not its change), so
        the cell's snapshot, just published, is read here."""
        self.offer(self._cell.snapshot)

    def offer(self, snapshot: Any) -> None:
        """Offer the committed ``snapshot`` to every watch (what a runtime
        that learns of commits from elsewhere calls, in commit order)."""
        cell = self._cell
        value = self.value_of(snapshot)
        version = cell.version_of(snapshot)
        dead = False
        for ref in self.watches:
            watch = ref()
            if watch is None:
                dead = True
            else:
                watch._offer(value, version)
        if dead:
            self.remove(None)

    def add(self, watch: Watch) -> None:
        """Subscribe ``watch``. The caller ends it if the actor has stopped
        (`Watch._subscribe`): its stop may have missed it."""
        cell = self._cell
        with cell.observer_lock:
            self.watches = (*self.watches, weakref.ref(watch))
            if not self.installed:
                self.installed = True
                cell.observers = (*cell.observers, self)
        cell.runtime._observed(cell)

    def remove(self, watch: Watch | None) -> None:
        """Unsubscribe ``watch`` (and any watch no longer referenced); the
        last one out takes this off the cell's observers."""
        cell = self._cell
        with cell.observer_lock:
            kept = []
            for ref in self.watches:
                live = ref()
                if live is not None and live is not watch:
                    kept.append(ref)
            self.watches = tuple(kept)
            if not kept and self.installed:
                self.installed = False
                cell.observers = tuple(fn for fn in cell.observers if fn is not self)

    def end(self) -> None:
        """The actor has stopped: end every watch (on the stopping thread)."""
        cell = self._cell
        with cell.observer_lock:
            watches, self.watches = self.watches, ()
            if self.installed:
                self.installed = False
                cell.observers = tuple(fn for fn in cell.observers if fn is not self)
        if watches:
            error = cell.stopped_error()
            for ref in watches:
                watch = ref()
                if watch is not None:
                    watch._finish(error)


class Watch:
    """One subscriber of a cell's commits: what the actor writes (`_offer`,
    `_finish`) and how its consumer waits for it, from a thread (`_wait`) or
    a task (`_await`). See the module."""

    __slots__ = (
        "__weakref__",
        "_cell",
        "_end",
        "_event",
        "_hub",
        "_loop",
        "_slot",
        "_waiter",
        "_wake_pending",
    )

    def __init__(self, cell: Any) -> None:
        self._cell = cell
        self._hub: Watchers | None = None
        #: What the actor left for the consumer; written in one assignment.
        self._slot: tuple[Any, int] | None = None
        #: Set when the actor stopped: the error a waiter gets.
        self._end: BaseException | None = None
        self._event: threading.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False

    # -- the actor's side ------------------------------------------------------------------

    def _offer(self, value: Any, version: int) -> None:
        """A commit: ``value`` (what watchers see) at ``version``."""
        raise NotImplementedError

    def _finish(self, error: BaseException) -> None:
        """The actor has stopped; ``error`` says so."""
        self._end = error
        self._signal()

    def _signal(self) -> None:
        """Wake the consumer; never waits. A task gets at most one wake-up
        pending: one scheduled and not yet run covers later signals, since
        the consumer reads the slot after it runs."""
        event = self._event
        if event is not None:
            event.set()
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # its loop has closed: nobody awaits there any more
                self._wake_pending = False

    def _wake(self) -> None:
        """On the consumer's loop: resolve the future it awaits, if any."""
        self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the consumer's side ---------------------------------------------------------------

    def _subscribe(self, value_of: Callable[[Any], Any]) -> None:
        """Start taking the cell's commits (``value_of`` makes what watchers
        see, if this is the cell's first watch). A watch of an actor that
        has stopped meanwhile ends at once."""
        cell = self._cell
        extra = cell.extra()
        hub = extra.watchers
        if hub is None:
            with cell.observer_lock:
                hub = extra.watchers
                if hub is None:
                    extra.watchers = hub = Watchers(cell, value_of)
        self._hub = hub
        hub.add(self)
        # Written after the watch was added, so either the stop's
        # `Watchers.end` found it, or this sees the stop.
        if cell.is_stopped:
            self._finish(cell.stopped_error())
            hub.remove(self)

    def _unsubscribe(self) -> None:
        hub = self._hub
        if hub is not None:
            hub.remove(self)

    def _ready(self) -> bool:
        """Whether the consumer has something to look at."""
        raise NotImplementedError

    def _refuse_blocking(self, what: str) -> None:
        """A thread that runs the actor (or the runtime's event loop, which
        runs its async hooks) must not block waiting for its commits."""
        cell = self._cell
        if current_cell.get() is cell:
            raise SelfCallError(
                cell.name,
                what,
                where="its own handler, hook or observer",
                fix="It commits nothing while that runs, so the wait could only time out: "
                "react to its commits in an observer or an after-commit hook instead",
            )
        if cell.runtime.in_event_loop_thread():
            raise SelfCallError(
                cell.name,
                what,
                where="the runtime's event loop, which runs the actors' async hooks",
                fix="Await the asyncio form there (await_until, async for)",
            )

    def _wait(self, seconds: float) -> bool:
        """Block this thread until `_ready`; False if ``seconds`` pass first."""
        event = self._event
        if event is None:
            self._event = event = threading.Event()
        deadline = time.monotonic() + seconds
        while True:
            event.clear()  # before the check: a signal after it is not lost
            if self._ready():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            event.wait(min(remaining, threading.TIMEOUT_MAX))

    async def _await(self, seconds: float) -> bool:
        """Suspend this task until `_ready`; False if ``seconds`` pass first."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._wake_pending = False  # one pending on another loop does not wake this one
        try:
            async with asyncio.timeout(min(seconds, threading.TIMEOUT_MAX)):
                while not self._ready():  # checked after `_loop` is set: no signal is lost
                    waiter = self._waiter = loop.create_future()
                    try:
                        await waiter
                    finally:
                        self._waiter = None
        except TimeoutError:
            return self._ready()
        return True

    def _timed_out(self, what: str, seconds: float, fix: str) -> WaitTimeout:
        cell = self._cell
        snapshot = cell.snapshot  # None: passivated (its version is the one it dropped)
        version = cell.dropped_version if snapshot is None else cell.version_of(snapshot)
        return WaitTimeout(cell.name, what, seconds, version, fix)


class Until(Watch):
    """A wait for the first committed value that ``test`` accepts.

    The current value is tested first, on the waiting thread; then every
    value committed after the watch subscribed, on the actor's turn.
    """

    __slots__ = ("_error", "_seen", "test", "what")

    def __init__(self, cell: Any, test: Callable[[Any], Any], what: str) -> None:
        super().__init__(cell)
        self.test = test
        #: How errors name the call, as ``wait_until('paid')``.
        self.what = what
        self._error: BaseException | None = None
        #: The snapshot the waiter tested last (not tested twice).
        self._seen: Any = _NOTHING

    def _offer(self, value: Any, version: int) -> None:
        if self._slot is not None or self._error is not None:
            return  # already decided; its unsubscription is under way
        try:
            matched = self.test(value)
        except BaseException as exc:  # the waiter's error alone: the actor goes on
            self._error = exc
        else:
            if not matched:
                return
            self._slot = (value, version)
        self._signal()
        self._unsubscribe()

    def _ready(self) -> bool:
        return self._slot is not None or self._error is not None or self._end is not None

    def current(self, value_of: Callable[[Any], Any]) -> tuple[Any, int] | None:
        """The current value and its version if it matches (tested here, on
        the caller's thread: the predicate's error is raised to it)."""
        cell = self._cell
        snapshot = cell.read()
        if snapshot is self._seen:
            return None
        self._seen = snapshot
        value = value_of(snapshot)
        return (value, cell.version_of(snapshot)) if self.test(value) else None

    def start(self, value_of: Callable[[Any], Any]) -> tuple[Any, int] | None:
        """Subscribe, then test the current value again (a commit may have
        come before the subscription): the earlier of it and a match the
        actor found meanwhile, if either matched."""
        self._subscribe(value_of)
        try:
            now = self.current(value_of)
        except BaseException:
            self._unsubscribe()
            raise
        found = self._slot
        if now is None or (found is not None and found[1] < now[1]):
            return found
        return now

    def outcome(self, seconds: float) -> Any:
        """What the wait ended with: the match, or the error to raise."""
        self._unsubscribe()
        if self._slot is not None:
            return self._slot[0]
        if self._error is not None:
            raise self._error
        if self._end is not None:
            raise self._end
        raise self._timed_out(
            self.what,
            seconds,
            "Pass a larger timeout= (or set Runtime(default_timeout=...)) if it is slow "
            "to get there, and check that it can get there at all",
        )
