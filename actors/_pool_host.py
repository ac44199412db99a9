"""The pooled host: a few worker threads serve the turns of many cells.

Each worker thread is a pykka ``ThreadingActor`` used through pykka's public
API only (``start``, ``tell``, ``on_receive``, ``stop``, and
``ActorRegistry.unregister`` as in `_thread_host`). Each is told once to
*serve*: its ``on_receive`` then takes runnable cells from one shared run
queue, a C ``queue.SimpleQueue``, and runs one turn of each, until the pool
closes. pykka's own inbox (a ``queue.Queue``, a few microseconds of Python
code per message) would carry one message per turn; the shared ``SimpleQueue``
is the same idea as the dedicated host's, made common to all workers, and is
also what makes the run queue one FIFO for the whole pool.

Scheduling, as the host protocol asks (`_host.py`):

- A cell is queued when its mailbox goes from empty to non-empty (whoever
  takes the idle cell's turn calls `PoolWorker.wake`, which appends the
  cell's worker to the run queue). A cell that is queued or running is not
  queued again: its turn is held meanwhile, so senders only append.
- A worker runs at most `POOL_TURN_BUDGET` messages of a cell, then gives the
  turn back; if messages are left, the cell takes its turn again and goes to
  the *back* of the run queue. So a cell with a long backlog delays another
  cell's message by at most one turn of its own.
- One turn of a cell at a time and its messages in order: that is the cell's
  turn (`Mailbox.turn`), which the pool never holds for two turns.

A thread count of at most ``workers`` + the runtime's own (timer, event loop)
holds for any number of cells. A hook that blocks holds a shared worker for
as long as it blocks: give such an actor ``dedicated=True`` (a thread of its
own, `ThreadHost`). A turn that held a worker longer than `SLOW_TURN_S` is
logged, once it ends, with the actor's name and that advice (two clock reads
per turn, not per message).

An async hook (a machine's coroutine hook or guard, an async ``modify``)
holds no worker while it awaits: its request is suspended with the cell's
turn held (its next messages wait, in order), the worker goes back to the
run queue, and when the awaitable is done `PoolWorker.resume` queues the
rest of the turn like any other (`_suspension.py`). Meanwhile the turn
counts as running (`PoolWorker.hold`), so a retirement waits for it.
After-commit hooks, observers and ``on_start`` that are coroutines are
still awaited by the worker that runs them; see docs/concepts.md.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any

import pykka

from stateward.core import ArgumentTypeError, ArgumentValueError

from ._commit_batch import FLUSH_AFTER, CommitBatch
from ._host import Turns
from .stores._group_commit import flush_staged, staging

logger = logging.getLogger("stateward.actors")

#: The most messages one turn of a cell runs on a pooled worker before the
#: cell goes to the back of the run queue (if it has more). Smaller is fairer
#: to the other cells, larger costs fewer hand-offs per message.
POOL_TURN_BUDGET = 64

#: A turn that holds a pooled worker longer than this many seconds is logged
#: (once it ends) as a warning naming the actor: the other actors waited.
SLOW_TURN_S = 1.0

#: How many worker threads a pooled runtime has when ``workers=`` is not given.
DEFAULT_WORKERS = 4

_SERVE = "serve"

#: The locks of the pooled workers, shared by stripes (a worker has no lock
#: of its own); each is a leaf: nothing else is taken while one is held.
_STRIPES = 64
_worker_locks = tuple(threading.Lock() for _ in range(_STRIPES))
_next_lock = itertools.count()


class PoolWorker:
    """The `Worker` of one incarnation on a `PoolHost`: it has no thread of
    its own; waking it puts it on the pool's run queue."""

    __slots__ = (
        "_active",
        "_done",
        "_ended",
        "_ending",
        "_lock",
        "_pending",
        "_retired",
        "pool",
        "runnable",
        "turns",
    )

    def __init__(
        self, pool: PoolHost, turns: Turns, runnable: queue.SimpleQueue[PoolWorker | None]
    ) -> None:
        self.pool = pool
        self.turns = turns
        #: The run queue of the pool's threads serving this incarnation.
        self.runnable = runnable
        self._lock = _worker_locks[next(_next_lock) % _STRIPES]
        self._retired = False
        #: Turns handed over by `wake` and not yet started (0 or 1: the turn
        #: travels with the wake-up, so a second needs the first given back).
        self._pending = 0
        #: Turns running now (0 or 1, briefly 2 while one hands over to the next).
        self._active = 0
        #: Whether a pooled thread has taken on reporting the end.
        self._ending = False
        #: Whether `Turns.ended` has returned.
        self._done = False
        #: Set once `Turns.ended` has returned; made only for a `join` that waits.
        self._ended: threading.Event | None = None

    def wake(self) -> bool:
        with self._lock:
            if self._retired:
                return False
            self._pending += 1
        self.runnable.put(self)
        return True

    def hold(self) -> bool:
        """The running turn is suspended on an awaitable (`_suspension.py`):
        it counts as running (a retirement waits for it) until `resume`.
        False once the end has been reported: then it cannot be resumed here."""
        with self._lock:
            if self._ending:
                return False
            self._active += 1
            return True

    def resume(self) -> None:
        """Queue the rest of a held turn, even if retired meanwhile: it is
        still this incarnation's turn, and it hands the cell's turn back."""
        with self._lock:
            self._active -= 1
            self._pending += 1
        self.runnable.put(self)

    def retire(self, *, end_here: bool = False) -> None:
        with self._lock:
            if self._retired:
                return
            self._retired = True
            if self._pending or self._active:
                return  # the worker running that turn ends it afterwards
            if end_here:
                self._ending = True
        if end_here:
            # An idle worker, retired by a caller that holds no lifecycle lock
            # (an idle actor stopping): it reports the end itself, at once.
            self._end()
            return
        # Idle: a pooled thread reports the end (never the retiring caller,
        # which may hold the lifecycle's lock that `Turns.ended` takes).
        self.runnable.put(self)

    def run(self) -> None:
        """On a pooled thread: run the turn this was queued for, if any, then
        report the end of a retired incarnation once nothing of it runs."""
        with self._lock:
            has_turn = self._pending > 0
            if has_turn:
                self._pending -= 1
                self._active += 1
        if has_turn:
            started = time.monotonic()
            try:
                self.turns.run_turn(POOL_TURN_BUDGET)
            finally:
                with self._lock:
                    self._active -= 1
            held = time.monotonic() - started
            if held > SLOW_TURN_S:
                self._report_slow(held)
        with self._lock:
            end = self._retired and not self._pending and not self._active and not self._ending
            if end:
                self._ending = True
        if end:
            flush_staged()  # its staged commits are answered before it counts as ended
            self._end()

    def _end(self) -> None:
        """Report the end of the incarnation (once, by whoever set ``_ending``)."""
        try:
            self.turns.ended()
        finally:
            with self._lock:
                self._done = True
                ended = self._ended
            if ended is not None:
                ended.set()
            self.pool._detach()

    def _report_slow(self, held: float) -> None:
        logger.warning(
            "actor %r held a pooled worker for %.1f s in one turn (at most %d messages); "
            "the other actors on the pool waited meanwhile. If its hooks block (I/O, "
            "sleeps, locks), give it a thread of its own: dedicated=True",
            self.turns.name,
            held,
            POOL_TURN_BUDGET,
        )

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the end of a retired worker to be
        reported (at once if it has been, or if it is not retired)."""
        if self._done or not self._retired:
            return
        with self._lock:
            if self._done:
                return
            ended = self._ended
            if ended is None:
                self._ended = ended = threading.Event()
        ended.wait(min(timeout, threading.TIMEOUT_MAX))

    @property
    def thread(self) -> threading.Thread | None:
        return None  # it runs on whichever pooled thread takes it

    @property
    def busy(self) -> bool:
        """Whether a pooled thread runs a turn of it now (for the metrics)."""
        return self._active > 0


class _PooledThread(pykka.ThreadingActor):
    """One of a pool's worker threads."""

    use_daemon_thread = True

    def __init__(
        self, pool: PoolHost, runnable: queue.SimpleQueue[PoolWorker | None], label: str
    ) -> None:
        super().__init__()
        self.pool = pool
        self.runnable = runnable
        self.label = label

    def on_start(self) -> None:
        thread = threading.current_thread()
        thread.name = self.label
        self.pool._threads.append(thread)

    def on_receive(self, message: Any) -> None:
        """Run turns from the pool's run queue until it closes (a None).

        Commits staged by the turns run in a row are written together: the
        thread flushes its batch (`CommitBatch`) when the run queue is empty,
        when the batch is full, and before it ends.
        """
        get = self.runnable.get
        batch = staging.batch = CommitBatch()
        staged = batch.staged
        try:
            while True:
                if staged:
                    try:
                        worker = get(False)
                    except queue.Empty:
                        batch.flush()
                        continue
                else:
                    worker = get()
                if worker is None:
                    return
                batch.cell = worker.turns.cell  # the commits of its turn are staged
                try:
                    worker.run()
                except BaseException:  # pragma: no cover - run_turn catches everything
                    logger.exception("a stateward pooled worker failed")
                batch.cell = None
                if len(staged) >= FLUSH_AFTER:
                    batch.flush()
        finally:
            try:
                batch.flush()
            finally:
                staging.batch = None


class PoolHost:
    """Runs many cells' turns on a fixed number of pooled threads.

    The threads run only while cells are attached: they start when the first
    incarnation is attached and end once the last attached one has ended, so
    an idle pool (or one swapped out before any use) holds no thread.

    Args:
        workers: how many threads (at least 1).
        name: a label for the threads (``stateward:<name>:worker-<i>``).
    """

    #: An incarnation with nothing to run at its start starts on the
    #: attaching thread (see `Host.starts_inline`).
    starts_inline = True

    def __init__(self, workers: int = DEFAULT_WORKERS, name: str = "pool") -> None:
        if type(workers) is not int or workers < 1:
            error = ArgumentTypeError if type(workers) is not int else ArgumentValueError
            raise error("PoolHost", "workers", "an int >= 1", workers)
        self.workers = workers
        self.name = name
        self._lock = threading.Lock()
        #: Incarnations attached and not yet ended.
        self._live = 0
        #: The run queue of the threads running now: cells with a turn to run
        #: (their `PoolWorker`), in the order woken; a None ends a thread.
        self._runnable: queue.SimpleQueue[PoolWorker | None] = queue.SimpleQueue()
        self._refs: list[pykka.ActorRef[_PooledThread]] = []
        self._threads: list[threading.Thread] = []

    def attach(self, turns: Turns) -> PoolWorker:
        with self._lock:
            if not self._refs:
                self._start()
            self._live += 1
            return PoolWorker(self, turns, self._runnable)

    def _start(self) -> None:
        """Start the threads, on a run queue of their own (threads still
        ending from an earlier start keep theirs)."""
        runnable: queue.SimpleQueue[PoolWorker | None] = queue.SimpleQueue()
        self._runnable = runnable
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        for index in range(self.workers):
            ref = _PooledThread.start(self, runnable, f"stateward:{self.name}:worker-{index}")
            pykka.ActorRegistry.unregister(ref)  # a user's stop_all() leaves it alone
            ref.tell(_SERVE)
            self._refs.append(ref)

    def _detach(self) -> None:
        """An incarnation has ended: end the threads if it was the last one."""
        with self._lock:
            self._live -= 1
            if self._live > 0 or not self._refs:
                return
            refs, self._refs = self._refs, []
            runnable = self._runnable
        self._end(refs, runnable)

    @staticmethod
    def _end(
        refs: list[pykka.ActorRef[_PooledThread]], runnable: queue.SimpleQueue[PoolWorker | None]
    ) -> None:
        for _ in refs:
            runnable.put(None)
        for ref in refs:
            ref.stop(block=False)

    @property
    def threads(self) -> list[threading.Thread]:
        """The pool's threads still running (for diagnostics and tests)."""
        return [thread for thread in self._threads if thread.is_alive()]

    def close(self, timeout: float) -> None:
        """End the pooled threads once they have run what is queued, waiting
        up to ``timeout`` seconds; a thread stuck in a hook is left to end
        on its own (it is a daemon thread)."""
        deadline = time.monotonic() + timeout
        longest = threading.TIMEOUT_MAX  # a timeout of 1e300 s: wait that long

        def left() -> float:
            return min(longest, max(0.0, deadline - time.monotonic()))

        with self._lock:
            refs, self._refs = self._refs, []
            runnable = self._runnable
        self._end(refs, runnable)
        for ref in refs:
            ref.actor_stopped.wait(left())
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(left())
