"""Group commit: commits from many actors written together, each acknowledged once durable.

A database store in ``"batched"`` mode hands each commit to `GroupCommit._write_batched`
instead of writing it alone. One committer at a time leads: it writes every
entry pending at that moment in one transaction (one fsync) and wakes each of
their committers; a commit waits only for the write that holds it, so the loss
window stays that of a write per commit (nothing acknowledged is lost), with
far fewer fsyncs.

In ``"strict"`` mode too, each commit reaches the database through the
store's ``_write(batch)`` (a batch of one), which writes the whole batch in
one transaction or nothing of it. That is the one place for a check that
must hold in the same transaction as the commit (a fence: a lease that a
replaced owner no longer holds).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from .._errors import LeaseLost


class _Staging(threading.local):
    """Per thread: the commit batch of a pool's worker thread, if it has one."""

    batch: Any = None


#: This thread's commit batch (`stateward.actors._commit_batch.CommitBatch`):
#: set on each worker thread of a pool, None elsewhere. While that thread runs
#: a turn, a store may hand it the turn's commits instead of writing each alone
#: (`SQLiteStore.commit`); a thread about to block flushes it first
#: (`flush_staged`), so that no staged reply waits on a blocked worker.
staging = _Staging()


def flush_staged() -> None:
    """Write and answer what this thread's commit batch holds, if anything:
    called before the thread blocks."""
    batch = staging.batch
    if batch is not None:
        batch.flush()


#: `Pending.timers_due` of a commit that leaves the index of due timers as it is.
KEEP: Any = object()


class Pending:
    """One commit waiting for a batched write (or, with ``group``, the commits
    of several turns that a pooled worker staged: see `group`).

    ``wake`` is held until its committer may go on: either its entry was
    written (``done``), or it is handed the lead of the next write.
    """

    __slots__ = (
        "done",
        "error",
        "group",
        "name",
        "payload",
        "request_id",
        "snapshot",
        "timers_due",
        "version",
        "wake",
    )

    def __init__(self, name: str, version: int, payload: bytes, snapshot: bytes | None) -> None:
        self.name = name
        self.version = version
        self.payload = payload
        self.snapshot = snapshot
        #: The id of the request that made this commit, when its sender gave
        #: one (a `RayRuntime` client): written in the same transaction.
        self.request_id: str | None = None
        #: The machine's new earliest timer due time (epoch seconds; None:
        #: no timer left), or `KEEP` (`_timer_index`).
        self.timers_due: Any = KEEP
        self.error: BaseException | None = None
        self.done = False
        #: The entries this one stands for, when it carries several (`group`).
        self.group: list[Pending] | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


def group(entries: list[Pending]) -> Pending:
    """One waiter for the entries of several commits, which go into the same
    batched write (all of them or, failing, none)."""
    carrier = Pending(entries[0].name, 0, b"", None)
    carrier.group = entries
    return carrier


def _entries(batch: list[Pending]) -> list[Pending]:
    """The journal entries of a batch, with every group's entries in its place."""
    if all(pending.group is None for pending in batch):
        return batch
    entries: list[Pending] = []
    for pending in batch:
        if pending.group is None:
            entries.append(pending)
        else:
            entries += pending.group
    return entries


class GroupCommit(ABC):
    """The group commit of a database store: its subclass writes the batches.

    ``_cond`` guards the queue of pending entries and the lead; a subclass
    may use it for its own waiting too (SQLite's snapshot mode does).
    """

    #: Called with (commits written, seconds) after each write, when the
    #: runtime reports metrics (`_telemetry`); None: nothing is timed.
    write_observer: Callable[[int, float], None] | None = None

    def _write_observed(self, items: list[Pending]) -> None:
        """`_write`, timed for the runtime's metrics when they are on."""
        observer = self.write_observer
        if observer is None:
            self._write(items)
            return
        started = time.perf_counter()
        self._write(items)
        observer(len(items), time.perf_counter() - started)

    def __init__(self) -> None:
        self._pending: list[Pending] = []
        self._cond = threading.Condition(threading.Lock())
        self._leading = False

    @abstractmethod
    def _write(self, items: list[Pending]) -> None:
        """Write the journal entries of ``items``, and the snapshots due with
        them, in one transaction: all of them, or (raising) none."""

    def _fenced_out(self, names: list[str]) -> set[str]:
        """Which of ``names`` were claimed under a lease that was taken over."""
        return set(names)

    @abstractmethod
    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        """Raise `StoreWriteError` if the store can no longer commit."""

    def _write_batched(self, item: Pending) -> None:
        """Group commit: one committer at a time writes everyone's entries.

        The first committer to find no write under way leads: it takes every
        pending entry, writes them in one statement (one fsync), wakes each of
        their committers, and hands the lead to the committer of the oldest
        entry that arrived meanwhile. Every committer is woken exactly once,
        by its own lock: no crowd wakes up to find it has nothing to do.
        """
        cond = self._cond
        with cond:
            self._check_open([entry.name for entry in item.group or (item,)])
            self._pending.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            try:
                item.wake.acquire()
            except BaseException:  # KeyboardInterrupt: this committer goes away
                self._withdraw(item)
                raise
            if item.done:
                if item.error is not None:
                    raise item.error
                return
        # Leading: this entry is still pending, so it is in the batch taken here.
        with cond:
            batch, self._pending = self._pending, []
        try:
            self._write_observed(_entries(batch))
        except LeaseLost as exc:  # a holder was fenced off: write the others' commits
            self._write_unfenced(batch, exc)
        except BaseException as exc:
            for pending in batch:
                pending.error = exc
        for pending in batch:
            pending.done = True
        # Hand the lead on first, so the next write starts while the committers
        # of this one wake up and go on.
        with cond:
            if self._pending:
                self._pending[0].wake.release()  # not done: its committer leads next
            else:
                self._leading = False
        for pending in batch:
            if pending is not item:
                pending.wake.release()
        if item.error is not None:
            raise item.error

    def _write_unfenced(self, batch: list[Pending], lost: LeaseLost) -> None:
        """A batch refused by the lease fence: fail the commits of the runtime
        whose lease was taken over, and write the rest (several runtimes can
        share one store object) in a write of their own."""
        try:
            fenced = self._fenced_out([entry.name for entry in _entries(batch)])
        except BaseException as exc:
            fenced = set()
            lost = exc  # type: ignore[assignment]
        kept = []
        for pending in batch:
            if fenced and not any(entry.name in fenced for entry in pending.group or (pending,)):
                kept.append(pending)
            else:
                pending.error = lost
        if kept:
            try:
                self._write_observed(_entries(kept))
            except BaseException as exc:
                for pending in kept:
                    pending.error = exc

    def _withdraw(self, item: Pending) -> None:
        """Take back the entry of a committer whose wait was interrupted (a
        KeyboardInterrupt in the main thread, committing inline), so that no
        lead is ever handed to a committer that is gone: every later commit
        would wait for it. An entry that a write has taken is left to it."""
        with self._cond:  # the lead is handed on under it: no race with that
            if not item.wake.acquire(False):
                if any(p is item for p in self._pending):
                    self._pending.remove(item)  # still queued: it is never written
                return  # else a write under way has it (and will wake no one)
            if item.done:
                return
            # It was handed the lead: its entry heads the queue. Pass the lead on.
            self._pending.remove(item)
            if self._pending:
                self._pending[0].wake.release()
            else:
                self._leading = False
