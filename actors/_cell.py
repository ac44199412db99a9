"""The generic state actor: one immutable snapshot, one message per transaction.

A `Cell` is what a handle and its actor share: the published snapshot (read by
any thread with no lock and no message), the mailbox, the counters and the
observers. The actor is a thin pykka shell around it: for each `Reply` in its
mailbox it runs the request's operation on the current snapshot, and only when
the operation returns normally does it publish the new snapshot, run the
after-commit work, and answer. An operation that raises leaves the snapshot
exactly as it was; the exception goes to that caller alone.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pykka

from stateward.core import HookFailure

from ._errors import ActorStopped
from ._mailbox import Mailbox
from ._reply import Reply

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("stateward.actors")

#: The cell whose handler is running in this thread or task, if any: a blocking
#: call from there to the same actor could never be answered.
current_cell: contextvars.ContextVar[Cell | None] = contextvars.ContextVar(
    "stateward_current_cell", default=None
)


class Commit(NamedTuple):
    """What an operation returns: the snapshot to publish, the caller's answer,
    and optional work to run once the snapshot is published."""

    snapshot: Any
    reply: Any
    after: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class ActorStats:
    """Counters of one actor, as `Runtime.stats` returns them.

    Attributes:
        name: the actor's name.
        kind: ``machine``, ``manager`` or ``config``.
        alive: whether it still takes messages.
        messages: requests handled (successful or not).
        failures: requests whose operation raised (the caller got the error).
        hook_errors: after-commit hooks, observers and callbacks that raised.
        queue_depth: messages waiting in the mailbox.
        version: the published snapshot's version.
        last_error: the most recent failure or hook error, as ``repr``.
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
    """What a handle and its actor share. Only the actor thread writes the
    snapshot and the counters; any thread may read them."""

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        kind: str,
        snapshot: Any,
        view: Callable[[Any], Any],
        version_of: Callable[[Any], int],
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.kind = kind
        self.snapshot = snapshot
        self.view = view
        self.version_of = version_of
        self.observers: tuple[Callable[[Any, Any], Any], ...] = ()
        self.observer_lock = threading.Lock()
        self.callback_lock = threading.Lock()
        self.mailbox = Mailbox(self._refuse)
        self.ref: pykka.ActorRef[Any] | None = None
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.stop_reason: str | None = None
        self.messages = 0
        self.failures = 0
        self.hook_errors = 0
        self.last_error: BaseException | None = None

    def _refuse(self, reply: Reply[Any]) -> None:
        if reply.claim():
            reply.set_exception(self.stopped_error())

    @property
    def default_timeout(self) -> float:
        return self.runtime.default_timeout

    def stopped_error(self) -> ActorStopped:
        return ActorStopped(self.name, self.stop_reason or self.mailbox.closed_reason or "stopped")

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """Run a hook's awaitable on the runtime's event loop, to completion."""
        return self.runtime._async_host().run(awaitable, self)

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
        )


class _Stop:
    """The operation that stops an actor once everything before it is handled."""

    __name__ = "stop"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, cell: Cell) -> None:  # pragma: no cover - handled by the actor
        raise AssertionError("the stop operation is handled by the actor itself")


def stop_operation(reason: str) -> _Stop:
    return _Stop(reason)


def process(cell: Cell, message: Reply[Any]) -> None:
    """Run one claimed request: the operation, then publish, after-commit work,
    observers, and the answer. Runs with the cell's turn held, on the actor
    thread or inline on a blocked caller's thread."""
    cell.messages += 1
    old = cell.snapshot
    try:
        commit = message.op(cell, *message.args)
    except BaseException as exc:  # the caller gets it; the snapshot is untouched
        cell.failures += 1
        cell.last_error = exc
        message.set_exception(exc)
        return
    cell.snapshot = commit.snapshot  # publish: readers see it from now on
    if commit.after is not None:
        try:
            commit.after()
        except Exception as exc:  # pragma: no cover - after() reports its own errors
            cell.report("after_commit", "after-commit work", exc)
    if cell.observers:
        cell.notify_observers(old, commit.snapshot)
    message.set_result(commit.reply)


def process_inline(cell: Cell, message: Reply[Any]) -> None:
    """Run ``message`` on the calling thread; the caller holds the turn."""
    token = current_cell.set(cell)
    try:
        if message.claim():
            process(cell, message)
    finally:
        current_cell.reset(token)
        cell.mailbox.end_inline()


class StateActor(pykka.ThreadingActor):
    """The pykka actor that runs one cell's requests, one at a time."""

    # Actor threads never keep the interpreter alive; runtimes shut down at exit.
    use_daemon_thread = True

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        super().__init__()

    def _create_actor_inbox(self) -> Mailbox:  # type: ignore[override]
        # pykka calls this from Actor.__init__: use the cell's mailbox, which
        # answers the requests it refuses instead of dropping them.
        return self._cell.mailbox

    def on_start(self) -> None:
        cell = self._cell
        cell.mailbox.turn.acquire()  # awake: the turn is the actor thread's
        thread = threading.current_thread()
        thread.name = f"stateward:{cell.runtime.name}:{cell.name}"
        cell.thread = thread
        current_cell.set(cell)
        cell.started.set()

    def on_stop(self) -> None:
        cell = self._cell
        cell.mailbox.close(cell.stop_reason or "stopped")
        cell.stopped.set()

    def on_receive(self, message: Any) -> Any:
        if type(message) is not Reply or not message.claim():
            return None  # a withdrawn request: its caller already gave up on it
        op = message.op
        if type(op) is _Stop:
            cell = self._cell
            cell.messages += 1
            cell.stop_reason = op.reason
            cell.mailbox.close(op.reason)
            message.set_result(None)
            self.stop()
            return None
        process(self._cell, message)
        return None
