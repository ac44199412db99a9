"""The host protocol: what runs cells' turns.

A *turn* is a run of one cell's messages by whoever holds the cell's turn
(see `Mailbox`). A host gives turns a thread to run on. The contract:

- `Host.attach` starts serving one incarnation of a cell and returns its
  `Worker`.
- `Worker.wake` is called by whoever took the cell's turn for queued work (a
  sender that found the cell idle, or a previous turn handing back): the
  worker must call `Turns.run_turn` soon, on a thread of the host's. The turn
  travels with the wake-up: a worker that accepts one (returns True) runs it
  exactly once; one that is retired refuses it (returns False) and the caller
  keeps the turn.
- `Turns.run_turn` runs at most ``budget`` messages and then gives the turn
  back (looking at the queue once more, so the cell is scheduled again if
  work is left): no cell holds a worker for long, which is what lets a host
  with a few threads serve many cells fairly.
- `Worker.retire` stops serving after the current turn; the worker then calls
  `Turns.ended` once it runs nothing of that incarnation any more.
- `Worker.hold` and `Worker.resume`: a turn suspended on an async hook keeps
  the cell's turn but gives its thread back; the worker counts it as running
  until `resume` queues the rest of it (`_suspension.py`). A worker may refuse
  to hold (the turn's thread then awaits the hook itself).

Today's host is `ThreadHost` (`_thread_host.py`): one dedicated pykka thread
per incarnation. A pooled host (a few workers for many cells) is one more
implementation of the same protocol.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class Turns(Protocol):
    """One incarnation of a cell, as a host sees it."""

    @property
    def label(self) -> str:
        """A label for the worker's thread (``stateward:<runtime>:<actor>``)."""

    @property
    def name(self) -> str:
        """The actor's name, for reports."""

    @property
    def cell(self) -> Any:
        """The cell whose turns these are (a pooled worker stages its commits)."""

    def run_turn(self, budget: int) -> None:
        """Run up to ``budget`` of the cell's messages; the caller holds the
        cell's turn (it came with the wake-up), and this gives it back.
        Never raises."""

    def ended(self) -> None:
        """Called by the worker once it will run nothing more of this incarnation."""


class Worker(Protocol):
    """What serves one incarnation's turns."""

    def wake(self) -> bool:
        """Run a turn soon (the caller hands over the cell's turn with this
        call); False if retired: the caller keeps the turn."""

    def hold(self) -> bool:
        """The running turn is suspended on an awaitable, its cell's turn held
        (`_suspension.py`): count it as running until `resume`. False if this
        worker cannot (the awaitable is then awaited on the turn's thread)."""

    def resume(self) -> None:
        """Run the rest of a held turn soon (with the cell's turn, which the
        suspended request hands over), even if retired meanwhile."""

    def retire(self, *, end_here: bool = False) -> None:
        """Serve no turn after the current one; then call `Turns.ended`.

        ``end_here``: the caller holds no lifecycle lock, so a worker with
        nothing running may call `Turns.ended` on the caller's thread at once
        (a host whose worker has a thread of its own may ignore it).
        """

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for its own thread, if any, to end."""

    @property
    def thread(self) -> threading.Thread | None:
        """The thread that runs this incarnation's turns, if it has one of its own."""


class Host(Protocol):
    """Runs cells' turns on its threads."""

    #: Whether an incarnation with nothing to run at its start (no
    #: ``on_start``, nothing to recover) may start on the thread that attaches
    #: it, with no turn on a worker: true for a host whose workers are shared
    #: (where a cell's thread means nothing), false for a thread per actor.
    starts_inline: bool

    def attach(self, turns: Turns) -> Worker:
        """Start serving one incarnation."""

    def close(self, timeout: float) -> None:
        """Stop whatever the host runs of its own, within ``timeout`` seconds."""
