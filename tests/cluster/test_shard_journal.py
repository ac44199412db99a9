"""A shard's journal without a cluster (nothing here imports Ray): a batch
never waits for a request that is stuck, and a watched actor's commits are
logged for every client that polls."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

import behaviour_specs as specs
import pytest

from stateward.actors import Runtime, StateManager
from stateward.actors.ray._journal import Deferred, Journal
from stateward.core._messages import Modify


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    runtime = Runtime("journal", workers=2)
    yield runtime
    runtime.shutdown()


def _portable(error: BaseException) -> BaseException:
    return error


def _held(release: threading.Event, state: Any) -> dict[str, Any]:
    assert release.wait(10), "never released"
    return {**state, "held": True}


def test_a_stuck_request_is_deferred_and_collected_once_done(runtime: Runtime) -> None:
    stuck = StateManager({}, name="stuck", runtime=runtime)
    quick = StateManager({}, name="quick", runtime=runtime)
    release = threading.Event()
    journal = Journal()
    outcomes = [
        stuck._request(Modify((functools.partial(_held, release),)), None),
        quick._request(Modify((functools.partial(specs.add, "n", 1),)), None),
        (False, ValueError("refused before it was queued")),
    ]
    answers = journal.settle(["stuck", "quick", "quick"], outcomes, _portable)
    deferred = answers[0][1]
    assert answers[0][0] is True and type(deferred) is Deferred
    assert answers[1][0] is True and answers[1][1]["n"] == 1
    assert answers[2][0] is False and isinstance(answers[2][1], ValueError)
    assert journal.collect([deferred.token], _portable) == ({}, set())  # never waits
    release.set()
    assert outcomes[0].result(10)["held"] is True
    collected, names = journal.collect([deferred.token], _portable)
    assert collected[deferred.token][0] is True and names == {"stuck"}
    again, _ = journal.collect([deferred.token], _portable)  # answered once
    assert again[deferred.token][0] is False


def test_a_watched_actors_commits_are_logged_in_order_for_each_poller(
    runtime: Runtime,
) -> None:
    manager = StateManager({"n": 0}, name="logged", runtime=runtime)
    manager.update_state({"n": 1})
    journal = Journal()
    first = journal.follow("logged", manager, 0)
    assert [s.version for s in first] == [1]  # the log starts: the current one
    for n in range(2, 6):
        manager.update_state({"n": n})
    assert [s.version for s in journal.follow("logged", manager, 1)] == [2, 3, 4, 5]
    assert [s.version for s in journal.follow("logged", manager, 3)] == [4, 5]
    assert journal.follow("logged", manager, 5) == []
