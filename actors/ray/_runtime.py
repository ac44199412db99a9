"""`RayRuntime`: the same handles, their actors hosted on Ray shards.

A handle made with ``runtime=ray_runtime`` is built as usual, but its cell is
a client-side proxy: its mailbox (`_Forward`) queues each request, pickled, on
its shard's `Link`, and the answer comes back into the same `Reply`. So every
call of the handles (blocking, ``request_*``, awaited) keeps its form; only
what travels must pickle, and a machine's definition travels by import path.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import pickle
import threading
import uuid
from typing import Any

from stateward.core import ArgumentTypeError, ArgumentValueError
from stateward.core._arguments import check_timeout

from .._cell import Cell
from .._errors import ActorStopped, DuplicateActorName
from .._reply import Reply
from .._runtime import Handle, Runtime
from .._supervisor import Supervisor
from ..stores import Store
from ._carry import carried, pickled_with
from ._errors import ShardUnavailable
from ._follow import Follower
from ._link import MAX_REPLACEMENTS, Link, pickled
from ._options import placement
from ._paths import shard_of, store_recipe
from ._shards import ShardSet, check_shard_count

#: How long a shard may take to answer one call before it is declared dead, by default.
SHARD_TIMEOUT = 30.0


class _Create:
    """The request that places an actor on its shard (see `RayRuntime._start`)."""

    call = "create"

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return f"create({self.name!r})"


class _Forward:
    """A client-side cell's mailbox: requests go to the shard's link."""

    __slots__ = ("closed_reason", "defined", "link", "name", "new_id", "queue")

    def __init__(self, link: Link, name: str, defined: tuple[str, Any, Any], new_id: Any) -> None:
        self.link = link
        self.name = name
        #: ``(kind, definition, options)``: sent with each request, so that a shard that
        #: replaces a dead one can recover the actor from the store.
        self.defined = defined
        #: Returns a new request id (unique to this client).
        self.new_id = new_id
        self.closed_reason: str | None = None
        self.queue: tuple[()] = ()  # nothing waits here: `Cell.try_inline` finds it empty

    def put(self, reply: Reply[Any]) -> None:
        if self.closed_reason is not None:
            raise ActorStopped(self.name, self.closed_reason)
        request = reply.request
        # Registered context values, if any are set, travel along.
        values = carried(reply.context)
        data = _plainly_pickled(request) if values is None else None
        if data is None:  # an error says where: worded only now (most requests pickle at once)
            where = f"{self.name!r}: {request.describe()}"
            if values is None:
                data = pickled(request, where)
            else:
                data = pickled_with(request, values, where)
        self.link.put(("call", self.name, data, self.new_id(), *self.defined), reply)

    def offer(self, reply: Reply[Any], limit: int) -> bool:
        self.put(reply)  # the shard's actor holds the queue: no client-side limit
        return True

    def qsize(self) -> int:
        return self.link.qsize()

    def close(self, reason: str) -> None:
        self.closed_reason = reason


def _plainly_pickled(request: Any) -> bytes | None:
    """``request`` pickled with plain pickle, or None if it refuses."""
    try:
        return pickle.dumps(request, protocol=5)
    except Exception:
        return None


class RayRuntime(Runtime):
    """A runtime whose actors run on Ray: ``shards`` logical shards, each a
    named, sync, single-threaded Ray actor running a `Runtime` (a worker pool)
    over the shared ``store``.

    ``StateMachine(spec, name=..., runtime=ray_runtime)``,
    ``StateManager(..., runtime=ray_runtime)`` and ``ConfigManager(...)``
    return the usual handles (docs/cluster.md says which semantics hold on
    Ray, and how: options, observers and watches, context values). A
    name goes to shard ``crc32(name) % shards``, the same from every client;
    clients of one cluster and one store share the shards (found by name,
    created by the first). Requests to one shard are sent in batches, one Ray
    call each; one caller's requests to one actor run in the order sent.

    Reads (``current_state``, ``snapshot``) are the snapshot as of the last
    answer from its shard that this client received: a change made through
    another client shows after this client's next request to that shard,
    or, while an observer or a watch of this client follows that actor,
    within `_follow.INTERVAL` seconds plus one Ray call (see `_follow`).

    A shard that dies, or does not answer within ``shard_timeout``, is killed
    and replaced; its requests are sent again with their ids and applied at
    most once; a replaced shard commits nothing (docs/cluster.md, "Failure
    semantics").

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
        shard_timeout: seconds a shard may take to answer one call (a batch)
            before it is declared dead, killed and replaced, and the call
            sent again to its replacement (see docs/cluster.md, "Failure
            semantics"). It must exceed the store's ``lease_seconds``: a
            replacement may wait that long for a paused shard's lease.

    Raises:
        ImportError: Ray is not installed (``pip install 'stateward[ray]'``).
        TypeError: ``store`` cannot be shared by processes (a `MemoryStore`).
        ValueError: a store in ``"snapshot"`` mode (it keeps no request ids:
            a retried request could be applied twice).
        ArgumentTypeError, ArgumentValueError: a bad ``shards``,
            ``shard_timeout`` (it must exceed the store's lease), ``workers``
            or ``address``, or ``shards`` other than the count of the shards
            that serve this store now.
        ShardUnavailable: a shard failed to start (its error says why).
    """

    def __init__(
        self,
        store: Store,
        *,
        shards: int = 4,
        address: str | None = None,
        name: str | None = None,
        workers: int = 2,
        shard_timeout: float = SHARD_TIMEOUT,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("RayRuntime needs Ray: pip install 'stateward[ray]'") from None
        if type(shards) is not int:
            raise ArgumentTypeError(
                "RayRuntime", "shards", "an int >= 1", shards, outcome="no shard was started"
            )
        if shards < 1:
            raise ArgumentValueError(
                "RayRuntime", "shards", "an int >= 1", shards, outcome="no shard was started"
            )
        _check_workers(workers)
        if address is not None and type(address) is not str:
            raise ArgumentTypeError(
                "RayRuntime",
                "address",
                "None or a str, the Ray head's 'host:port'",
                address,
                "Pass address='10.0.0.1:6379', say, or leave it out.",
                outcome="no shard was started",
            )
        recipe = store_recipe(store)
        shard_timeout = _check_shard_timeout(shard_timeout, recipe.lease_seconds)
        if recipe.durability == "snapshot":
            raise ValueError(
                "a RayRuntime needs a store that writes a journal (durability 'strict' or "
                "'batched'): in 'snapshot' mode no request id is kept, so a request retried "
                "after a shard died could be applied twice"
            )
        super().__init__(name, inline_calls=False)
        self.shards = shards
        self.shard_timeout = shard_timeout
        self._client_store = store
        if not ray.is_initialized():
            ray.init(address=address)
        key = hashlib.sha256(recipe.where.encode()).hexdigest()[:16]
        try:
            check_shard_count(f"stateward-shard-{key}", shards)
        except BaseException:
            super().shutdown()
            raise
        self._shards = ShardSet(f"stateward-shard-{key}-{shards}", (recipe, workers))
        # Request ids: unique to this client, numbered in the order sent.
        client = uuid.uuid4().hex[:16]
        numbers = itertools.count()
        self._new_id = lambda: f"{client}:{next(numbers)}"
        placed = [self._shards.current(index) for index in range(shards)]
        try:
            self._shards.ready([actor for _, actor in placed])  # started side by side
        except BaseException:
            super().shutdown()
            raise
        self._links: list[Link] = []
        for index in range(shards):
            link = Link(self._shards, index, placed[index], shard_timeout)
            link.publish = self._publish
            link.holds = self._holds
            link.machines = functools.partial(self._machines_on, index)
            self._links.append(link)
        self._cells: dict[str, Cell] = {}
        self._cells_lock = threading.Lock()
        self._follower = Follower(self._links, functools.partial(shard_of, shards=shards))
        for link in self._links:
            link.defer = self._follower.defer
            link.reclaim = self._follower.reclaim

    def _holds(self, name: str) -> Any:
        """The snapshot this client holds of actor ``name`` (None: none here)."""
        cell = self._cells.get(name)
        return None if cell is None else cell.snapshot

    def _durable_store(self) -> Store:
        """The store the shards share (`serve_timers` reads the timers due from it)."""
        return self._client_store

    def __contains__(self, name: object) -> bool:
        """Whether this client has a live handle for the actor ``name``."""
        return name in self._cells

    def _machines_on(self, index: int) -> list[tuple[str, str, Any, Any]]:
        """``(name, kind, definition, options)`` of each machine of this client
        on shard ``index`` (what `Shard.rearm` takes)."""
        with self._cells_lock:
            cells = list(self._cells.values())
        machines = []
        for cell in cells:
            # Not yet a `_Forward` while `_start` places it.
            mailbox: Any = cell.mailbox
            if (
                type(mailbox) is _Forward
                and cell.kind == "machine"
                and shard_of(cell.name, self.shards) == index
            ):
                machines.append((cell.name, *mailbox.defined))
        return machines

    def _publish(self, name: str, snapshot: Any) -> None:
        cell = self._cells.get(name)
        if cell is not None and cell.version_of(snapshot) >= cell.version_of(cell.snapshot):
            cell.publish(snapshot)
            if name in self._follower.watched:
                self._follower.nudge()  # its observers: right after this answer

    def _observed(self, cell: Cell) -> None:
        """Follow ``cell``'s commits on its shard (see `_follow`)."""
        if self._cells.get(cell.name) is cell:
            self._follower.observe(cell)

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
        definition, initial, options = placement(handle, cell, supervisor, restart, dedicated)
        link = self._links[shard_of(cell.name, self.shards)]
        with self._cells_lock:
            if cell.name in self._cells:
                raise DuplicateActorName(cell.name, self.name)
            self._cells[cell.name] = cell
        defined = (cell.kind, definition, options)
        cell.mailbox = _Forward(link, cell.name, defined, self._new_id)  # type: ignore[assignment]
        reply: Reply[Any] = Reply(cell, _Create(cell.name))
        try:
            link.put(("create", cell.name, cell.kind, definition, initial, options), reply)
            cell.publish(reply.result(self.shard_timeout * (MAX_REPLACEMENTS + 1)))
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
        cell.mark_stopped()  # its waits and streams here end with `ActorStopped`

    def shutdown(
        self, timeout: float = 10.0, *, reason: str | None = None, stop_shards: bool = False
    ) -> Any:
        """Answer what is queued, stop sending, and close the client's store;
        with ``stop_shards=True`` also shut the shards down (their runtimes
        drain and close the store) and kill their Ray actors: only when no
        other client uses them. ``reason``: what `ActorStopped` says then."""
        import ray

        check_timeout(timeout, "RayRuntime.shutdown", outcome="nothing was shut down")
        reason = reason or f"runtime {self.name!r} shut down"
        for cell in list(self._cells.values()):
            cell.mailbox.close(reason)
            cell.mark_stopped()
        for link in self._links:
            link.close(reason, timeout)
        self._follower.close(reason, timeout)
        failure: BaseException | None = None
        if stop_shards:
            try:
                ray.get([link.actor.close.remote() for link in self._links], timeout=timeout)
            except Exception as exc:
                failure = exc
            for link in self._links:
                self._shards.kill(link.actor)
        self._cells.clear()
        self._client_store.close()
        report = super().shutdown(timeout, reason=reason)
        if failure is not None:
            raise ShardUnavailable(
                f"a shard did not shut down cleanly ({type(failure).__name__}: {failure}); "
                "it was killed, and its last batch may not be committed"
            ) from failure
        return report


def _check_workers(value: Any) -> None:
    """Checked here, not on the shards: a shard that fails to start fails every client."""
    if type(value) is not int or value < 0:
        error = ArgumentTypeError if type(value) is not int else ArgumentValueError
        raise error(
            "RayRuntime",
            "workers",
            "an int >= 0 (each shard's pooled worker threads; 0 for a thread per actor)",
            value,
            "Pass workers=2, say, or leave it out.",
            outcome="no shard was started",
        )


def _check_shard_timeout(value: Any, lease_seconds: float) -> float:
    expected = "a number of seconds > 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            "RayRuntime", "shard_timeout", expected, value, outcome="no shard was started"
        )
    if not 0 < value < math.inf:
        raise ArgumentValueError(
            "RayRuntime", "shard_timeout", expected, value, outcome="no shard was started"
        )
    if value <= lease_seconds:
        raise ArgumentValueError(
            "RayRuntime",
            "shard_timeout",
            f"longer than the store's lease_seconds ({lease_seconds:g} s)",
            value,
            "A shard that replaces a paused one may wait that long for its lease, and would "
            "be declared dead meanwhile. Pass a longer shard_timeout or a shorter "
            "lease_seconds to the store.",
            outcome="no shard was started",
        )
    return float(value)
