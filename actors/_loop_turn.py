"""An idle actor's request run on the event loop that awaits it: no thread hop.

An awaited call (``await machine.atransition(...)``, through
`ActorHandle._acall`) that finds its actor idle runs the request right there,
on the awaiting loop's thread, as a blocking call does on its own thread
(`Cell.try_inline`, `Cell.process_inline`): `LoopTurn` holds the cell's turn
for it. Two things differ from a blocking inline call:

- **Its awaitables are awaited on that loop.** A coroutine hook or guard of a
  machine, or a coroutine ``modify`` function, makes the behaviour raise
  `Suspended` (`core._suspend`); `_suspension.suspend` hands it to the
  `LoopTurn` running the request (found in `loop_turn`), which starts the
  awaitable as a task of the awaiting loop and returns `SUSPENDED`: the loop
  is free meanwhile, no worker thread and no runtime event loop is involved,
  and the cell's turn stays held, so its next messages wait, in order. When
  the task is done, its done-callback (on the loop) goes on with the request
  (`Cell.process` again, with the task's result or error thrown in), up to
  the next awaitable or to the end, then gives the turn back.

  The request, once started, completes and commits whatever happens to the
  task that awaits its answer: the hook runs in a task of its own, so
  cancelling the caller (or its ``asyncio.timeout``) only stops the waiting.
  An awaitable that ends cancelled is treated as on the runtime's event loop
  (`_suspension.Suspension.outcome`): `concurrent.futures.CancelledError` is
  thrown in where the behaviour awaited it. A fence (a shutdown giving up on
  the actor) finds the `LoopTurn` in ``cell.awaiting`` and cancels the task,
  from any thread; with the loop already closed, the request goes on with
  that error on the fencing thread, so the turn is never left held.

- **Bounded rounds** (`LoopSlots`). A loop runs at most `ROUND` inline
  requests in a round, about one loop iteration, before it serves its other
  callbacks (a timer, another request's reply, a web handler): a call past
  that waits, in a FIFO, for a later round, and so does every call made
  while any waits, so calls made on one loop are sent in the order made.
  This also makes a coroutine that awaits one call after another on idle
  actors give the loop back every `ROUND` calls, as it would if each call
  waited for a thread.

Whether a request may run on the loop at all is the handle's decision
(`ActorHandle._acall`): not with a durable store, whose write and fsync must
never run on the loop, nor when its work would block the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any

from stateward.core._suspend import Suspended

from ._cell import FENCED, SUSPENDED, Cell, Running
from ._context import current_cell
from ._reply import Reply

__all__ = ["ROUND", "LoopSlots", "LoopTurn", "loop_turn", "slots_of"]

#: The most inline requests one event loop runs in a row before it serves its
#: other callbacks: at ~10 µs each, well under a millisecond of loop time.
ROUND = 64

#: The `LoopTurn` whose synchronous step runs now in this context: where
#: `_suspension.suspend` sends the awaitable its request waits for.
loop_turn: contextvars.ContextVar[LoopTurn | None] = contextvars.ContextVar(
    "stateward_loop_turn", default=None
)


class LoopTurn:
    """One request of an idle cell, run on the event loop that awaits it,
    holding the cell's turn until the request ends (see the module)."""

    __slots__ = ("cell", "generation", "loop", "message", "owner", "step", "task", "turn")

    def __init__(
        self, cell: Cell, message: Reply[Any], turn: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.cell = cell
        self.message = message
        #: The cell's turn, taken by `Cell.try_inline` for this request.
        self.turn = turn
        self.loop = loop
        #: The incarnation that runs the request: told if the request crashes it.
        self.owner: Running | None = cell.running
        self.generation = 0
        #: The behaviour's step waiting for an awaitable, and the task awaiting it.
        self.step: Suspended | None = None
        self.task: asyncio.Future[Any] | None = None

    def start(self) -> None:
        """Run the request on this thread (the loop's) up to its end, or up to
        its first awaitable (then the rest goes on in the loop's callbacks)."""
        token = loop_turn.set(self)
        try:
            self.cell.process_inline(self.message, self.turn)
        finally:
            loop_turn.reset(token)

    # -- an awaitable (called by `_suspension.suspend`, turn held) ---------------------------

    def suspend(self, generation: int, step: Suspended) -> Any:
        """Await ``step.awaitable`` in a task of this loop; `SUSPENDED`, or what
        `Cell.process` returns if it could not be started."""
        cell = self.cell
        try:
            task = asyncio.ensure_future(step.awaitable, loop=self.loop)
        except BaseException as exc:  # not awaitable here (a future of another loop...)
            if inspect.iscoroutine(step.awaitable):
                step.awaitable.close()  # never started: no "never awaited" warning
            return cell.process(self.message, generation, _raiser(step, exc))
        step.__traceback__ = None  # keep no finished frames alive while it waits
        self.generation = generation
        self.step = step
        self.task = task
        with cell.commit_lock:  # a fence reads ``awaiting`` under it
            live = cell.generation == generation
            if live:
                cell.awaiting = self
        if not live:  # fenced meanwhile: it goes on with the cancellation
            task.cancel()
        task.add_done_callback(self._ready)
        return SUSPENDED

    def cancel(self) -> None:
        """Cancel the awaited task (a fence: the actor was given up on), from
        any thread. With the loop closed, go on here: nothing runs there now."""
        task = self.task
        if task is None:
            return
        try:
            self.loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop has closed: its callbacks will never run
            self._ready(task)

    def _ready(self, task: asyncio.Future[Any]) -> None:
        """The awaited task is done (on the loop), or will never be (its loop
        closed): go on with the request."""
        if self.task is not task:
            return  # pragma: no cover - gone on already (its loop closed)
        step = self.step
        assert step is not None
        if not task.done() or task.cancelled():
            self._go_on(_raiser(step, concurrent.futures.CancelledError()))
            return
        error = task.exception()
        if error is not None:
            self._go_on(_raiser(step, error))
        else:
            value = task.result()
            self._go_on(lambda _snapshot, _request: step.resume(value))

    def _go_on(self, outcome: Callable[[Any, Any], Any]) -> None:
        """The request goes on with ``outcome`` (the behaviour's next step); at
        its end, give the turn back. Never raises."""
        cell = self.cell
        self.task = self.step = None
        if cell.awaiting is self:
            cell.awaiting = None
        token = loop_turn.set(self)
        cell_token = current_cell.set(cell)
        try:
            crash = cell.process(self.message, self.generation, outcome)
        except BaseException as exc:  # an error in the runtime itself
            crash = exc
        finally:
            current_cell.reset(cell_token)
            loop_turn.reset(token)
        if crash is SUSPENDED:
            return  # the next awaitable: the turn stays held
        mailbox = cell.mailbox
        mailbox.give_turn(self.turn)
        if mailbox.queue or not cell.ready:
            mailbox.kick()  # what was queued behind it goes to a worker
        owner = self.owner
        if crash is not None and crash is not FENCED and owner is not None:
            owner.crashed(crash, self.message)


def _raiser(step: Suspended | None, error: BaseException) -> Callable[[Any, Any], Any]:
    """The behaviour's next step with ``error`` thrown in where it awaited
    (called as the behaviour is, with arguments it does not need)."""
    assert step is not None

    def outcome(_snapshot: Any, _request: Any) -> Any:
        return step.resume(None, error)

    return outcome


class LoopSlots:
    """The inline requests one event loop may still run in this round, and
    the calls waiting for a later round (see the module). Used on the loop's
    thread only.

    A round starts with `_refill`, first in a loop iteration while the loop
    runs inline requests: the calls it woke last time go on in this
    iteration, each with a slot of the round; the slots left go to calls
    made in it once those have gone on; and it wakes up to `ROUND` waiting
    calls, in order, for the next iteration.
    """

    __slots__ = ("free", "loop", "parked", "refill_due", "waking")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: Slots left in this round for calls made now.
        self.free = ROUND
        #: The calls waiting for a round, oldest first.
        self.parked: collections.deque[asyncio.Future[None]] = collections.deque()
        #: Calls woken by `_refill` that have not gone on yet: a call made
        #: meanwhile waits behind them, so that calls go in the order made.
        self.waking = 0
        self.refill_due = False

    def take(self) -> bool:
        """Take a slot of this round; False if none is left, or calls wait."""
        if self.free and not self.parked and not self.waking:
            self.free -= 1
            if not self.refill_due:
                self.refill_due = True
                self.loop.call_soon(self._refill)  # once the loop serves its callbacks
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot of a later round, behind the calls already waiting.
        Cancelled meanwhile: nothing was sent."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.parked.append(waiter)
        if not self.refill_due:
            self.refill_due = True
            self.loop.call_soon(self._refill)
        try:
            await waiter
        finally:
            if waiter.done() and not waiter.cancelled():  # woken (maybe cancelled since)
                self.waking -= 1

    def _refill(self) -> None:
        """A new round (see the class)."""
        self.free = ROUND - self.waking  # the woken calls go on in this iteration
        parked = self.parked
        self.refill_due = bool(parked) or self.waking > 0
        if self.refill_due:
            # Scheduled before the wake-ups below: the next round starts first
            # in the next iteration, before the calls woken now go on.
            self.loop.call_soon(self._refill)
        woken = 0
        while woken < ROUND and parked:
            waiter = parked.popleft()
            if not waiter.done():  # else cancelled while it waited
                waiter.set_result(None)
                woken += 1
        self.waking += woken


class _Current(threading.local):
    """Per thread: the `LoopSlots` of the loop it runs (one at a time)."""

    slots: LoopSlots | None = None


_current = _Current()


def slots_of(loop: asyncio.AbstractEventLoop) -> LoopSlots:
    """The `LoopSlots` of ``loop``, the running loop of the calling thread.

    A thread runs one loop at a time, so it keeps the slots of the last one
    (and that loop, until it runs another or ends)."""
    slots = _current.slots
    if slots is None or slots.loop is not loop:
        slots = _current.slots = LoopSlots(loop)
    return slots
