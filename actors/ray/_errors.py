"""The errors of `RayRuntime`: what cannot travel to a shard, and a shard that
did not answer."""

from __future__ import annotations

from stateward.core import StatewardError


class SpecNotImportable(StatewardError, ImportError):
    """A machine's definition cannot be found by import path, on the client (it
    is not a module-level name of an imported module) or on a shard's worker
    (its module does not import there): nothing was created. Or a request, or
    an ``on_start``, carries a function whose module does not import on the
    shard's worker: it did not run."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotPicklable(StatewardError, TypeError):
    """A request (a ``modify`` function, most often) cannot be pickled to travel
    to its shard. Nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ShardUnavailable(StatewardError, RuntimeError):
    """A request's shard could not give its answer: the Ray call failed
    otherwise than by the shard's death (then the client retries it on a
    replacement), or the shard was replaced too many times in a row, or the
    client shut down; the message says whether the request ran, or that this
    is unknown (see docs/cluster.md, "Failure semantics")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotPropagable(StatewardError, ValueError):
    """A context variable registered with `propagate_context` that a shard
    cannot find by import path (or that is no `ContextVar`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotOnRay(StatewardError, ValueError):
    """An option of a handle that cannot hold for an actor hosted on a Ray
    shard; the message says why and what to pass instead. Nothing was created."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
