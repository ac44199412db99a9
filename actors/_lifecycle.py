"""Start, restart, retire and stop of a cell's incarnations, in one place.

An *incarnation* is one life of a cell between a start and a crash or a
stop: a generation number (only the current generation may commit), the
epoch of the supervisor's decision that started it, and a host's `Worker`
that runs its turns. When one crashes, its supervisor starts the next from
the last committed snapshot, on the same mailbox, so nothing queued is lost.

The rules that keep this safe hold here by construction:

- At most one incarnation takes requests: `Lifecycle.start` retires the
  previous one before the next exists, and a retired incarnation runs
  nothing more (a turn it is handed goes back to the cell).
- One failure, one decision: an incarnation reports its failure with the
  epoch it was started under, and the supervisor ignores a failure of an
  incarnation that an earlier decision already replaces.
- A new incarnation starts (recovers from the store, runs ``on_start``) in
  its first turn, so after the previous one has finished its last message.
- Stopping drains the mailbox in order (a stop request queued behind the
  rest), or refuses what is queued at once; either way every request gets an
  answer. Giving up on a busy actor fences it: it commits nothing more.
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any, Protocol

from stateward.core._suspend import Suspended

from ._backpressure import room_made, waiting
from ._cell import FENCED, SUSPENDED, Cell
from ._context import current_cell
from ._host import Host, Worker
from ._lifecycle_stop import LifecycleStop, Stop, queued_stop, stop_request
from ._reply import Reply
from ._suspension import Suspension, resume_turn, suspend
from .stores._group_commit import flush_staged, staging

__all__ = ["Incarnation", "Lifecycle", "Parent", "Stop", "stop_request"]

logger = logging.getLogger("stateward.actors")


class Parent(Protocol):
    """What a lifecycle tells its supervisor (a `Supervisor`, one layer up).

    Each call runs on the thread where it happened: the worker that ran the
    turn, or a caller's thread for an inline call or a stop.
    """

    def _child_failed(
        self, target: Any, cause: BaseException, epoch: int | None = None
    ) -> None: ...

    def _child_exited(self, target: Any, epoch: int | None = None) -> None: ...


class Incarnation:
    """One life of a cell, served by one worker of a host.

    An incarnation that started on the creating thread (`Lifecycle.start`)
    has no worker until its first turn: an idle cell holds none. It is
    attached to its host when a turn is first handed to it (`wake`); one
    retired before that never is, and ends at once (`retire`).
    """

    __slots__ = (
        "cell",
        "epoch",
        "generation",
        "lifecycle",
        "retired",
        "started",
        "suspended",
        "worker",
    )

    def __init__(self, lifecycle: Lifecycle, epoch: int, *, attach: bool = True) -> None:
        self.lifecycle = lifecycle
        self.cell = lifecycle.cell
        self.epoch = epoch
        self.generation = -1  # taken in its first turn
        self.started = False
        self.retired = False
        #: A request of its turn waiting for an awaitable (`_suspension.py`).
        self.suspended: Suspension | None = None
        self.worker: Worker | None = lifecycle.host.attach(self) if attach else None

    def attached(self) -> Worker | None:
        """Its worker, attaching one first if it has none; None if retired
        before it had one."""
        worker = self.worker
        if worker is None:
            with self.lifecycle.ready_lock:  # against `retire`: never attach a retired one
                if self.retired:
                    return None
                worker = self.worker
                if worker is None:
                    self.worker = worker = self.lifecycle.host.attach(self)
        return worker

    def wake(self) -> bool:
        """Hand a turn (held by the caller) to the worker, attaching one
        first if it has none; False if retired: the caller keeps the turn."""
        worker = self.attached()
        return worker is not None and worker.wake()

    @property
    def name(self) -> str:
        """The actor's name, for reports."""
        return self.lifecycle.cell.name

    @property
    def label(self) -> str:
        """A label for a worker's thread."""
        return f"stateward:{self.cell.runtime.name}:{self.cell.name}"

    # -- turns (called by the host's worker) ---------------------------------------------

    def run_turn(self, budget: int) -> None:
        """Run up to ``budget`` messages, the start first if it has not run;
        then give the turn back. The caller holds the cell's turn."""
        suspension = self.suspended
        if suspension is not None:  # the turn goes on with its suspended request
            resume_turn(self, suspension, budget)
            return
        cell = self.cell
        mailbox = cell.mailbox
        turn = mailbox.turn
        held = True
        token = current_cell.set(cell)
        try:
            if self.retired or (not self.started and not self._start()):
                return
            generation = self.generation
            queue = mailbox.queue
            if queue is None:
                return  # nothing queued (a start with nothing waiting)
            process = cell.process
            for _ in range(budget):
                if self.retired:
                    return
                try:
                    message = queue.popleft()
                except IndexError:
                    mailbox.drop_queue(queue)  # idle: the queue exists only while requests wait
                    return
                if waiting:  # senders wait for room in a full mailbox (backpressure)
                    room_made(mailbox)
                if not message.claim():
                    continue  # withdrawn: its caller already gave up on it
                if type(message.request) is Stop:
                    if cell.staged is not None:
                        flush_staged()  # what ran before the stop is answered first
                    self._stop_for(message.request, message)
                    return
                try:
                    crash = process(message, generation)
                except BaseException as exc:  # an error in the runtime itself
                    crash = exc
                if crash is not None:
                    if crash is SUSPENDED:
                        held = False  # the suspended request keeps the turn
                    elif crash is not FENCED:
                        self.crashed(crash, message)
                    return  # suspended, fenced or crashed: this run takes nothing more
            if not queue:
                mailbox.drop_queue(queue)
        except BaseException as exc:  # pragma: no cover - a fault of the runtime itself
            logger.exception("actor %r: a turn failed", cell.name)
            self.crashed(exc)
        finally:
            current_cell.reset(token)
            # A suspended request keeps the turn (`_suspension.py`). With
            # commits staged by a pooled worker's batch, the batch gives the
            # turn back once they are written and answered (_commit_batch).
            if held and (cell.staged is None or not staging.batch.hold(cell, turn)):
                mailbox.give_turn(turn)
                if mailbox.queue or not cell.ready:
                    mailbox.kick()  # work is left, or another incarnation waits to start

    def suspend(self, message: Reply[Any], generation: int, step: Suspended) -> Any:
        """A request of its turn waits for ``step.awaitable`` (`_suspension.py`)."""
        return suspend(self.cell, message, generation, step)

    def _start(self) -> bool:
        """The first turn: take the generation, recover, run ``on_start``."""
        cell = self.cell
        lifecycle = self.lifecycle
        self.started = True
        if cell.mailbox.closed_reason is not None:
            self.retire()  # stopped while it was starting: it takes nothing
            return False
        with cell.commit_lock:
            cell.generation += 1
            self.generation = cell.generation
            cell.running = self
        was_passive = cell.passive
        if self.worker is not None:  # on a worker (not on the creating thread)
            cell.thread = threading.current_thread()
        try:
            if self.generation > 1 and cell.store is not None:
                # A restart recovers the way a reboot does: from the store; so
                # does an activation after a passivation.
                cell.publish(cell.store.recover(cell.name, cell.codec))  # type: ignore[arg-type]
                cell.passive = False
                timers = getattr(cell.runtime, "machine_timers", None)
                if timers is not None:  # what it recovered may hold other timers
                    timers.arm(cell, cell.snapshot)
            hook = cell.on_start
            if hook is not None:
                result = hook(cell.view(cell.snapshot))
                if inspect.isawaitable(result):
                    cell.run_async(result)
        except BaseException as exc:
            cell.last_error = exc
            logger.error("actor %r: starting failed: %r", cell.name, exc, exc_info=exc)
            self.crashed(exc)
            return False
        with lifecycle.ready_lock:
            if self.retired:
                return False
            cell.ready = True
        passivation = cell.runtime.passivation
        if passivation is not None:
            passivation.activated(lifecycle, was_passive)
        return True

    def _stop_for(self, op: Stop, message: Reply[Any]) -> None:
        cell = self.cell
        cell.messages += 1
        supervisor = cell.supervisor
        if op.exit and supervisor is not None:
            # Stopped on its own: its supervisor decides first. One it does
            # not restart has left its children and the runtime's actors
            # before the mailbox closes (there, or below), so no one is
            # refused while the child is still listed.
            lifecycle = self.lifecycle
            if lifecycle.restart_type == "permanent":
                self.retire()  # its restart starts the next incarnation
            supervisor._child_exited(lifecycle, self.epoch)
            if lifecycle.epoch != self.epoch:
                # Restarted, by this decision or an earlier one (a sibling's
                # crash): the mailbox stays open, so what is sent meanwhile
                # waits for the next incarnation.
                self.retire()
                message.set_result(None)
                return
            # Not restarted, and a stop from outside may be under way (its
            # supervisor stopping, or handle.stop()): it stops as that stop
            # would have, for good if that one is, so its name is given back.
            op = queued_stop(cell) or op
        if op.terminal:
            cell.stop_reason = op.reason
        cell.mailbox.close(op.reason)
        self.retire()
        message.set_result(None)

    def ended(self) -> None:
        """The worker runs nothing more of this incarnation."""
        cell = self.cell
        if not self.retired:
            # The worker ended on its own (a fault in the host): a crash of
            # this incarnation, and the mailbox is kept.
            self.crashed(RuntimeError(f"the worker of actor {cell.name!r} stopped unexpectedly"))
        lifecycle = self.lifecycle
        with lifecycle._lock:  # against a restart reopening the mailbox meanwhile
            stopped = lifecycle.incarnation is self and cell.mailbox.closed_reason is not None
            if stopped:
                cell.mark_stopped()
        if stopped and cell.stop_reason is not None:
            cell.release()

    # -- ending -----------------------------------------------------------------------------

    def retire(self, *, end_here: bool = False, locked: bool = False) -> bool:
        """Run nothing after the current message; the worker then ends (on
        this thread, if ``end_here`` and the worker runs nothing: the caller
        holds no lifecycle lock).

        One with no worker (never handed a turn) ends here and now, unless
        the caller holds its lifecycle's lock (``locked``): then this returns
        True and the caller calls `ended` once it has let the lock go.
        """
        lifecycle = self.lifecycle
        with lifecycle.ready_lock:
            if self.retired:
                return False
            self.retired = True
            if lifecycle.incarnation is self:
                self.cell.ready = False
            worker = self.worker  # stays None once retired (see `wake`)
        if worker is None:
            if locked:
                return True
            self.ended()
        elif end_here:
            worker.retire(end_here=True)
        else:
            worker.retire()
        return False

    def crashed(self, cause: BaseException, message: Reply[Any] | None = None) -> None:
        """This incarnation failed: retire it, let the supervisor decide, then
        answer ``message`` (the request that crashed it) with `ActorCrashed`.

        The answer comes last, so that its caller finds the restart already
        decided and counted.
        """
        try:
            self.retire()
            supervisor = self.cell.supervisor
            if supervisor is not None:
                supervisor._child_failed(self.lifecycle, cause, self.epoch)
        finally:
            if message is not None:
                self.cell.answer_crash(message, cause)


#: Each lifecycle's lock (`Lifecycle._lock`) and ready lock, shared by
#: stripes: no lifecycle has a lock of its own. A lifecycle's lock may be
#: held while its ready lock, a worker's lock or a host's lock is taken (never
#: the other way round, and never another lifecycle's lock); the others are
#: leaves.
_STRIPES = 64
_locks = tuple(threading.Lock() for _ in range(_STRIPES))
_ready_locks = tuple(threading.Lock() for _ in range(_STRIPES))


class Lifecycle(LifecycleStop):
    """Starts, restarts, retires and stops one cell's incarnations on a host.

    Its supervisor holds it as the child; the runtime and the handle stop the
    actor through it.
    """

    __slots__ = (
        "_child",
        "cell",
        "consecutive",
        "epoch",
        "host",
        "incarnation",
        "last_start",
        "pending",
        "restart_type",
    )

    #: As its supervisor's record of it (`_supervision.ChildRecord`): an
    #: actor, not a supervisor.
    is_supervisor = False

    def __init__(self, cell: Cell, host: Host) -> None:
        self.cell = cell
        self.host = host
        self.restart_type = "permanent"
        #: The supervisor's count of restarts decided for this actor: each
        #: incarnation is born with the epoch of the decision that started it,
        #: so a failure of an incarnation already being replaced is told apart.
        self.epoch = 0
        #: The newest incarnation; starting another retires it first.
        self.incarnation: Incarnation | None = None
        #: Itself while it is a child of a supervisor (then it is that
        #: supervisor's record of it: `_supervision.ChildRecord`), else None.
        self._child: Any = None
        #: The supervisor's bookkeeping of its restarts: how many in a row,
        #: when it last started (0.0 until a restart), a delayed one pending.
        self.consecutive = 0
        self.last_start = 0.0
        self.pending: Any = None
        cell.lifecycle = self
        cell.mailbox.owner = self  # it dispatches the turn from now on

    @property
    def name(self) -> str:
        return self.cell.name

    @property
    def target(self) -> Lifecycle:
        """What its supervisor acts on: itself (see ``is_supervisor``)."""
        return self

    @property
    def _lock(self) -> threading.Lock:
        """Orders starts, restarts and the end of an incarnation."""
        return _locks[(id(self) >> 4) % _STRIPES]

    @property
    def ready_lock(self) -> threading.Lock:
        """Orders `Incarnation.retire` against the end of a start (``cell.ready``)."""
        return _ready_locks[(id(self) >> 4) % _STRIPES]

    def __repr__(self) -> str:
        return f"<Lifecycle of {self.name!r}>"

    # -- starting ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a new incarnation, retiring the previous one first.

        It starts (takes its generation, recovers, runs ``on_start``) in its
        first turn: once the previous incarnation, or an inline caller, has
        finished its last message.
        """
        with self._lock:
            previous = self.incarnation
            end_previous = previous is not None and previous.retire(locked=True)
            inline = previous is None and self.host.starts_inline and self.cell.on_start is None
            self.incarnation = incarnation = Incarnation(self, self.epoch, attach=not inline)
        if end_previous:
            previous.ended()  # type: ignore[union-attr]
        if not inline or not self._start_here(incarnation):
            self.cell.mailbox.kick()

    def _start_here(self, incarnation: Incarnation) -> bool:
        """Start a first incarnation with nothing to run at its start (no
        ``on_start``; a first start recovers nothing) on the calling thread,
        if its turn is free: no turn on a worker for it. True if it did, and
        looked at the queue when it gave the turn back."""
        mailbox = self.cell.mailbox
        turn = mailbox.take_turn()
        if not turn:
            return False  # a sender took it: the turn it dispatched starts it
        try:
            if mailbox.turn == turn and not incarnation.started and not incarnation.retired:
                incarnation._start()
        finally:
            mailbox.give_turn(turn)
        if mailbox.queue or not incarnation.started:
            mailbox.kick()  # a request arrived while we held the turn
        return True

    def restart(self) -> None:
        """Start again after a crash, or after its supervisor gave up and was
        restarted by its own parent: then the mailbox takes requests again and
        the actor no longer counts as stopped."""
        cell = self.cell
        with self._lock:
            if cell.stop_reason is None:
                cell.mailbox.reopen()
                cell.clear_stopped()
        self.start()

    def retire(self) -> None:
        """End the current incarnation after its current message."""
        with self._lock:
            incarnation = self.incarnation
        if incarnation is not None:
            incarnation.retire()

    def _refuse(self, reply: Reply[Any]) -> None:
        """Answer a request its closed mailbox refused (as `Mailbox.Owner`)."""
        self.cell._refuse(reply)

    def dispatch(self, turn: int) -> None:
        """Hand the cell's ``turn`` (held by the caller) to the incarnation that
        should run, or give it back if none should. A passivated actor with
        a message waiting gets a new incarnation, which recovers it."""
        mailbox = self.cell.mailbox
        incarnation = self.incarnation
        if self.cell.passive and mailbox.queue and (incarnation is None or incarnation.retired):
            incarnation = self._activate()
        if (
            incarnation is not None
            and not incarnation.retired
            and (mailbox.queue or not incarnation.started)
        ):
            worker = incarnation.worker
            if worker.wake() if worker is not None else incarnation.wake():
                return
        mailbox.give_turn(turn)
        incarnation = self.incarnation
        if (
            incarnation is not None
            and not incarnation.retired
            and (mailbox.queue or not incarnation.started)
        ):
            mailbox.kick()  # it became runnable while we held the turn

    # -- passivation ---------------------------------------------------------------------------

    def passivate(self) -> bool:
        """Take an idle actor out of memory: end its incarnation and drop its
        snapshot, which is in the store; its next message activates it again.

        Only an actor that has started, runs nothing, has nothing queued and
        takes requests is passivated; False otherwise (nothing changes).
        Holding the cell's turn meanwhile keeps every sender's message queued,
        in order, for the activation.
        """
        cell = self.cell
        if cell.store is None:
            return False
        mailbox = cell.mailbox
        turn = self._take_idle_turn()
        if not turn:
            return False
        try:
            with self._lock:
                incarnation = self.incarnation
                if (
                    incarnation is None
                    or incarnation.retired
                    or not incarnation.started
                    or mailbox.closed_reason is not None  # a stop under way (`stop_now`)
                ):
                    return False
                end_now = incarnation.retire(locked=True)
                cell.passive_epoch = incarnation.epoch
                worker = incarnation.worker
                if worker is None or worker.thread is None:
                    # Pooled, or never on a worker: nothing of it to wait for.
                    # One with a thread of its own stays, so that a stop joins it.
                    self.incarnation = None
                cell.drop_snapshot()
            if end_now:  # it had no worker: it ends here, now that the lock is free
                incarnation.ended()
            return True
        finally:
            self._give_back_turn(turn)  # a message that came meanwhile activates it

    def _activate(self) -> Incarnation | None:
        """A passivated actor got a message: its next incarnation (it recovers
        from the store when it starts). The caller holds the cell's turn.

        Not once a stop has begun, nor once its supervisor has decided
        anything since the passivation (an activation that failed, a
        sibling's crash): the supervisor's restart starts it then, after the
        backoff, and the message waits for it.
        """
        with self._lock:
            incarnation = self.incarnation
            if (
                self.cell.passive
                and (incarnation is None or incarnation.retired)
                and self.epoch == self.cell.passive_epoch
                and self.cell.mailbox.closed_reason is None  # not once a stop decided
            ):
                self.incarnation = Incarnation(self, self.epoch)
            return self.incarnation
