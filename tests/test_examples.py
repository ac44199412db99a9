"""Every script in examples/ runs, and prints what it says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: For each example, lines its output must contain: what the example claims to show.
EXPECTED: dict[str, list[str]] = {
    "daemon.py": [
        "  | fresh store",
        "(the last run did not stop cleanly)",
        "demo: every tick the daemon acknowledged survived the kill: True",
        "demo: it stopped on SIGTERM with exit code 0; starting it once more",
        "(the last run stopped cleanly)",
        "demo: the SIGTERM stop kept exactly the ticks it printed: True",
    ],
    "supervision.py": [
        "pay(-1): ActorCrashed, cause: ConnectionResetError('connection-1 broke on amount -1')",
        "on_start: opened connection-2 (state: 2 processed)",
        "pay(40): ok, 4 processed, total 100",
        "then: ActorStopped (supervisor 'flaky-sup' gave up)",
        "payments still running: True, fatal: None",
    ],
    "quickstart.py": [
        "refused: ImmutableState is immutable",
        "rejected by 'amount_positive': the amount must be positive",
        "order: shipped {'paid': 42} ['paid', 'shipped']",
        "v2: {'log_level': 'INFO', 'timeout': 30}  (too noisy)",
    ],
    "foundation_guide.py": [
        "doc_001 path: draft -> submitted -> reviewing -> approved -> published",
        "health: {'status': 'ready', 'initialized': True, 'connections': 2, 'errors': 1}",
        "v3: {'log_level': 'INFO', 'features': {'auth_enabled': True, 'metrics_enabled': False}}"
        "  (rollback to version 0)",
        "diff v2 -> v3: {'log_level': ('DEBUG', 'INFO'), "
        "'features.metrics_enabled': (True, False)}",
        "connections = 4000 (exact, 0 lost)",
        "    connections = 1 after 2 increments: the second write overwrote the first",
    ],
    "order_workflow.py": [
        "vetoed by 'amount_positive': the order amount must be positive, got 0",
        "vetoed by 'customer_email_valid': the customer e-mail address is missing or malformed",
        "to ana@example.com: Order ORD-0001 shipped, tracking TRK-0001",
        "v1  new -> pending            event=place     payload keys: amount, customer_email, "
        "order_id",
        "after_commit    send_confirmation          into ['processing']  (_order_hooks)",
    ],
    "named_events.py": [
        "tom: alive (event 'survive')",
        "data: ImmutableState(can_meow=False, time_of_death=datetime.datetime(2024, 5, 1, 12, 1, "
        "tzinfo=datetime.timezone.utc))",
        "InvalidTransition (state='dead'): machine 'garfield': event 'rip' cannot fire from "
        "state 'dead'",
        "1 event won, 7 were refused with InvalidTransition",
        "felix: dead (event 'rip')",
        "time_of_death=datetime.datetime(2024, 5, 1, 12, 2, tzinfo=datetime.timezone.utc)",
    ],
    "async_orders.py": [
        "callback #3 (paying): TransitionRejected: machine 'order-1': transition 'shipped' -> "
        "'paying' rejected by 'risk_control': illegal path 'shipped' -> 'paying'",
        "callbacks ran in submission order: [1, 2, 3, 4, 5]",
        "the event loop kept running while the hooks awaited: the ticker ticked > 0 times",
        "TransitionRejected by 'start_payment': the payment gateway declined the charge",
    ],
    "async_races.py": [
        "  plain coroutines: 1 (expected 3)",
        "  stateward: 3 (expected 3)",
        "  the three updates ran one after the other: True",
        "  plain coroutines: 8 (one after the other gives 6)",
        "  stateward: 6 (expected 6)",
        "the event loop kept running meanwhile: the ticker ticked > 0 times: True",
    ],
    "async_backpressure.py": [
        "asyncio producer: 40 of 40 items handled",
        "  in the order sent: True",
        "  items waiting never above the limit: True",
        "thread producer: 40 of 40 items handled, in order: True",
        "  request_modify refused with MailboxFull at least once: True",
    ],
    "async_web_handler.py": [
        "  [log req-1] order A1 paid 10",
        "req-1 POST /orders/A1/paid -> 200 {'order': 'A1', 'state': 'paid', 'version': 1}",
        "req-2 POST /orders/A2/paid -> 409 {'error': \"machine 'A2': transition 'placed' -> "
        "'paid' rejected by 'amount_matches': the amount paid does not match the order total\"}",
        "req-3 POST /orders/A3/shipped -> 409",
        "req-4 POST /orders/A9/paid -> 404 {'error': \"no order 'A9'\"}",
        "  [log req-5] order A1 shipped: customer notified",
        "req-5 POST /orders/A1/shipped -> 200 {'order': 'A1', 'state': 'shipped', 'version': 2}",
        "request id outside any request: '-'",
    ],
    "django_cats.py": [
        "tom: Unknown (stored as 0)",
        "tom: Alive (stored as 1), can_meow=True",
        "tom.rip(): InvalidTransition (state='Alive')",
        "tom.state = 2: StateFieldProtected",
        "after a save of another copy: thomas is still Alive",
        "1 event won, 7 were refused with InvalidTransition",
        "felix's history: [('Unknown', ",
    ],
    "from_python_statemachine.py": [
        "Running cycle from yellow to red\nDon't move.\nlight: red",
        "Running cycle from red to green\nGo ahead!\nlight: green",
        "score 50: rejected",
        "score 85: approved",
        "score 85: a second review is refused (the state is final)",
    ],
    "from_python_statemachine_parallel.py": [
        "start: war ['battle', 'quest', 'rohan', 'shire', 'war']",
        "win: war ['battle', 'mordor', 'quest', 'victory', 'war']",
        "journey: refused in ['battle', 'mordor', 'quest', 'victory', 'war']",
        "destroy_ring: peace ['peace']",
    ],
    "from_transitions_nested.py": [
        "drink: caffeinated_dithering ['caffeinated', 'caffeinated_dithering']",
        "walk: caffeinated_running ['caffeinated', 'caffeinated_running']",
        "stop: refused in state 'caffeinated_running'",
        "relax: standing ['standing']",
        "coffees: 1",
    ],
    "from_transitions.py": [
        "complete_mission: sweaty\nclean_up: asleep",
        "complete_mission: sweaty\nclean_up: hanging out",
        "eat: refused in state 'hanging out'",
        "kittens rescued: 2, costume changes: 2",
    ],
    "vending_machine.py": [
        "- 'machine_id' must be str, got 7 (int)",
        "paying 100 cents: vetoed by 'payment_covers_price': insufficient payment: 100 of 150 "
        "cents",
        "[display] TXN-0001: enjoy your Cola, take your 50 cents change",
        "  2. selected -> paid by 'pay' with coins",
        "vend_transactions[1] v2      paid -> dispensed event=dispense",
    ],
}


def _scripts() -> list[str]:
    # Modules named _*.py are helpers the examples import, not examples.
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_has_expectations() -> None:
    assert set(_scripts()) == set(EXPECTED), "add the new example's expected output here"


@pytest.mark.parametrize("script", _scripts())
def test_example_runs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    for line in EXPECTED[script]:
        assert line in result.stdout, f"{script} did not print {line!r}:\n{result.stdout}"


@pytest.mark.parametrize("script", _scripts())
def test_importing_an_example_runs_nothing(script: str) -> None:
    """Each example keeps its demonstration under ``if __name__ == "__main__":``,
    so that ``stateward graph example:spec`` draws its machine and nothing else."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {script.removesuffix('.py')}"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


@pytest.mark.parametrize("target", ["named_events:cats", "order_workflow:spec", "quickstart:spec"])
def test_graph_of_an_example_prints_only_the_diagram(target: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stateward.actors.cli", "graph", target],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stateDiagram-v2\n"), result.stdout[:500]
