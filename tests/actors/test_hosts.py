"""Hosts run cells' turns; stateward keeps its pykka workers to itself.

The dedicated host gives each incarnation a pykka ``ThreadingActor`` used
through pykka's public API only, and takes it out of pykka's global
``ActorRegistry``: a user's ``ActorRegistry.stop_all()`` (common at the end of
a pykka program) stops the user's actors and leaves stateward's running.
"""

from __future__ import annotations

import collections
import re
import threading
from pathlib import Path

import pykka
from support import TOGGLE

from stateward.actors import Runtime, StateMachine, StateManager
from stateward.actors._host import Turns

WAIT = 10.0
ACTORS = Path(__file__).resolve().parents[2] / "actors"


class Echo(pykka.ThreadingActor):
    """A user's own pykka actor."""

    def on_receive(self, message: object) -> object:
        return message


def test_a_users_pykka_stop_all_leaves_stateward_machines_running() -> None:
    with Runtime("registry", default_timeout=WAIT) as runtime:
        machines = [StateMachine("a", TOGGLE, name=f"m{i}", runtime=runtime) for i in range(3)]
        counter = StateManager({"n": 0}, name="counter", runtime=runtime)
        busy = [m.request_transition("b") for m in machines]  # some work in flight
        mine = Echo.start()
        assert mine.ask("hi", timeout=WAIT) == "hi"

        pykka.ActorRegistry.stop_all(timeout=WAIT)

        assert not mine.is_alive()  # the user's actor stopped, as asked
        assert pykka.ActorRegistry.get_all() == []
        for reply in busy:
            assert reply.result(timeout=WAIT).state == "b"
        for machine in machines:
            assert machine.transition("a").state == "a"
            assert machine.alive and machine.restarts == 0
        # Pipelined requests go through the workers' threads, not inline.
        replies = [counter.request_modify(lambda s: s.update(n=s.n + 1)) for _ in range(50)]
        assert [r.result(timeout=WAIT).n for r in replies] == list(range(1, 51))
        assert counter.restarts == 0
        stats = runtime.stats()
        assert stats.events["failed"] == 0 and stats.events["restarted"] == 0
        report = runtime.shutdown(timeout=WAIT)
        assert report.clean, report.describe()


def test_stateward_workers_never_join_pykkas_registry() -> None:
    with Runtime("unregistered", default_timeout=WAIT) as runtime:
        before = set(pykka.ActorRegistry.get_all())
        manager = StateManager({"n": 0}, runtime=runtime, on_error="restart")
        manager.request_modify(lambda s: s.update(n=1)).result(timeout=WAIT)
        manager.request_modify(lambda s: 1 / 0).exception(timeout=WAIT)  # a restart
        assert manager.request_modify(lambda s: s).result(timeout=WAIT).n == 1
        assert manager.restarts == 1
        assert set(pykka.ActorRegistry.get_all()) == before


def test_the_actors_use_no_private_pykka_name() -> None:
    private = re.compile(r"pykka\._|_create_actor_inbox|\bEnvelope\b|actor_inbox")
    found = [
        f"{path.relative_to(ACTORS.parent)}:{number}: {line.strip()}"
        for path in sorted(ACTORS.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert found == [], "private pykka API in use:\n" + "\n".join(found)


def test_each_incarnation_of_a_dedicated_cell_has_its_own_named_thread() -> None:
    with Runtime("named", default_timeout=WAIT) as runtime:
        manager = StateManager(
            {"n": 0}, name="worker", runtime=runtime, on_error="restart", dedicated=True
        )
        seen: list[threading.Thread] = []

        def note(state: object) -> object:
            seen.append(threading.current_thread())
            return state

        manager.request_modify(note).result(timeout=WAIT)
        manager.request_modify(lambda s: 1 / 0).exception(timeout=WAIT)
        manager.request_modify(note).result(timeout=WAIT)
        assert [t.name for t in seen] == ["stateward:named:worker"] * 2
        assert seen[0] is not seen[1]
        seen[0].join(WAIT)
        assert not seen[0].is_alive()  # the replaced incarnation's thread ended


class StepWorker:
    """A worker of `StepHost`: its turns run when the test says so."""

    def __init__(self, host: StepHost, turns: Turns) -> None:
        self.host = host
        self.turns = turns
        self.retired = False
        self.ended = False
        self.thread = None

    def wake(self) -> bool:
        if self.retired:
            return False
        self.host.ready.append(self)
        return True

    def retire(self, *, end_here: bool = False) -> None:
        self.retired = True
        self.host.end_if_idle(self)

    def join(self, timeout: float) -> None:
        pass


class StepHost:
    """A host with no thread at all: `step` runs the next scheduled turn on
    the calling thread, with a small budget. It shows what the host protocol
    asks of a pooled host: cells scheduled when work arrives, turns bounded,
    cells handed back."""

    #: Every start runs as a turn, when the test steps it.
    starts_inline = False

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.ready: collections.deque[StepWorker] = collections.deque()
        self.turns_run: list[str] = []

    def attach(self, turns: Turns) -> StepWorker:
        return StepWorker(self, turns)

    def close(self, timeout: float) -> None:
        pass

    def end_if_idle(self, worker: StepWorker) -> None:
        if worker.retired and not worker.ended and worker not in self.ready:
            worker.ended = True
            worker.turns.ended()

    def step(self) -> bool:
        if not self.ready:
            return False
        worker = self.ready.popleft()
        self.turns_run.append(worker.turns.label.rpartition(":")[2])
        worker.turns.run_turn(self.budget)
        self.end_if_idle(worker)
        return True


def test_a_host_without_threads_runs_bounded_turns_and_serves_cells_in_turn() -> None:
    with Runtime("stepped", default_timeout=WAIT) as runtime:
        host = StepHost(budget=2)
        runtime.host = host  # the seam a pooled host plugs into
        a = StateManager({"seen": []}, name="a", runtime=runtime)
        b = StateManager({"seen": []}, name="b", runtime=runtime)
        assert host.turns_run == [] and len(host.ready) == 2  # scheduled to start
        replies = {
            name: [
                handle.request_modify(lambda s, i=i: s.update(seen=[*s.seen, i])) for i in range(5)
            ]
            for name, handle in (("a", a), ("b", b))
        }
        assert not any(r.done() for rs in replies.values() for r in rs)
        steps = 0
        while host.step():
            steps += 1
            assert steps < 100
        # Each turn ran at most two requests, then the cell went back in line.
        assert host.turns_run == ["a", "b", "a", "b", "a", "b"]
        for name, handle in (("a", a), ("b", b)):
            assert [r.result(timeout=0).seen[-1] for r in replies[name]] == list(range(5))
            assert handle.get_state().seen == list(range(5))
        # An idle cell runs a blocking call inline, on this thread: no host needed.
        assert a.modify(lambda s: s.update(seen=[]), timeout=WAIT).seen == []
        assert host.turns_run[-1] == "b" and not host.ready
        for handle in (a, b):
            handle.stop(timeout=0)  # queues its stop; the host runs it below
        while host.step():
            pass
        assert not a.alive and not b.alive
        report = runtime.shutdown(timeout=WAIT)
        assert report.clean, report.describe()
