"""One shard: the process side of a `RayRuntime`, run as a sync,
single-threaded Ray actor (Ray then runs one caller's calls in the order sent).

A shard holds a normal `Runtime` on a worker pool over the shared store, and
the handles of the actors placed on it. Each Ray call carries a batch of
operations (`Shard.run`): creations, run in place, and requests, queued into
their actors' mailboxes in batch order and answered together, so the actors
of one batch run side by side on the pool and one machine's requests in order.
A call never waits for what only a later call can bring: a batch stuck for
`_journal.PATIENCE` seconds (no answer coming) defers the rest, which the
client collects with `Shard.poll` (see `_journal`).
"""

from __future__ import annotations

import pickle
from typing import Any

from stateward.core import DefinitionMismatch

from .._runtime import Runtime
from ._carry import send_in_context
from ._errors import ShardUnavailable
from ._journal import Journal
from ._options import create_on_shard
from ._paths import open_store


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

    def __init__(self, index: int, recipe: tuple[str, str, str], workers: int) -> None:
        self.index = index
        self.runtime = Runtime(f"ray-shard-{index}", store=open_store(recipe), workers=workers)
        self.handles: dict[str, Any] = {}
        #: How each actor was defined: ``(kind, definition, options)``, by name.
        self.definitions: dict[str, tuple[str, Any, Any]] = {}
        self.journal = Journal()

    def _create(
        self, name: str, kind: str, definition: Any, initial: Any, options: Any = None
    ) -> Any:
        handle = self.handles.get(name)
        if handle is not None:
            known = self.definitions[name]
            if known != (kind, definition, options):
                raise DefinitionMismatch(
                    name,
                    f"it lives on shard {self.index} as a {known[0]} defined by {known[1]!r} "
                    f"with options {known[2]!r}, not as a {kind} defined by {definition!r} "
                    f"with options {options!r}",
                )
        else:
            handle = create_on_shard(self.runtime, name, kind, definition, initial, options)
            self.handles[name] = handle
            self.definitions[name] = (kind, definition, options)
        return handle._cell.read()

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
                    outcomes.append(send_in_context(pickle.loads(op[2]), handle._request))
                names.add(name)
            except Exception as exc:
                outcomes.append((False, _portable(exc)))
        answers = self.journal.settle([op[1] for op in ops], outcomes, _portable)
        snapshots = {name: self.handles[name]._cell.read() for name in names}
        return answers, snapshots

    def poll(
        self, versions: dict[str, int], tokens: list[int]
    ) -> tuple[dict[str, list[Any]], dict[int, Any], dict[str, Any]]:
        """What a client follows, never waiting (see `_journal`): the commits
        after ``versions[name]`` of each watched name, the answers of the
        deferred requests ``tokens`` done by now, and the snapshots of their
        actors."""
        self.journal.drop_idle()
        logs: dict[str, list[Any]] = {}
        for name, version in versions.items():
            handle = self.handles.get(name)
            if handle is not None:
                logs[name] = self.journal.follow(name, handle, version)
        answers, names = self.journal.collect(tokens, _portable)
        snapshots = {name: self.handles[name]._cell.read() for name in names}
        return logs, answers, snapshots

    def close(self) -> None:
        """Shut the shard's runtime down (drain, commit, close the store)."""
        self.runtime.shutdown()
