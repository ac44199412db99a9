"""The client's side of what it follows on its shards: the commits of the
actors it watches, and the answers its shards deferred (see `_journal`).

One thread per `RayRuntime` (``stateward-ray-follow``) asks each shard with
work for it, with one `Shard.poll` call (which never waits on the shard),
every `INTERVAL` seconds while there is work, and at once when woken:

- **watched actors**: an actor with an observer, a ``wait_until`` waiting
  or a ``changes()`` stream on this client. Its commits, whoever made them,
  come back in commit order; each is published here (if newer than what an
  answer already published) and handed to the actor's observers and
  watches (`deliver`), each commit once, in commit order, on a thread of
  their own (``stateward-ray-notify``, see `Notifier`). The first watch of
  an actor asks its shard at once, from the caller's thread (`observe`),
  so that the shard logs every commit after it (from a thread running an
  event loop, which must not block, the next poll asks: commits made
  before that poll are seen as the latest of them).
- **deferred answers**: a request its batch did not wait for is answered
  here when its shard has the answer. If the shard died (or answers
  `LeaseLost`: it was replaced) first, the request is not answered here: the
  link declares the shard dead (`Link.suspect`) and sends it again, with its
  id, to the replacement (`reclaim`), as it does a batch in flight.

A commit made through another client reaches this client's observers
within `INTERVAL` seconds plus one Ray call; one made through this client,
right after its answer (the link wakes this thread).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
import time
from typing import Any

from .._errors import LeaseLost
from .._watchers import Watchers
from ._errors import ShardUnavailable

logger = logging.getLogger("stateward.ray")

#: Seconds between two polls of a shard while something is followed there.
INTERVAL = 0.05
#: How long a deferred request may run before its caller gets `ShardUnavailable`.
DEFERRED_LIMIT = 300.0


class Follower:
    """The watched cells and the deferred replies of one `RayRuntime`."""

    def __init__(self, links: list[Any], shard_of: Any) -> None:
        self.links = links
        self.shard_of = shard_of
        #: Watched cells by name, and the version delivered to their observers.
        self.watched: dict[str, Any] = {}
        self.delivered: dict[str, Any] = {}
        #: Deferred replies by shard: (generation, token) -> (reply, monotonic
        #: time it gives up, the op sent).
        self.deferred: list[dict[tuple[int, int], tuple[Any, float, Any]]] = [{} for _ in links]
        #: The generation of each shard found dead (or fenced) by a poll, if
        #: any: its deferred requests are not polled again (a zombie forgets a
        #: token once it answered it); its link sends them to the replacement.
        self.suspected: list[int | None] = [None for _ in links]
        self.wake = threading.Condition()
        self.woken = False
        self.closed = False
        #: Orders deliveries.
        self.delivering = threading.RLock()
        self.notifier = Notifier()
        self.thread = threading.Thread(target=self._run, name="stateward-ray-follow", daemon=True)
        self.thread.start()

    # -- what the runtime and the links tell it ---------------------------------------

    def observe(self, cell: Any) -> None:
        """``cell`` got an observer or a watch: follow its commits from now."""
        with self.delivering:
            if self.watched.get(cell.name) is cell:
                return
            self.watched[cell.name] = cell
            self.delivered[cell.name] = cell.snapshot
        if not _in_event_loop():
            # The shard logs every commit after this call (no deferred tokens:
            # only this thread collects those, so each is answered once).
            self._poll(self.shard_of(cell.name), collect=False)
        self.nudge()  # on an event loop, never a blocking call: the next poll

    def defer(self, index: int, reply: Any, token: tuple[int, int], op: Any) -> None:
        """A batch of shard ``index`` answered ``reply`` (to ``op``) with a
        deferred token (``(generation, token)``: a shard's tokens mean
        nothing to the shard that replaces it)."""
        with self.wake:
            self.deferred[index][token] = (reply, time.monotonic() + DEFERRED_LIMIT, op)
        self.nudge()

    def reclaim(self, index: int, generation: int) -> list[tuple[Any, Any]]:
        """The link of shard ``index`` declared ``generation`` dead: its
        unanswered deferred requests (and any of older generations), taken
        from here, as ``(op, reply)`` in the order sent (a shard numbers its
        tokens in the order it took the requests)."""
        pending = self.deferred[index]
        taken = []
        for key in sorted(key for key in list(pending) if key[0] <= generation):
            entry = pending.pop(key, None)  # unless a poll answered it meanwhile
            if entry is not None:
                taken.append((entry[2], entry[0]))
        return taken

    def nudge(self) -> None:
        with self.wake:
            self.woken = True
            self.wake.notify()

    def close(self, reason: str, timeout: float) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.thread.join(timeout)
        self.notifier.close(timeout)
        error = ShardUnavailable(f"the request's answer was not collected: {reason}")
        for pending in self.deferred:
            for reply, _, _ in pending.values():
                reply.set_exception(error)
            pending.clear()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.closed and not self.woken and not self._has_work():
                    self.wake.wait()
                if self.closed:
                    return
                if not self.woken:
                    self.wake.wait(INTERVAL)
                self.woken = False
            self._expire()
            for index in range(len(self.links)):
                try:
                    self._poll(index)
                except Exception:  # never let this thread die: it answers deferred requests
                    logger.exception("following shard %d failed; trying again", index)

    def _expire(self) -> None:
        """Answer the deferred requests past `DEFERRED_LIMIT` with an error
        (there are few: only requests their batch did not wait for)."""
        now = time.monotonic()
        for index, pending in enumerate(self.deferred):
            for token, (_, deadline, _) in list(pending.items()):
                entry = pending.pop(token, None) if deadline <= now else None
                if entry is None:
                    continue
                entry[0].set_exception(
                    ShardUnavailable(
                        f"shard {index} did not finish a request within {DEFERRED_LIMIT:g} s "
                        "of its call; it may still run there, and whether it commits is unknown"
                    )
                )

    def _has_work(self) -> bool:
        return bool(self.watched) or any(self.deferred)

    def _poll(self, index: int, collect: bool = True) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        with self.delivering:
            versions = {}
            for name, cell in list(self.watched.items()):
                if not cell.observers or cell.is_stopped or cell.mailbox.closed_reason:
                    del self.watched[name]  # nothing watches it here any more
                    self.delivered.pop(name, None)
                elif self.shard_of(name) == index:
                    versions[name] = cell.version_of(self.delivered[name])
        link = self.links[index]
        generation, actor = link.generation, link.actor
        keys = list(self.deferred[index]) if collect else []
        gone = [key for key in keys if key[0] != generation]
        if gone:  # deferred by a shard that was replaced since
            self._lost(index, gone, ShardUnavailable(f"generation {gone[0][0]} was replaced"))
        suspected = self.suspected[index] == generation
        tokens = [key[1] for key in keys if key[0] == generation and not suspected]
        if not versions and not tokens:
            return
        try:
            logs, answers, snapshots = ray.get(
                actor.poll.remote(versions, tokens), timeout=link.call_timeout
            )
        except (RayActorError, GetTimeoutError) as exc:
            # Dead, or stuck as long as a call may take: its link declares it
            # dead and sends the deferred requests (still held here) to the
            # replacement.
            self._suspect(index, generation, exc)
            return
        except Exception as exc:
            self._lost(index, [(generation, token) for token in tokens], exc)
            return
        for name, snapshot in snapshots.items():
            link.publish(name, snapshot)
        for token, (ok, value) in answers.items():
            if not ok and isinstance(value, LeaseLost):
                # A zombie: it committed nothing for this request, which its
                # link sends again to the replacement, like a fenced batch.
                self._suspect(index, generation, value)
                continue
            entry = self.deferred[index].pop((generation, token), None)
            if entry is None:
                continue
            reply = entry[0]
            if ok:
                reply.set_result(value)
            else:
                reply.set_exception(value)
        for name, snapshots_of in logs.items():
            self.deliver(name, snapshots_of)

    def _suspect(self, index: int, generation: int, failure: BaseException) -> None:
        self.suspected[index] = generation
        self.links[index].suspect(generation, failure)

    def _lost(self, index: int, tokens: list[tuple[int, int]], exc: BaseException) -> None:
        """A poll failed: its deferred requests cannot be answered any more."""
        error = ShardUnavailable(
            f"shard {self.links[index].index} did not answer a poll ({type(exc).__name__}: "
            f"{exc}); whether its deferred requests ran is unknown"
        )
        for token in tokens:
            entry = self.deferred[index].pop(token, None)
            if entry is not None:
                entry[0].set_exception(error)

    def deliver(self, name: str, snapshots: list[Any]) -> None:
        """Publish each of ``snapshots`` (in commit order) and queue it for the
        cell's observers and watches, each commit once."""
        notices = []
        with self.delivering:
            cell = self.watched.get(name)
            if cell is None:
                return
            for snapshot in snapshots:
                old = self.delivered[name]
                if cell.version_of(snapshot) <= cell.version_of(old):
                    continue
                if cell.version_of(snapshot) > cell.version_of(cell.snapshot):
                    cell.publish(snapshot)
                self.delivered[name] = snapshot
                notices.append((cell, old, snapshot))
            self.notifier.put(notices)  # in this lock: queued in commit order


class Notifier:
    """The thread that runs a client's observers (``stateward-ray-notify``),
    in commit order: not the follow thread, so an observer that makes a
    blocking call whose answer is deferred does not hold up the poll that
    collects it."""

    def __init__(self) -> None:
        self.queue: collections.deque[tuple[Any, Any, Any]] = collections.deque()
        self.ready = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="stateward-ray-notify", daemon=True)
        self.thread.start()

    def put(self, notices: list[tuple[Any, Any, Any]]) -> None:
        if notices:
            with self.ready:
                self.queue.extend(notices)
                self.ready.notify()

    def close(self, timeout: float) -> None:
        with self.ready:
            self.closed = True
            self.ready.notify()
        self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.queue and not self.closed:
                    self.ready.wait()
                if not self.queue:
                    return
                cell, old, new = self.queue.popleft()
            notify(cell, old, new)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def notify(cell: Any, old: Any, new: Any) -> None:
    """Call ``cell``'s observers with the views of ``old`` and ``new``, and
    offer ``new`` to its watches; an observer's error is reported."""
    observers = cell.observers
    if not observers:
        return
    before, after = cell.view(old), cell.view(new)
    for fn in observers:
        try:
            if type(fn) is Watchers:
                fn.offer(new)
                continue
            result = fn(before, after)
            if inspect.isawaitable(result):
                cell.run_async(result)  # on this client runtime's event loop
        except Exception as exc:
            cell.report("observer", getattr(fn, "__qualname__", repr(fn)), exc)
