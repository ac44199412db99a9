"""Snapshot mode: no journal; a background thread writes each changed actor's newest snapshot.

A database store in ``"snapshot"`` mode hands each commit to
`SnapshotWriter._mark_dirty`, which only keeps the new snapshot as the actor's
unsaved one; the commit does not wait. A background thread writes the unsaved
snapshots every ``snapshot_interval`` seconds, or as soon as one actor has
``snapshot_every`` unsaved commits, through the store's ``_write_snapshots``.
What it takes stays on the unsaved list until it is written, so a recovery
meanwhile finds it there and writes it itself (``_flush_dirty``). When the
store closes, the writer writes what is unsaved a last time; if that fails,
``close`` raises (`closing_error`): those changes are lost, and the caller
(`Runtime.shutdown`, whose report says so) must hear it.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stateward.core._persist import KindCodec

from .._errors import StoreWriteError

logger = logging.getLogger("stateward.actors")


class SnapshotWriter(ABC):
    """The background snapshot writer of a database store: its subclass writes the snapshots.

    It waits on the store's ``_cond`` (the one `GroupCommit` makes) and stops
    once the store sets ``_closed`` and notifies it.
    """

    # Provided by the store.
    path: Path
    snapshot_every: int
    snapshot_interval: float
    _cond: threading.Condition
    _closed: bool

    def __init__(self) -> None:
        # The newest unsaved snapshot of each actor, with its unsaved commits.
        self._dirty: dict[str, tuple[KindCodec, Any, int]] = {}
        self._writer: threading.Thread | None = None
        #: Why the snapshots unsaved when the store closed could not be
        #: written then (`close` raises it), or None.
        self._close_error: StoreWriteError | None = None

    @abstractmethod
    def _write_snapshots(self, dirty: dict[str, tuple[KindCodec, Any, int]]) -> None:
        """Write the snapshots of ``dirty`` in one transaction, or raise
        `StoreWriteError` having written none."""

    @abstractmethod
    def _check_open(self, names: Iterable[str] = ("(any)",)) -> None:
        """Raise `StoreWriteError` if the store can no longer commit."""

    def _mark_dirty(self, name: str, codec: KindCodec, snapshot: Any) -> None:
        with self._cond:
            self._check_open((name,))
            _, _, unsaved = self._dirty.get(name, (codec, None, 0))
            self._dirty[name] = (codec, snapshot, unsaved + 1)
            self._ensure_writer()
            if unsaved + 1 >= self.snapshot_every:
                self._cond.notify()

    def _ensure_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._snapshot_loop, daemon=True, name=f"stateward:store:{self.path.name}"
            )
            self._writer.start()

    def _snapshot_loop(self) -> None:
        failed = False  # after a failed write, the next try waits a whole interval
        while True:
            with self._cond:
                due = time.monotonic() + self.snapshot_interval
                while not self._closed:
                    if not failed and any(
                        n >= self.snapshot_every for _, _, n in self._dirty.values()
                    ):
                        break
                    remaining = due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                # A copy: what is taken stays on the unsaved list until it is
                # written, so a recovery meanwhile finds it there (and writes
                # it itself) instead of reading an older snapshot.
                dirty = dict(self._dirty)
                closing = self._closed
            if dirty:
                try:
                    self._write_snapshots(dirty)
                except StoreWriteError as exc:
                    if closing:  # the last try: close() raises it
                        self._close_error = exc
                        return
                    logger.error(
                        "could not save the snapshot of actor %r: %s. It is kept and "
                        "written again in %s s, or when the store closes",
                        exc.actor,
                        exc.problem,
                        self.snapshot_interval,
                    )
                    failed = True
                else:
                    self._saved(dirty)
                    failed = False
            if closing:
                return

    def closing_error(self, timeout: float) -> StoreWriteError | None:
        """Wait up to ``timeout`` seconds for the writer to end (the store has
        set ``_closed``), and return why its last write failed, if it did."""
        writer = self._writer
        if writer is not None:
            writer.join(timeout)
        error = self._close_error
        if error is None:
            return None
        return StoreWriteError(
            error.actor,
            f"its newest snapshot could not be written as the store closed ({error.problem})",
            error.cause,
            fix="its changes since its last saved snapshot are lost (it recovers from that "
            f"snapshot); make {str(self.path)!r} writable again (disk space, permissions, "
            "a lock another process holds) before the daemon stops next time",
        )

    def _saved(self, written: dict[str, tuple[KindCodec, Any, int]]) -> None:
        """Take what was written off the unsaved list; a newer snapshot of the
        same actor stays, counting only the commits made since."""
        with self._cond:
            for name, (_, snapshot, count) in written.items():
                entry = self._dirty.get(name)
                if entry is None:
                    continue
                if entry[1] is snapshot:
                    del self._dirty[name]
                else:
                    self._dirty[name] = (entry[0], entry[1], max(entry[2] - count, 1))

    def _flush_dirty(self, name: str) -> None:
        with self._cond:
            entry = self._dirty.get(name)
        if entry is not None:
            self._write_snapshots({name: entry})
            self._saved({name: entry})
