"""A machine's kept history: its transition records, in a sequence that shares its past.

Every transition makes a new snapshot whose history is the old one plus one
record, trimmed to the spec's ``history_limit``. Copying a tuple for that costs
time in proportion to the limit on every transition (and freeing the old copy
as much again). A `History` keeps its entries in full chunks of `CHUNK` plus a
short tail: adding one copies only the tail, and a chunk list once per `CHUNK`
entries, and every snapshot shares the chunks with the one before. Entries are
kept as plain tuples (`TransitionRecord.to_tuple`'s form); a `TransitionRecord`
is made when one is read.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ._errors import FrozenStateError
from ._quick import quick_init

__all__ = ["CHUNK", "Entry", "History", "TransitionRecord"]

#: Entries per shared chunk.
CHUNK = 32

#: A record as kept: (version, from_state, to_state, event, at, payload_keys),
#: and ``True`` after them for an internal transition (a plain move's entry, and
#: every entry written before internal transitions existed, has six items); a
#: statechart's entry has nine: then ``internal`` and the configurations before
#: and after.
Entry = (
    tuple[int, str, str, "str | None", _dt.datetime, tuple[str, ...]]
    | tuple[int, str, str, "str | None", _dt.datetime, tuple[str, ...], bool]
    | tuple[
        int,
        str,
        str,
        "str | None",
        _dt.datetime,
        tuple[str, ...],
        bool,
        frozenset[str],
        frozenset[str],
    ]
)
_Chunks = tuple[tuple[Entry, ...], ...]


@quick_init
@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One committed transition, as kept in a machine's history.

    Attributes:
        version: the machine version this transition created.
        from_state: the state it left.
        to_state: the state it entered.
        event: the event that fired, or None for a move by target.
        at: when it was committed (the clock's time, UTC by default).
        payload_keys: the keys of the payload after enrichment, sorted.
        internal: whether it was an internal transition (no exit or enter hook
            ran); see `kind`.
        active_before: a statechart's configuration before (None for a flat
            machine's record); read `configuration_before`.
        active_after: likewise after; read `configuration_after`.
    """

    version: int
    from_state: str
    to_state: str
    event: str | None
    at: _dt.datetime
    payload_keys: tuple[str, ...] = ()
    internal: bool = False
    active_before: frozenset[str] | None = None
    active_after: frozenset[str] | None = None

    @property
    def configuration_before(self) -> frozenset[str]:
        """Every state active before the transition (``{from_state}`` for a flat machine)."""
        if self.active_before is None:
            return frozenset((self.from_state,))
        return self.active_before

    @property
    def configuration_after(self) -> frozenset[str]:
        """Every state active after the transition (``{to_state}`` for a flat machine)."""
        if self.active_after is None:
            return frozenset((self.to_state,))
        return self.active_after

    @property
    def kind(self) -> str:
        """``"internal"`` (the state was not left: no exit or enter hook ran),
        ``"self"`` (it was left and entered again: both ran) or ``"external"``."""
        if self.internal:
            return "internal"
        return "self" if self.from_state == self.to_state else "external"

    def to_tuple(self) -> tuple[Any, ...]:
        """An encodable form, for snapshots (see `from_tuple`)."""
        plain = (
            self.version,
            self.from_state,
            self.to_state,
            self.event,
            self.at,
            self.payload_keys,
        )
        if self.active_before is not None:
            return (*plain, self.internal, self.active_before, self.active_after)
        return (*plain, True) if self.internal else plain

    @classmethod
    def from_tuple(cls, value: tuple[Any, ...]) -> TransitionRecord:
        """Rebuild a record from `to_tuple`'s form (six items, seven for an
        internal transition, nine for a statechart's)."""
        version, from_state, to_state, event, at, keys, *rest = value
        if len(rest) == 3:
            internal, before, after = rest
            return cls(
                version,
                from_state,
                to_state,
                event,
                at,
                tuple(keys),
                bool(internal),
                frozenset(before),
                frozenset(after),
            )
        return cls(version, from_state, to_state, event, at, tuple(keys), bool(rest and rest[0]))


class History(Sequence["TransitionRecord"]):
    """The records a snapshot keeps, oldest first; a read-only sequence.

    It indexes, slices (a slice is a tuple), iterates, and compares equal to a
    tuple or another `History` holding the same records.
    """

    # One slot, set once: (chunks, tail, start, size). ``chunks`` are full
    # tuples of CHUNK entries, ``tail`` the newest entries (fewer than CHUNK),
    # ``start`` how many entries at the front of the first chunk (or of the
    # tail, when there are no chunks) are no longer kept, ``size`` how many are.
    __slots__ = ("_parts",)

    _parts: tuple[_Chunks, tuple[Entry, ...], int, int]

    def __init__(self, records: Iterable[TransitionRecord] = ()) -> None:
        _set_parts(self, _layout(tuple(r.to_tuple() for r in records)))

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> History:
        """A history of records given in `TransitionRecord.to_tuple`'s form."""
        made: History = _new(cls)
        _set_parts(made, _layout(tuple(entries)))
        return made

    def entries(self) -> Iterator[Entry]:
        """The records in `TransitionRecord.to_tuple`'s form, oldest first,
        without making record objects."""
        chunks, tail, start, _ = self._parts
        flat = itertools.chain(itertools.chain.from_iterable(chunks), tail)
        return itertools.islice(flat, start, None)

    def newest(self, count: int) -> tuple[Entry, ...]:
        """The newest ``count`` records (all, if it keeps fewer), oldest first,
        in `entries`' form; in time proportional to ``count``, not to the
        history's length."""
        chunks, tail, _, size = self._parts
        count = min(count, size)
        if count <= len(tail):
            return tail[len(tail) - count :]
        need, pieces = count - len(tail), [tail]
        for chunk in reversed(chunks):
            if need <= CHUNK:
                pieces.append(chunk[CHUNK - need :])
                break
            pieces.append(chunk)
            need -= CHUNK
        return tuple(itertools.chain.from_iterable(reversed(pieces)))

    def appended(self, entry: Entry, limit: int) -> History:
        """This history plus ``entry``, keeping the last ``limit`` records."""
        if limit <= 0:
            return EMPTY_HISTORY
        chunks, tail, start, size = self._parts
        tail = (*tail, entry)
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
        return itertools.starmap(TransitionRecord, self.entries())

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
            return TransitionRecord(*chunks[chunk][offset])
        return TransitionRecord(*tail[at - len(chunks) * CHUNK])

    # -- value behaviour ---------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return len(self) == len(other) and tuple(self.entries()) == tuple(other.entries())
        if isinstance(other, tuple):
            return len(self) == len(other) and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"History({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (History.from_entries, (tuple(self.entries()),))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenStateError("History", name)

    def __delattr__(self, name: str) -> None:
        raise FrozenStateError("History", name, operation="delete")


_new = object.__new__
_set_parts = History._parts.__set__  # type: ignore[attr-defined]


def _layout(entries: tuple[Entry, ...]) -> tuple[_Chunks, tuple[Entry, ...], int, int]:
    full = len(entries) - len(entries) % CHUNK
    chunks = tuple(entries[i : i + CHUNK] for i in range(0, full, CHUNK))
    return chunks, entries[full:], 0, len(entries)


EMPTY_HISTORY = History()


def extend_history(history: Sequence[TransitionRecord], entry: Entry, limit: int) -> History:
    """``history`` (a `History` or any sequence of records) plus ``entry``, the
    last ``limit`` kept."""
    if type(history) is not History:
        history = History(history[-limit:] if limit > 0 else ())
    return history.appended(entry, limit)
