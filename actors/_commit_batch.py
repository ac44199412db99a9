"""Group commit across cells: a pooled worker writes the commits of the turns
it runs in a row in one transaction, then answers them all.

Each thread of a pool has one `CommitBatch` (found through
`stores._group_commit.staging`). While the thread runs a turn of a cell whose
store can stage commits (it has ``stage_entry``: `SQLiteStore` in ``"strict"``
or ``"batched"`` mode), `Cell.process` does not commit the turn's commits: it
hands each entry to the batch (`CommitBatch.stage`) and leaves the request to
it (`CommitBatch.defer`) unpublished and unanswered. A store without
``stage_entry`` (the memory store, or a user's wrapper around any store) is
committed with ``commit``, whose commit is durable when it returns: staging is
never something a store does behind its caller's back. The cell's next
message builds on that staged snapshot (``cell.staged``), and the cell's turn
stays held after the turn ends (`CommitBatch.hold`), so that nothing else runs
the cell meanwhile.

The batch is flushed (`CommitBatch.flush`) when the thread's run queue is
empty, when it holds `FLUSH_AFTER` commits, and always before the thread
blocks (a wait for a reply, an async hook: `stores._group_commit.flush_staged`), before
a cell it holds stops, and before a cell's request fails or crashes it (so
that replies go out in the order the requests ran). A flush writes every
staged entry of a store in one transaction, then, cell by cell and in order:

- written: publishes each snapshot, runs its after-commit work and observers,
  answers its request; then gives the cell's turn back;
- not written (the store raised): nothing of it is published and no request
  in it is answered as a success. Each cell in it crashes: its first staged
  request gets `ActorCrashed` through the supervisor (as a failed commit
  always did), the later ones `ActorCrashed` too, and its generation moves on,
  so a request of it still running (built on the lost snapshot) can commit
  nothing. The next incarnation recovers from the store, which holds none of
  the failed entries.

A commit staged by an incarnation that was fenced meanwhile (a shutdown gave
up on it) is not written, and its caller is told so, as `Cell.process` does.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from ._context import current_cell

logger = logging.getLogger("stateward.actors")

#: A pooled worker flushes its batch once it holds this many commits, even
#: with cells still waiting on its run queue.
FLUSH_AFTER = 1024


class _Staged:
    """One staged commit: its request, the behaviour's outcome, and its entry."""

    __slots__ = ("cell", "generation", "item", "message", "outcome", "running", "store")

    def __init__(
        self,
        cell: Any,
        message: Any,
        outcome: Any,
        generation: int,
        store: Any,
        item: Any,
    ) -> None:
        self.cell = cell
        self.message = message
        self.outcome = outcome
        self.generation = generation
        self.running = cell.running
        self.store = store
        self.item = item


class CommitBatch:
    """The commits a pooled worker has staged and not yet written.

    Used by one thread only (its own pool thread), except that `flush` may
    be entered again from a hook that blocks while the batch answers: it then
    answers what is left, so that nothing waits on a turn this thread holds.
    """

    def __init__(self) -> None:
        #: The cell whose pooled turn runs now: its commits are staged.
        self.cell: Any = None
        #: The staged commits, in order (the same list for the batch's life:
        #: its thread tests it for emptiness and length without a call).
        self.staged: list[_Staged] = []
        #: The entry a store has just staged, waiting for `defer` to pair it
        #: with its request.
        self._entry: tuple[Any, Any] | None = None
        #: The turns held past their end: ``(cell, turn token)``.
        self._held: list[tuple[Any, int]] = []
        #: What a flush has written or failed and not yet answered, cell by cell.
        self._answers: collections.deque[tuple[Any, list[_Staged], Any, Any]] = collections.deque()

    # -- staging (on the worker, in a turn) --------------------------------------------------

    def stage(
        self, cell: Any, stage_entry: Any, old: Any, new: Any, request_id: str | None = None
    ) -> bool:
        """Take ``cell``'s commit (``old`` -> ``new``, made by the request of
        ``request_id`` if given) if a pooled turn of ``cell`` runs now and its
        store stages it (``stage_entry``, the store's method, returns its
        entry); False if it must be committed directly."""
        if self.cell is not cell or cell is not current_cell.get():
            return False  # an inline call nested in a turn, or no turn at all
        if request_id is None:
            item = stage_entry(cell.name, cell.codec, old, new)
        else:
            item = stage_entry(cell.name, cell.codec, old, new, request_id=request_id)
        if item is None:
            return False
        self._entry = (stage_entry.__self__, item)
        return True

    def defer(self, cell: Any, message: Any, outcome: Any, generation: int) -> None:
        """Leave ``message`` to the batch: published and answered after the
        flush that writes the entry just staged (see `stage`)."""
        entry = self._entry
        assert entry is not None, "defer() without a staged entry"
        self._entry = None
        self.staged.append(_Staged(cell, message, outcome, generation, *entry))
        cell.staged = outcome.snapshot

    def hold(self, cell: Any, turn: int) -> bool:
        """Keep ``cell``'s turn until its staged commits are answered; False
        if it has none staged here (the caller gives the turn back)."""
        if cell.staged is None:  # else its staged commits can only be in this batch
            return False
        self._held.append((cell, turn))
        return True

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every staged commit, then publish and answer them (or fail
        them), cell by cell, giving back each held turn."""
        staged = self.staged[:]
        self.staged.clear()
        held, self._held = self._held, []
        if staged:
            errors = self._write(staged)
            turns = dict(held)
            cells: dict[Any, list[_Staged]] = {}
            for entry in staged:
                cells.setdefault(entry.cell, []).append(entry)
            for cell, entries in cells.items():
                error = errors.get(entries[0].store)
                self._answers.append((cell, entries, error, turns.pop(cell, None)))
            held = list(turns.items())
        for cell, turn in held:  # pragma: no cover - a held turn always has entries
            self._answers.append((cell, [], None, turn))
        cell_now, self.cell = self.cell, None  # nothing stages while answering
        try:
            answers = self._answers
            while answers:
                cell, entries, error, turn = answers.popleft()
                try:
                    if error is None:
                        _publish_and_answer(cell, entries)
                    else:
                        _fail(cell, entries, error)
                except Exception:  # pragma: no cover - hooks' errors are reported inside
                    logger.exception("actor %r: answering its written commits failed", cell.name)
                finally:
                    if turn is not None:
                        _give_back(cell, turn)
        finally:
            self.cell = cell_now

    @staticmethod
    def _write(staged: list[_Staged]) -> dict[Any, BaseException]:
        """Write the entries, one transaction per store; the errors by store."""
        stores: dict[Any, list[Any]] = {}
        for entry in staged:
            if entry.cell.generation == entry.generation:
                stores.setdefault(entry.store, []).append(entry.item)
            else:  # its incarnation was fenced meanwhile: it may commit nothing
                entry.item = None
        errors: dict[Any, BaseException] = {}
        for store, items in stores.items():
            try:
                store.write_staged(items)
            except BaseException as exc:  # nothing of it was written
                errors[store] = exc
        return errors


def _publish_and_answer(cell: Any, entries: list[_Staged]) -> None:
    """Written: publish each snapshot, run its after-commit work and
    observers, and answer its request, in order, as the cell's own code."""
    cell.staged = None
    token = current_cell.set(cell)
    try:
        for entry in entries:
            message = entry.message
            if entry.item is None:
                cell._answer_fenced(message)  # fenced before the write: not written
                continue
            outcome = entry.outcome
            old = cell.snapshot
            cell.publish(outcome.snapshot)
            cell.after_commit(message, outcome, old)
    finally:
        current_cell.reset(token)


def _fail(cell: Any, entries: list[_Staged], error: BaseException) -> None:
    """Not written: nothing is published; the cell crashes (its first request
    answered through the supervisor) and every request gets `ActorCrashed`."""
    cell.staged = None
    with cell.commit_lock:
        cell.generation += 1  # a request still running on the lost snapshot commits nothing
        inflight, cell.inflight = cell.inflight, None  # one a deadline watches, if any
    cell.failures += len(entries)
    cell.last_error = error
    first, *rest = entries
    running = first.running
    if running is not None:
        running.crashed(error, first.message)
    else:  # pragma: no cover - a staged commit always has a running incarnation
        cell.answer_crash(first.message, error)
    for entry in rest:
        cell.answer_crash(entry.message, error)
    if inflight is not None:  # it can no longer commit, and its watch is over
        cell.answer_crash(inflight, error)


def _give_back(cell: Any, turn: int) -> None:
    """Give back a turn held past its end, and look at the queue once more."""
    mailbox = cell.mailbox
    mailbox.give_turn(turn)
    if mailbox.queue or not cell.ready:
        mailbox.kick()
