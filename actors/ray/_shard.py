"""One shard: the process side of a `RayRuntime`, run as a sync,
single-threaded Ray actor (Ray then runs one caller's calls in the order sent).

A shard holds a normal `Runtime` on a worker pool over the shared store, and
the handles of the actors placed on it. Each Ray call carries a batch of
operations (`Shard.run`): creations, run in place, and requests, queued into
their actors' mailboxes in batch order and answered together, so the actors
of one batch run side by side on the pool and one machine's requests in order.
"""

from __future__ import annotations

import pickle
from typing import Any

from stateward.core import DefinitionMismatch

from .._handles import StateMachine, StateManager
from .._runtime import Runtime
from ._errors import ShardUnavailable
from ._paths import StoreRecipe, import_spec, open_store

#: How long a shard waits for one request of a batch.
ANSWER_TIMEOUT = 30.0


def _portable(error: BaseException) -> BaseException:
    """``error`` if it pickles back to the client, else a `ShardUnavailable`
    that tells what it was."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return ShardUnavailable(f"the shard raised {type(error).__name__}: {error}")
    return error


class Shard:
    """The actors of one logical shard, over the shared store."""

    def __init__(self, index: int, recipe: StoreRecipe, workers: int) -> None:
        self.index = index
        self.runtime = Runtime(f"ray-shard-{index}", store=open_store(recipe), workers=workers)
        self.handles: dict[str, Any] = {}
        #: How each actor was defined: ``(kind, definition)``, by name.
        self.definitions: dict[str, tuple[str, Any]] = {}

    def _create(self, name: str, kind: str, definition: Any, initial: Any) -> Any:
        handle = self.handles.get(name)
        if handle is not None:
            known = self.definitions[name]
            if known != (kind, definition):
                raise DefinitionMismatch(
                    name,
                    f"it lives on shard {self.index} as a {known[0]} defined by {known[1]!r}, "
                    f"not as a {kind} defined by {definition!r}",
                )
        else:
            if kind == "machine":
                spec = import_spec(*definition)
                handle = StateMachine(spec, name=name, runtime=self.runtime, data=initial)
            else:
                handle = StateManager(initial, name=name, runtime=self.runtime)
            self.handles[name] = handle
            self.definitions[name] = (kind, definition)
        return handle.snapshot

    def run(self, ops: list[tuple[Any, ...]]) -> tuple[list[tuple[bool, Any]], dict[str, Any]]:
        """Run a batch: ``("create", name, kind, definition, initial)`` and
        ``("call", name, pickled message)``. Return one ``(ok, value or
        error)`` per operation, in order, and each named actor's snapshot
        after the batch."""
        outcomes: list[Any] = []
        names: set[str] = set()
        for op in ops:
            name = op[1]
            try:
                if op[0] == "create":
                    outcomes.append((True, self._create(*op[1:])))
                else:
                    handle = self.handles.get(name)
                    if handle is None:
                        raise ShardUnavailable(
                            f"shard {self.index} holds no actor {name!r} (it was restarted "
                            "and lost its actors: shard recovery is not built yet)"
                        )
                    outcomes.append(handle._request(pickle.loads(op[2]), None))
                names.add(name)
            except Exception as exc:
                outcomes.append((False, _portable(exc)))
        answers: list[tuple[bool, Any]] = []
        for outcome in outcomes:
            if isinstance(outcome, tuple):
                answers.append(outcome)
                continue
            try:
                answers.append((True, outcome.result(ANSWER_TIMEOUT)))
            except Exception as exc:
                answers.append((False, _portable(exc)))
        snapshots = {name: self.handles[name]._cell.read() for name in names}
        return answers, snapshots

    def close(self) -> None:
        """Shut the shard's runtime down (drain, commit, close the store)."""
        self.runtime.shutdown()
