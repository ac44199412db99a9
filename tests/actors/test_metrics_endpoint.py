"""`Runtime.serve_metrics` and `Runtime.health`: a Prometheus endpoint scraped
over loopback and parsed with prometheus_client's text parser, a readiness
probe at ``/healthz``, and what `health` reports."""

from __future__ import annotations

import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import TOGGLE

from stateward.actors import (
    ActorCrashed,
    ManualClock,
    Runtime,
    RuntimeStopped,
    SQLiteStore,
    StateMachine,
    StateManager,
    Supervisor,
)
from stateward.core import ImmutableState, InvalidTransition

WAIT = 10.0


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        body = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def boom(state: ImmutableState) -> ImmutableState:
    raise RuntimeError("boom")


def test_the_endpoint_serves_prometheus_text_on_a_free_port(tmp_path: Path) -> None:
    with Runtime("served", store=SQLiteStore(tmp_path / "s.db")) as rt:
        endpoint = rt.serve_metrics(0)
        assert endpoint.host == "127.0.0.1" and endpoint.port > 0
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        machine = StateMachine("a", TOGGLE, name="door", runtime=rt)
        machine.transition("b")
        with pytest.raises(InvalidTransition):
            machine.transition("b")
        samples = scrape(endpoint.url)
        labels = {"runtime": "served", "kind": "machine", "supervisor": "root"}
        assert (labels, 2.0) in samples["stateward_messages_total"]
        assert (labels, 1.0) in samples["stateward_refusals_total"]
        assert ({**labels, "state": "active"}, 1.0) in samples["stateward_actors"]
        counts = {
            s["outcome"]: v
            for s, v in samples["stateward_transition_duration_seconds_count"]
            if s["kind"] == "machine"
        }
        assert counts == {"ok": 1.0, "refused": 1.0}
        buckets = [
            (s["le"], v)
            for s, v in samples["stateward_transition_duration_seconds_bucket"]
            if s["outcome"] == "ok"
        ]
        assert buckets[-1] == ("+Inf", 1.0) and len(buckets) > 10
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
        assert sum(v for _, v in samples["stateward_store_commit_batch_size_sum"]) == 1.0
    assert endpoint.closed  # the shutdown closed it
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", endpoint.port)) != 0


def test_closing_the_endpoint_frees_its_port_and_stops_timing_messages() -> None:
    with Runtime("closing") as rt:
        endpoint = rt.serve_metrics(0)
        assert rt.probe is not None
        with endpoint:
            pass
        assert endpoint.closed and rt.probe is None
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(endpoint.url, timeout=WAIT)
        endpoint.close()  # twice: nothing more


@pytest.mark.parametrize(
    ("port", "error"), [("9464", TypeError), (-1, ValueError), (70000, ValueError)]
)
def test_a_bad_port_is_refused_before_anything_is_served(port: object, error: type) -> None:
    with Runtime("ports") as rt:
        with pytest.raises(error, match="port"):
            rt.serve_metrics(port)  # type: ignore[arg-type]
        assert rt.probe is None


def test_a_port_in_use_says_so_and_a_stopped_runtime_serves_nothing() -> None:
    with Runtime("busy") as rt:
        endpoint = rt.serve_metrics(0)
        with pytest.raises(OSError, match=f"127.0.0.1:{endpoint.port}.*port=0"):
            rt.serve_metrics(endpoint.port)
    with pytest.raises(RuntimeStopped):
        rt.serve_metrics(0)


def test_healthz_answers_200_when_healthy_and_503_with_the_reasons_otherwise() -> None:
    with Runtime("probed", timer=ManualClock(), max_restarts=0) as rt:
        endpoint = rt.serve_metrics(0)
        healthz = endpoint.url.replace("/metrics", "/healthz")
        with urllib.request.urlopen(healthz, timeout=WAIT) as response:
            assert response.status == 200 and b"ok" in response.read()
        sup = Supervisor("workers", runtime=rt, max_restarts=0, within=60.0)
        manager = StateManager({"n": 0}, runtime=rt, supervisor=sup, on_error="restart")
        with pytest.raises(ActorCrashed):
            manager.modify(boom)  # 'workers' gives up, and so does the root: fatal
        assert rt.wait_fatal(WAIT) is not None
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(healthz, timeout=WAIT)
        assert failed.value.code == 503
        lines = failed.value.read().decode().splitlines()
        assert lines[0].startswith("runtime 'probed': fatal failure")
        assert lines[1] == "runtime 'probed': supervisor 'workers' gave up: its actors are stopped"


# -- health -----------------------------------------------------------------------------------


def test_a_fresh_runtime_is_healthy_and_a_shut_down_one_is_not() -> None:
    rt = Runtime("fresh")
    health = rt.health()
    assert health.ok and bool(health) and health.reasons == ()
    rt.shutdown()
    assert not rt.health().ok
    assert "shut down" in rt.health().reasons[0]


def test_health_reports_a_fatal_failure() -> None:
    with Runtime("fatal", max_restarts=0, timer=ManualClock()) as rt:
        manager = StateManager({"n": 0}, runtime=rt, on_error="restart")
        with pytest.raises(ActorCrashed):
            manager.modify(boom)
        assert rt.wait_fatal(WAIT) is not None
        health = rt.health()
        assert not health.ok
        assert any(reason.startswith("fatal failure") for reason in health.reasons)


def test_health_reports_a_store_that_does_not_answer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with Runtime("stored", store=store) as rt:
        assert rt.health().ok
        store.close()  # as if its database went away
        (reason,) = rt.health().reasons
        assert reason.startswith("its store does not answer") and "closed" in reason


def test_health_reports_mailboxes_at_their_limit() -> None:
    entered, gate = threading.Event(), threading.Event()

    def hold(state: ImmutableState) -> ImmutableState:
        entered.set()
        assert gate.wait(WAIT)
        return state

    with Runtime("full") as rt:
        manager = StateManager({"n": 0}, name="orders", runtime=rt, mailbox_limit=1)
        first = manager.request_modify(hold)
        assert entered.wait(WAIT)
        second = manager.request_modify(lambda s: s)
        (reason,) = rt.health().reasons
        assert reason.startswith("1 mailbox at the limit: 'orders'")
        gate.set()
        first.result(WAIT)
        second.result(WAIT)
        assert rt.health().ok


def test_the_operations_page_lists_every_metric_with_its_names_unit_and_labels() -> None:
    from stateward.actors._endpoint import prometheus_name
    from stateward.actors._telemetry import METRICS

    page = (Path(__file__).resolve().parents[2] / "docs/howto/operations.md").read_text()
    rows = set(re.findall(r"^\| `(stateward\.[\w.]+)` \|.*$", page, flags=re.MULTILINE))
    assert rows == {name for name, *_ in METRICS}
    for name, instrument, unit, labels, _ in METRICS:
        total = "_total" if instrument == "counter" else ""
        row = f"| `{name}` | `{prometheus_name(name, unit)}{total}` | {instrument} | `{unit}` |"
        assert f"{row} {labels} |" in page, row
