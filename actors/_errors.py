"""Errors of the actor layer; all are `StatewardError` subclasses."""

from __future__ import annotations

from stateward.core import StatewardError


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

    def __init__(self, actor: str, message: str, seconds: float, *, started: bool) -> None:
        self.actor = actor
        self.message = message
        self.seconds = seconds
        self.started = started
        fate = (
            "it was already running and may still complete"
            if started
            else "it had not started, was withdrawn, and will not run"
        )
        super().__init__(
            f"no reply from actor {actor!r} to {message} within {seconds:g} s; {fate}. "
            "Pass a larger timeout= or set Runtime(default_timeout=...) if the work is slow"
        )


class SelfCallError(StatewardError, RuntimeError):
    """A blocking call from an actor's own handler, hook or observer to itself.

    The actor is busy running the caller, so it could never answer: the call
    would deadlock. Use the non-blocking ``request_*`` form, which queues the
    message to run after the current one.
    """

    def __init__(self, actor: str, message: str, where: str = "its own thread") -> None:
        self.actor = actor
        self.message = message
        super().__init__(
            f"blocking call {message} on actor {actor!r} from {where} would deadlock: the "
            "actor is busy running the caller. Use the request_* form (it returns a reply "
            "future and queues the message after the current one) instead"
        )


class RuntimeStopped(StatewardError, RuntimeError):
    """An actor was created in a runtime that has shut down."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        super().__init__(
            f"runtime {runtime!r} has shut down; create actors in a new Runtime(), or omit "
            "runtime= to use the default one"
        )


class DuplicateActorName(StatewardError, ValueError):
    """A second live actor with the same name in one runtime."""

    def __init__(self, name: str, runtime: str) -> None:
        self.name = name
        self.runtime = runtime
        super().__init__(
            f"runtime {runtime!r} already has an actor named {name!r}; pick another name, "
            "stop the first one, or use runtime.get(name) to reach it"
        )
