"""Shutdown while a crashed actor waits out its restart backoff.

The restart is cancelled, so the requests queued for that actor are refused
with `ActorStopped` instead of handled. The `ShutdownReport` must say so: it
names the actor in ``.crashed`` and is not ``.clean``. Before this was fixed
the report claimed a clean stop while requests queued before the shutdown had
been refused.
"""

from __future__ import annotations

import pytest

from stateward.actors import ActorCrashed, ActorStopped, Backoff, Runtime, StateManager, Supervisor
from stateward.core import ImmutableState

#: Every behaviour here holds on each host (thread per actor, and pooled).
pytestmark = pytest.mark.usefixtures("each_host")


def crash(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def test_a_refused_request_of_an_actor_waiting_for_its_restart_is_reported() -> None:
    runtime = Runtime("pending-restart")
    supervisor = Supervisor(
        "slow-restarts",
        runtime=runtime,
        max_restarts=10,
        backoff=Backoff(min=30.0, max=30.0, jitter=0.0, seed=1),
    )
    options = {"runtime": runtime, "supervisor": supervisor, "on_error": "restart"}
    waiting = StateManager({"n": 0}, name="waiting", **options)
    healthy = StateManager({"n": 0}, name="healthy", **options)
    try:
        with pytest.raises(ActorCrashed):
            waiting.modify(crash)  # its restart is 30 s away
        queued = waiting.request_update({"n": 1})
        healthy_queued = healthy.request_update({"n": 2})
    finally:
        report = runtime.shutdown(timeout=2.0)
    with pytest.raises(ActorStopped):
        queued.result(1.0)
    assert report.crashed == ("waiting",) and report.abandoned == ()
    assert not report.clean
    assert "waiting" in report.describe()
    assert healthy_queued.result(1.0).n == 2  # queued behind no crash: handled
