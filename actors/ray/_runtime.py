"""`RayRuntime`: the same handles, their actors hosted on Ray shards.

A handle made with ``runtime=ray_runtime`` is built as usual, but its cell is
a client-side proxy: its mailbox (`_Forward`) queues each request, pickled, on
its shard's `Link`, and the answer comes back into the same `Reply`. So every
call of the handles (blocking, ``request_*``, awaited) keeps its form; only
what travels must pickle, and a machine's definition travels by import path.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from .._cell import Cell
from .._errors import ActorStopped, DuplicateActorName
from .._reply import Reply
from .._runtime import Handle, Runtime
from .._supervisor import Supervisor
from ..stores import Store
from ._errors import ShardUnavailable
from ._link import Link, pickled
from ._paths import shard_of, spec_path, store_recipe
from ._shard import Shard

#: How long one Ray call to a shard may take before its requests fail.
CALL_TIMEOUT = 60.0


class _Create:
    """The request that places an actor on its shard (see `RayRuntime._start`)."""

    call = "create"

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return f"create({self.name!r})"


class _Forward:
    """A client-side cell's mailbox: requests go to the shard's link."""

    __slots__ = ("closed_reason", "link", "name", "queue")

    def __init__(self, link: Link, name: str) -> None:
        self.link = link
        self.name = name
        self.closed_reason: str | None = None
        self.queue: tuple[()] = ()  # nothing waits here: `Cell.try_inline` finds it empty

    def put(self, reply: Reply[Any]) -> None:
        if self.closed_reason is not None:
            raise ActorStopped(self.name, self.closed_reason)
        request = reply.request
        where = f"{self.name!r}: {request.describe()}"
        self.link.put(("call", self.name, pickled(request, where)), reply)

    def offer(self, reply: Reply[Any], limit: int) -> bool:
        self.put(reply)  # the shard's actor holds the queue: no client-side limit
        return True

    def qsize(self) -> int:
        return self.link.qsize()

    def close(self, reason: str) -> None:
        self.closed_reason = reason


class RayRuntime(Runtime):
    """A runtime whose actors run on Ray: ``shards`` logical shards, each a
    named, sync, single-threaded Ray actor running a `Runtime` (a worker pool)
    over the shared ``store``.

    ``StateMachine(spec, name=..., runtime=ray_runtime)`` and
    ``StateManager(..., runtime=ray_runtime)`` return the usual handles. A
    name goes to shard ``crc32(name) % shards``, the same from every client;
    clients of one cluster and one store share the shards (found by name,
    created by the first). Requests to one shard are sent in batches, one Ray
    call each; one caller's requests to one actor run in the order sent.

    Reads (``current_state``, ``snapshot``) are the snapshot as of the last
    answer from its shard that this client received: a change made through
    another client shows after this client's next request to that shard.

    Args:
        store: a `PostgresStore` (any number of nodes), or a `SQLiteStore`
            (one node), that every shard opens again from its recipe (its
            URL or path, durability and ``lease_seconds``; see
            ``ray/_paths.py`` for how a password travels). This runtime
            closes it at shutdown.
        shards: how many logical shards (Ray actors).
        address: the Ray cluster's address; None: the Ray of this process
            (started with ``ray.init()`` if not yet).
        name: the runtime's name; workers: each shard's worker pool size.

    Raises:
        ImportError: Ray is not installed (``pip install 'stateward[ray]'``).
        TypeError: ``store`` cannot be shared by processes (a `MemoryStore`).
    """

    def __init__(
        self,
        store: Store,
        *,
        shards: int = 4,
        address: str | None = None,
        name: str | None = None,
        workers: int = 2,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("RayRuntime needs Ray: pip install 'stateward[ray]'") from None
        if type(shards) is not int or shards < 1:
            raise ValueError(f"shards must be an int >= 1, got {shards!r}")
        recipe = store_recipe(store)
        super().__init__(name, inline_calls=False)
        self.shards = shards
        self._client_store = store
        if not ray.is_initialized():
            ray.init(address=address)
        key = hashlib.sha256(recipe[1].encode()).hexdigest()[:16]
        remote = ray.remote(Shard)
        self._links: list[Link] = []
        for index in range(shards):
            actor = remote.options(
                name=f"stateward-shard-{key}-{shards}-{index}",
                get_if_exists=True,
                max_concurrency=1,
                max_restarts=0,
                max_task_retries=0,
            ).remote(index, recipe, workers)
            link = Link(actor, index, CALL_TIMEOUT)
            link.publish = self._publish
            self._links.append(link)
        self._cells: dict[str, Cell] = {}
        self._cells_lock = threading.Lock()

    def _publish(self, name: str, snapshot: Any) -> None:
        cell = self._cells.get(name)
        if cell is not None and cell.version_of(snapshot) >= cell.version_of(cell.snapshot):
            cell.publish(snapshot)

    def _start(
        self,
        handle: Handle,
        cell: Cell,
        supervisor: Supervisor | None,
        restart: str,
        dedicated: bool = False,
    ) -> None:
        """Place ``handle``'s actor on its shard (created there, or found there
        if another client made it) and make its cell forward to it."""
        if self.closed:
            raise ActorStopped(cell.name, f"runtime {self.name!r} shut down")
        if supervisor is not None or cell.deadline is not None or cell.on_start is not None:
            raise ValueError(
                "a RayRuntime does not take supervisor=, deadline= or on_start= yet: the "
                "actor runs under its shard's supervisor"
            )
        if cell.kind == "machine":
            definition: Any = spec_path(handle._spec)  # type: ignore[attr-defined]
            initial = dict(cell.snapshot.data) or None
        elif cell.kind == "manager":
            definition = None
            initial = dict(cell.snapshot.state)
        else:
            raise TypeError(f"a RayRuntime hosts machines and managers, not a {cell.kind}")
        link = self._links[shard_of(cell.name, self.shards)]
        with self._cells_lock:
            if cell.name in self._cells:
                raise DuplicateActorName(cell.name, self.name)
            self._cells[cell.name] = cell
        cell.mailbox = _Forward(link, cell.name)  # type: ignore[assignment]
        reply: Reply[Any] = Reply(cell, _Create(cell.name))
        try:
            link.put(("create", cell.name, cell.kind, definition, initial), reply)
            cell.publish(reply.result(CALL_TIMEOUT))
        except BaseException:
            with self._cells_lock:
                self._cells.pop(cell.name, None)
            raise
        cell.recovered = True  # its snapshot is the shard's, stored or new

    def _stop_actor(self, cell: Cell, reason: str, timeout: float | None, *, wait: bool) -> None:
        """``handle.stop()``: this client's handle takes no more requests (they
        raise `ActorStopped`); the actor on its shard runs on for other clients."""
        cell.mailbox.close(reason)
        with self._cells_lock:
            if self._cells.get(cell.name) is cell:
                del self._cells[cell.name]

    def shutdown(self, timeout: float = 10.0, *, stop_shards: bool = False) -> Any:
        """Answer what is queued, stop sending, and close the client's store;
        with ``stop_shards=True`` also shut the shards down (their runtimes
        drain and close the store) and kill their Ray actors: only when no
        other client uses them."""
        import ray

        reason = f"runtime {self.name!r} shut down"
        for cell in list(self._cells.values()):
            cell.mailbox.close(reason)
        for link in self._links:
            link.close(reason, timeout)
        failure: BaseException | None = None
        if stop_shards:
            try:
                ray.get([link.actor.close.remote() for link in self._links], timeout=timeout)
            except Exception as exc:
                failure = exc
            for link in self._links:
                ray.kill(link.actor)
        self._cells.clear()
        self._client_store.close()
        report = super().shutdown(timeout)
        if failure is not None:
            raise ShardUnavailable(
                f"a shard did not shut down cleanly ({type(failure).__name__}: {failure}); "
                "it was killed, and its last batch may not be committed"
            ) from failure
        return report
