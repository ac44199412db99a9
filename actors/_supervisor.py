"""Supervisors: restart failed actors from their last committed snapshot.

A supervisor watches its children (actors and other supervisors, in start
order). When a child fails, the strategy decides which children restart:

- ``one_for_one``: only the failed one;
- ``one_for_all``: all of them;
- ``rest_for_one``: the failed one and every child started after it.

A child's restart type decides whether it restarts at all: ``permanent``
always, ``transient`` only after a crash (not after it stopped on its own),
``temporary`` never. More than ``max_restarts`` restarts within ``within``
seconds make the supervisor give up: it stops its children and escalates to
its parent, which treats it as a failed child. The runtime's root supervisor
reports the failure as fatal (`Runtime.fatal`, `Runtime.wait_fatal`).

A restarted actor keeps its mailbox and starts from its last committed
snapshot; only the request that crashed it fails (`ActorCrashed`), and it is
never delivered again. A supervisor never holds its lock while user code runs,
so it answers stop requests even while a child keeps failing to start.

One failure, one decision: each restart it decides moves the child's *epoch*
on, and each incarnation carries the epoch it was started under. A failure
reported by an incarnation that a decision has already replaced (two siblings
crashing at once under ``one_for_all``) is stale and changes nothing, so two
crashes never start two incarnations of one child. Starting an incarnation
retires the one before it, whatever happens.

Stopping asks every child (the whole subtree) to stop first, then waits for
them, newest first, until one deadline shared by all; children still busy at
the deadline are abandoned: fenced, so they commit nothing more, and their
queued requests refused.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

from stateward.core._arguments import check_callable

from ._clock import Timer
from ._context import current_runtime
from ._errors import SupervisorGaveUp, SupervisorStopped
from ._lifecycle import Lifecycle
from ._lifecycle_stop import queued_stop
from ._subtree_stop import SubtreeStop
from ._supervision import (
    RESTART_TYPES,
    STRATEGIES,
    Backoff,
    Child,
    ChildRecord,
    Plan,
    RestartPolicy,
    ShutdownReport,
    SupervisorEvent,
    count_restart,
    epoch_of,
    restart_child,
    retire_child,
    stop_child,
)

logger = logging.getLogger("stateward.actors")

_names = itertools.count(1)


class Owner(Protocol):
    """What a supervisor needs of its runtime (a `Runtime`, one layer up)."""

    name: str
    timer: Timer

    @property
    def root(self) -> Supervisor: ...

    _subscribers: list[Callable[[SupervisorEvent], Any]]

    def _count_event(self, event: SupervisorEvent) -> None: ...

    def _count_kind(self, kind: str, supervisor: str) -> None: ...

    def _forget_cell(self, cell: Any) -> None: ...

    def _fatal(self, error: BaseException) -> None: ...


class Supervisor(SubtreeStop):
    """Restarts its children when they fail, by strategy, within limits.

    Args:
        name: a label for events and errors.
        strategy: ``one_for_one``, ``one_for_all`` or ``rest_for_one``.
        max_restarts: restarts allowed within ``within`` seconds; one more
            makes the supervisor give up and escalate.
        within: the window, in seconds.
        backoff: a `Backoff` for delayed restarts; None restarts at once.
        parent: the supervisor above this one; the runtime's root by default.
        runtime: the owning runtime; the current one by default (see `Runtime`).
        restart: this supervisor's own restart type under its parent.
        shutdown_timeout: how long `stop` waits by default for all the
            children to stop, in seconds, in total.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        strategy: str = "one_for_one",
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
        parent: Supervisor | None = None,
        runtime: Owner | None = None,
        restart: str = "permanent",
        shutdown_timeout: float = 5.0,
        _root: bool = False,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        if restart not in RESTART_TYPES:
            raise ValueError(
                f"unknown restart type {restart!r}; use one of {', '.join(RESTART_TYPES)}"
            )
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        if not within > 0:
            raise ValueError(f"within must be > 0 seconds, got {within!r}")
        if not 0 <= shutdown_timeout < math.inf:
            raise ValueError(
                f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout!r}; and finite"
            )
        if runtime is None:
            runtime = parent.runtime if parent is not None else current_runtime()
        #: The owning `Runtime` (typed loosely: the runtime is a layer up).
        self.runtime: Any = runtime
        self.name = name or f"supervisor-{next(_names)}"
        self._policy = RestartPolicy(self.name, strategy, max_restarts, float(within), backoff)
        self.shutdown_timeout = shutdown_timeout
        self.restart_type = restart
        self._lock = threading.Lock()
        self._children: list[ChildRecord] = []
        self._subscribers: list[Callable[[SupervisorEvent], Any]] = []
        self._stopping = False
        self._stop_reason = ""
        #: Children that crashed while this supervisor was stopping them.
        self._crashed_in_stop: list[str] = []
        self.gave_up = False
        self.restarts = 0
        self.parent: Supervisor | None = None
        #: Its record as a child of its parent (see `_find`).
        self._child: Child | None = None
        if not _root:
            parent = parent if parent is not None else runtime.root
            if parent.runtime is not runtime:
                raise ValueError("a supervisor's parent must belong to the same runtime")
            self.parent = parent
            parent._add(self, restart)

    # -- reads ---------------------------------------------------------------------

    @property
    def strategy(self) -> str:
        """``one_for_one``, ``one_for_all`` or ``rest_for_one``."""
        return self._policy.strategy

    @property
    def max_restarts(self) -> int:
        """Restarts allowed within `within` seconds."""
        return self._policy.max_restarts

    @property
    def within(self) -> float:
        """The window for `max_restarts`, in seconds."""
        return self._policy.within

    @property
    def backoff(self) -> Backoff | None:
        """The restart backoff, if any."""
        return self._policy.backoff

    @property
    def clock(self) -> Timer:
        """The runtime's timer (restart backoff)."""
        timer: Timer = self.runtime.timer
        return timer

    @property
    def children(self) -> list[str]:
        """The children's names, in start order."""
        with self._lock:
            return [c.name for c in self._children]

    def subscribe(self, fn: Callable[[SupervisorEvent], Any]) -> None:
        """Call ``fn(event)`` for each `SupervisorEvent` of this supervisor.

        It runs on the thread where the event happened (the worker that ran a
        crashing turn, a timer thread, or a caller's thread for an inline call
        or a stop), never under the supervisor's lock.
        """
        check_callable(fn, "Supervisor.subscribe", "fn")
        with self._lock:
            self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[SupervisorEvent], Any]) -> None:
        """Stop calling ``fn``."""
        with self._lock:
            self._subscribers.remove(fn)

    def __repr__(self) -> str:
        return (
            f"<Supervisor {self.name!r} {self.strategy} "
            f"{len(self._children)} children, {self.restarts} restarts>"
        )

    # -- membership ------------------------------------------------------------------

    def _add(self, target: Any, restart: str) -> None:
        if restart not in RESTART_TYPES:
            raise ValueError(
                f"unknown restart type {restart!r}; use one of {', '.join(RESTART_TYPES)}"
            )
        # Its start time stays 0.0 until a restart: it only decides whether a
        # failure resets the count of consecutive restarts, which is 0 anyway
        # before the first restart (and a clock read per child is not free).
        child: ChildRecord = target if isinstance(target, Lifecycle) else Child(target, restart)
        with self._lock:
            if self._stopping:
                raise SupervisorStopped(
                    self.runtime.name,
                    self.name,
                    self._stop_reason
                    or (f"it gave up after {self.max_restarts} restarts" if self.gave_up else "")
                    or f"supervisor {self.name!r} stopped",
                )
            self._children.append(child)
            # The target keeps its record: a child's start and exit find it
            # at once, not by a scan (O(N) per start made N starts O(N^2)),
            # and with no table entry per child.
            target._child = child
        if self._subscribers or self.runtime._subscribers:
            self._emit([self._event("started", child.name)])
        else:  # nobody listens: count it, and make no event
            self.runtime._count_kind("started", self.name)

    def _add_actor(self, actor: Lifecycle, restart: str) -> None:
        actor.cell.supervisor = self
        actor.restart_type = restart
        self._add(actor, restart)
        actor.start()

    def _remove(self, target: Any) -> None:
        with self._lock:
            child = self._find(target)
            if child is None:
                return
            self._children.remove(child)
            target._child = None
            if child.pending is not None:
                child.pending.cancel()

    def _find(self, target: Any) -> ChildRecord | None:
        """``target``'s record, while it is a child here (a target is the
        child of one supervisor only)."""
        child: ChildRecord | None = target._child
        return child

    # -- events ----------------------------------------------------------------------

    def _event(
        self, kind: str, child: str | None, cause: BaseException | None = None
    ) -> SupervisorEvent:
        return SupervisorEvent(kind, self.name, child, cause, self.clock.monotonic())

    def _emit(self, events: list[SupervisorEvent]) -> None:
        for event in events:
            self.runtime._count_event(event)
            for fn in list(self._subscribers):
                try:
                    fn(event)
                except Exception:
                    logger.exception("supervisor %r: an event subscriber raised", self.name)

    # -- failures -------------------------------------------------------------------------

    def _child_failed(self, target: Any, cause: BaseException, epoch: int | None = None) -> None:
        """A child crashed (``target``: its Lifecycle or Supervisor; ``epoch``: the
        epoch of the incarnation that crashed, for a Cell)."""
        self._handle_exit(target, cause, crashed=True, epoch=epoch)

    def _child_exited(self, target: Any, epoch: int | None = None) -> None:
        """A child stopped on its own, normally."""
        self._handle_exit(target, None, crashed=False, epoch=epoch)

    def _handle_exit(
        self, target: Any, cause: BaseException | None, *, crashed: bool, epoch: int | None
    ) -> None:
        plan = Plan()
        stopped_for_good: str | None = None
        with self._lock:
            child = self._find(target)
            if epoch is not None and epoch != target.epoch:
                # That incarnation is already being replaced by an earlier
                # decision (a sibling's crash): nothing more to decide.
                return
            if child is None:
                if not crashed or epoch is None:
                    return
                # Being stopped from outside (handle.stop) and crashed while
                # draining: no restart, so it stops for good now, and its stop
                # and queued requests are answered.
                stopped_for_good = (
                    f"it crashed while stopping ({cause!r}), so the requests still queued "
                    "were not handled"
                )
            elif self._stopping:
                if not crashed or child.is_supervisor:
                    return
                # Not restarted while stopping: it stops for good now, so that
                # its queued requests and its stop request are answered.
                self._crashed_in_stop.append(child.name)
                stopped_for_good = (
                    f"{self._stop_reason or f'supervisor {self.name!r} stopped'}; it crashed "
                    f"while stopping ({cause!r}), so the requests still queued were not handled"
                )
            else:
                plan = self._policy.decide(
                    self._children, child, cause, crashed, self.clock.monotonic(), self._event
                )
                self.restarts += len(plan.start)
                if plan.give_up is not None:
                    self._stopping = True
        if stopped_for_good is not None:
            target.stop_now(stopped_for_good)
            return
        self._carry_out(plan)

    def _carry_out(self, plan: Plan) -> None:
        for child, why in plan.drop:
            # Forgotten first: whoever its stop refuses finds it gone from the
            # runtime's actors too, as it is from the children (`decide`).
            if not child.is_supervisor:
                self.runtime._forget_cell(child.target.cell)
            stop_child(child, why, wait=False)
        if plan.give_up is not None:
            self._emit(plan.events)
            self._give_up(plan.give_up)
            return
        for child in reversed(plan.retire):
            retire_child(child)
        # Each child with the epoch of this decision: a later decision about
        # the same child supersedes this one.
        group = [(child, epoch_of(child)) for child in plan.start]
        if group and plan.delay > 0:
            # Registered before the events go out, so that whoever hears of the
            # failure finds the restart already scheduled on the clock.

            def later() -> None:
                self._restart_now(group)

            cancel = self.clock.call_later(plan.delay, later)
            with self._lock:
                for child, _ in group:
                    child.pending = cancel
        self._emit(plan.events)
        if group and plan.delay <= 0:
            self._restart_now(group)

    def _restart_now(self, group: list[tuple[ChildRecord, int | None]]) -> None:
        events = []
        with self._lock:
            if self._stopping:
                return
            now = self.clock.monotonic()
            live = [c for c, epoch in group if c in self._children and epoch_of(c) == epoch]
            # Removed since the decision: stopped from outside (handle.stop) after
            # the decision retired it, so its stop request waits for an
            # incarnation that nobody will start.
            removed = [c for c, _ in group if not c.is_supervisor and c not in self._children]
            for child in live:
                child.pending = None
                child.last_start = now
                events.append(self._event("restarted", child.name))
        for child in removed:
            if not child.target.is_running():
                queued = queued_stop(child.target.cell)
                child.target.stop_now(queued.reason if queued else "stopped by stop()")
        for child in live:
            restart_child(child)
        self._emit(events)

    def _give_up(self, error: SupervisorGaveUp) -> None:
        logger.error("%s", error)
        self.gave_up = True
        with self._lock:
            children = list(self._children)
        for child in reversed(children):
            if child.pending is not None:
                child.pending.cancel()
            # Not for good: the parent may restart this supervisor, children and all.
            stop_child(child, f"supervisor {self.name!r} gave up", wait=False, terminal=False)
        events = [self._event("gave_up", None, error)]
        if self.parent is not None:
            events.append(self._event("escalated", None, error))
        self._emit(events)
        if self.parent is not None:
            self.parent._child_failed(self, error)
        else:
            self.runtime._fatal(error)

    # -- as a child of another supervisor -------------------------------------------------

    def _restart_as_child(self) -> None:
        """Start again with a clean restart count, restarting every child."""
        with self._lock:
            self._stopping = False
            self.gave_up = False
            self._policy.restart_times.clear()
            self._crashed_in_stop.clear()
            children = list(self._children)
            now = self.clock.monotonic()
            for child in children:
                child.last_start = now
                child.consecutive = 0
                count_restart(child)
        for child in children:
            restart_child(child)

    def _retire_children(self) -> None:
        with self._lock:
            children = list(self._children)
        for child in reversed(children):
            retire_child(child)

    # -- stopping -----------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> ShutdownReport:
        """Stop every child within ``timeout`` seconds in all
        (``shutdown_timeout`` when None), and return what happened.

        Every child (the whole subtree) is asked first to stop once it has
        handled what it has queued; then the supervisor waits for them, newest
        first, until one deadline shared by all. A child still busy at the
        deadline is abandoned: it commits nothing more, its queued requests
        are answered with `ActorStopped`, and it is named in the report. A
        child that crashes while stopping is not restarted; its queued
        requests are answered the same way. Pending restarts are cancelled.
        The supervisor leaves its parent for good.
        """
        report = self._shutdown(timeout, reason=f"supervisor {self.name!r} stopped")
        if self.parent is not None:
            self.parent._remove(self)
        return report
