"""The dedicated host: one thread per incarnation, a pykka ``ThreadingActor``.

Only pykka's public API is used: ``ThreadingActor.start``, ``on_start``,
``ActorRef.stop`` and ``ActorRegistry.unregister``. The cell's mailbox stays
stateward's (nothing queued is lost when an incarnation crashes); the pykka
actor only runs the incarnation's turns.

Each pykka actor *serves* from its ``on_start``: it runs turns as they are
handed to it, until the incarnation is retired, and returns; pykka then takes
the stop that ``ActorRef.stop`` queued, and its thread ends. (Serving from
``on_receive`` after a first ``tell`` cost one more pass through pykka's
inbox and one more sleep and wake-up of the new thread per actor started:
about a sixth more CPU time to start an actor.) The hand-offs themselves go
through a ``queue.SimpleQueue`` rather than one ``tell`` each: pykka's inbox
is a ``queue.Queue``, whose condition variables cost a few microseconds per
message in Python code, which made a blocking call handed to the actor's
thread (``inline_calls=False``) a fifth slower; the C ``SimpleQueue`` costs
what the former private inbox did. A pooled host would serve many cells the
same way, each worker taking turns from one shared queue.

Each pykka actor leaves pykka's global ``ActorRegistry`` as soon as it is
started, so a user's ``ActorRegistry.stop_all()`` cannot stop stateward's
workers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import pykka

from ._host import Turns

logger = logging.getLogger("stateward.actors")

#: The most messages a turn runs before it hands the cell back (and the
#: worker looks at its own queue again).
TURN_BUDGET = 256

_WAKE = True
_RETIRE = False


class _PykkaWorker(pykka.ThreadingActor):
    """The pykka actor behind a `DedicatedWorker`."""

    # Worker threads never keep the interpreter alive; runtimes shut down at exit.
    use_daemon_thread = True

    def __init__(self, turns: Turns, worker: DedicatedWorker) -> None:
        super().__init__()
        self.turns = turns
        self.worker = worker

    def on_start(self) -> None:
        """Serve the incarnation's turns, on the worker's new thread, until it
        is retired; then pykka takes the stop `DedicatedWorker.retire` sent.
        `Turns.run_turn` never raises; anything escaping here would make pykka
        stop every actor of the process, so it is caught."""
        thread = threading.current_thread()
        thread.name = self.turns.label
        self.worker._thread = thread
        wakeups = self.worker._wakeups
        run_turn = self.turns.run_turn
        try:
            while wakeups.get():
                run_turn(TURN_BUDGET)
        except BaseException:  # pragma: no cover - run_turn catches everything
            logger.exception("a stateward worker failed")
            self.stop()  # then on_stop reports the incarnation as crashed

    def on_stop(self) -> None:
        """Runs on the worker's thread after its last turn."""
        self.turns.ended()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:  # pragma: no cover
        self.turns.ended()


class DedicatedWorker:
    """A `Worker` with a thread of its own, for one incarnation."""

    def __init__(self, turns: Turns) -> None:
        self._lock = threading.Lock()
        self._retired = False
        self._thread: threading.Thread | None = None
        self._wakeups: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._ref = _PykkaWorker.start(turns, self)
        # Out of pykka's global registry: a user's ActorRegistry.stop_all()
        # must not stop (and so "crash") stateward's workers.
        pykka.ActorRegistry.unregister(self._ref)

    def wake(self) -> bool:
        # Under the lock, so that no wake-up is queued behind the retirement:
        # the serving loop ends there, and the turn that came with a later
        # wake-up would be lost.
        with self._lock:
            if self._retired:
                return False
            self._wakeups.put(_WAKE)
            return True

    def hold(self) -> bool:
        """No: the thread has nothing else to run, so an async hook is awaited
        on it, as before suspension existed (`_suspension.py`)."""
        return False

    def resume(self) -> None:  # pragma: no cover - never held
        raise RuntimeError("a dedicated worker holds no suspended turn")

    def retire(self, *, end_here: bool = False) -> None:
        # Its own thread reports the end once it has run its last turn.
        with self._lock:
            if self._retired:
                return
            self._retired = True
            self._wakeups.put(_RETIRE)  # after the wake-ups already queued
        self._ref.stop(block=False)

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is threading.current_thread():
            return  # called from its own turn (a supervisor stopping on it): it ends after
        deadline = time.monotonic() + timeout
        self._ref.actor_stopped.wait(timeout)
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


class ThreadHost:
    """Runs each incarnation's turns on a thread of its own (today's default).

    Blocking hooks are fine here: they hold only their own actor's thread.
    """

    #: Each incarnation starts on its own thread (see `Host.starts_inline`).
    starts_inline = False

    def attach(self, turns: Turns) -> DedicatedWorker:
        return DedicatedWorker(turns)

    def close(self, timeout: float) -> None:
        """Nothing of its own to stop: each worker ends with its incarnation."""
