"""A machine's snapshot as it travels back from a shard: only what its client
lacks.

Every answer to a machine's request, and the snapshot that a batch's answer
publishes, is the machine's whole snapshot, history included (up to the
spec's ``history_limit`` records). Pickling that history for every answer
was most of the cost of a Ray call. So a batch says, for each machine it
calls, what its client holds (`held_of`: the last history record and how
many it holds), and the shard sends each snapshot of that machine as a
`shrink`: the state, version and data, and only the history records after
the ones held. The client rebuilds the snapshot (`grow`), equal to the
shard's, history included. Within one batch, each snapshot is shrunk
against the one before it of the same machine, which the client has
rebuilt by then (`Chain`).

A snapshot whose client holds no record that is still in its history (it
fell behind by more than the history keeps), or that holds one the shard's
history does not have (another lineage: a store that lost commits), travels
whole, as does every value that is not a `MachineSnapshot`.
"""

from __future__ import annotations

from typing import Any

from stateward.core import History, MachineSnapshot

#: An answer ``(SHRUNK, payload)``: a success whose value is its machine's
#: snapshot as a `shrink` (truthy, like the ``True`` of a plain success).
SHRUNK = 2

#: What a client holds of a machine: its snapshot's last history record (or
#: None: an empty history) and how many records it holds.
Held = tuple[Any, int]


def held_of(snapshot: Any) -> Held | None:
    """What a client holding ``snapshot`` can rebuild a shrunk one from, or
    None (not a machine's snapshot: it gets whole snapshots)."""
    if type(snapshot) is not MachineSnapshot or type(snapshot.history) is not History:
        return None
    history = snapshot.history
    size = len(history)
    return (history.newest(1)[0] if size else None), size


def shrink(snapshot: Any, held: Held) -> tuple[tuple[Any, ...], Held] | None:
    """``snapshot`` as ``(state, version, data, records after the held ones,
    history size)`` for a client that holds ``held``, and what the client
    holds once it has rebuilt it; or None when it must travel whole (see
    the module's docstring)."""
    if type(snapshot) is not MachineSnapshot or type(snapshot.history) is not History:
        return None
    history = snapshot.history
    size = len(history)
    last, count = held
    if last is None:
        if count:
            return None
        new = tuple(history.entries())
    else:
        # The records after the held one are at most one per version since:
        # only the newest of them (and the held one) are looked at.
        version = last[0]
        newest = history.newest(max(0, snapshot.version - version) + 1)
        first = size - len(newest)
        at = len(newest)
        while at and newest[at - 1][0] > version:
            at -= 1
        # The held record must be in this history, and the client must hold
        # every record of it up to that one.
        if not at or newest[at - 1] != last or count < first + at:
            return None
        new = newest[at:]
        last = newest[-1]
    shrunk: tuple[Any, ...] = (snapshot.state, snapshot.version, snapshot.data, new, size)
    if snapshot.timers:  # pending timers travel too, after the chart (or None)
        shrunk += (snapshot.chart, snapshot.timers)
    elif snapshot.chart is not None:  # a statechart's configuration travels too
        shrunk += (snapshot.chart,)
    return shrunk, (new[-1] if new else last, size)


def grow(base: MachineSnapshot, shrunk: tuple[Any, ...]) -> MachineSnapshot:
    """The snapshot that `shrink` made ``shrunk`` of, from ``base`` (the
    snapshot the client held: its history ends with the records before the
    new ones)."""
    state, version, data, new, kept, *more = shrunk
    history = base.history
    assert type(history) is History
    for entry in new:
        history = history.appended(entry, kept)
    if len(history) != kept:
        history = History.from_entries(tuple(history.entries())[-kept:])
    chart = more[0] if more else None
    timers = more[1] if len(more) > 1 else ()
    return MachineSnapshot(state, version, data, history, chart, timers)


class Chain:
    """A batch's shrinking on its shard: per machine, what its client holds
    by the time it reads the next answer (what it held when it sent the
    batch, then each snapshot it rebuilt since)."""

    __slots__ = ("held",)

    def __init__(self, held: dict[str, Held]) -> None:
        self.held = held

    def shrink(self, name: str, snapshot: Any) -> tuple[Any, ...] | None:
        """``snapshot`` of ``name`` shrunk for the client, or None (it travels whole)."""
        held = self.held.get(name)
        if held is None:
            return None
        done = shrink(snapshot, held)
        if done is None:
            return None
        self.held[name] = done[1]  # the client holds this one once it has read it
        return done[0]
