"""A cell's turn suspended on an async hook, without holding a thread.

A cell's behaviour is made with ``suspend=True``: at an awaitable (a coroutine
hook or guard of a machine, an async ``modify`` function) it raises
`Suspended` instead of waiting. `Cell.process` hands it to `suspend`, here,
with the cell's turn held:

- the awaitable goes to the runtime's event loop, and the request is
  *suspended*: `Cell.process` returns `SUSPENDED`, and whoever ran it (a
  host's worker in `Incarnation.run_turn`, or a blocked caller running an idle
  cell inline) returns at once *without giving the turn back*. The thread is
  free for other cells; the cell's next messages wait, in order, because its
  turn is still held (a stop request queued behind waits too).
- the incarnation's worker counts the turn as still running (`Worker.hold`):
  a retirement meanwhile waits for it to end, as it would for a turn that
  blocks.
- when the awaitable is done (on the loop's thread), `Worker.resume` queues
  the rest of the turn on the host; the worker that takes it calls
  `resume_turn` (from `Incarnation.run_turn`): the request goes on where it
  stopped (`Cell.process` again, with the awaitable's result): commit,
  publish, after-commit work, answer; then the rest of the turn.

Deadlines and shutdowns find the awaited future in ``cell.awaiting``, as they
did when a worker blocked on it: they cancel it, the request goes on with
`concurrent.futures.CancelledError` thrown in, and `Cell.process` sees its
generation fenced off, so it commits nothing (a deadline's watchdog has
answered the caller; an abandoned actor's request is answered `ActorStopped`).
A crash while it goes on crashes the actor, as any request does.

A worker that cannot hold a turn (a dedicated host's thread has nothing else
to run: `DedicatedWorker.hold` says no) gets today's behaviour: the awaitable
is awaited right there, on the thread that runs the turn. A request run
inline on the event loop that awaits it (`_loop_turn.LoopTurn`) has its
awaitable awaited on that loop instead, its turn held the same way.

This module sits with the hosts, above the cells: `Cell.process` reaches it
through the running incarnation (`Running.suspend`), and it knows of the
incarnation and its worker only the small protocols below.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import inspect
from typing import Any, NoReturn, Protocol

from stateward.core._suspend import Suspended

from ._cell import FENCED, SUSPENDED, Cell
from ._context import current_cell
from ._loop_turn import loop_turn
from ._reply import Reply

__all__ = ["Suspends", "Suspension", "resume_turn", "suspend"]


class HoldingWorker(Protocol):
    """What `suspend` needs of the worker of the incarnation that runs the turn."""

    def hold(self) -> bool: ...

    def resume(self) -> None: ...


class Suspends(Protocol):
    """The incarnation that ran the suspended request (`_lifecycle.Incarnation`)."""

    #: The suspended request to go on with in its next turn, if any.
    suspended: Suspension | None

    @property
    def worker(self) -> HoldingWorker | None: ...

    def attached(self) -> HoldingWorker | None: ...

    def run_turn(self, budget: int) -> None: ...

    def crashed(self, cause: BaseException, message: Reply[Any] | None = None) -> None: ...


class Suspension:
    """One request of a cell, waiting for one awaitable, its turn held."""

    __slots__ = ("cell", "future", "generation", "message", "owner", "step", "turn")

    def __init__(
        self,
        cell: Cell,
        message: Reply[Any],
        generation: int,
        turn: int,
        owner: Suspends,
        step: Suspended,
    ) -> None:
        self.cell = cell
        self.message = message
        self.generation = generation
        #: The turn the request holds (a deadline's fence may free the
        #: mailbox's meanwhile: this token then gives back nothing).
        self.turn = turn
        self.owner = owner
        self.step = step
        self.future: concurrent.futures.Future[Any] | None = None

    def ready(self, future: concurrent.futures.Future[Any]) -> None:
        """The awaitable is done (on the event loop's thread, or on the thread
        that cancelled it): queue the rest of the turn on the host."""
        worker = self.owner.worker
        assert worker is not None  # attached by `suspend`
        worker.resume()

    def outcome(self, snapshot: Any, request: Any) -> Any:
        """On the worker that goes on, in place of the behaviour (see
        `Cell.process`): its next step, given what the awaitable returned or
        raised."""
        future = self.future
        assert future is not None and future.done()
        try:
            value = future.result(0)
        except BaseException as exc:
            return self.step.resume(None, exc)
        return self.step.resume(value)


def suspend(cell: Cell, message: Reply[Any], generation: int, step: Suspended) -> Any:
    """Suspend ``message`` on ``step.awaitable`` (called by `Cell.process`,
    with the turn held, for a behaviour that raised ``step``).

    Returns `SUSPENDED`, or what `Cell.process` returns when the request
    could not be suspended: fenced off already, or waited for right here.
    """
    with cell.commit_lock:  # against a fence moving the generation (and the turn) on
        live = cell.generation == generation
        owner: Suspends | None = cell.running  # type: ignore[assignment]
        turn = cell.mailbox.turn
    if not live or owner is None:  # fenced off already: it goes on no further
        step.close()
        return cell.process(message, generation, _cancelled)
    on_loop = loop_turn.get()
    if on_loop is not None and on_loop.message is message:
        return on_loop.suspend(generation, step)  # inline on the awaiting loop: awaited there
    worker = owner.attached()  # one that started inline has none yet
    if worker is None or not worker.hold():
        return cell.process(message, generation, lambda *_: _wait_here(cell, generation, step))
    step.__traceback__ = None  # keep no finished frames of this thread alive
    suspension = Suspension(cell, message, generation, turn, owner, step)
    owner.suspended = suspension
    # The awaitable runs in a copy of the request's context (what its hooks
    # have set so far included); the request goes on in the context itself.
    context = message.context
    assert context is not None  # it has not been answered: it runs
    future = suspension.future = _start(cell, generation, step, context.copy())
    future.add_done_callback(suspension.ready)
    return SUSPENDED


def _start(
    cell: Cell, generation: int, step: Suspended, context: contextvars.Context | None = None
) -> concurrent.futures.Future[Any]:
    """Start ``step.awaitable`` on the runtime's event loop, in ``context``
    (by default a copy of the calling thread's), where a fence of
    ``generation`` (a deadline, a shutdown giving up) cancels it: one that
    came first, before it was started, cancels it at once."""
    try:
        future = cell.runtime._submit_async(step.awaitable, cell, context)
    except BaseException as exc:  # no loop to run it on: the awaitable fails
        if inspect.iscoroutine(step.awaitable):
            step.awaitable.close()  # never started: no "never awaited" warning
        future = concurrent.futures.Future()
        future.set_exception(exc)
    with cell.commit_lock:  # the fence reads ``awaiting`` under it
        live = cell.generation == generation
        if live:
            cell.awaiting = future
    if not live:
        future.cancel()
    return future


def _cancelled(snapshot: Any, request: Any) -> NoReturn:
    raise concurrent.futures.CancelledError()


def _wait_here(cell: Cell, generation: int, step: Suspended) -> Any:
    """Await ``step.awaitable`` on the thread that runs the turn (a worker
    that cannot hold a suspended turn), then go on."""
    future = _start(cell, generation, step)
    try:
        value = future.result()
    except BaseException as exc:
        return step.resume(None, exc)
    finally:
        if cell.awaiting is future:
            cell.awaiting = None
    return step.resume(value)


def resume_turn(incarnation: Suspends, suspension: Suspension, budget: int) -> None:
    """Go on with the suspended request, then with the rest of the turn.

    Called by `Incarnation.run_turn` on the worker the host gave the turn to;
    the suspended request holds the turn, and this gives it back. Never raises.
    """
    incarnation.suspended = None
    cell = suspension.cell
    message = suspension.message
    if cell.awaiting is suspension.future:
        cell.awaiting = None
    token = current_cell.set(cell)
    try:
        crash = cell.process(message, suspension.generation, suspension.outcome)
    except BaseException as exc:  # an error in the runtime itself
        crash = exc
    finally:
        current_cell.reset(token)
    if crash is SUSPENDED:
        return  # the next awaitable: the turn stays held
    if crash is None:
        incarnation.run_turn(budget - 1)  # the rest of the turn; it gives the turn back
        return
    try:
        if crash is not FENCED:
            incarnation.crashed(crash, message)
    finally:
        mailbox = cell.mailbox
        mailbox.give_turn(suspension.turn)
        if mailbox.queue or not cell.ready:
            mailbox.kick()  # work is left, or another incarnation waits to start
