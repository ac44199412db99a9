"""The generic state actor: one immutable snapshot, one message per transaction.

A `Cell` is what a handle and its actor share for the actor's whole life: the
published snapshot (read by any thread with no lock and no message), the
mailbox, the counters and the observers. The running part is an *incarnation*:
one pykka actor with its own thread and a generation number. When an
incarnation crashes, its supervisor starts the next one from the last committed
snapshot, on the same mailbox, so nothing queued is lost.

For each request an incarnation runs the cell's behaviour (from core) on the
current snapshot and the request's message. Only when the behaviour returns
normally, and only while the incarnation's generation is still the cell's, is
the outcome's snapshot published; then its after-commit work and the observers
run, then the caller is answered. A behaviour that raises leaves the snapshot
exactly as it was.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from stateward.core import (
    HookFailure,
    InvalidArgument,
    InvalidTransition,
    UnencodableValueError,
    UnknownVersionError,
    run_after_commit,
)

from ._context import current_cell
from ._errors import ActorCrashed, ActorStopped, DeadlineExceeded
from ._mailbox import Inbox, Mailbox
from ._reply import Reply

if TYPE_CHECKING:
    from stateward.core._behaviours import Behaviour
    from stateward.core._persist import KindCodec

    from ._clock import Cancel
    from ._runtime import Runtime
    from ._supervisor import Supervisor

logger = logging.getLogger("stateward.actors")


#: Errors that refuse a request (bad input, a veto) rather than reveal a fault:
#: they never crash an actor, whatever its ``on_error``. They describe the
#: request's content; anything else raised while handling it comes from code
#: (a hook, a guard, a ``modify`` function) and ``on_error`` decides.
REFUSALS: tuple[type[BaseException], ...] = (
    InvalidArgument,
    InvalidTransition,
    UnencodableValueError,
    UnknownVersionError,
)


@dataclass(frozen=True, slots=True)
class ActorStats:
    """Counters of one actor, as `Runtime.stats` returns them.

    Attributes:
        name: the actor's name.
        kind: ``machine``, ``manager`` or ``config``.
        alive: whether it still takes messages.
        messages: requests handled (successful or not).
        failures: requests whose behaviour raised (the caller got the error).
        hook_errors: after-commit hooks, observers and callbacks that raised.
        queue_depth: messages waiting in the mailbox.
        version: the published snapshot's version.
        last_error: the most recent failure or hook error, as ``repr``.
        restarts: how many restarts its supervisor decided on; counted before
            the request that crashed it is answered.
        generation: the current incarnation's number: 1 for the first, one more
            for each restart, and one more again for an incarnation fenced off.
    """

    name: str
    kind: str
    alive: bool
    messages: int
    failures: int
    hook_errors: int
    queue_depth: int
    version: int
    last_error: str | None
    restarts: int = 0
    generation: int = 1


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """An error that could not go to a caller: an after-commit hook, observer or
    done-callback that raised after the commit. The commit stands.

    Attributes:
        actor: the actor's name.
        source: ``after_commit``, ``observer`` or ``callback``.
        name: the function's name.
        error: the exception.
    """

    actor: str
    source: str
    name: str
    error: BaseException


class Cell:
    """What a handle and its actor share. Only the running incarnation (or a
    caller holding the turn) writes the snapshot and the counters; any thread
    may read them."""

    #: The kind's behaviour from core, bound to this cell; set by the handle
    #: right after it makes the cell, before the actor starts.
    behaviour: Behaviour

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        kind: str,
        snapshot: Any,
        view: Callable[[Any], Any],
        version_of: Callable[[Any], int],
        *,
        on_error: str = "fail",
        deadline: float | None = None,
        on_start: Callable[[Any], Any] | None = None,
        codec: KindCodec | None = None,
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.kind = kind
        self.snapshot = snapshot
        #: The handle's ``__dict__``, when the handle shows ``snapshot`` as a
        #: plain attribute: every publish writes it there too.
        self.mirror: dict[str, Any] | None = None
        self.view = view
        self.version_of = version_of
        self.on_error = on_error
        self.deadline = deadline
        self.on_start = on_start
        self.codec = codec
        self.store = runtime.store if codec is not None else None
        self.released = False
        self.claimed = False
        self.recovered = False
        self.observers: tuple[Callable[[Any, Any], Any], ...] = ()
        self.observer_lock = threading.Lock()
        self.callback_lock = threading.Lock()
        self.mailbox = Mailbox(self._refuse)
        self.turn = threading.Lock()
        self.commit_lock = threading.Lock()
        self.supervisor: Supervisor | None = None
        self.restart_type = "permanent"
        self.generation = 0
        #: The supervisor's count of restarts decided for this actor: each
        #: incarnation is born with the epoch of the decision that started it,
        #: so a failure of an incarnation already being replaced is told apart.
        self.epoch = 0
        #: The newest incarnation; starting another retires it first, so at
        #: most one incarnation takes requests.
        self.incarnation: StateActor | None = None
        #: The incarnation that owns ``generation`` (the one holding the turn).
        self.running: StateActor | None = None
        self.lifecycle = threading.Lock()
        #: The async hook the turn's holder is waiting for, if any.
        self.awaiting: concurrent.futures.Future[Any] | None = None
        self.thread: threading.Thread | None = None
        self.ready = False
        self.inflight: Reply[Any] | None = None
        self._watchdog: Cancel | None = None
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.stop_reason: str | None = None
        self.messages = 0
        self.failures = 0
        self.hook_errors = 0
        self.restarts = 0
        self.last_error: BaseException | None = None

    # -- errors and reports ------------------------------------------------------------

    def _refuse(self, reply: Reply[Any]) -> None:
        if reply.claim():
            reply.set_exception(self.stopped_error())

    @property
    def default_timeout(self) -> float:
        return self.runtime.default_timeout

    def stopped_error(self) -> ActorStopped:
        # The mailbox keeps the first reason it was closed for (a supervisor
        # giving up, say), which a later stop of the same actor must not hide.
        reason = self.mailbox.closed_reason or self.stop_reason or "stopped"
        return ActorStopped(self.name, reason)

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """Run a hook's awaitable on the runtime's event loop, to completion.

        A fence (a missed deadline) or a shutdown that gives up on the actor
        cancels it: the coroutine sees `asyncio.CancelledError` and this thread
        goes on.
        """
        future = self.runtime._async_host().submit(awaitable, self)
        self.awaiting = future
        try:
            return future.result()
        finally:
            if self.awaiting is future:
                self.awaiting = None

    def report(self, source: str, name: str, error: BaseException) -> None:
        """Report an error that has no caller to go to: log, count, hand on."""
        self.hook_errors += 1
        self.last_error = error
        logger.error(
            "actor %r: %s %r raised after the commit (the commit stands): %r",
            self.name,
            source,
            name,
            error,
            exc_info=error,
        )
        self.runtime._report(ErrorReport(self.name, source, name, error))

    def report_failures(self, failures: tuple[HookFailure, ...]) -> None:
        for failure in failures:
            self.report(failure.kind, failure.hook, failure.error)

    def publish(self, snapshot: Any) -> None:
        """Make ``snapshot`` the one readers see (outside a request: at start)."""
        self.snapshot = snapshot
        mirror = self.mirror
        if mirror is not None:
            mirror["snapshot"] = snapshot

    def notify_observers(self, old: Any, new: Any) -> None:
        observers = self.observers
        if not observers:
            return
        before, after = self.view(old), self.view(new)
        for fn in observers:
            try:
                result = fn(before, after)
                if inspect.isawaitable(result):
                    self.run_async(result)
            except Exception as exc:
                self.report("observer", getattr(fn, "__qualname__", repr(fn)), exc)

    def stats(self) -> ActorStats:
        error = self.last_error
        return ActorStats(
            name=self.name,
            kind=self.kind,
            alive=not self.stopped.is_set() and self.mailbox.closed_reason is None,
            messages=self.messages,
            failures=self.failures,
            hook_errors=self.hook_errors,
            queue_depth=self.mailbox.qsize(),
            version=self.version_of(self.snapshot),
            last_error=None if error is None else repr(error),
            restarts=self.restarts,
            generation=self.generation,
        )

    # -- running requests ------------------------------------------------------------------

    def is_crash(self, error: BaseException) -> bool:
        """Whether ``error``, raised by the behaviour on a request, crashes the actor."""
        if not isinstance(error, Exception):
            return True  # SystemExit, KeyboardInterrupt...: never just a failed request
        if isinstance(error, REFUSALS):
            return False
        return self.on_error == "restart"

    def process(self, message: Reply[Any], generation: int) -> BaseException | None:
        """Run one claimed request. Returns the cause if it crashed the actor.

        A request that crashed the actor is left unanswered here: `crashed`
        answers it once the supervisor has decided what follows, so that a
        caller who sees `ActorCrashed` also sees the restart counted.

        Runs with the turn held, on the incarnation's thread or inline on a
        blocked caller's thread.
        """
        self.messages += 1
        old = self.snapshot
        watched = self.deadline is not None
        if watched:
            self._watch(message, generation)
        try:
            commit = self.behaviour(old, message.request)
        except BaseException as exc:  # the snapshot is untouched
            if watched and not self._unwatch(message, generation):
                return None  # fenced meanwhile: the watchdog answered the caller
            if generation != self.generation:
                self._answer_fenced(message)
                return None
            self.failures += 1
            self.last_error = exc
            if self.is_crash(exc):
                return exc
            message.set_exception(exc)
            return None
        if watched:
            if not self._unwatch(message, generation):
                return None  # fenced: this incarnation may no longer commit
        elif generation != self.generation:  # fenced: a shutdown gave up on it
            self._answer_fenced(message)
            return None
        store = self.store
        if store is not None:
            try:
                store.commit(self.name, self.codec, old, commit.snapshot)  # type: ignore[arg-type]
            except BaseException as exc:  # not durable: not committed, and a crash
                self.failures += 1
                self.last_error = exc
                return exc
        new = commit.snapshot
        self.snapshot = new  # publish: readers see it from now on
        mirror = self.mirror
        if mirror is not None:
            mirror["snapshot"] = new
        try:
            after = commit.after
            if after is not None:
                self.report_failures(run_after_commit(after, self.run_async))
            if self.observers:
                self.notify_observers(old, commit.snapshot)
        finally:
            message.set_result(commit.reply)
        return None

    def _answer_fenced(self, message: Reply[Any]) -> None:
        """Answer a request that an incarnation fenced off meanwhile ran: it
        committed nothing."""
        reason = self.stop_reason or self.mailbox.closed_reason
        error: BaseException
        if reason is not None:
            error = ActorStopped(
                self.name,
                f"{reason}; it was still handling {message.describe()} when the time to "
                "stop ran out, so nothing of that request was committed",
            )
        else:
            error = ActorCrashed(
                self.name,
                message.describe(),
                RuntimeError("this incarnation was replaced while it handled the request"),
            )
        message.set_exception(error)

    def _answer_crash(self, message: Reply[Any], cause: BaseException) -> None:
        if message.done():
            return
        crashed = ActorCrashed(self.name, message.describe(), cause)
        crashed.__cause__ = cause
        message.set_exception(crashed)

    # -- the deadline watchdog -------------------------------------------------------------

    def _watch(self, message: Reply[Any], generation: int) -> None:
        self.inflight = message
        deadline = self.deadline
        assert deadline is not None
        self._watchdog = self.runtime.timer.call_later(
            deadline, lambda: self._deadline_passed(message, generation, deadline)
        )

    def _unwatch(self, message: Reply[Any], generation: int) -> bool:
        """End the watch; False if the watchdog fenced this incarnation first."""
        with self.commit_lock:
            if self.generation != generation:
                return False
            self.inflight = None
        watchdog = self._watchdog
        if watchdog is not None:
            watchdog.cancel()
        return True

    def _deadline_passed(self, message: Reply[Any], generation: int, deadline: float) -> None:
        with self.commit_lock:
            if self.inflight is not message or self.generation != generation:
                return  # it finished in time
            self.generation += 1  # fence: the hung incarnation can no longer commit
            self.inflight = None
            self.turn = threading.Lock()  # the hung thread keeps the old one
            hung = self.running
            awaiting = self.awaiting
        if awaiting is not None:
            awaiting.cancel()  # an async hook: cancel it, so its thread is freed
        cause = DeadlineExceeded(self.name, message.describe(), deadline)
        self.failures += 1
        self.last_error = cause
        self.crashed(cause, hung, message)

    # -- incarnations ------------------------------------------------------------------------

    def start_incarnation(self) -> None:
        """Start a new incarnation (a pykka actor and its thread).

        The previous one is retired first, so at most one incarnation takes
        requests. The new one takes its generation number once it holds the
        turn, that is once the previous incarnation has finished its last
        message.
        """
        with self.lifecycle:
            previous = self.incarnation
            if previous is not None:
                previous.retire()
            StateActor.start(self)  # its __init__ makes it the cell's incarnation

    def crashed(
        self,
        cause: BaseException,
        incarnation: StateActor | None,
        message: Reply[Any] | None = None,
    ) -> None:
        """``incarnation`` failed: retire it, let the supervisor decide, then
        answer ``message`` (the request that crashed it) with `ActorCrashed`.

        The answer comes last, so that its caller finds the restart already
        decided and counted.
        """
        try:
            if incarnation is not None:
                incarnation.retire()
                if self.incarnation is incarnation:
                    self.ready = False
            supervisor = self.supervisor
            if supervisor is not None:
                epoch = None if incarnation is None else incarnation.epoch
                supervisor._child_failed(self, cause, epoch)
        finally:
            if message is not None:
                self._answer_crash(message, cause)

    def release(self) -> None:
        """Give the actor's name back to the store (it stopped for good)."""
        store = self.store
        if store is not None and not self.released:
            self.released = True
            try:
                store.release(self.name, self.runtime.runtime_id)
            except Exception:
                logger.exception("actor %r: releasing it in the store failed", self.name)

    def retire(self) -> None:
        """End the current incarnation after its current message (for restarts and stops)."""
        self.ready = False
        with self.lifecycle:
            incarnation = self.incarnation
            if incarnation is not None:
                incarnation.retire()

    # -- stopping ----------------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether an incarnation takes requests (or is starting to)."""
        incarnation = self.incarnation
        return incarnation is not None and not incarnation._inbox.retired

    def request_stop(self, reason: str, *, terminal: bool = True) -> None:
        """Ask the actor to stop once it has handled what is queued now.

        With no incarnation running (a crashed one waiting for its restart, or
        one already stopped), it stops at once and what is queued is refused.
        Does not wait: see `wait_stopped`.
        """
        if self.is_running() and self.mailbox.closed_reason is None:
            self.mailbox.put(Reply(self, _Stop(reason, terminal=terminal)))
            return
        self.stop_now(reason, terminal=terminal)

    def stop_now(self, reason: str, *, terminal: bool = True) -> None:
        """Refuse what is queued and anything sent from now on, and end the
        incarnation after its current message."""
        if terminal and self.stop_reason is None:
            self.stop_reason = reason
        running = self.is_running()
        self.mailbox.close(reason)
        self.retire()
        if not running:
            if terminal:
                self.release()
            self.stopped.set()

    def wait_stopped(self, deadline: float) -> bool:
        """Wait until the actor has stopped and its thread ended, at the latest
        until ``deadline`` (on `time.monotonic`). True if it stopped."""
        self.stopped.wait(max(0.0, deadline - time.monotonic()))
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.stopped.is_set()

    def stop(self, reason: str, timeout: float, *, wait: bool, terminal: bool = True) -> None:
        """Stop the actor: after draining its mailbox when ``wait`` and it runs,
        waiting up to ``timeout`` seconds; at once otherwise.

        A ``terminal`` stop is for good; otherwise (a supervisor giving up) its
        supervisor's parent may restart it later.
        """
        if wait and self.is_running() and self.mailbox.closed_reason is None:
            self.request_stop(reason, terminal=terminal)
            if current_cell.get() is not self:  # it cannot wait for itself
                self.wait_stopped(time.monotonic() + timeout)
            return
        self.stop_now(reason, terminal=terminal)

    def abandon(self, reason: str) -> None:
        """Give up on an actor that did not stop in time.

        Its running incarnation is fenced (whatever it still runs commits
        nothing and is answered with `ActorStopped`), an async hook it awaits
        is cancelled, and every queued request is refused with ``reason``.
        """
        with self.commit_lock:
            self.generation += 1
            inflight, self.inflight = self.inflight, None
            awaiting = self.awaiting
        if self.stop_reason is None:
            self.stop_reason = reason
        self.mailbox.close(reason)
        self.retire()
        if inflight is not None:  # watched by a deadline: no one else answers it now
            self._answer_fenced(inflight)
        if awaiting is not None:
            awaiting.cancel()
        self.release()

    # -- inline calls ----------------------------------------------------------------------

    def try_inline(self) -> threading.Lock | None:
        """Take the turn if the actor is idle and nothing is queued; return it."""
        if not self.ready or self.deadline is not None or not self.mailbox.empty():
            return None
        turn = self.turn
        if not turn.acquire(False):
            return None
        if turn is not self.turn or not self.ready or not self.mailbox.empty():
            turn.release()
            self.mailbox.wake(None)
            return None
        return turn

    def process_inline(self, message: Reply[Any], turn: threading.Lock) -> None:
        """Run ``message`` on the calling thread, which holds ``turn``."""
        token = current_cell.set(self)
        crash = None
        owner = self.running  # stays the turn's owner while we hold the turn
        try:
            if message.claim():
                crash = self.process(message, self.generation)
        finally:
            current_cell.reset(token)
            turn.release()
            if not self.mailbox.empty():
                self.mailbox.wake(None)  # something arrived while we ran
        if crash is not None:
            self.crashed(crash, owner, message)


class _Stop:
    """The request that stops an actor once everything before it is handled.

    ``terminal``: for good (the handle is done). ``exit``: the actor stopped
    itself, which its supervisor may answer with a restart (permanent children).
    """

    def __init__(self, reason: str, *, terminal: bool = True, exit: bool = False) -> None:
        self.reason = reason
        self.terminal = terminal
        self.exit = exit

    def describe(self) -> str:
        return "stop()"


def stop_operation(reason: str, *, terminal: bool = True, exit: bool = False) -> _Stop:
    return _Stop(reason, terminal=terminal, exit=exit)


class StateActor(pykka.ThreadingActor):
    """One incarnation of a cell: a pykka actor that runs its requests one at a time."""

    # Actor threads never keep the interpreter alive; runtimes shut down at exit.
    use_daemon_thread = True

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self.generation = -1  # taken in on_start, with the turn
        self.epoch = cell.epoch
        self._inbox = Inbox(cell.mailbox)
        self._turn: threading.Lock | None = None
        self._planned_stop = False
        super().__init__()
        cell.incarnation = self

    def _create_actor_inbox(self) -> Inbox:  # type: ignore[override]
        # pykka calls this from Actor.__init__: this incarnation's view of the
        # cell's mailbox, which outlives it.
        return self._inbox

    def retire(self) -> None:
        """Stop after the current message; take nothing more from the mailbox."""
        if self._planned_stop:
            return
        self._planned_stop = True
        self._inbox.retired = True
        try:
            self.stop()  # pykka's stop message goes to this incarnation's inbox only
        except pykka.ActorDeadError:
            pass  # it has stopped already

    def on_start(self) -> None:
        cell = self._cell
        # Wait for the previous incarnation (or an inline caller) to finish. A
        # fence gives the cell a new turn while the hung thread keeps the old
        # one, so look again now and then: this is no path a request takes.
        while True:
            turn = cell.turn
            if turn.acquire(timeout=0.1):
                if turn is cell.turn:
                    break
                turn.release()  # replaced meanwhile: that one is the hung thread's
        self._turn = turn
        self._inbox.turn = turn
        thread = threading.current_thread()
        thread.name = f"stateward:{cell.runtime.name}:{cell.name}"
        if self._inbox.retired or cell.incarnation is not self:
            self.retire()  # replaced before it started: it takes no request
            return
        if cell.mailbox.closed_reason is not None:
            self.retire()  # stopped while it was starting: on_stop marks it stopped
            return
        with cell.commit_lock:
            cell.generation += 1
            self.generation = cell.generation
            cell.running = self
        cell.thread = thread
        current_cell.set(cell)
        try:
            if self.generation > 1 and cell.store is not None:
                # A restart recovers the way a reboot does: from the store.
                cell.publish(cell.store.recover(cell.name, cell.codec))  # type: ignore[arg-type]
            hook = cell.on_start
            if hook is not None:
                result = hook(cell.view(cell.snapshot))
                if inspect.isawaitable(result):
                    cell.run_async(result)
        except BaseException as exc:
            cell.last_error = exc
            logger.error("actor %r: starting failed: %r", cell.name, exc, exc_info=exc)
            cell.crashed(exc, self)
            return
        cell.ready = True
        cell.started.set()
        if cell.supervisor is not None:
            cell.supervisor._child_started(cell)

    def on_stop(self) -> None:
        cell = self._cell
        self._inbox.retired = True
        turn = self._turn
        if turn is not None:
            self._turn = None
            turn.release()
        if not self._planned_stop:
            # pykka stopped us on its own (an error in the loop itself): that
            # is a crash of this incarnation, and the mailbox is kept.
            cell.crashed(
                RuntimeError(f"the actor thread of {cell.name!r} stopped unexpectedly"), self
            )
        if cell.incarnation is self and cell.mailbox.closed_reason is not None:
            if cell.stop_reason is not None:
                cell.release()
            cell.stopped.set()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.on_stop()

    def on_receive(self, message: Any) -> Any:
        self._handle(message)
        # Then whatever else is queued, without a trip back through pykka's
        # loop for each message: still one at a time, in order, and only while
        # this incarnation may take requests (a retire or a stop message of
        # its own ends the run; pykka's loop takes over from there).
        inbox = self._inbox
        control = inbox.control
        queue = self._cell.mailbox.queue
        handle = self._handle
        while not control and not inbox.retired:
            try:
                message = queue.popleft()
            except IndexError:
                return None
            handle(message)
        return None

    def _handle(self, message: Any) -> None:
        if type(message) is not Reply or not message.claim():
            return  # a withdrawn request: its caller already gave up on it
        cell = self._cell
        op = message.request
        if type(op) is _Stop:
            self._stop_for(cell, op, message)
            return
        try:
            crash = cell.process(message, self.generation)
        except BaseException as exc:  # an error in the runtime itself
            crash = exc
        if crash is not None:
            cell.crashed(crash, self, message)

    def _stop_for(self, cell: Cell, op: _Stop, message: Reply[Any]) -> None:
        cell.messages += 1
        supervisor = cell.supervisor
        if op.exit and supervisor is not None and cell.restart_type == "permanent":
            # Stopped on its own, to be restarted: keep the mailbox open so
            # what is sent meanwhile waits for the next incarnation.
            cell.ready = False
            self.retire()
            message.set_result(None)
            supervisor._child_exited(cell, self.epoch)
            return
        if op.terminal:
            cell.stop_reason = op.reason
        cell.mailbox.close(op.reason)
        cell.ready = False
        self.retire()
        message.set_result(None)
        if op.exit and supervisor is not None:
            supervisor._child_exited(cell, self.epoch)
