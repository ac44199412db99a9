"""Errors of the actor layer; all are `StatewardError` subclasses."""

from __future__ import annotations

import concurrent.futures
from typing import Protocol

from stateward.core import StatewardError


class _Report(Protocol):
    """What `ShutdownIncomplete` reads of a `ShutdownReport` (defined higher up)."""

    @property
    def abandoned(self) -> tuple[str, ...]: ...

    @property
    def crashed(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...


class ActorStopped(StatewardError, RuntimeError):
    """A call on an actor that has stopped for good.

    Attributes:
        actor: the actor's name.
        reason: why it stopped.
    """

    def __init__(self, actor: str, reason: str, fix: str = "") -> None:
        self.actor = actor
        self.reason = reason
        self.fix = fix or (
            "create a new handle (in a runtime that is running) to go on; the stopped "
            "one cannot be restarted"
        )
        super().__init__(f"actor {actor!r} has stopped ({reason}); {self.fix}")


class ActorTimeout(StatewardError, TimeoutError):
    """A blocking call that got no reply in time.

    Attributes:
        actor: the actor's name.
        message: the request, as ``transition('paid')``.
        seconds: how long the caller waited.
        started: whether the actor had started the request when the wait ended.
            If not, the request was withdrawn and will never run.
    """

    def __init__(
        self, actor: str, message: str, seconds: float, *, started: bool, fate: str = ""
    ) -> None:
        self.actor = actor
        self.message = message
        self.seconds = seconds
        self.started = started
        fate = fate or (
            "it was already running and may still complete"
            if started
            else "it had not started, was withdrawn, and will not run"
        )
        super().__init__(
            f"no reply from actor {actor!r} to {message} within {seconds:g} s; {fate}. "
            "Pass a larger timeout= or set Runtime(default_timeout=...) if the work is slow"
        )


class MailboxFull(StatewardError):
    """A request refused because its actor's mailbox is at its limit
    (``mailbox_limit=`` on the handle, or the runtime's default): that many
    requests already wait in it. Nothing was sent.

    Only a ``request_*`` call is refused so: a blocking call waits for room
    within its timeout, an awaited call suspends until there is room.

    Attributes:
        actor: the actor's name.
        limit: how many requests may wait in its mailbox.
        message: the request refused, as ``transition('paid')``.
    """

    def __init__(self, actor: str, limit: int, message: str) -> None:
        self.actor = actor
        self.limit = limit
        self.message = message
        super().__init__(
            f"actor {actor!r} already has {limit} requests waiting in its mailbox, its "
            f"mailbox_limit, so {message} was refused: nothing was sent. Retry later, use "
            "the blocking or awaited call (it waits for room within its timeout), or give "
            "the actor a larger mailbox_limit= (on the handle, or Runtime(mailbox_limit=...))"
        )


class WaitTimeout(ActorTimeout):
    """A wait for a commit (``wait_until``, ``await_until``, the next item of
    ``changes()``) that saw none it waited for in time. Nothing was sent to
    the actor, so nothing is withdrawn (``started`` is False); a change
    stream stays subscribed.

    Attributes:
        actor: the actor's name.
        message: what was waited for, as ``wait_until('paid')``.
        seconds: how long the caller waited.
        version: the version of the actor's last committed snapshot seen.
    """

    def __init__(self, actor: str, message: str, seconds: float, version: int, fix: str) -> None:
        self.actor = actor
        self.message = message
        self.seconds = seconds
        self.started = False
        self.version = version
        StatewardError.__init__(
            self,
            f"actor {actor!r} committed no snapshot that {message} waited for within "
            f"{seconds:g} s (its last committed version is {version}). {fix}",
        )


class SelfCallError(StatewardError, RuntimeError):
    """A blocking call (or a wait for a reply) from an actor's own handler, hook or
    observer to that same actor.

    The actor is busy running the caller, so it could never answer: the call
    would deadlock. Use the non-blocking ``request_*`` form, which queues the
    message to run after the current one, and do not wait for its reply there.
    """

    def __init__(
        self, actor: str, message: str, where: str = "its own thread", fix: str | None = None
    ) -> None:
        self.actor = actor
        self.message = message
        fix = fix or (
            "Use the request_* form (it returns a reply future and queues the message "
            "after the current one) instead"
        )
        super().__init__(
            f"blocking call {message} on actor {actor!r} from {where} would deadlock: the "
            f"actor is busy running the caller. {fix}"
        )


class RuntimeStopped(StatewardError, RuntimeError):
    """An actor was created in a runtime that has shut down."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        super().__init__(
            f"runtime {runtime!r} has shut down; create actors in a new Runtime(), or omit "
            "runtime= to use the default one"
        )


class SupervisorStopped(RuntimeStopped):
    """An actor or a supervisor was started under a supervisor that has stopped.

    It subclasses `RuntimeStopped`, which it was raised as before, so existing
    ``except RuntimeStopped`` clauses still catch it; the runtime itself may
    well be running.

    Attributes:
        runtime: the runtime's name.
        supervisor: the supervisor's name.
        reason: why it stopped.
    """

    def __init__(self, runtime: str, supervisor: str, reason: str) -> None:
        self.runtime = runtime
        self.supervisor = supervisor
        self.reason = reason
        StatewardError.__init__(
            self,
            f"supervisor {supervisor!r} of runtime {runtime!r} has stopped ({reason}); "
            "start the actor under another supervisor (the runtime's root by default), "
            "or create a new Supervisor",
        )


class ActorNotFound(StatewardError, KeyError):
    """`Runtime.get` with a name that no live actor of the runtime has.

    Subclasses `KeyError`, as the lookup raised before.

    Attributes:
        name: the name asked for.
        runtime: the runtime's name.
        known: the names of its live actors.
    """

    def __init__(self, name: object, runtime: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.runtime = runtime
        self.known = known
        self.message = (
            f"runtime {runtime!r} has no actor {name!r}; actors: {', '.join(known) or 'none'}. "
            "Check the name (runtime.names() lists them), or create the actor first; an "
            "actor that stopped is no longer found"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError would show the message quoted, as a key.
        return self.message


class ShutdownIncomplete(StatewardError, RuntimeError):
    """A shutdown that did not stop every actor cleanly (`ShutdownReport.check`).

    Attributes:
        report: the `ShutdownReport`.
        abandoned: actors still busy when the time ran out.
        crashed: actors that crashed while stopping.
    """

    def __init__(self, report: _Report) -> None:
        self.report = report
        self.abandoned = report.abandoned
        self.crashed = report.crashed
        super().__init__(report.describe())


class DuplicateActorName(StatewardError, ValueError):
    """A second live actor with the same name in one runtime."""

    def __init__(self, name: str, runtime: str) -> None:
        self.name = name
        self.runtime = runtime
        super().__init__(
            f"runtime {runtime!r} already has an actor named {name!r}; pick another name, "
            "stop the first one, or use runtime.get(name) to reach it"
        )


class ActorCrashed(StatewardError, RuntimeError):
    """The request crashed its actor; it will not be delivered again.

    The supervisor restarts the actor from its last committed snapshot, and the
    requests queued behind this one are handled by the new incarnation.

    Attributes:
        actor: the actor's name.
        message: the request, as ``modify(<lambda>)``.
        cause: the exception that crashed it.
    """

    def __init__(self, actor: str, message: str, cause: BaseException) -> None:
        self.actor = actor
        self.message = message
        self.cause = cause
        super().__init__(
            f"actor {actor!r} crashed handling {message}: {cause!r}. Nothing of this "
            "request was committed; the supervisor restarts the actor from its last "
            "committed state and the requests queued behind this one still run"
        )


class DeadlineExceeded(StatewardError, TimeoutError):
    """A handler that ran past its actor's ``deadline=``; the actor is restarted.

    Attributes:
        actor: the actor's name.
        message: the request being handled.
        deadline: the allowed seconds.
    """

    def __init__(self, actor: str, message: str, deadline: float) -> None:
        self.actor = actor
        self.message = message
        self.deadline = deadline
        super().__init__(
            f"actor {actor!r} spent more than its deadline of {deadline:g} s on {message}; "
            "that incarnation is fenced off (it can no longer commit) and replaced"
        )


class SupervisorGaveUp(StatewardError, RuntimeError):
    """A supervisor passed its restart limit and stopped its children.

    Attributes:
        supervisor: the supervisor's name.
        restarts: how many restarts it counted within the window.
        within: the window, in seconds.
        cause: the failure that crossed the limit.
    """

    def __init__(
        self, supervisor: str, restarts: int, within: float, cause: BaseException | None
    ) -> None:
        self.supervisor = supervisor
        self.restarts = restarts
        self.within = within
        self.cause = cause
        super().__init__(
            f"supervisor {supervisor!r} gave up: more than {restarts} restarts within "
            f"{within:g} s (last failure: {cause!r}); its children are stopped. Fix the "
            "cause, or raise max_restarts/within if such bursts are expected"
        )


class StoreError(StatewardError):
    """Root of the errors a store raises."""


class StoreOpenError(StoreError, OSError):
    """A store that cannot be opened as it is; nothing was written.

    Attributes:
        path: the file.
        problem: what is wrong with it.
    """

    def __init__(self, path: object, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        text = f"cannot open stateward store {self.path!r}: {problem}"
        super().__init__(f"{text}; {fix}" if fix else text)


class StoreWriteError(StoreError, OSError):
    """A commit that could not be made durable. The request is not committed
    (recovery will not find it either), and the actor counts as crashed.

    Attributes:
        actor: the actor whose commit failed (in batched mode, every actor of
            the failed write, comma-separated: none of them was committed).
        problem: what went wrong.
        cause: the underlying error (disk full, read-only file, locked database).
        fix: what happens next, or what to do.
    """

    def __init__(
        self, actor: str, problem: str, cause: BaseException | None = None, *, fix: str = ""
    ) -> None:
        self.actor = actor
        self.problem = problem
        self.cause = cause
        self.fix = fix or "the actor restarts from its last durable state"
        super().__init__(
            f"could not store the commit of actor {actor!r}: {problem}. It was not "
            f"committed; {self.fix}"
        )


class ActorOwned(StoreError, RuntimeError):
    """An actor name already in use by another live runtime on the same store.

    Attributes:
        actor: the name.
        owner: who holds it (process id and runtime).
    """

    def __init__(self, actor: str, owner: str) -> None:
        self.actor = actor
        self.owner = owner
        super().__init__(
            f"actor {actor!r} is already open in this store by {owner}; two writers must "
            "never share one actor's journal. Stop it there first, or use another name"
        )


class LeaseLost(StoreWriteError):
    """A commit (or claim) by a runtime whose lease on the store was taken
    over: another runtime claimed its names under a newer lease epoch, after
    this one's lease expired (a paused or partitioned process). Nothing of it
    was written; the actor is fenced off this store.

    Attributes:
        actor: the actor (comma-separated for a group commit).
        store: the store.
        held: the lease epoch this runtime held.
        current: the epoch of the lease that holds the actor now (None if no
            runtime holds it).
    """

    def __init__(self, actor: str, store: str, held: int, current: int | None) -> None:
        self.store = store
        self.held = held
        self.current = current
        now = (
            "no runtime holds it now" if current is None else f"lease epoch {current} holds it now"
        )
        super().__init__(
            actor,
            f"this runtime's lease (epoch {held}) on store {store} was taken over ({now}): "
            "its lease expired without being renewed (the process was paused or cut off)",
            fix=(
                "nothing more is committed for it by this runtime: shut this runtime down; the "
                "actor goes on where its new owner runs it (give Runtime a longer lease, "
                "SQLiteStore(lease_seconds=...), if pauses this long are expected)"
            ),
        )


class RecoveryError(StoreError, RuntimeError):
    """A stored actor that cannot be recovered without risking wrong data.

    Attributes:
        actor: the actor's name.
        problem: what was found.
    """

    def __init__(self, actor: str, problem: str) -> None:
        self.actor = actor
        self.problem = problem
        super().__init__(
            f"cannot recover actor {actor!r}: {problem}. Nothing was loaded; restore the "
            "store file from a backup or remove the actor's records"
        )


class RequestCancelled(StatewardError, concurrent.futures.CancelledError):
    """The answer of a request withdrawn because the asyncio task awaiting it
    was cancelled before the actor started it (``task.cancel()``,
    ``asyncio.timeout``, ``asyncio.wait_for``): it never runs.

    The cancelled task itself sees its `asyncio.CancelledError` (or the
    `TimeoutError` of its ``asyncio.timeout``); this error is what the reply
    holds, for any other waiter and its done-callbacks. A request the actor
    had already started is not withdrawn: it completes and commits.

    Attributes:
        actor: the actor's name.
        message: the request, as ``transition('paid')``.
    """

    def __init__(self, actor: str, message: str) -> None:
        self.actor = actor
        self.message = message
        super().__init__(
            f"request {message} to actor {actor!r} was withdrawn before it started, because "
            "the task awaiting it was cancelled; it will not run. Send it again if it is "
            "still wanted"
        )
