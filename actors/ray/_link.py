"""The client's side of one shard: a queue of operations and the thread that
sends them in batches.

Callers only append to the queue (`Link.put`); one thread per shard takes
everything queued (up to `MAX_BATCH`), sends it as one Ray call, and answers
each `Reply` from the results. While a call is out, new requests gather for
the next one, so one Ray call carries as many requests as arrived meanwhile:
throughput is not bound by the per-call cost. One sending thread and a sync
shard keep the order: requests put by one caller to one actor run in the
order put.
"""

from __future__ import annotations

import collections
import logging
import pickle
import threading
from typing import Any

from .._errors import LeaseLost
from .._reply import Reply
from ._delta import SHRUNK, Held, grow, held_of
from ._errors import NotPicklable, ShardUnavailable
from ._journal import Deferred

#: The most operations one Ray call carries.
MAX_BATCH = 1000

#: How many times in a row one batch may find its shard dead and replace it.
MAX_REPLACEMENTS = 3

logger = logging.getLogger("stateward.actors")


def pickled(request: Any, where: str) -> bytes:
    """``request`` pickled for the trip to a shard (by value for functions,
    with Ray's cloudpickle, when plain pickle refuses them).

    Raises:
        NotPicklable: it cannot be pickled; nothing is sent.
    """
    try:
        return pickle.dumps(request, protocol=5)
    except Exception:
        pass
    from ray import cloudpickle

    try:
        return bytes(cloudpickle.dumps(request, protocol=5))  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise NotPicklable(
            f"{where}: the request cannot travel to its Ray shard, since it cannot be pickled "
            f"({type(exc).__name__}: {exc}). Pass a function that holds no lock, file, "
            "connection or other process-bound object (a module-level function, or a lambda "
            "over plain values)"
        ) from None


class Link:
    """The queue to one shard and its sending thread.

    A call that fails because the shard's actor died, or that gets no answer
    within ``call_timeout`` seconds, declares the shard dead: the link has it
    killed and replaced (`ShardSet.replace`) and sends the same batch again,
    marked as a retry, to the replacement, which applies each request id at
    most once (`Shard.run`). After `MAX_REPLACEMENTS` replacements in a row
    for one batch, its requests get `ShardUnavailable`.

    The requests the dead shard deferred (answered later by a poll, see
    `_follow`) are unanswered too: they go first in that retry, in the order
    sent, since they were sent before the batch (`reclaim`). A poll that
    finds the shard dead while no call is out tells the link (`suspect`),
    which declares it dead and sends those requests to its replacement.
    Whether a request was deferred depends on timing (a batch that made no
    progress for `_journal.PATIENCE` seconds): its retry must not.
    """

    def __init__(
        self, shards: Any, index: int, placed: tuple[int, Any], call_timeout: float
    ) -> None:
        self.shards = shards
        self.index = index
        #: The generation of the shard's Ray actor, and the actor.
        self.generation, self.actor = placed
        self.call_timeout = call_timeout
        self.queue: collections.deque[tuple[Any, Reply[Any] | None, Any]] = collections.deque()
        self.ready = threading.Condition()
        self.closed: str | None = None
        #: Publishes a snapshot the shard returned: ``(name, snapshot)``.
        self.publish: Any = None
        #: The snapshot this client holds of an actor, by name (None: none).
        self.holds: Any = lambda name: None
        #: Takes a request whose answer the shard deferred: ``(index, reply,
        #: (generation, token), op)``.
        self.defer: Any = None
        #: Gives back the unanswered deferred requests of shard ``index`` up to
        #: a generation, in the order sent: ``(index, generation) -> [(op, reply)]``.
        self.reclaim: Any = lambda index, generation: []
        #: This client's machines on the shard, as `Shard.rearm` takes them:
        #: ``() -> [(name, kind, definition, options)]``.
        self.machines: Any = list
        #: A generation a poll found dead (or fenced), and why: declared dead
        #: by this link's thread when no call is out.
        self.suspected: tuple[int, BaseException] | None = None
        self.calls = 0
        #: How many times this link replaced its shard.
        self.replacements = 0
        self.thread = threading.Thread(
            target=self._send, name=f"stateward-ray-link-{index}", daemon=True
        )
        self.thread.start()

    def put(self, op: tuple[Any, ...], reply: Reply[Any]) -> None:
        with self.ready:
            if self.closed is not None:
                raise ShardUnavailable(self.closed)
            self.queue.append((op, reply, None))
            self.ready.notify()

    def suspect(self, generation: int, failure: BaseException) -> None:
        """A poll found generation ``generation`` of this shard dead (or
        fenced): declare it dead, unless it was replaced meanwhile."""
        with self.ready:
            if self.suspected is None and generation == self.generation:
                self.suspected = (generation, failure)
                self.ready.notify()

    def qsize(self) -> int:
        return len(self.queue)

    def close(self, reason: str, timeout: float) -> None:
        """Send what is queued, then stop the thread (within ``timeout``)."""
        with self.ready:
            self.closed = reason
            self.ready.notify()
        self.thread.join(timeout)

    def _take(self, wait: bool = True) -> list[tuple[Any, Reply[Any]]] | None:
        """What is queued (up to `MAX_BATCH`); with ``wait``, once something
        is. None: closed and nothing queued, or nothing queued (not ``wait``)."""
        with self.ready:
            while not self.queue and (self.suspected is None or self.closed is not None):
                if self.closed is not None or not wait:
                    return None
                self.ready.wait()
            batch: list[tuple[Any, Reply[Any]]] = []
            queue = self.queue
            while queue and len(batch) < MAX_BATCH:
                op, reply, _ = queue.popleft()
                assert reply is not None
                # A caller whose wait timed out withdrew its request: skip it.
                if reply.claim():
                    batch.append((op, reply))
            return batch

    def _send(self) -> None:
        """Send batch after batch, one Ray call out at a time. Once a call
        is answered, the next batch goes out before this one's callers are
        answered: the shard runs it meanwhile."""
        out = None
        while True:
            if out is None:
                batch = self._take()
                if batch is None:
                    return
                out = self._suspicion(batch)
                if out is None:
                    out = self._submit(batch)
                if out is None:
                    continue
            out, result = self._call(out)
            batch, ops, bases, _, _, _ = out
            if isinstance(result, ShardUnavailable):
                for _, reply in batch:
                    reply.set_exception(result)
                out = None
                continue
            answers = self._published(ops, bases, result)
            following = self._take(wait=False)
            out = self._submit(following) if following else None
            for (op, reply), (ok, value) in zip(batch, answers, strict=True):
                if ok and type(value) is Deferred:
                    # Answered by a later poll of this generation of the shard,
                    # or sent again to its replacement (`reclaim`).
                    self.defer(self.index, reply, (self.generation, value.token), op)
                elif ok:
                    reply.set_result(value)
                else:
                    reply.set_exception(value)

    def _submit(self, batch: list[tuple[Any, Reply[Any]]]) -> tuple[Any, ...] | None:
        """Start ``batch``'s Ray call: ``(batch, ops, the snapshots held of
        its machines, the packed batch, the call's reference, False)``
        (`_pack`); None for an empty batch."""
        if not batch:
            return None
        batch, ops, bases, packed, _, retry = self._pack(batch, False)
        try:
            ref = self._start(packed, False)
        except Exception:
            ref = None  # `_call` starts it again, and handles the failure
        return batch, ops, bases, packed, ref, retry

    def _pack(self, batch: list[tuple[Any, Reply[Any]]], retry: bool) -> tuple[Any, ...]:
        """``(batch, ops, the snapshots held of its machines, the packed
        batch, None: no call started, retry)``."""
        ops = [op for op, _ in batch]
        bases, held = self._holding(ops)
        return batch, ops, bases, _packed(ops, held), None, retry

    def _suspicion(self, batch: list[tuple[Any, Reply[Any]]]) -> tuple[Any, ...] | None:
        """If a poll found this link's shard dead (`suspect`): declare it dead
        and return the retry of its deferred requests followed by ``batch``
        (not started); else None."""
        with self.ready:
            suspected, self.suspected = self.suspected, None
        if suspected is None or suspected[0] != self.generation:
            return None  # none, or replaced meanwhile (its deferred requests went then)
        earlier = self._replace(suspected[1], "a poll")
        if not earlier and not batch:
            return None
        return self._pack(earlier + batch, True)

    def _replace(self, failure: BaseException, what: str) -> list[tuple[Any, Reply[Any]]]:
        """Declare the shard dead (``failure`` says why): have it killed and
        replaced, and return its unanswered deferred requests, in the order sent."""
        dead = self.generation
        self.generation, self.actor = self.shards.replace(self.index, dead, self.actor)
        self.replacements += 1
        self._rearm()
        earlier: list[tuple[Any, Reply[Any]]] = self.reclaim(self.index, dead)
        logger.warning(
            "shard %d (generation %d) declared dead after %s (%s: %s); retrying %d deferred "
            "requests on generation %d",
            self.index,
            dead,
            what,
            type(failure).__name__,
            failure,
            len(earlier),
            self.generation,
        )
        return earlier

    def _rearm(self) -> None:
        """Have the replacement recover, from the store, this client's
        machines of the shard that have a timer pending (`Shard.rearm`), so
        that their timers fire though no request comes for them. Not waited
        for: it runs on the shard before the batch sent next."""
        machines = self.machines()
        if not machines:
            return
        try:
            self.actor.rearm.remote(machines)
        except Exception as exc:  # the next call finds out what is wrong with the shard
            logger.warning("shard %d: asking it to re-arm timers failed: %r", self.index, exc)

    def _start(self, packed: Any, retry: bool) -> Any:
        self.calls += 1
        return self.actor.run.remote(packed, retry)

    def _published(self, ops: list[Any], bases: dict[str, Any], result: Any) -> list[Any]:
        """A call's answers, shrunk snapshots rebuilt (see `_delta`), once
        the snapshots it returned are published."""
        answers, snapshots, shrunk = result
        answers = _grown(ops, answers, bases)
        for name, snapshot in snapshots.items():
            self.publish(name, snapshot)
        for name, grown in shrunk.items():
            self.publish(name, bases[name] if grown is None else grow(bases[name], grown))
        return answers

    def _holding(self, ops: list[Any]) -> tuple[dict[str, Any], dict[str, Held]]:
        """The snapshots this client holds of the machines ``ops`` call, and
        what the shard may shrink their snapshots against (see `_delta`)."""
        bases: dict[str, Any] = {}
        held: dict[str, Held] = {}
        for op in ops:
            name = op[1]
            if op[0] == "call" and name not in bases:
                snapshot = bases[name] = self.holds(name)
                mine = held_of(snapshot)
                if mine is not None:
                    held[name] = mine
        return bases, held

    def _call(self, out: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        """The answer of ``out``'s Ray call (`_submit`, `_pack`: started
        unless its reference is None); on a dead shard, the same batch again,
        as a retry, on its replacement, after the dead shard's deferred
        requests (`_replace`). A shard that answers `LeaseLost` was replaced
        (by another client, while this one did not look): it is declared
        dead too, and the ops, none of which it committed, go to its
        replacement. Returns the batch as last sent (grown by those deferred
        requests) and its result, or a `ShardUnavailable` for all of it: the
        call failed otherwise, or the shard was replaced `MAX_REPLACEMENTS`
        times in a row.
        """
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        for attempt in range(MAX_REPLACEMENTS + 1):
            batch, _, _, packed, call, retry = out
            try:
                if call is None:
                    call = self._start(packed, retry)
                result = ray.get(call, timeout=self.call_timeout)
                if type(result) is bytes:
                    result = pickle.loads(result)
            except (RayActorError, GetTimeoutError) as exc:
                failure: BaseException = exc
                if self.closed is not None and isinstance(exc, GetTimeoutError):
                    break  # shutting down: no replacement
            except Exception as exc:
                failure = exc
                break
            else:
                fenced = _lease_lost(result[0])
                if fenced is None or attempt == MAX_REPLACEMENTS:
                    return out, result
                failure = fenced
            earlier = self._replace(failure, f"a call of {len(batch)} requests")
            out = self._pack(earlier + batch, True)
        else:
            return out, ShardUnavailable(
                f"shard {self.index} died or did not answer within {self.call_timeout:g} s "
                f"{MAX_REPLACEMENTS + 1} times in a row for a call of {len(out[0])} requests "
                f"(last: {type(failure).__name__}: {failure}); whether they ran is unknown"
            )
        return out, ShardUnavailable(
            f"shard {self.index} did not answer a call of {len(out[0])} requests "
            f"({type(failure).__name__}: {failure}); whether they ran is unknown"
        )


def _packed(ops: list[Any], held: dict[str, Held]) -> Any:
    """``(ops, held)`` for `Shard.run`: pickled with plain pickle (faster than
    the cloudpickle Ray would use), else as is."""
    try:
        return pickle.dumps((ops, held), protocol=5)
    except Exception:
        return (ops, held)


def _grown(ops: list[Any], answers: list[tuple[Any, Any]], bases: dict[str, Any]) -> list[Any]:
    """``answers`` with each shrunk snapshot rebuilt, in batch order, each from
    the one before it of the same machine (see `_delta`); ``bases`` ends
    with each machine's last one."""
    rebuilt = []
    for op, answer in zip(ops, answers, strict=True):
        if answer[0] == SHRUNK:
            name = op[1]
            snapshot = bases[name] = grow(bases[name], answer[1])
            answer = (True, snapshot)
        rebuilt.append(answer)
    return rebuilt


def _lease_lost(answers: list[tuple[bool, Any]]) -> LeaseLost | None:
    """The first `LeaseLost` among ``answers``, if any."""
    for ok, value in answers:
        if not ok and isinstance(value, LeaseLost):
            return value
    return None
