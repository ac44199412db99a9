"""What supervision is made of: restart backoff, events, shutdown reports,
and the supervisor's record of each child.

The values (`Backoff`, `SupervisorEvent`, `ShutdownReport`) are public; the
rest is the bookkeeping `Supervisor` (``_supervisor.py``) keeps per child, and
what it asks of a child, whether an actor (its `Lifecycle`) or another
supervisor.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._clock import Cancel
from ._errors import ShutdownIncomplete, SupervisorGaveUp

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
RESTART_TYPES = ("permanent", "transient", "temporary")
EVENT_KINDS = ("started", "failed", "restarted", "stopped", "escalated", "gave_up")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential restart backoff with jitter.

    The n-th consecutive restart of a child waits ``min * factor**n`` seconds,
    at most ``max``, times a random factor in ``[1 - jitter, 1 + jitter]``.
    The count starts again once the child has run ``reset_after`` seconds
    without failing.
    """

    min: float = 0.01
    max: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.min <= self.max):
            raise ValueError(f"backoff needs 0 <= min <= max, got min={self.min}, max={self.max}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not (0 <= self.jitter < 1):
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter}")
        if self.reset_after < 0:
            raise ValueError(f"backoff reset_after must be >= 0, got {self.reset_after}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before the ``attempt``-th consecutive restart (from 0)."""
        base = min(self.max, self.min * self.factor ** min(attempt, 64))
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.max, base))


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Something a supervisor did or saw.

    Attributes:
        kind: ``started``, ``failed``, ``restarted``, ``stopped``, ``escalated``
            or ``gave_up``.
        supervisor: the supervisor's name.
        child: the child concerned (None for the supervisor's own events).
        cause: the failure, for ``failed``, ``escalated`` and ``gave_up``.
        at: the supervisor clock's time.
    """

    kind: str
    supervisor: str
    child: str | None
    cause: BaseException | None
    at: float


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What stopping a runtime or a supervisor did, as `Runtime.shutdown` and
    `Supervisor.stop` return it.

    Attributes:
        name: the runtime or supervisor that was stopped.
        timeout: the seconds it was given, in all.
        seconds: how long it took.
        abandoned: actors still busy when the time ran out, newest first. Each
            was fenced (nothing it still runs is committed; that request is
            answered with `ActorStopped`), its queued requests were answered
            with `ActorStopped`, and its daemon thread is left to end on its
            own.
        crashed: actors that crashed while stopping, or crashed before and
            still waited for a delayed restart (with requests queued). They
            were not restarted; the requests still queued were answered with
            `ActorStopped`.
        dropped: for each abandoned actor, ``(name, requests)``: how many of
            its requests were given up on (the one it was running, if any,
            and those still queued), each answered with `ActorStopped`
            instead of being handled.
        store_error: why the store could not write what it still held when
            it closed (a snapshot-mode store's unsaved snapshots: those
            changes are lost), or "" (`Runtime.shutdown` only).
    """

    name: str
    timeout: float
    seconds: float
    abandoned: tuple[str, ...] = ()
    crashed: tuple[str, ...] = ()
    dropped: tuple[tuple[str, int], ...] = ()
    store_error: str = ""

    @property
    def requests_dropped(self) -> int:
        """How many requests the abandoned actors gave up on, in all."""
        return sum(count for _, count in self.dropped)

    @property
    def clean(self) -> bool:
        """Whether every actor drained its mailbox and stopped in time, and
        the store wrote what it held."""
        return not self.abandoned and not self.crashed and not self.store_error

    def describe(self) -> str:
        """One sentence: what was abandoned, crashed or lost, and what to do."""
        if self.clean:
            return f"{self.name!r} stopped cleanly in {self.seconds:.2f} s"
        parts = []
        if self.abandoned:
            dropped = dict(self.dropped)
            named = ", ".join(
                f"{name} ({_requests(dropped[name])})" if name in dropped else name
                for name in self.abandoned
            )
            parts.append(
                f"abandoned {len(self.abandoned)} actor(s) still busy after "
                f"{self.timeout:g} s: {named} (nothing they still run "
                "is committed, their queued requests were refused)"
            )
        if self.crashed:
            parts.append(
                f"{len(self.crashed)} actor(s) crashed while stopping: "
                f"{', '.join(self.crashed)} (their queued requests were refused)"
            )
        if parts:
            parts[-1] += (
                ". Give it a longer timeout=, bound slow handlers with deadline=, or look at "
                "the actors' last_error"
            )
        if self.store_error:
            parts.append(f"the store could not save what it held: {self.store_error}")
        return f"{self.name!r} did not stop cleanly: {'; '.join(parts)}"

    def check(self) -> None:
        """Raise `ShutdownIncomplete` unless every actor stopped cleanly."""
        if not self.clean:
            raise ShutdownIncomplete(self)


def _requests(count: int) -> str:
    return f"{count} request{'' if count == 1 else 's'} given up"


class ChildRecord(Protocol):
    """A supervisor's record of one child: a `Child` for a child supervisor;
    an actor's `Lifecycle` is its own record (one object less per actor).
    The child keeps it, as its ``_child``, while it is a child."""

    restart_type: str
    consecutive: int
    last_start: float
    pending: Cancel | None

    @property
    def target(self) -> Any:
        """The Lifecycle itself, or the child Supervisor."""

    @property
    def name(self) -> str: ...

    @property
    def is_supervisor(self) -> bool: ...


@dataclass(eq=False, slots=True)
class Child:
    """The record of a child supervisor (see `ChildRecord`)."""

    target: Any  # a Supervisor
    restart_type: str
    consecutive: int = 0
    last_start: float = 0.0
    pending: Cancel | None = None

    @property
    def name(self) -> str:
        name: str = self.target.name
        return name

    @property
    def is_supervisor(self) -> bool:
        return True


@dataclass
class Plan:
    """What to do once the lock is released."""

    events: list[SupervisorEvent] = field(default_factory=list)
    retire: list[ChildRecord] = field(default_factory=list)
    start: list[ChildRecord] = field(default_factory=list)
    delay: float = 0.0
    drop: list[tuple[ChildRecord, str]] = field(default_factory=list)
    give_up: SupervisorGaveUp | None = None


class RestartPolicy:
    """Which children restart after a child's exit, and when: the strategy,
    the children's restart types, the restart limit and the backoff.

    `decide` runs under the supervisor's lock and changes only bookkeeping
    (the children list, the restart times, each child's epoch and restart
    count); the supervisor carries the plan out after releasing its lock.
    """

    def __init__(
        self,
        supervisor: str,
        strategy: str,
        max_restarts: int,
        within: float,
        backoff: Backoff | None,
    ) -> None:
        self.supervisor = supervisor
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.within = within
        self.backoff = backoff
        self.restart_times: collections.deque[float] = collections.deque()
        self.rng = random.Random(backoff.seed if backoff is not None else None)

    def decide(
        self,
        children: list[ChildRecord],
        child: ChildRecord,
        cause: BaseException | None,
        crashed: bool,
        now: float,
        event: Callable[[str, str | None, BaseException | None], SupervisorEvent],
    ) -> Plan:
        """Plan what follows ``child``'s exit (``crashed``, or stopped on its own)."""
        plan = Plan()
        if crashed:
            plan.events.append(event("failed", child.name, cause))
        restart = child.restart_type == "permanent" or (
            child.restart_type == "transient" and crashed
        )
        if not restart:
            children.remove(child)
            why = (
                f"crashed and is a {child.restart_type} child, so it is not restarted "
                f"(cause: {cause!r})"
                if crashed
                else f"stopped on its own and is a {child.restart_type} child"
            )
            plan.drop.append((child, why))
            plan.events.append(event("stopped", child.name, cause))
            return plan
        self.restart_times.append(now)
        while self.restart_times and self.restart_times[0] <= now - self.within:
            self.restart_times.popleft()
        if len(self.restart_times) > self.max_restarts:
            plan.give_up = SupervisorGaveUp(self.supervisor, self.max_restarts, self.within, cause)
        else:
            self._plan_restart(children, child, now, plan)
        return plan

    def _plan_restart(
        self, children: list[ChildRecord], failed: ChildRecord, now: float, plan: Plan
    ) -> None:
        index = children.index(failed)
        if self.strategy == "one_for_one":
            affected = [failed]
        elif self.strategy == "one_for_all":
            affected = list(children)
        else:
            affected = children[index:]
        for child in affected:
            if child is not failed and child.restart_type == "temporary":
                # A temporary sibling is stopped with the others and not restarted.
                children.remove(child)
                plan.retire.append(child)
                plan.drop.append(
                    (
                        child,
                        f"stopped by {self.supervisor!r} ({self.strategy}) and is a "
                        "temporary child",
                    )
                )
                continue
            if child is not failed:
                plan.retire.append(child)
            # Counted now, so a caller answered with ActorCrashed already sees
            # it, and the child's epoch moves on, so failures of the
            # incarnations it replaces are stale.
            plan.start.append(child)
            count_restart(child)
        backoff = self.backoff
        if backoff is not None:
            if now - failed.last_start >= backoff.reset_after:
                failed.consecutive = 0
            plan.delay = backoff.delay(failed.consecutive, self.rng)
            failed.consecutive += 1


def epoch_of(child: ChildRecord) -> int | None:
    return None if child.is_supervisor else child.target.epoch


def count_restart(child: ChildRecord) -> None:
    """Count a decided restart on a child actor and move its epoch on (under
    its supervisor's lock)."""
    if not child.is_supervisor:
        child.target.epoch += 1
        child.target.cell.restarts += 1


def retire_child(child: ChildRecord) -> None:
    target = child.target
    if child.is_supervisor:
        target._retire_children()
    else:
        target.retire()


def restart_child(child: ChildRecord) -> None:
    target = child.target
    if child.is_supervisor:
        target._restart_as_child()
    else:
        target.restart()


def stop_child(
    child: ChildRecord,
    reason: str,
    *,
    wait: bool,
    timeout: float | None = None,
    terminal: bool = True,
) -> None:
    target = child.target
    if child.is_supervisor:
        target._shutdown(timeout, reason, terminal=terminal)
        return
    target.stop(reason, 5.0 if timeout is None else timeout, wait=wait, terminal=terminal)
