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
import pickle
import threading
from typing import Any

from .._reply import Reply
from ._errors import NotPicklable, ShardUnavailable
from ._journal import Deferred

#: The most operations one Ray call carries.
MAX_BATCH = 1000


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
    """The queue to one shard and its sending thread."""

    def __init__(self, actor: Any, index: int, call_timeout: float) -> None:
        self.actor = actor
        self.index = index
        self.call_timeout = call_timeout
        self.queue: collections.deque[tuple[Any, Reply[Any] | None, Any]] = collections.deque()
        self.ready = threading.Condition()
        self.closed: str | None = None
        #: Publishes a snapshot the shard returned: ``(name, snapshot)``.
        self.publish: Any = None
        #: Takes a request whose answer the shard deferred: ``(index, reply, token)``.
        self.defer: Any = None
        self.calls = 0
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

    def qsize(self) -> int:
        return len(self.queue)

    def close(self, reason: str, timeout: float) -> None:
        """Send what is queued, then stop the thread (within ``timeout``)."""
        with self.ready:
            self.closed = reason
            self.ready.notify()
        self.thread.join(timeout)

    def _take(self) -> list[tuple[Any, Reply[Any]]] | None:
        with self.ready:
            while not self.queue:
                if self.closed is not None:
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
        import ray

        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            self.calls += 1
            try:
                answers, snapshots = ray.get(
                    self.actor.run.remote([op for op, _ in batch]), timeout=self.call_timeout
                )
            except Exception as exc:
                error = ShardUnavailable(
                    f"shard {self.index} did not answer a call of {len(batch)} requests "
                    f"({type(exc).__name__}: {exc}); whether they ran is unknown"
                )
                for _, reply in batch:
                    reply.set_exception(error)
                continue
            for name, snapshot in snapshots.items():
                self.publish(name, snapshot)
            for (_, reply), (ok, value) in zip(batch, answers, strict=True):
                if ok and type(value) is Deferred:
                    self.defer(self.index, reply, value.token)  # answered by a later poll
                elif ok:
                    reply.set_result(value)
                else:
                    reply.set_exception(value)
