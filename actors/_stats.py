"""What a cell reports about itself: its counters, and errors with no caller."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


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
        restarts: how many restarts its supervisor decided on; counted before
            the request that crashed it is answered.
        generation: the current incarnation's number: 1 for the first, one more
            for each restart, for each activation after a passivation, and for
            an incarnation fenced off.
        passive: whether it is passivated now (``Runtime(idle_after=...,
            max_active=...)``): its snapshot is only in the store, and its next
            message activates it.
        mailbox_limit: how many requests may wait in its mailbox (its
            handle's ``mailbox_limit=``, else its runtime's); None: no limit.
        at_limit: whether its mailbox is at that limit now: a ``request_*``
            call would be refused with `MailboxFull`, and blocking and awaited
            calls wait for room.
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
    passive: bool = False
    mailbox_limit: int | None = None
    at_limit: bool = False


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


@dataclass(frozen=True, slots=True)
class RuntimeStats(Mapping[str, ActorStats]):
    """What `Runtime.stats` returns: each actor's `ActorStats`, and runtime-wide counts.

    It also reads as a read-only mapping from actor name to `ActorStats`, as
    it did when it was a dict: ``stats["orders"]``, ``stats.values()``,
    ``"orders" in stats``, ``len(stats)``.

    Attributes:
        actors: `ActorStats` by actor name, in start order.
        events: supervision events by kind (started, failed, restarted,
            stopped, escalated, gave_up).
        errors: errors reported with no caller to go to.
        fatal: the fatal failure, as ``repr``, or None.
        passivations: how many times an idle actor was passivated (see
            ``Runtime(idle_after=..., max_active=...)``).
        activations: how many times a passivated actor was activated again.
    """

    actors: Mapping[str, ActorStats]
    events: Mapping[str, int]
    errors: int
    fatal: str | None
    passivations: int = 0
    activations: int = 0

    def __getitem__(self, name: str) -> ActorStats:
        return self.actors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.actors)

    def __len__(self) -> int:
        return len(self.actors)
