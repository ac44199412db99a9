"""One shard: the process side of a `RayRuntime`, run as a sync,
single-threaded Ray actor (Ray then runs one caller's calls in the order sent).

A shard holds a normal `Runtime` on a worker pool over the shared store, and
the handles of the actors placed on it. Each Ray call carries a batch of
operations (`Shard.run`): creations, run in place, and requests, queued into
their actors' mailboxes in batch order and answered together, so the actors
of one batch run side by side on the pool and one machine's requests in order
(a lone request that runs no code of the user's runs on the Ray thread
itself: `_send_here`). A batch a `Link` sends is answered with each
machine's snapshots shrunk to what its client lacks (`_delta`).
A call never waits for what only a later call can bring: a batch stuck for
`_journal.PATIENCE` seconds (no answer coming) defers the rest, which the
client collects with `Shard.poll` (see `_journal`).

A shard that replaces a dead one starts empty: it recovers an actor from the
store when the first request for it arrives (each request says how the actor
is defined), claiming its name under its own lease, so that the dead shard,
if it still runs somewhere, can commit nothing more for it (`LeaseLost`).
The client that replaced it also tells it which of its machines the shard
hosts (`Shard.rearm`): those with a timer pending in the store are recovered
at once, so that their timers fire though no request comes for them (the
shard's runtime arms a machine's timers when it recovers it, and after each
commit, as any runtime does: `actors._timers`).
Each request carries its client's id for it; the id is written with the
request's commit (`actors._context.request_id`). A batch sent again after a
shard died is marked as a retry: its ids found in the store were applied by
the dead shard and are answered, not applied again (`Shard._applied`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import os
import pickle
import threading
import time
from collections.abc import Sequence
from typing import Any

from stateward.core import DefinitionMismatch, MachineSpec, StatewardError
from stateward.core._errors import _restore
from stateward.core._messages import Move

from .._context import request_id
from .._errors import ActorCrashed, ActorOwned, LeaseLost
from .._reply import Reply
from .._runtime import Runtime
from ._carry import send_in_context
from ._delta import SHRUNK, Chain
from ._errors import ShardUnavailable
from ._journal import Journal
from ._options import create_on_shard
from ._paths import StoreRecipe, open_store, unpickled

logger = logging.getLogger("stateward.actors")

#: A request's answer: ``(True, value)`` or ``(False, error)``.
Answer = tuple[bool, Any]


def _portable(error: BaseException) -> BaseException:
    """``error`` as it can travel back to the client. A crash because this
    shard's lease was taken over is answered as the `LeaseLost` itself:
    nothing of the request was committed. A `StatewardError` with a field
    that cannot pickle (an `UnencodableValueError`'s ``value_type``, say)
    keeps its class, message and other fields, that one as its repr; any
    other error that does not pickle back becomes a `ShardUnavailable` that
    tells what it was."""
    if isinstance(error, ActorCrashed) and isinstance(error.cause, LeaseLost):
        error = error.cause
    if _round_trips(error):
        return error
    if isinstance(error, StatewardError):
        shown = {key: _or_repr(value) for key, value in vars(error).items()}
        plain = _restore(type(error), tuple(map(_or_repr, error.args)), shown)
        if _round_trips(plain):
            return plain
    return ShardUnavailable(
        f"the request failed on the shard with {type(error).__name__}: {error} (that "
        "exception cannot be pickled back to this client, so it comes as this error); "
        "as locally, a request that fails commits nothing"
    )


def _round_trips(value: object) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:
        return False
    return True


def _or_repr(value: object) -> object:
    return value if _round_trips(value) else repr(value)


class Shard:
    """The actors of one logical shard, over the shared store."""

    def __init__(self, index: int, recipe: StoreRecipe, workers: int) -> None:
        self.index = index
        self.store = open_store(recipe)
        self.runtime = Runtime(f"ray-shard-{index}", store=self.store, workers=workers)
        self.handles: dict[str, Any] = {}
        #: How each actor was defined: ``(kind, definition, options)``, by name.
        self.definitions: dict[str, tuple[str, Any, Any]] = {}
        self.journal = Journal()
        #: Held while an actor is created or recovered here.
        self._creating = threading.RLock()
        #: Once a commit found this shard's lease taken over (it was replaced:
        #: a zombie), that `LeaseLost`: every later request is answered with it.
        self.fenced: LeaseLost | None = None

    def pid(self) -> int:
        """This shard's process id (what a test kills or pauses)."""
        return os.getpid()

    def _create(
        self, name: str, kind: str, definition: Any, initial: Any, options: Any = None
    ) -> Any:
        with self._creating:  # the Ray thread, or the thread of a `rearm`
            return self._create_here(name, kind, definition, initial, options)

    def _create_here(
        self, name: str, kind: str, definition: Any, initial: Any, options: Any
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
            return handle._cell.read()
        # A shard that replaces a paused or cut-off one waits for that one's
        # lease to expire (a killed one's is free at once): its names are its
        # own until then.
        deadline = time.monotonic() + 2 * self.store.lease_seconds  # type: ignore[attr-defined]
        while True:
            try:
                handle = create_on_shard(self.runtime, name, kind, definition, initial, options)
                break
            except ActorOwned:
                if time.monotonic() >= deadline:
                    raise
                threading.Event().wait(0.05)
        self.handles[name] = handle
        self.definitions[name] = (kind, definition, options)
        return handle._cell.read()

    def rearm(self, machines: Sequence[tuple[str, str, Any, Any]]) -> list[str]:
        """Recover from the store those of ``machines`` (``(name, kind,
        definition, options)``, a client's machines on this shard) that have
        a timer pending and are not here yet, so that their runtime arms
        their timers (an overdue one fires at once): what a replacement is
        asked when it starts, since it recovers an actor only when a request
        for it comes. They are recovered one at a time on a thread of their
        own, so that requests are not held up by many of them. Returns the
        names to recover; one that fails to is logged and left for its next
        request."""
        if self.fenced is not None:
            return []
        horizon = self.runtime.clock() + _dt.timedelta(days=36500)
        pending = {name for name, _ in self.store.due_timers(horizon)}
        wanted = [m for m in machines if m[0] in pending and m[0] not in self.handles]
        if wanted:
            threading.Thread(
                target=self._recover_each,
                args=(wanted,),
                name=f"stateward-shard-{self.index}-rearm",
                daemon=True,
            ).start()
        return [name for name, *_ in wanted]

    def _recover_each(self, machines: list[tuple[str, str, Any, Any]]) -> None:
        for name, kind, definition, options in machines:
            if self.fenced is not None or self.runtime.closed:
                return
            try:
                self._create(name, kind, definition, None, options)
            except Exception:
                logger.exception(
                    "shard %d: recovering %r to arm its timers failed", self.index, name
                )

    def _answer_applied(self, name: str) -> Any:
        """What a request the dead shard applied is answered with: the actor's
        snapshot as recovered (a manager's state)."""
        snapshot = self.handles[name]._cell.read()
        kind = self.definitions[name][0]
        if kind == "machine":
            return snapshot
        return snapshot.state if kind == "manager" else snapshot.current

    def _applied(self, ops: Sequence[tuple[Any, ...]]) -> dict[int, Answer]:
        """The answers of a retried batch's requests that must not run again,
        by position: those the store holds as applied, and those that the dead
        shard ran before an applied one of the same actor without committing
        (they failed, or changed nothing: their answers were lost with it)."""
        calls: dict[str, list[tuple[int, str]]] = {}
        for position, op in enumerate(ops):
            if op[0] == "call":
                calls.setdefault(op[1], []).append((position, op[3]))
        answers: dict[int, Answer] = {}
        for name, sent in calls.items():
            first = ops[sent[0][0]]
            try:
                # Claimed first: from here on, the dead shard commits nothing for it.
                self._create(name, first[4], first[5], None, first[6])
                done = self.store.applied(name, [rid for _, rid in sent])  # type: ignore[attr-defined]
            except Exception as exc:
                for position, _ in sent:
                    answers[position] = (False, _portable(exc))
                continue
            if not done:
                continue
            last = max(position for position, rid in sent if rid in done)
            for position, rid in sent:
                if rid in done:
                    answers[position] = (True, self._answer_applied(name))
                elif position < last:
                    answers[position] = (
                        False,
                        ShardUnavailable(
                            f"{name!r}: request {rid} was not applied: the shard that died ran "
                            "it before a later request of the same client that it committed, "
                            "and committed nothing for it (it failed, or changed nothing); "
                            "its answer was lost with that shard"
                        ),
                    )
        return answers

    def run(self, batch: Any, retry: bool = False) -> Any:
        """Run a batch: ``("create", name, kind, definition, initial, options)``
        and ``("call", name, pickled message, request id, kind, definition,
        options)``.
        Return one ``(ok, value or error)`` per operation, in order, and each
        named actor's snapshot after the batch. ``retry``: the batch was sent
        to a shard that died; what it applied is answered, not run again.
        A shard that was replaced answers every request with `LeaseLost`
        (its client then finds the replacement).

        ``batch`` is a list of operations, or, as a `Link` sends it, ``(ops,
        held)`` (``held``: what the client holds of each machine it calls,
        see `_delta`), pickled with plain pickle (else as is). Such a batch
        is answered ``(answers, snapshots, shrunk)``, pickled likewise: its
        machines' snapshots shrunk (see `_shrink`)."""
        if type(batch) is list:
            return self._run(batch, retry)
        ops, held = pickle.loads(batch) if type(batch) is bytes else batch
        answers, snapshots = self._run(ops, retry)
        result = _shrink(ops, answers, snapshots, Chain(held))
        if type(batch) is bytes:
            try:
                return pickle.dumps(result, protocol=5)
            except Exception:
                pass  # a value only Ray's cloudpickle takes: it pickles the result
        return result

    def _run(self, ops: list[tuple[Any, ...]], retry: bool) -> tuple[list[Answer], dict[str, Any]]:
        if self.fenced is not None:
            return [(False, self.fenced)] * len(ops), {}
        settled = self._applied(ops) if retry else {}
        lone = len(ops) == 1  # a lone request may run here (see `_send_here`)
        outcomes: list[Any] = []
        names: set[str] = set()
        for position, op in enumerate(ops):
            name = op[1]
            try:
                if position in settled:
                    outcomes.append(settled[position])
                elif op[0] == "create":
                    outcomes.append((True, self._create(*op[1:6])))
                else:
                    handle = self.handles.get(name)
                    if handle is None:  # placed on the shard this one replaces: recover it
                        self._create(name, op[4], op[5], None, op[6])
                        handle = self.handles[name]
                    token = request_id.set(op[3])  # the reply copies it with the context
                    try:
                        send = functools.partial(_send_here, handle) if lone else handle._request
                        message = unpickled(op[2], repr(name))
                        outcomes.append(send_in_context(message, send))
                    finally:
                        request_id.reset(token)
                names.add(name)
            except Exception as exc:
                outcomes.append((False, _portable(exc)))
        answers = self.journal.settle([op[1] for op in ops], outcomes, _portable)
        for ok, value in answers:
            if not ok and isinstance(value, LeaseLost):
                self.fenced = value
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


def _send_here(handle: Any, message: Any, callback: None) -> Any:
    """A batch's lone request, run on this (the shard's Ray) thread when it
    runs no code of the user's (`_runs_no_user_code`) and its actor is idle
    with nothing queued, as a blocking call runs inline (``Runtime(inline_calls=
    True)``, `Cell.try_inline`): no hand-off to a pool worker and back. What
    runs no code of the user's cannot wait for a later call, which the Ray
    thread would never take (see `_journal`). Else queued, as usual."""
    cell = handle._cell
    if type(message) is Move and _runs_no_user_code(handle._spec):
        turn = cell.try_inline()
        if turn:
            reply: Reply[Any] = Reply(cell, message)
            cell.process_inline(reply, turn)
            return reply
    return handle._request(message, callback)


def _runs_no_user_code(spec: MachineSpec) -> bool:
    """Whether a transition of ``spec`` runs only stateward's code: no hook,
    no event effect, no guard of an event's alternative."""
    return not spec.hooks and all(
        event.effect is None and not event.guards and not event.unless for event in spec.events
    )


def _shrink(
    ops: list[tuple[Any, ...]], answers: list[Answer], snapshots: dict[str, Any], chain: Chain
) -> tuple[list[tuple[Any, Any]], dict[str, Any], dict[str, Any]]:
    """A batch's answers with each machine snapshot that a call answered
    ``(SHRUNK, shrunk)`` for its client (see `_delta`), in batch order; and
    its actors' snapshots: whole in the first dict, shrunk in the second,
    where None means "the one its last answer in the batch held"."""
    last: dict[str, Any] = {}
    sent: list[tuple[Any, Any]] = []
    for op, (ok, value) in zip(ops, answers, strict=True):
        if ok is True and op[0] == "call":
            shrunk = chain.shrink(op[1], value)
            if shrunk is not None:
                last[op[1]] = value
                sent.append((SHRUNK, shrunk))
                continue
        sent.append((ok, value))
    whole: dict[str, Any] = {}
    shrunk_snapshots: dict[str, Any] = {}
    for name, snapshot in snapshots.items():
        if last.get(name) is snapshot:
            shrunk_snapshots[name] = None
            continue
        shrunk = chain.shrink(name, snapshot)
        if shrunk is None:
            whole[name] = snapshot
        else:
            shrunk_snapshots[name] = shrunk
    return sent, whole, shrunk_snapshots
