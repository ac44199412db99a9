"""The benchmark harness keeps working: a ``--quick`` run produces the documented
JSON, every case is there, and stateward's entries are correct. Speed is never
asserted here; the numbers of a quick run mean nothing."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import random
import re
import shutil
import signal
import statistics
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
    "pending_timers",
    "fanout_transitions",
    "fairness",
    "restart_latency",
    "asyncio_one_at_a_time",
    "asyncio_in_flight",
    "ray_blocking",
    "ray_pipelined",
)
#: The cases that start a local Ray cluster: measured when Ray is installed.
RAY_CASES = ("ray_blocking", "ray_pipelined")
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
    "asyncio_one_at_a_time": {"python-statemachine": "statemachine"},
    "asyncio_in_flight": {"python-statemachine-one-at-a-time": "statemachine"},
    "spawn_machines": {
        "transitions-Machine": "transitions",
        "transitions-add_model": "transitions",
        "python-statemachine": "statemachine",
        "automat": "automat",
    },
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
    unavailable = quick_results["unavailable"]
    assert set(cases) | set(unavailable) == set(CASES)
    assert set(unavailable) == (set() if _installed("ray") else set(RAY_CASES))
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
    for case in cases:
        assert any(name.startswith("stateward") for name in cases[case]), case
    for case, systems in PEER_SYSTEMS.items():
        for system, module in systems.items():
            if _installed(module):
                assert system in cases[case], (case, system)
    durable = cases["durable_transitions"]
    for mode in ("memory", "strict", "batched", "snapshot"):
        for callers in (1, 32):
            assert f"stateward-{mode}-{callers}" in durable
    for mode in ("memory", "batched"):
        assert durable[f"stateward-{mode}-pipelined"]["in_flight"] >= 1
    assert set(cases["fanout_transitions"]) == {"stateward", "stateward-one-machine"}


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_spawn_machines_reports_rate_bytes_threads_and_shutdown_per_system(
    quick_results: dict[str, Any],
) -> None:
    spawn = quick_results["cases"]["spawn_machines"]
    for system, entry in spawn.items():
        values = entry["values"]
        assert entry["machines"] >= 1, system
        assert values["tracemalloc_bytes_per_machine"] > 0, system
        for key in ("threads", "create_s", "shutdown_s", "rss_bytes_per_machine"):
            assert key in values, (system, key)
        assert values["create_s"] > 0, system
    stateward = spawn["stateward"]
    if stateward["values"]["threads"] >= stateward["machines"]:  # a thread per actor
        assert "one thread per actor" in stateward["notes"]
    assert stateward["values"]["shutdown_s"] > 0
    if "transitions-add_model" in spawn:
        assert spawn["transitions-add_model"]["machines"] < spawn["transitions-Machine"]["machines"]
    targets = [t["target"] for t in quick_results["targets"] if t["case"] == "spawn_machines"]
    for wanted in ("30x as fast", "1 KiB", "threads ≤ workers", "shutdown no slower"):
        assert any(wanted in target for target in targets), wanted


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_fairness_reports_the_backlog_handled_before_each_answer(
    quick_results: dict[str, Any],
) -> None:
    """The lag of each answered cell is ordering evidence: busy-cell messages
    handled meanwhile, between none and the whole backlog."""
    entry = quick_results["cases"]["fairness"]["stateward"]
    assert entry["correct"], entry["notes"]
    assert 0 <= entry["max_lag"] <= entry["backlog"]
    assert 0 <= entry["values"]["median_lag"] <= entry["max_lag"]
    assert entry["quantum"] > 0
    (target,) = [t for t in quick_results["targets"] if t["case"] == "fairness"]
    assert target["measured"] == entry["max_lag"]
    assert target["status"] == ("met" if entry["max_lag"] <= entry["quantum"] else "missed")


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_asyncio_in_flight_reports_the_loops_lag_busy_and_idle(
    quick_results: dict[str, Any],
) -> None:
    """The lag probe ran while the requests were in flight and on the idle
    loop of the same round, and the lag target is judged by the busy p99."""
    entry = quick_results["cases"]["asyncio_in_flight"]["stateward"]
    assert entry["correct"], entry["notes"]
    values = entry["values"]
    for key in ("lag_p50_ms", "lag_p99_ms", "idle_lag_p50_ms", "idle_lag_p99_ms"):
        assert values[key] >= 0, key
    assert values["lag_p50_ms"] <= values["lag_p99_ms"]
    assert "loop lag while it ran" in entry["notes"]
    (lag,) = [t for t in quick_results["targets"] if "lag p99" in t["target"]]
    assert lag["measured"] == values["lag_p99_ms"]
    assert lag["status"] == ("met" if values["lag_p99_ms"] <= 10 else "missed")


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_the_new_targets_compare_within_the_run(quick_results: dict[str, Any]) -> None:
    by_case: dict[str, list[str]] = {}
    for target in quick_results["targets"]:
        by_case.setdefault(target["case"], []).append(target["target"])
        if target["status"] != "n/a":
            assert isinstance(target["measured"], float | int), target
    assert any("batched ≥ 0.5x memory" in t for t in by_case["durable_transitions"])
    assert any("single-machine pipelined rate" in t for t in by_case["fanout_transitions"])


@pytest.mark.slow
@pytest.mark.timeout(QUICK_RUN_TIMEOUT_S + 30)
def test_the_ray_cases_measure_ray_runtime_next_to_raw_ray_calls(
    quick_results: dict[str, Any],
) -> None:
    """Each Ray case ran stateward and the raw Ray baseline on its own local
    cluster, both correct (every reply's version checked), and its target is
    judged from the two systems of the same run."""
    if not _installed("ray"):
        pytest.skip("Ray is not installed")
    for case in RAY_CASES:
        systems = quick_results["cases"][case]
        assert set(systems) == {"stateward", "raw-ray"}, case
        for system, entry in systems.items():
            assert entry["correct"], (case, system, entry["notes"])
            assert entry["ops_per_s"] > 0, (case, system)
        (target,) = [t for t in quick_results["targets"] if t["case"] == case]
        assert target["status"] in ("met", "missed"), target
    blocking = quick_results["cases"]["ray_blocking"]
    ratio = blocking["stateward"]["median_us"] / blocking["raw-ray"]["median_us"]
    (target,) = [t for t in quick_results["targets"] if t["case"] == "ray_blocking"]
    assert target["measured"] == pytest.approx(ratio, rel=1e-2)
    piped = quick_results["cases"]["ray_pipelined"]["stateward"]
    assert piped["counts"]["transitions"] >= piped["in_flight"]


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
    for case in quick_results["cases"]:
        assert f"## `{case}`" in page
    for case in quick_results["unavailable"]:
        assert f"- `{case}` not measured: " in page
    assert "### Targets" in page
    _check_layout(page)


#: The widest table the page may hold: more columns do not fit a ~720 px text column.
MAX_COLUMNS = 5
#: A system's notes under its case's table, at most about three lines of the column.
MAX_NOTE_CHARS = 360
#: The longest code span a table cell may hold (a system's or a case's name).
MAX_CODE_IN_CELL = 40


def _check_layout(page: str) -> None:
    """The page reads on a ~720 px column: the verdict (summary and targets)
    before the first case, narrow tables, short notes."""
    lines = page.splitlines()
    first_case = next(i for i, line in enumerate(lines) if line.startswith("## `"))
    assert lines.index("## Summary") < lines.index("### Targets") < first_case
    widths = {line.count(" | ") + 1 for line in lines if line.startswith("| ")}
    assert max(widths) <= MAX_COLUMNS, sorted(widths)
    for line in lines[first_case:]:
        if line.startswith(("- `", "Every system: ")):
            assert len(line) <= MAX_NOTE_CHARS, line
    # no long code in a cell: a code span does not wrap, so it breaks mid-word
    cells = [cell for line in lines if line.startswith("| ") for cell in line.split(" | ")]
    code = [span for cell in cells for span in re.findall(r"`([^`]*)`", cell)]
    assert code and max(len(span) for span in code) <= MAX_CODE_IN_CELL, max(code, key=len)


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
    header = "| system | ops/s | median µs | range of ops/s | correct |"
    assert lines.count(header) == 2
    assert "## `blocking_transition_1thread`" in page and "## `modify_8threads`" in page
    assert "| `stateward` | 50,000 | 17.5 | 45,000\N{EN DASH}55,000 | yes |" in lines
    assert "| `transitions-LockedMachine` | 10,000 | 80.0 | - | yes |" in lines
    assert "| `provide-foundation` | 120,000 | - | - | **no** |" in lines
    # the notes go under the table, one item per system, a pipe kept as written
    assert "- `stateward`: default runtime" in lines
    assert "- `transitions-LockedMachine`: a | pipe in the notes" in lines
    assert "- `provide-foundation`: lost 12 updates" in lines
    targets = lines[lines.index("### Targets") :]
    assert "| target | measured | status |" in targets
    assert "| 1thread: >= 1.5x LockedMachine | 5.00x | met |" in targets
    assert "| reads: >= 50x LockedMachine | 0.20x | **missed** |" in targets
    assert "| missing peer | - | n/a |" in targets


def test_the_page_opens_with_a_verdict_per_case_and_the_targets() -> None:
    results = {
        **HAND_MADE,
        "targets": [
            {"target": "one", "case": "blocking_transition_1thread", "measured": 5.0, "met": True},
            {"target": "two", "case": "blocking_transition_1thread", "measured": 0.1},
            {"target": "three", "case": "modify_8threads", "measured": 2.0, "met": True},
        ],
    }
    page = _load_report().render_markdown(results)
    lines = page.splitlines()
    summary = lines[lines.index("## Summary") : lines.index("### Targets")]
    assert "2 of 3 targets met." in summary
    assert (
        "| [`blocking_transition_1thread`](#blocking_transition_1thread) | 50,000 "
        "| **1 of 2** | - |" in summary
    )
    # no system named stateward: the case's first, named; a system whose checks failed too
    assert (
        "| [`modify_8threads`](#modify_8threads) | 120,000 (provide-foundation) | 1 of 1 "
        "| `provide-foundation` |" in summary
    )
    _check_layout(page)


def test_notes_say_once_what_every_system_shares_and_each_round_alike_once() -> None:
    def entry(notes: str) -> dict[str, Any]:
        return {"ops_per_s": 1.0, "median_us": None, "correct": True, "notes": notes}

    results = {
        **HAND_MADE,
        "cases": {
            "durable_transitions": {
                "stateward-memory-1": entry("MemoryStore; 1 caller; checked: versions"),
                "stateward-strict-1": entry("SQLiteStore strict; 1 caller; checked: versions"),
                "stateward-strict-32": entry("SQLiteStore strict; 32 callers; checked: versions"),
            },
            "reads_under_write": {
                "transitions-LockedMachine": entry(
                    "plain reads; 30 of 90 reads torn (all rounds); 10 of 30 reads were torn; "
                    "12 of 31 reads were torn; 8 of 29 reads were torn"
                ),
            },
        },
    }
    lines = _load_report().render_markdown(results).splitlines()
    assert "Every system: checked: versions." in lines
    assert "- `stateward-memory-1`: MemoryStore; 1 caller" in lines
    assert "- `stateward-strict-32`: SQLiteStore strict; 32 callers" in lines
    assert (
        "- `transitions-LockedMachine`: plain reads; 30 of 90 reads torn (all rounds); "
        "10 of 30 reads were torn (and 2 more like it)" in lines
    )


def test_the_saved_benchmarks_page_opens_with_its_verdict() -> None:
    """docs/benchmarks.md as committed (rendered from a full run) keeps the whole
    layout: the verdict first, narrow tables, short notes."""
    _check_layout((ROOT / "docs" / "benchmarks.md").read_text())


def test_the_benchmarks_page_explains_comparing_two_versions_as_rendered() -> None:
    """docs/benchmarks.md is generated: its section on ``--against`` is the
    renderer's, word for word, so the next full run keeps it."""
    comparing = _load_report().COMPARING
    assert comparing.startswith("## Comparing two versions\n")
    assert (ROOT / "docs" / "benchmarks.md").read_text().endswith("\n\n" + comparing)
    assert _load_report().render_markdown(HAND_MADE).endswith("\n\n" + comparing)


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


# -- spawn_machines' counts: --spawn-count and --spawn-alone ---------------------------------


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/run.py as a module, with benchmarks/ on the path as it expects."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_run", BENCHMARKS / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_case_that_cannot_run_here_is_recorded_as_unavailable_and_the_run_goes_on(
    run_module: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A case whose context cannot start (Ray not installed) is listed under
    ``unavailable`` with the reason, the page says so, and the next case runs."""
    import contextlib

    import _cases  # type: ignore[import-not-found]
    from _harness import CaseUnavailable  # type: ignore[import-not-found]

    @contextlib.contextmanager
    def no_cluster() -> Any:
        raise CaseUnavailable("Ray is not installed (pip install 'stateward[ray]')")
        yield  # pragma: no cover

    cases = {
        "ray_blocking": dataclasses.replace(_cases.CASES["ray_blocking"], around=no_cluster),
        "restart_latency": _cases.CASES["restart_latency"],
    }
    monkeypatch.setattr(run_module, "CASES", cases)
    results = run_module.run(True, None, tmp_path, "python benchmarks/run.py --quick")
    assert results["unavailable"] == {
        "ray_blocking": "Ray is not installed (pip install 'stateward[ray]')"
    }
    assert list(results["cases"]) == ["restart_latency"]
    assert results["cases"]["restart_latency"]["stateward"]["correct"]
    assert not [t for t in results["targets"] if t["case"] == "ray_blocking"]
    page = _load_report().render_markdown(results)
    assert "- `ray_blocking` not measured: Ray is not installed (pip install" in page


def test_a_count_a_thread_per_actor_cannot_reach_is_refused_before_measuring(
    run_module: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_module, "threads_per_machine", lambda: 1.0)
    monkeypatch.setattr(run_module, "thread_limit", lambda: 32_000)
    monkeypatch.setattr(run_module, "thread_host_cap", lambda: 16_000)
    measured: list[Any] = []
    monkeypatch.setattr(run_module, "run", lambda *args: measured.append(args))
    with pytest.raises(SystemExit) as exited:
        run_module.main(["--quick", "--cases", "spawn_machines", "--spawn-alone", "1000000"])
    assert exited.value.code == 2
    assert measured == []
    error = capsys.readouterr().err
    assert "--spawn-alone 1,000,000" in error
    assert "one thread per actor" in error
    assert "ask for 16,000 or fewer" in error
    assert run_module.refuse_thread_counts({"--spawn-count": 16_000}) is None
    monkeypatch.setattr(run_module, "threads_per_machine", lambda: 0.0)  # pooled: any count
    assert run_module.refuse_thread_counts({"--spawn-alone": 1_000_000}) is None


@pytest.mark.timeout(90)
def test_spawn_count_and_spawn_alone_set_statewards_machines(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--quick",
            "--cases",
            "spawn_machines",
            "--spawn-count",
            "30",
            "--spawn-alone",
            "50",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    spawn = json.loads(out.read_text())["cases"]["spawn_machines"]
    assert spawn["stateward"]["machines"] == 30
    assert spawn["stateward-50"]["machines"] == 50
    assert spawn["stateward-50"]["correct"], spawn["stateward-50"]["notes"]
    assert "(stateward-50 at 50): ≤ 1 KiB per machine" in result.stderr


@pytest.mark.parametrize("case", ["spawn_machines", "fanout_transitions"])
def test_a_host_that_cannot_create_every_machine_is_reported_not_a_crash(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Starting the sixth machine fails (as a thread per actor fails near the
    thread limit): the case reports how far it got and the harness goes on."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _harness  # type: ignore[import-not-found]
    import _scale  # type: ignore[import-not-found]
    import _systems  # type: ignore[import-not-found]

    real = _scale.StateMachine
    made = [0]

    def sixth_fails(*args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        if made[0] % 6 == 0:
            raise RuntimeError("can't start new thread")
        return real(*args, **kwargs)

    monkeypatch.setattr(_scale, "StateMachine", sixth_fails)
    monkeypatch.setattr(
        _scale,
        "stateward_toggle",
        lambda runtime, _counter: sixth_fails("a", {"a": ["b"], "b": ["a"]}, runtime=runtime),
    )
    sizes = dataclasses.replace(
        _systems.QUICK, spawn=10, spawn_thread_host=10, fanout=10, fanout_thread_host=10
    )
    build = getattr(_scale, case)
    systems = [
        s for s in build(sizes, _systems.Peers(load=False), tmp_path) if s.name == "stateward"
    ]
    entry = _harness.run_case(systems, 1)["stateward"]
    assert not entry["correct"]
    assert "creating machines stopped after 5: RuntimeError" in entry["notes"]


# -- run.py --against: two versions side by side --------------------------------------------

AGAINST_CASES = ("blocking_transition_1thread", "restart_latency")
AGAINST_TIMEOUT_S = 120


@pytest.fixture
def compare_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/_compare.py, imported the way run.py imports it."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _compare  # type: ignore[import-not-found]

    return _compare  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def against_head(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``run.py --against HEAD``: this checkout against its own last commit."""
    folder = tmp_path_factory.mktemp("against")
    scratch = folder / "scratch"
    scratch.mkdir()
    out, page = folder / "comparison.json", folder / "comparison.md"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--against",
            "HEAD",
            "--quick",
            "--rounds",
            "2",
            "--warmup",
            "0",
            "--cases",
            ",".join(AGAINST_CASES),
            "--tmp-dir",
            str(scratch),
            "--out",
            str(out),
            "--markdown",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=AGAINST_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr
    return {
        "returncode": result.returncode,
        "stderr": result.stderr,
        "results": json.loads(out.read_text()),
        "page": page.read_text(),
        "scratch": scratch,
    }


@pytest.mark.timeout(AGAINST_TIMEOUT_S + 30)
def test_against_head_measures_every_selected_case_on_both_sides(
    against_head: dict[str, Any],
) -> None:
    results = against_head["results"]
    assert results["kind"] == "comparison"
    assert set(results["cases"]) == set(AGAINST_CASES)
    expected = {
        "blocking_transition_1thread": {"stateward", "stateward-actor-thread"},
        "restart_latency": {"stateward"},
    }
    for case, systems in expected.items():
        result = results["cases"][case]
        assert result["status"] == "measured", result
        assert set(result["systems"]) == systems
        for system, entry in result["systems"].items():
            where = f"{case}/{system}"
            assert entry["status"] in ("ok", "slower"), (where, entry)
            for measure in ("wall", "cpu"):
                ratios = entry[measure]["rounds"]
                assert len(ratios) == 2, where
                assert all(math.isfinite(r) and r > 0 for r in ratios), (where, ratios)
                assert entry[measure]["min"] <= entry[measure]["median"] <= entry[measure]["max"]
            for side in ("new", "old"):
                assert entry[side]["correct"], (where, side, entry[side]["notes"])
                assert entry[side]["ops_per_s"] > 0, (where, side)


@pytest.mark.timeout(AGAINST_TIMEOUT_S + 30)
def test_against_imports_each_side_from_its_own_checkout_and_removes_the_old_one(
    against_head: dict[str, Any],
) -> None:
    results, scratch = against_head["results"], against_head["scratch"]
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert results["old"]["commit"] == head
    assert results["new"]["imported_from"]["stateward.core"] == str(ROOT / "core" / "__init__.py")
    old_checkout = Path(results["old"]["checkout"])
    assert old_checkout.is_relative_to(scratch)
    for module in ("stateward.core", "stateward.actors"):
        assert Path(results["old"]["imported_from"][module]).is_relative_to(old_checkout)
    assert not old_checkout.exists()
    assert list(scratch.iterdir()) == []


@pytest.mark.timeout(AGAINST_TIMEOUT_S + 30)
def test_against_reports_progress_and_exits_by_its_verdict(against_head: dict[str, Any]) -> None:
    results, stderr = against_head["results"], against_head["stderr"]
    for case in AGAINST_CASES:
        assert f"round 2/2  {case}/stateward:" in stderr
    assert against_head["returncode"] == (0 if results["passed"] else 1)
    slower = [
        f"{case}/{system}"
        for case, result in results["cases"].items()
        for system, entry in result["systems"].items()
        if entry["status"] == "slower"
    ]
    assert results["slower"] == slower
    assert "| `restart_latency` | `stateward` |" in against_head["page"]


def test_a_slowdown_over_the_threshold_fails_and_one_under_it_passes(
    compare_module: ModuleType,
) -> None:
    judge = compare_module.judge
    old = [1000.0, 1200.0, 900.0, 1100.0, 1000.0]
    twenty_percent = judge([rate / 1.2 for rate in old], old, 0.10)
    assert twenty_percent["status"] == "slower"
    assert twenty_percent["median"] == pytest.approx(1.2)
    five_percent = judge([rate / 1.05 for rate in old], old, 0.10)
    assert five_percent["status"] == "ok"
    assert five_percent["median"] == pytest.approx(1.05)
    faster = judge([rate * 2 for rate in old], old, 0.10)
    assert faster["status"] == "ok"
    assert faster["median"] == pytest.approx(0.5)


def test_the_verdict_takes_the_median_of_the_per_round_ratios(
    compare_module: ModuleType,
) -> None:
    """One disturbed round, on either side, does not move the verdict; the
    spread shows it."""
    new = [100.0, 100.0, 50.0, 100.0, 100.0]  # round 3: new was disturbed (2x)
    old = [105.0, 104.0, 100.0, 35.0, 106.0]  # round 4: old was disturbed
    verdict = compare_module.judge(new, old, 0.10)
    assert verdict["rounds"] == pytest.approx([1.05, 1.04, 2.0, 0.35, 1.06])
    assert verdict["median"] == pytest.approx(1.05)
    assert verdict["status"] == "ok"
    assert (verdict["min"], verdict["max"]) == (pytest.approx(0.35), pytest.approx(2.0))
    assert verdict["q1"] <= verdict["median"] <= verdict["q3"]
    assert compare_module.judge([100.0, 80.0, 90.0], [120.0, 100.0, 110.0], 0.25)["status"] == "ok"
    assert compare_module.judge([100.0, 80.0, 90.0], [120.0, 100.0, 110.0], 0.15)["status"] == (
        "slower"
    )


def test_the_median_interval_is_the_binomial_order_statistics(
    compare_module: ModuleType,
) -> None:
    """For 100 rounds the 95% interval of the median runs from the 40th to the
    61st smallest ratio (the sign-test interval); it always holds the median."""
    ratios = [1 + i / 1000 for i in range(100)]
    random.Random(13).shuffle(ratios)
    assert compare_module.median_interval(ratios) == (1.039, 1.06)
    for n in (1, 2, 5, 10, 31):
        low, high = compare_module.median_interval(ratios[:n])
        assert low <= statistics.median(ratios[:n]) <= high


def test_the_outcome_fails_on_a_slower_or_failed_system_only(compare_module: ModuleType) -> None:
    def system(status: str) -> dict[str, Any]:
        return {"status": status}

    cases = {
        "a": {"status": "measured", "systems": {"x": system("ok"), "y": system("skipped")}},
        "b": {"status": "skipped", "why": "the old side: no such API"},
    }
    assert compare_module.outcome(cases) == {
        "slower": [],
        "failed": [],
        "skipped": ["a/y", "b"],
        "passed": True,
    }
    cases["c"] = {"status": "measured", "systems": {"x": system("slower")}}
    cases["d"] = {"status": "measured", "systems": {"x": system("incorrect")}}
    found = compare_module.outcome(cases)
    assert (found["slower"], found["failed"], found["passed"]) == (["c/x"], ["d/x"], False)


def _old_checkout(folder: Path, break_it: str) -> Path:
    """A copy of this checkout's library with one line appended to actors/__init__.py."""
    for part in ("core", "actors"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    init = folder / "actors" / "__init__.py"
    init.write_text(init.read_text() + f"\n{break_it}\n")
    return folder


@pytest.mark.timeout(60)
def test_a_case_the_old_version_cannot_run_is_skipped_not_failed(
    compare_module: ModuleType, tmp_path: Path
) -> None:
    """An old version without an API a case calls: that system is skipped; an
    old version without a name the case definitions import: every case is."""
    no_method = _old_checkout(tmp_path / "no-method", "del StateManager.request_modify")
    no_name = _old_checkout(tmp_path / "no-name", "del Supervisor")
    options = {"rounds": 1, "adaptive": False, "warmup": 0, "max_slowdown": 0.1, "judge_by": None}

    setup = compare_module.Setup({"new": ROOT, "old": no_method}, True, tmp_path)
    result = compare_module.compare_case("restart_latency", setup, **options)
    entry = result["systems"]["stateward"]
    assert entry["status"] == "skipped"
    assert "request_modify" in entry["why"]

    setup = compare_module.Setup({"new": ROOT, "old": no_name}, True, tmp_path)
    with compare_module.workers(setup) as sides:
        assert sides["old"].hello["ready"] is False
        assert "Supervisor" in sides["old"].hello["error"]
    assert [side.process.returncode for side in sides.values()] == [0, 0]
    result = compare_module.compare_case("pipelined_transitions", setup, **options)
    assert result["status"] == "skipped"
    assert "cannot run benchmarks/_cases.py" in result["why"]
    assert compare_module.outcome({"pipelined_transitions": result})["passed"]


def test_against_a_ref_that_names_no_commit_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--against",
            "no-such-branch-or-tag",
            "--tmp-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "'no-such-branch-or-tag' names no commit" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(90)
def test_an_interrupted_comparison_removes_its_checkout(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) mid-run: the workers end and the old checkout is gone."""
    with subprocess.Popen(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--against",
            "HEAD",
            "--quick",
            "--rounds",
            "200",
            "--cases",
            "reads_under_write",
            "--tmp-dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    ) as process:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # bounded by the test's timeout
            seen.append(line)
            if "round 1/200" in line:
                break
        assert any("round 1/200" in line for line in seen), "".join(seen)
        assert list(tmp_path.iterdir()), "the old checkout should exist while it runs"
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=60) == 130, rest
    assert "interrupted" in rest
    assert list(tmp_path.iterdir()) == []
