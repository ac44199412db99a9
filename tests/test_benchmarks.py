"""The benchmark harness keeps working: a ``--quick`` run produces the documented
JSON, every case is there, and stateward's entries are correct. Speed is never
asserted here; the numbers of a quick run mean nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
CASES = (
    "blocking_transition_1thread",
    "blocking_transition_4threads",
    "pipelined_transitions",
    "reads_under_write",
    "modify_8threads",
    "durable_transitions",
    "spawn_machines",
    "restart_latency",
)
#: Other systems by case, each with the module it needs (None: always measured).
PEER_SYSTEMS: dict[str, dict[str, str | None]] = {
    "blocking_transition_1thread": {
        "transitions-LockedMachine": "transitions",
        "python-statemachine": "statemachine",
        "transitions-Machine": "transitions",
        "pykka-ask": "pykka",
    },
    "blocking_transition_4threads": {
        "transitions-LockedMachine": "transitions",
        "python-statemachine": "statemachine",
    },
    "pipelined_transitions": {"transitions-LockedMachine": "transitions"},
    "reads_under_write": {
        "transitions-LockedMachine": "transitions",
        "transitions-LockedMachine-locked": "transitions",
    },
    "modify_8threads": {"provide-foundation": "provide.foundation", "dict-with-lock": None},
    "spawn_machines": {"transitions-Machine": "transitions", "python-statemachine": "statemachine"},
}
QUICK_RUN_TIMEOUT_S = 240


def _installed(module: str | None) -> bool:
    if module is None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", BENCHMARKS / "_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_entry(case: str, system: str, entry: dict[str, Any]) -> None:
    where = f"{case}/{system}"
    assert isinstance(entry["ops_per_s"], float), where
    assert entry["median_us"] is None or isinstance(entry["median_us"], float), where
    assert isinstance(entry["correct"], bool), where
    assert isinstance(entry["notes"], str), where


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    page = folder / "benchmarks.md"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--quick",
            "--out",
            str(out),
            "--markdown",
            str(page),
            "--tmp-dir",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=QUICK_RUN_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    results: dict[str, Any] = json.loads(out.read_text())
    results["_page"] = page.read_text()
    return results


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_quick_run_has_the_documented_shape(quick_results: dict[str, Any]) -> None:
    assert isinstance(quick_results["python"], str)
    assert isinstance(quick_results["cpus"], int) and quick_results["cpus"] >= 1
    assert quick_results["mode"] == "quick"
    cases = quick_results["cases"]
    assert set(cases) == set(CASES)
    for case, systems in cases.items():
        assert systems, case
        for system, entry in systems.items():
            _check_entry(case, system, entry)
    for target in quick_results["targets"]:
        assert target["status"] in ("met", "missed", "n/a"), target


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_quick_run_measures_every_installed_system(quick_results: dict[str, Any]) -> None:
    cases = quick_results["cases"]
    for case in CASES:
        assert any(name.startswith("stateward") for name in cases[case]), case
    for case, systems in PEER_SYSTEMS.items():
        for system, module in systems.items():
            if _installed(module):
                assert system in cases[case], (case, system)
    durable = cases["durable_transitions"]
    for mode in ("memory", "strict", "batched", "snapshot"):
        for callers in (1, 32):
            assert f"stateward-{mode}-{callers}" in durable


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_quick_run_stateward_is_correct(quick_results: dict[str, Any]) -> None:
    wrong = {
        f"{case}/{system}": entry["notes"]
        for case, systems in quick_results["cases"].items()
        for system, entry in systems.items()
        if system.startswith("stateward") and not entry["correct"]
    }
    assert not wrong


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_the_consistent_read_baseline_is_consistent(quick_results: dict[str, Any]) -> None:
    """The reads target compares with LockedMachine's reads under its lock:
    those must never be torn, or the baseline is not what it claims."""
    if not _installed("transitions"):
        pytest.skip("transitions is not installed")
    entry = quick_results["cases"]["reads_under_write"]["transitions-LockedMachine-locked"]
    assert entry["correct"], entry["notes"]
    assert " 0 of " in entry["notes"]  # "0 of N reads torn"


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_quick_run_writes_the_markdown_page(quick_results: dict[str, Any]) -> None:
    page = quick_results["_page"]
    for case in CASES:
        assert f"## `{case}`" in page
    assert "## Targets" in page


HAND_MADE = {
    "python": "3.11.7",
    "cpus": 2,
    "command": "python benchmarks/run.py --out results.json --markdown docs/benchmarks.md",
    "cases": {
        "blocking_transition_1thread": {
            "stateward": {
                "ops_per_s": 50000.0,
                "median_us": 17.5,
                "correct": True,
                "notes": "default runtime",
                "spread": {"ops_per_s_min": 45000.0, "ops_per_s_max": 55000.0, "rounds": 3},
            },
            "transitions-LockedMachine": {
                "ops_per_s": 10000.0,
                "median_us": 80.0,
                "correct": True,
                "notes": "a | pipe in the notes",
            },
        },
        "modify_8threads": {
            "provide-foundation": {
                "ops_per_s": 120000.0,
                "median_us": None,
                "correct": False,
                "notes": "lost 12 updates",
            },
        },
    },
    "targets": [
        {"target": "1thread: >= 1.5x LockedMachine", "measured": 5.0, "unit": "x", "met": True},
        {"target": "reads: >= 50x LockedMachine", "measured": 0.2, "unit": "x", "met": False},
        {"target": "missing peer", "measured": None, "unit": "x", "status": "n/a", "met": False},
    ],
}


def test_markdown_renders_tables_from_the_json() -> None:
    page = _load_report().render_markdown(HAND_MADE)
    lines = page.splitlines()
    assert lines[0] == "# Benchmarks"
    assert "- Machine: Python 3.11.7, 2 CPUs." in lines
    assert HAND_MADE["command"] in page
    header = "| system | ops/s | median µs | spread | correct | notes |"
    assert lines.count(header) == 2
    assert "## `blocking_transition_1thread`" in page and "## `modify_8threads`" in page
    assert (
        "| `stateward` | 50,000 | 17.5 | 45,000 to 55,000 ops/s over 3 rounds | yes | "
        "default runtime |" in lines
    )
    locked = "| `transitions-LockedMachine` | 10,000 | 80.0 | - | yes | a \\| pipe in the notes |"
    assert locked in lines
    assert "| `provide-foundation` | 120,000 | - | - | **no** | lost 12 updates |" in lines
    targets = lines[lines.index("## Targets") :]
    assert "| target | measured | status |" in targets
    assert "| 1thread: >= 1.5x LockedMachine | 5.00x | met |" in targets
    assert "| reads: >= 50x LockedMachine | 0.20x | **missed** |" in targets
    assert "| missing peer | - | n/a |" in targets


def test_markdown_is_rendered_from_a_saved_json(tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(HAND_MADE))
    page = tmp_path / "page.md"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--from",
            str(saved),
            "--markdown",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert page.read_text() == _load_report().render_markdown(HAND_MADE)
