"""A shard's side of what its clients follow without stalling it: the
commit logs of watched actors, and answers deferred past a Ray call.

A shard is a sync, single-threaded Ray actor: while one call runs, no other
call to it starts. So no call may wait for something that only a later call
can bring about:

- a batch (`Shard.run`) waits for its answers while they come, but not
  past `PATIENCE` seconds in which none came. A request still running then
  (an async hook waiting for another actor of the shard, a slow guard) is
  answered with a `Deferred` token, and goes on running on the shard's
  pool; the client collects its answer later with a `Shard.poll` call,
  which never waits;
- a client that watches an actor (an observer, ``wait_until``,
  ``changes()``) asks with `Shard.poll` for the commits after the version it
  has seen. From its first such call, an observer on the shard's actor keeps
  its last `LOG_LIMIT` committed snapshots, so every client that polls sees
  each commit, whichever client made it, in commit order. A log no client
  has polled for `LOG_IDLE` seconds is dropped.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

#: How long a batch waits with no answer coming before deferring the rest.
PATIENCE = 0.2
#: How many committed snapshots a watched actor's log keeps.
LOG_LIMIT = 1000
#: Seconds after which a log no client polls is dropped.
LOG_IDLE = 60.0
#: Seconds a deferred answer is kept for its client (which gives up before:
#: `_follow.DEFERRED_LIMIT`).
DEFERRED_KEPT = 600.0


class Deferred:
    """The answer of a request still running when its batch returned: the
    client collects the real one with `Shard.poll`."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token

    def __reduce__(self) -> tuple[Any, ...]:
        return (Deferred, (self.token,))


class _Log:
    """One watched actor's recent commits (an observer on the shard)."""

    __slots__ = ("cell", "entries", "handle", "lock", "polled")

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.cell = handle._cell
        self.entries: collections.deque[Any] = collections.deque(maxlen=LOG_LIMIT)
        self.lock = threading.Lock()
        self.polled = time.monotonic()

    def __call__(self, old: Any, new: Any) -> None:
        # On the actor's turn, right after its commit: the cell's snapshot is
        # the one just published (observers see views, which lack versions).
        snapshot = self.cell.snapshot
        with self.lock:
            self.entries.append(snapshot)

    def since(self, version: int) -> list[Any]:
        """The logged snapshots after ``version``, or the current one when the
        log holds none of them yet (just started, or a commit the log no
        longer holds)."""
        self.polled = time.monotonic()
        version_of = self.cell.version_of
        with self.lock:
            newer = [s for s in self.entries if version_of(s) > version]
        if not newer or version_of(newer[0]) > version + 1:
            current = self.cell.read()
            if version_of(current) > version and (
                not newer or version_of(current) > version_of(newer[-1])
            ):
                newer.append(current)
        return newer


class Journal:
    """The logs and the deferred answers of one shard."""

    def __init__(self) -> None:
        self.logs: dict[str, _Log] = {}
        #: Deferred requests by token: ``(name, reply, monotonic time deferred)``.
        self.deferred: dict[int, tuple[str, Any, float]] = {}
        self.tokens = itertools.count(1)

    def settle(self, names: list[str], outcomes: list[Any], portable: Any) -> list[Any]:
        """One answer per outcome: ``(ok, value or error)``, or a `Deferred`
        for a request not done when `PATIENCE` seconds passed with no other
        answer (it goes on running)."""
        running = [o for o in outcomes if not isinstance(o, tuple) and not o.done()]
        if running:
            left = [len(running)]
            lock = threading.Lock()
            all_done = threading.Event()

            def one_done(_: Any) -> None:
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        all_done.set()

            for reply in running:
                reply.add_done_callback(one_done)
            # Wait while the batch makes progress: a large batch that is
            # being worked through is answered whole; one stuck for PATIENCE
            # seconds (nothing answered meanwhile) is deferred.
            before = len(running)
            while not all_done.wait(PATIENCE) and left[0] < before:
                before = left[0]
        answers: list[Any] = []
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, tuple):
                answers.append(outcome)
            elif outcome.done():
                answers.append(answer_of(outcome, portable))
            else:
                token = next(self.tokens)
                self.deferred[token] = (name, outcome, time.monotonic())
                answers.append((True, Deferred(token)))
        return answers

    def collect(self, tokens: list[int], portable: Any) -> tuple[dict[int, Any], set[str]]:
        """The answers of the deferred requests ``tokens`` that are done now
        (never waits; a token the shard does not know is answered so), and
        the names of their actors."""
        answers: dict[int, Any] = {}
        names: set[str] = set()
        for token in tokens:
            entry = self.deferred.get(token)
            if entry is None:
                answers[token] = (False, LookupError(f"no deferred request {token} here"))
            elif entry[1].done():
                del self.deferred[token]
                answers[token] = answer_of(entry[1], portable)
                names.add(entry[0])
        return answers, names

    def follow(self, name: str, handle: Any, version: int) -> list[Any]:
        """The commits of ``name`` after ``version`` (starting its log)."""
        log = self.logs.get(name)
        if log is None or log.handle is not handle:
            log = self.logs[name] = _Log(handle)
            handle.add_observer(log)
        return log.since(version)

    def drop_idle(self) -> None:
        """Drop the logs no client polled for `LOG_IDLE` seconds, and the
        deferred requests older than `DEFERRED_KEPT` (their client gave up)."""
        now = time.monotonic()
        for token, (_, _, since) in list(self.deferred.items()):
            if now - since > DEFERRED_KEPT:
                del self.deferred[token]
        for name, log in list(self.logs.items()):
            if now - log.polled > LOG_IDLE:
                del self.logs[name]
                try:
                    log.handle.remove_observer(log)
                except ValueError:
                    pass


def answer_of(reply: Any, portable: Any) -> tuple[bool, Any]:
    """A done reply's answer, as it travels back."""
    error = reply.exception(0)
    if error is not None:
        return (False, portable(error))
    return (True, reply.result(0))
