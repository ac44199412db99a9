"""The cell: what a handle and its actor share for the actor's whole life.

A `Cell` holds the published snapshot (read by any thread with no lock and no
message), the mailbox, the counters and the observers, and runs one request
at a time on its snapshot: its behaviour (one per kind, from core) maps the
snapshot and the request's message to an `Outcome` (the new snapshot, the
caller's answer, the work to run after the commit). Only when the behaviour
returns normally, and only while the running incarnation's generation is still
the cell's, is the new snapshot stored, then published; then the after-commit
work and observers run, then the caller is answered. A behaviour that raises
leaves the snapshot exactly as it was.

A cell knows nothing of threads or hosts: whoever holds its turn (see
`Mailbox`) calls `Cell.process`. Its incarnations (start, restart, retire,
stop) are the lifecycle's business (`_lifecycle.py`), one layer up; the cell
reaches the running one through the small `Running` protocol below.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import datetime
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from stateward.core import (
    HookFailure,
    InvalidArgument,
    InvalidTransition,
    KindCodec,
    UnencodableValueError,
    UnknownVersionError,
    run_after_commit,
)
from stateward.core._behaviours import Behaviour, Outcome
from stateward.core._suspend import Suspended

from ._cell_state import CellState, callback_locks, commit_locks, observer_locks
from ._cell_watch import unwatch, watch
from ._clock import Timer
from ._context import as_cell, request_id
from ._errors import ActorCrashed, ActorStopped
from ._mailbox import Mailbox
from ._reply import Reply
from ._stats import ActorStats, ErrorReport
from .stores import Store
from .stores._group_commit import flush_staged, staging

logger = logging.getLogger("stateward.actors")

__all__ = [
    "FENCED",
    "REFUSALS",
    "SUSPENDED",
    "ActorStats",
    "Cell",
    "ErrorReport",
    "Owner",
    "Running",
]

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


class _Fenced(Exception):
    """What `Cell.process` returns for a request its incarnation could no
    longer commit (fenced meanwhile): the run that holds it must stop."""


#: Returned by `Cell.process` when the incarnation was fenced off meanwhile.
FENCED = _Fenced("fenced")


class _Suspended(Exception):
    """What `Cell.process` returns for a request that waits for an awaitable
    (`_suspension.py`): the run that holds the turn returns *without giving it
    back*; the request goes on, turn held, on a worker of its host."""


#: Returned by `Cell.process` when the request was suspended.
SUSPENDED = _Suspended("suspended")


class Owner(Protocol):
    """What a cell needs of the runtime that owns it (a `Runtime`, higher up)."""

    name: str
    default_timeout: float
    timer: Timer
    clock: Callable[[], datetime.datetime]
    store: Store
    runtime_id: str
    #: The default bound on requests waiting in a mailbox (`_backpressure`).
    mailbox_limit: int | None
    #: Passivates idle actors (`_passivation.Passivation`), if the runtime does.
    passivation: Any
    #: Times and traces each request (`_probe.Probe`), when metrics or
    #: traces are configured; None (the usual case): `Cell.process` runs it.
    probe: Any
    #: Arms the machines' pending timers (`_timers.MachineTimers`).
    machine_timers: Any
    #: The store's ``stage_entry`` if it can stage commits in a pooled
    #: worker's commit batch (`_commit_batch`), else None.
    _stage_entry: Callable[[str, Any, Any, Any], Any] | None

    def _report(self, report: ErrorReport) -> None: ...

    def _submit_async(
        self, awaitable: Awaitable[Any], cell: Cell, context: contextvars.Context | None = None
    ) -> concurrent.futures.Future[Any]: ...


class Maker(Protocol):
    """What binds a cell's behaviour (its handle, one layer up)."""

    def _behaviour(self, cell: Cell) -> Behaviour: ...


class Running(Protocol):
    """The incarnation that runs a cell's requests (`_lifecycle.Incarnation`)."""

    def crashed(self, cause: BaseException, message: Reply[Any] | None = None) -> None: ...

    def retire(self) -> object: ...

    def suspend(
        self, message: Reply[Any], generation: int, step: Suspended
    ) -> BaseException | None: ...


class Cell(CellState):
    """What a handle and its actor share. Only the holder of the turn writes
    the snapshot and the counters; any thread may read them.

    An idle cell holds its name, its snapshot (shared with the other machines
    of its definition until its first commit), a mailbox with no queue, and
    counters: no lock, no event and no thread of its own. Its behaviour is
    bound on first use.
    """

    __slots__ = (
        "behaviour",
        "callback_lock",
        "claimed",
        "codec",
        "deadline",
        "generation",
        "kind",
        "lifecycle",
        "mailbox",
        "maker",
        "messages",
        "mirror",
        "name",
        "observers",
        "ready",
        "released",
        "running",
        "runtime",
        "snapshot",
        "staged",
        "store",
        "supervisor",
        "used",
        "version_of",
        "view",
    )

    #: The kind's behaviour from core, bound to this cell on its first
    #: request (`bind`, through ``maker``); None until then.
    behaviour: Behaviour | None
    runtime: Owner

    def __init__(
        self,
        runtime: Owner,
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
        maker: Maker | None = None,
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.kind = kind
        self.snapshot = snapshot
        #: The newest snapshot committed in the running turn but not yet
        #: written: staged by a pooled worker's commit batch (`_commit_batch`).
        self.staged: Any = None
        #: The handle's ``__dict__``, when the handle shows ``snapshot`` as a
        #: plain attribute: every publish writes it there too.
        self.mirror: dict[str, Any] | None = None
        self.view = view
        self.version_of = version_of
        self.deadline = deadline
        self.codec = codec
        #: What binds the behaviour when the cell first needs it (the handle).
        self.maker = maker
        self.behaviour = None
        self.store = runtime.store if codec is not None else None
        self.released = False
        self.claimed = False
        self.observers: tuple[Callable[[Any, Any], Any], ...] = ()
        self.callback_lock = callback_locks.pick()
        self.mailbox = Mailbox(self)
        #: Its lifecycle (`_lifecycle.Lifecycle`), set when it starts.
        self.lifecycle: Any = None
        #: The supervisor it runs under, set by the lifecycle.
        self.supervisor: Any = None
        #: The number of the incarnation that may commit; a fence moves it on.
        self.generation = 0
        #: The incarnation that owns ``generation`` (the one holding the turn).
        self.running: Running | None = None
        #: Whether an incarnation has started and takes requests.
        self.ready = False
        self.messages = 0
        #: Set by every request it runs; the passivation sweep clears it, and
        #: passivates the cells it finds still clear (second chance).
        self.used = False
        # The rarely set fields (errors, restarts, the stop reason, an awaited
        # hook...) are `CellState`'s: an idle cell holds none of them.
        CellState.__init__(self)
        if on_error != "fail":
            self.on_error = on_error
        if on_start is not None:
            self.on_start = on_start

    def bind(self) -> Behaviour:
        """Bind the kind's behaviour to this cell (on its first request)."""
        maker = self.maker
        if maker is None:
            raise RuntimeError(f"actor {self.name!r} has no behaviour: it was made without a maker")
        behaviour = self.behaviour = maker._behaviour(self)
        return behaviour

    # -- locks shared with other cells -------------------------------------------------

    @property
    def commit_lock(self) -> threading.Lock:
        """Orders a deadline fence against the end of the request it fences."""
        return commit_locks.of(self)

    @property
    def observer_lock(self) -> threading.Lock:
        """Orders changes to `observers`."""
        return observer_locks.of(self)

    # -- errors and reports ------------------------------------------------------------

    def _refuse(self, reply: Reply[Any]) -> None:
        if reply.claim():
            reply.set_exception(self.stopped_error())

    def dispatch(self, turn: int) -> None:
        """Hand ``turn`` (held by the caller) to the lifecycle, which gives it
        to a worker; with no lifecycle yet, give it back: the first start
        dispatches."""
        lifecycle = self.lifecycle
        if lifecycle is None:
            self.mailbox.give_turn(turn)
        else:
            lifecycle.dispatch(turn)

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
        flush_staged()  # the worker is about to wait: answer what it has staged
        future = self.runtime._submit_async(awaitable, self)
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

    def read(self) -> Any:
        """The last committed snapshot: the published one, or, when the actor
        is passivated, the one in the store (read there, without activating it).

        An activation meanwhile may have published a snapshot and stored a
        commit it has not published yet: the published one is then returned,
        so that no reader sees a version that a later read takes back.
        """
        snapshot = self.snapshot
        if snapshot is None:
            store = self.store
            assert store is not None and self.codec is not None  # only stored cells passivate
            try:
                stored = store.recover(self.name, self.codec)
            except Exception as exc:
                if not self.is_stopped:
                    raise
                raise ActorStopped(
                    self.name,
                    "it was passivated when it stopped, so its last committed state is only "
                    "in the store, which its runtime has closed; open a Runtime on the store "
                    "(or run `stateward inspect` on it) to read that state",
                ) from exc
            snapshot = self.snapshot  # activated while we read the store
            if snapshot is None:
                snapshot = stored
        return snapshot

    def drop_snapshot(self) -> None:
        """Passivated: let the snapshot go (it is in the store); readers now
        read it from the store (`read`) until the next start publishes one."""
        mirror = self.mirror
        if mirror is not None:
            mirror.pop("snapshot", None)
        self.dropped_version = self.version_of(self.snapshot)
        self.passive = True
        self.snapshot = None
        self.running = None  # its incarnation has ended

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
        snapshot = self.snapshot  # None: passivated, and the version is the one dropped
        depth = self.mailbox.qsize()
        limit = self.room_limit()
        return ActorStats(
            name=self.name,
            kind=self.kind,
            alive=not self._stopped and self.mailbox.closed_reason is None,
            messages=self.messages,
            failures=self.failures,
            hook_errors=self.hook_errors,
            queue_depth=depth,
            version=self.dropped_version if snapshot is None else self.version_of(snapshot),
            last_error=None if error is None else repr(error),
            restarts=self.restarts,
            generation=self.generation,
            passive=self.passive,
            mailbox_limit=limit,
            at_limit=limit is not None and depth >= limit,
        )

    def release(self) -> None:
        """Give the actor's name back to the store (it stopped for good)."""
        store = self.store
        if store is not None and not self.released:
            self.released = True
            try:
                store.release(self.name, self.runtime.runtime_id)
            except Exception:
                logger.exception("actor %r: releasing it in the store failed", self.name)

    # -- running requests ------------------------------------------------------------------

    def is_crash(self, error: BaseException) -> bool:
        """Whether ``error``, raised by a request's operation, crashes the actor."""
        if not isinstance(error, Exception):
            return True  # SystemExit, KeyboardInterrupt...: never just a failed request
        if isinstance(error, REFUSALS):
            return False
        return self.on_error == "restart"

    def process(
        self,
        message: Reply[Any],
        generation: int,
        resume: Behaviour | None = None,
        probed: bool = False,
    ) -> BaseException | None:
        """Run one claimed request. Returns the cause if it crashed the actor,
        `FENCED` if the incarnation ``generation`` was fenced off meanwhile
        (the run must stop: that incarnation takes nothing more), `SUSPENDED`
        if it waits for an awaitable (the run must return and keep the turn:
        `_suspension.py`), else None.

        ``resume``: a suspended request going on, called in place of the
        behaviour (with the same arguments, which it may ignore): it returns
        the behaviour's outcome, or raises, or suspends again.

        The behaviour (or ``resume``) runs in the request's context, a copy of
        its sender's (`Reply.context`), as this cell (`as_cell`).

        A request that crashed the actor is left unanswered here: the
        lifecycle answers it once the supervisor has decided what follows, so
        that a caller who sees `ActorCrashed` also sees the restart counted.

        Runs with the turn held, on a host's worker or inline on a blocked
        caller's thread. When the runtime has a probe (metrics or traces are
        configured: `_probe.Probe`), the request runs through it, which times
        and traces it and calls back here with ``probed=True``.
        """
        if not probed:
            probe = self.runtime.probe
            if probe is not None:
                result: BaseException | None = probe.process(self, message, generation, resume)
                return result
        old = self.staged  # a commit of this turn not yet written (see _commit_batch)
        if old is None:
            old = self.snapshot
        watched = self.deadline is not None
        context = message.context
        assert context is not None, "a request that has run and been answered runs no more"
        if resume is None:  # a resumed request was counted and watched when it began
            self.messages += 1
            self.used = True
            if watched:
                watch(self, message, generation)
        try:
            step = resume or self.behaviour or self.bind()
            commit = context.run(as_cell, self, step, old, message.request)
        except BaseException as exc:  # the snapshot is untouched
            if self.staged is not None:
                # Answer what ran before it first (a failed write fences it),
                # also before a suspension: those callers wait for no awaitable.
                flush_staged()
            if type(exc) is Suspended and self.running is not None:
                return self.running.suspend(message, generation, exc)
            if watched and not unwatch(self, message, generation):
                return FENCED  # the watchdog answered the caller
            if generation != self.generation:
                self._answer_fenced(message)
                return FENCED
            self.failures += 1
            self.last_error = exc
            if isinstance(exc, REFUSALS):
                self.refusals += 1
            if self.is_crash(exc):
                return exc
            message.context = None  # answered here: let the sender's context go
            message.set_exception(exc)
            return None
        if watched:
            if not unwatch(self, message, generation):
                return FENCED  # this incarnation may no longer commit
        elif generation != self.generation:  # fenced: a shutdown gave up on it
            self._answer_fenced(message)
            return FENCED
        store = self.store
        if commit.snapshot is old:  # nothing changed (a timer no longer pending): no commit
            message.context = None
            message.set_result(commit.reply)
            return None
        if store is not None:
            # A Ray client's id for the request, written with its commit (`_requests`).
            rid = context.get(request_id)
            try:
                stage_entry = self.runtime._stage_entry  # the store's, if it stages
                batch = staging.batch if stage_entry is not None else None
                if batch is not None and batch.stage(self, stage_entry, old, commit.snapshot, rid):
                    # A pooled worker's batch writes it, then publishes and answers it.
                    batch.defer(self, message, commit, generation)
                    return None
                if rid is None:
                    store.commit(self.name, self.codec, old, commit.snapshot)  # type: ignore[arg-type]
                else:
                    store.commit(self.name, self.codec, old, commit.snapshot, request_id=rid)  # type: ignore[arg-type, call-arg]
            except BaseException as exc:  # not durable: not committed, and a crash
                if self.staged is not None:
                    flush_staged()
                self.failures += 1
                self.last_error = exc
                return exc
        new = commit.snapshot
        self.snapshot = new  # publish: readers see it from now on
        mirror = self.mirror
        if mirror is not None:
            mirror["snapshot"] = new
        if commit.after is not None or self.observers:
            self.after_commit(message, commit, old)
        else:
            message.context = None
            message.set_result(commit.reply)
        return None

    def after_commit(self, message: Reply[Any], outcome: Outcome, old: Any) -> None:
        """Once ``outcome`` is committed and published: run its after-commit
        work and the observers, then answer ``message`` (answered even if
        they raise; their errors are reported, the commit stands), in the
        request's context, as the behaviour ran."""
        context = message.context
        assert context is not None, "a request that has run and been answered runs no more"
        try:
            context.run(as_cell, self, self._after, outcome, old)
        finally:
            message.context = None
            message.set_result(outcome.reply)

    def _after(self, outcome: Outcome, old: Any) -> None:
        after = outcome.after
        if after is not None:
            self.report_failures(run_after_commit(after, self.run_async))
        if self.observers:
            self.notify_observers(old, outcome.snapshot)

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

    def answer_crash(self, message: Reply[Any], cause: BaseException) -> None:
        """Answer the request that crashed the actor with `ActorCrashed`."""
        if message.done():
            return
        crashed = ActorCrashed(self.name, message.describe(), cause)
        crashed.__cause__ = cause
        message.set_exception(crashed)

    # -- inline calls ----------------------------------------------------------------------

    def try_inline(self) -> int:
        """Take the turn if the actor is idle and nothing is queued: its
        token, or 0 (nothing taken)."""
        mailbox = self.mailbox
        if not self.ready or self.deadline is not None or mailbox.queue:
            return 0
        turn = mailbox.take_turn()
        if not turn:
            return 0
        if not self.ready or mailbox.queue:
            mailbox.give_turn(turn)
            mailbox.kick()  # something arrived (or changed) while we held it
            return 0
        return turn

    def process_inline(self, message: Reply[Any], turn: int) -> None:
        """Run ``message`` on the calling thread, which holds ``turn`` (its
        code in the request's context, as this cell: see `process`)."""
        crash = None
        owner = self.running  # stays the turn's owner while we hold the turn
        try:
            if message.claim():
                crash = self.process(message, self.generation)
        finally:
            if crash is not SUSPENDED:  # else the request keeps the turn; a worker goes on
                self.mailbox.give_turn(turn)
                if self.mailbox.queue or not self.ready:
                    self.mailbox.kick()  # something arrived, or a start waits, while we ran
        if (
            crash is not None
            and crash is not FENCED
            and crash is not SUSPENDED
            and owner is not None
        ):
            owner.crashed(crash, message)
