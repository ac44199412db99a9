"""The file under a SQLite store: is it still the one the store opened?

Removing the file (and its -wal) or renaming another file over it while the
store is open does not stop SQLite: it writes on into the old file through
its open descriptors, and that file is gone at the next open. `StoreFile`
notices, so that such a write is reported as failed instead of acknowledged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .._errors import StoreWriteError

#: What to do once a store's file was removed or replaced under it.
LOST_FIX = (
    "nothing more can be committed to this store: stop the runtime, put the store file "
    "back at its path (or restore it from a backup), and start again"
)


def listed(names: Iterable[str]) -> str:
    """Actor names for a message: sorted, each once, comma-separated."""
    return ", ".join(sorted(set(names)))


def _identity(path: str) -> tuple[int, int] | None:
    """The file at ``path`` as ``(device, inode)``; None if there is none."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return found.st_dev, found.st_ino


class StoreFile:
    """A store's database file and its write-ahead log, as opened.

    Attributes:
        file: the file's absolute path (a later chdir changes nothing).
        wal_file: the path of its write-ahead log, next to the real file.
        lost: why the store can no longer commit (its file was removed or
            replaced), or None.
    """

    __slots__ = ("_identity", "_wal_identity", "file", "lost", "wal_file")

    def __init__(self, path: Path) -> None:
        self.file = os.path.abspath(path)
        self._identity = _identity(self.file)
        self.wal_file = os.path.realpath(path) + "-wal"
        self._wal_identity = _identity(self.wal_file)
        self.lost: str | None = None

    def check_before_write(self, names: Iterable[str]) -> None:
        """Before a write: refuse it if the -wal was removed or replaced.

        SQLite copies a -wal removed on its own into the database file when
        the store closes: a write into it would be reported failed and found
        all the same. One ``stat``, and the full check if it finds a change.
        """
        if self._wal_identity is not None:
            try:
                unchanged = _identity(self.wal_file) == self._wal_identity
            except OSError:
                unchanged = False
            if not unchanged:
                self.check_after_write(names)

    def check_after_write(self, names: Iterable[str]) -> None:
        """After a write: fail it if its file is no longer at the store's path.

        After each write (each group commit in batched mode), before anyone
        is told it succeeded, the path must still lead to the file opened and
        to its write-ahead log: two ``stat`` calls, next to an fsync (and one
        before the write, `check_before_write`). Once a check fails, the store
        refuses every commit and every recovery: what it holds is no longer
        what a restart would find.

        What is left at the path then is beyond the store's reach: SQLite
        reads a -wal left behind with whatever database file is put at the
        path, which mixes two stores. Stop the runtime before moving,
        replacing or removing its files.
        """
        problem = None
        try:
            found = _identity(self.file)
            wal = _identity(self.wal_file)
        except OSError as exc:
            problem = f"its file {self.file!r} can no longer be looked up ({exc.strerror})"
        else:
            if found != self._identity:
                change = "removed" if found is None else "replaced by another file"
                problem = f"its file {self.file!r} was {change} while the store was open"
            elif self._wal_identity is None:
                self._wal_identity = wal  # SQLite makes it at the first write
            elif wal != self._wal_identity:
                change = "removed" if wal is None else "replaced by another file"
                problem = (
                    f"its write-ahead log {self.wal_file!r} was {change} while the store was open"
                )
        if problem is not None:
            self.lost = problem
            raise StoreWriteError(listed(names), problem, fix=LOST_FIX)
