"""Hosts run cells' turns; stateward keeps its pykka workers to itself.

The dedicated host gives each incarnation a pykka ``ThreadingActor`` used
through pykka's public API only, and takes it out of pykka's global
``ActorRegistry``: a user's ``ActorRegistry.stop_all()`` (common at the end of
a pykka program) stops the user's actors and leaves stateward's running.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pykka

from stateward.actors import Runtime, StateMachine, StateManager

WAIT = 10.0
ACTORS = Path(__file__).resolve().parents[2] / "actors"


class Echo(pykka.ThreadingActor):
    """A user's own pykka actor."""

    def on_receive(self, message: object) -> object:
        return message


def test_a_users_pykka_stop_all_leaves_stateward_machines_running() -> None:
    with Runtime("registry", default_timeout=WAIT) as runtime:
        machines = [
            StateMachine("a", {"a": ["b"], "b": ["a"]}, name=f"m{i}", runtime=runtime)
            for i in range(3)
        ]
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
        manager = StateManager({"n": 0}, name="worker", runtime=runtime, on_error="restart")
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
