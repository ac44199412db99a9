"""The dedicated host: one thread per incarnation, a pykka ``ThreadingActor``.

Only pykka's public API is used: ``ThreadingActor.start``, ``ActorRef.tell``,
``on_receive`` and ``ActorRef.stop``. The cell's mailbox stays stateward's
(nothing queued is lost when an incarnation crashes); the pykka actor only
ever receives "run a turn" wake-ups. Each pykka actor leaves pykka's global
``ActorRegistry`` as soon as it is started, so a user's
``ActorRegistry.stop_all()`` cannot stop stateward's workers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pykka

from ._host import Turns

logger = logging.getLogger("stateward.actors")

#: The most messages a turn runs before it hands the cell back (and the
#: worker's own loop gets a look in).
TURN_BUDGET = 256


class _PykkaWorker(pykka.ThreadingActor):
    """The pykka actor behind a `DedicatedWorker`: each message is a wake-up."""

    # Worker threads never keep the interpreter alive; runtimes shut down at exit.
    use_daemon_thread = True

    def __init__(self, turns: Turns, worker: DedicatedWorker) -> None:
        super().__init__()
        self.turns = turns
        self.worker = worker

    def on_start(self) -> None:
        """Runs on the worker's new thread, before any wake-up."""
        thread = threading.current_thread()
        thread.name = self.turns.label
        self.worker._thread = thread

    def on_receive(self, message: Any) -> None:
        """Runs one turn, on the worker's thread. `Turns.run_turn` never
        raises; anything escaping it here would make pykka stop every actor of
        the process, so it is caught and logged."""
        try:
            self.turns.run_turn(TURN_BUDGET)
        except BaseException:  # pragma: no cover - run_turn catches everything
            logger.exception("a stateward worker's turn raised")

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
        self._ref = _PykkaWorker.start(turns, self)
        # Out of pykka's global registry: a user's ActorRegistry.stop_all()
        # must not stop (and so "crash") stateward's workers.
        pykka.ActorRegistry.unregister(self._ref)

    def wake(self) -> bool:
        # Under the lock, so that no wake-up is queued behind the stop that
        # `retire` queues: pykka drops what follows its stop, and the turn that
        # came with it would be lost.
        with self._lock:
            if self._retired:
                return False
            try:
                self._ref.tell(None)
            except pykka.ActorDeadError:  # pragma: no cover - it only stops when retired
                return False
            return True

    def retire(self) -> None:
        with self._lock:
            if self._retired:
                return
            self._retired = True
        self._ref.stop(block=False)  # after the wake-ups already queued

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._ref.actor_stopped.wait(timeout)
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


class ThreadHost:
    """Runs each incarnation's turns on a thread of its own (today's default).

    Blocking hooks are fine here: they hold only their own actor's thread.
    """

    def attach(self, turns: Turns) -> DedicatedWorker:
        return DedicatedWorker(turns)

    def close(self, timeout: float) -> None:
        """Nothing of its own to stop: each worker ends with its incarnation."""
