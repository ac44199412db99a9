"""A machine's kept history: an immutable sequence that shares its past.

Every transition makes a new snapshot whose history is the old one plus one
record, trimmed to the spec's ``history_limit``. Copying a tuple for that costs
time in proportion to the limit on every transition (and freeing the old copy
as much again). A `History` keeps its records in full chunks of `CHUNK` plus a
short tail: adding a record copies only the tail, and a chunk list once per
`CHUNK` records, and every snapshot shares the chunks with the one before.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from ._errors import FrozenStateError

if TYPE_CHECKING:
    from ._machine import TransitionRecord

__all__ = ["CHUNK", "History"]

#: Records per shared chunk.
CHUNK = 32

_Chunks = tuple[tuple["TransitionRecord", ...], ...]


class History(Sequence["TransitionRecord"]):
    """The records a snapshot keeps, oldest first; a read-only sequence.

    It indexes, slices (a slice is a tuple), iterates, and compares equal to a
    tuple or another `History` holding the same records.
    """

    # One slot, set once: (chunks, tail, start, size). ``chunks`` are full
    # tuples of CHUNK records, ``tail`` the newest records (fewer than CHUNK),
    # ``start`` how many records at the front of the first chunk (or of the
    # tail, when there are no chunks) are no longer kept, ``size`` how many are.
    __slots__ = ("_parts",)

    _parts: tuple[_Chunks, tuple[TransitionRecord, ...], int, int]

    def __init__(self, records: Iterable[TransitionRecord] = ()) -> None:
        items = tuple(records)
        full = len(items) - len(items) % CHUNK
        chunks = tuple(items[i : i + CHUNK] for i in range(0, full, CHUNK))
        _set_parts(self, (chunks, items[full:], 0, len(items)))

    def appended(self, record: TransitionRecord, limit: int) -> History:
        """This history plus ``record``, keeping the last ``limit`` records."""
        if limit <= 0:
            return EMPTY_HISTORY
        chunks, tail, start, size = self._parts
        tail = (*tail, record)
        size += 1
        if len(tail) == CHUNK:
            chunks, tail = (*chunks, tail), ()
        if size > limit:
            start += size - limit
            size = limit
            while start >= CHUNK and chunks:
                chunks = chunks[1:]
                start -= CHUNK
            if not chunks and start:
                tail, start = tail[start:], 0
        made: History = _new(History)
        _set_parts(made, (chunks, tail, start, size))
        return made

    # -- the sequence ------------------------------------------------------------------

    def __len__(self) -> int:
        return self._parts[3]

    def __iter__(self) -> Iterator[TransitionRecord]:
        chunks, tail, start, _ = self._parts
        flat = itertools.chain(itertools.chain.from_iterable(chunks), tail)
        return itertools.islice(flat, start, None)

    @overload
    def __getitem__(self, index: int) -> TransitionRecord: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[TransitionRecord, ...]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return tuple(self)[index]
        chunks, tail, start, size = self._parts
        i = index.__index__()
        if i < 0:
            i += size
        if not 0 <= i < size:
            raise IndexError("history index out of range")
        at = start + i
        chunk, offset = divmod(at, CHUNK)
        if chunk < len(chunks):
            return chunks[chunk][offset]
        return tail[at - len(chunks) * CHUNK]

    # -- value behaviour ---------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return len(self) == len(other) and tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return len(self) == len(other) and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"History({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (History, (tuple(self),))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenStateError("History", name)

    def __delattr__(self, name: str) -> None:
        raise FrozenStateError("History", name, operation="delete")


_new = object.__new__
_set_parts = History._parts.__set__  # type: ignore[attr-defined]


EMPTY_HISTORY = History()


def extend_history(
    history: Sequence[TransitionRecord], record: TransitionRecord, limit: int
) -> History:
    """``history`` (a `History` or any sequence) plus ``record``, the last ``limit`` kept."""
    if type(history) is not History:
        history = History(history[-limit:] if limit > 0 else ())
    return history.appended(record, limit)
