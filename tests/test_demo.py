"""``stateward demo``: creates order machines, drives them with crashes injected,
verifies the store, and reports machines, threads, memory, rates and shutdown time.

The demo runs through the real command (``stateward demo`` in a subprocess) at
a small count; its default is 100,000 machines, which takes too long for a
unit test (run ``stateward demo`` yourself, or set ``STATEWARD_DEMO_MACHINES``
to run these tests at another count).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stateward.actors._pool_host import DEFAULT_WORKERS
from stateward.actors.cli import _demo_measure, _demo_orders, _main, main

ROOT = Path(__file__).resolve().parent.parent
#: The console script pip installed next to this interpreter.
SCRIPT = Path(sys.executable).with_name("stateward")
#: How many machines the subprocess runs use.
MACHINES = int(os.environ.get("STATEWARD_DEMO_MACHINES", "1000"))
#: The checks the demo reports, in its order (its output's own words).
DEMO_CHECKS = (
    "every acknowledged transition is stored",
    "no update was lost",
    "each history is consistent with its state",
    "restarts match the crashes injected",
    "every actor and thread stopped",
)
#: The report's labels, in order, between the progress and the checks.
REPORT_LABELS = (
    "machines",
    "threads",
    "memory per machine",
    "creation",
    "transitions",
    "shutdown",
    "recovery",
    "wall time",
)


def demo(*argv: str, store: Path | None) -> subprocess.CompletedProcess[str]:
    """Run ``stateward demo ARGV --store STORE`` as a user would, not on a terminal
    (with no ``--store`` when ``store`` is None)."""
    assert SCRIPT.is_file(), f"no console script at {SCRIPT}: pip install -e ."
    where = [] if store is None else ["--store", str(store)]
    return subprocess.run(
        [str(SCRIPT), "demo", *argv, *where],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The text output of one run, with progress in every phase (a tiny interval)."""
    store = tmp_path_factory.mktemp("demo") / "demo.db"
    args = ["--machines", str(MACHINES), "--seconds", "0.5", "--crash-rate", "0.05"]
    result = demo(*args, "--progress-every", "0.001", store=store)
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.exists()  # a given store is kept
    return result.stdout


def report_lines(out: str) -> dict[str, str]:
    """The report's lines by label (``threads`` -> ``1 before, ...``)."""
    lines = {}
    for line in out.splitlines():
        label, _, value = line.partition("  ")
        if label in REPORT_LABELS and value.strip():
            lines[label] = value.strip()
    return lines


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_demo_verifies_every_check_and_reports_the_measurements(plain_run: str) -> None:
    lines = plain_run.splitlines()
    assert lines[0].startswith(f"stateward demo: {MACHINES:,} order machines, 8 clients")
    for check in DEMO_CHECKS:
        assert f"  [ok] {check}: " in plain_run
    assert lines[-1] == "all checks passed"
    report = report_lines(plain_run)
    assert list(report) == list(REPORT_LABELS)
    assert report["machines"] == f"{MACHINES:,} ({DEFAULT_WORKERS} workers)"
    threads = re.fullmatch(
        r"(\d+) before, (\d+) at peak \((\d+) of them clients\), (\d+) after shutdown",
        report["threads"],
    )
    assert threads is not None, report["threads"]
    before, peak, clients, after = map(int, threads.groups())
    # Threads cost no more than the pool, the clients and a few of the runtime's own.
    assert clients == 8 and before <= peak <= before + clients + DEFAULT_WORKERS + 4
    assert after == before
    memory = re.fullmatch(
        r"([\d,.]+) (B|KiB) \(RSS growth while creating them: [\d,.]+ (KiB|MiB) in all\)",
        report["memory per machine"],
    )
    assert memory is not None, report["memory per machine"]
    assert re.fullmatch(r"[\d,]+ machines/s \([\d.]+ s\)", report["creation"])
    transitions = re.fullmatch(
        r"([\d,]+)/s \(([\d,]+) acknowledged in ([\d.]+) s; [\d,]+ modifies, "
        r"([\d,]+) crashes injected, ([\d,]+) restarts, ([\d,]+) refused after a crash\)",
        report["transitions"],
    )
    assert transitions is not None, report["transitions"]
    assert number(transitions[2]) > 0 and number(transitions[1]) > 0
    assert transitions[4] == transitions[5]  # every crash restarted its machine
    assert number(transitions[4]) > 0  # and crashes were injected
    assert re.fullmatch(r"[\d.]+ s", report["shutdown"])


def test_demo_shows_progress_in_every_long_phase(plain_run: str) -> None:
    phases = [line.split()[1] for line in plain_run.splitlines() if line.startswith("progress: ")]
    assert list(dict.fromkeys(phases)) == ["creating", "driving", "stopping", "recovering"]


def test_demo_json_report(tmp_path: Path) -> None:
    result = demo(
        "--machines", "50", "--clients", "2", "--seconds", "0.3", "--json", "--workers", "2",
        "--progress-every", "0.001", store=tmp_path / "d.db",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["machines"] == 50 and report["workers"] == 2
    assert report["restarts"] == report["crashes_injected"]
    assert list(report["checks"]) == list(DEMO_CHECKS)
    assert report["threads"]["after_shutdown"] == report["threads"]["before"]
    assert report["threads"]["peak"] <= report["threads"]["before"] + 2 + 2 + 4
    assert report["memory_per_machine"]["method"] == "rss"
    assert report["memory_per_machine"]["bytes"] > 0
    assert report["creation"]["machines_per_s"] > 0 and report["transitions_per_s"] > 0
    # The rate counts the time the clients ran, not the start-up, shutdown or verification.
    assert report["transitions_per_s"] == pytest.approx(
        report["transitions"] / report["seconds"],
        rel=0.05,  # "seconds" is rounded
    )
    assert 0.3 <= report["seconds"] < report["wall_s"] - report["creation"]["seconds"]
    assert report["shutdown_s"] >= 0 and report["shutdown_clean"] is True
    assert report["store_kept"] is True and Path(report["store"]) == tmp_path / "d.db"
    assert report["refused_after_crash"] >= 0
    assert "progress: " in result.stderr


def test_demo_removes_its_temporary_store_when_every_check_passed() -> None:
    result = demo("--machines", "20", "--clients", "2", "--seconds", "0.2", "--json", store=None)
    assert result.returncode == 0, result.stderr
    store = Path(json.loads(result.stdout)["store"])
    assert store.name == "demo.db" and store.parent.name.startswith("stateward-demo-")
    assert not store.parent.exists()
    assert json.loads(result.stdout)["store_kept"] is False


def test_demo_measures_memory_with_tracemalloc_when_asked(tmp_path: Path) -> None:
    result = demo(
        "--machines", "50", "--clients", "1", "--seconds", "0.2", "--memory", "tracemalloc",
        store=tmp_path / "t.db",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    line = report_lines(result.stdout)["memory per machine"]
    assert re.fullmatch(
        r"[\d,.]+ (B|KiB) \(tracemalloc, Python allocations still live after creating them: "
        r"[\d,.]+ (KiB|MiB) in all\)",
        line,
    ), line


def test_demo_runs_a_hundred_thousand_machines_by_default() -> None:
    args = _main.build_parser().parse_args(["demo"])
    assert args.machines == 100_000 and args.store is None
    help_text = _main._SUBPARSERS["demo"].format_help()
    assert "(default 100,000)" in help_text


def test_demo_exits_nonzero_when_a_check_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_demo_orders, "check_history", lambda machine: "history was tampered with")
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--machines", "3", "--clients", "1", "--seconds", "0.2"]
    code = main([*argv, "--store", str(tmp_path / "f.db")], out=out, err=err)
    assert code == 1
    assert "[FAILED] each history is consistent with its state" in out.getvalue()
    assert out.getvalue().rstrip().endswith("SOME CHECKS FAILED")
    assert (tmp_path / "f.db").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_demo_progress_rewrites_one_line_on_a_terminal(tmp_path: Path) -> None:
    out = Terminal()
    argv = ["demo", "--machines", "200", "--clients", "2", "--seconds", "0.3"]
    code = main([*argv, "--progress-every", "0.001", "--store", str(tmp_path / "t.db")], out=out)
    assert code == 0, out.getvalue()
    text = out.getvalue()
    assert "\r\x1b[K" in text and "progress: " not in text
    assert "\r\x1b[Kdriving " in text
    # Each phase's summary starts on a line of its own, the progress line cleared.
    assert "\r\x1b[Kcreated 200 machines in " in text


def test_progress_comes_every_few_seconds_unless_on_a_terminal() -> None:
    assert _demo_measure.Progress(io.StringIO(), None).interval == 5.0
    assert _demo_measure.Progress(Terminal(), None).interval == 0.5
    assert _demo_measure.Progress(io.StringIO(), 0.25).interval == 0.25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--machines", "0"], "argument --machines: must be at least 1, got 0"),
        (["--machines", "lots"], "expected a whole number such as 2000 or 2,000, got 'lots'"),
        (["--clients", "-2"], "argument --clients: must be at least 1, got -2"),
        (["--workers", "-1"], "must be 0 (a thread per machine) or more"),
        (["--seconds", "0"], "argument --seconds: must be more than 0 and finite"),
        (["--seconds", "nan"], "argument --seconds: must be more than 0 and finite"),
        (["--crash-rate", "1.5"], "argument --crash-rate: must be in [0, 1)"),
        (["--progress-every", "-1"], "argument --progress-every: must be more than 0"),
        (["--memory", "psutil"], "argument --memory: invalid choice: 'psutil'"),
    ],
)
def test_bad_demo_options_are_refused_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: stateward demo" in err and message in err


def test_machine_counts_may_be_written_with_commas() -> None:
    args = _main.build_parser().parse_args(["demo", "--machines", "2,000"])
    assert args.machines == 2000


# -- the documented output ----------------------------------------------------------


GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def documented_run() -> str:
    """The sample output getting-started.md shows for ``stateward demo``."""
    section = GETTING_STARTED.read_text().split("## `stateward demo`\n")[1].split("\n## ")[0]
    (shown,) = re.findall(r"```text\n(stateward demo: .*?)```", section, flags=re.DOTALL)
    return shown


def shapes(out: str) -> list[str]:
    """The shape of each line of the demo's output: numbers, sizes and the store's
    path replaced by placeholders, spaces collapsed, and repeats of one shape
    (successive progress lines) kept once."""
    found: list[str] = []
    for line in out.splitlines():
        line = re.sub(r"store \S+ \(", "store PATH (", line)
        line = re.sub(r"\d[\d,]*(\.\d+)?", "N", line)
        line = re.sub(r"N (B|KiB|MiB|GiB)\b", "N UNIT", line)
        line = " ".join(line.split())
        if not found or found[-1] != line:
            found.append(line)
    return found


def test_the_getting_started_sample_output_has_the_shape_of_a_real_run() -> None:
    # As on the page: the default command, with its temporary store (removed at
    # the end, which the last line says); progress in every phase.
    args = ["--machines", str(MACHINES), "--seconds", "0.5", "--progress-every", "0.001"]
    result = demo(*args, store=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert shapes(documented_run()) == shapes(result.stdout)


def test_the_getting_started_page_describes_the_defaults() -> None:
    section = GETTING_STARTED.read_text().split("## `stateward demo`\n")[1].split("\n## ")[0]
    defaults = _main.build_parser().parse_args(["demo"])
    assert documented_run().startswith(f"stateward demo: {defaults.machines:,} order machines, ")
    assert f"starts {defaults.machines:,} order machines (`--machines`)" in " ".join(
        section.split()
    )
    assert f"from {defaults.clients} client threads (`--clients`)" in " ".join(section.split())


def test_the_readme_usage_line_matches_the_options() -> None:
    readme = (ROOT / "README.md").read_text()
    (usage,) = re.findall(r"^stateward demo (\[.*)$", readme, flags=re.MULTILINE)
    _main.build_parser()
    parser = _main._SUBPARSERS["demo"]
    defaults = {a.option_strings[0]: a.default for a in parser._actions if a.option_strings}
    for option, value in re.findall(r"\[(--[\w-]+)(?: ([^\]]+))?\]", usage):
        assert option in defaults, f"README shows {option}, which the demo does not take"
        if value and value.isdigit():
            shown = DEFAULT_WORKERS if defaults[option] is None else defaults[option]
            assert int(value) == shown, f"README shows {option} {value}, default is {shown}"


def test_demo_says_what_to_do_when_threads_run_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, actor_threads = threading.Thread.start, itertools.count()

    def start_or_fail(thread: threading.Thread) -> None:
        """Refuse actor threads after the 21st (the totals and 20 machines), as a
        process at its limit does."""
        if thread.name.startswith("_PykkaWorker") and next(actor_threads) >= 21:
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_or_fail)
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--machines", "50", "--workers", "0", "--seconds", "0.2"]
    code = main([*argv, "--store", str(tmp_path / "w.db")], out=out, err=err)
    assert code == 1
    assert (
        "stateward demo: error: could not start a thread for machine 'order-0020' after 20 "
        "machines" in err.getvalue()
    )
    assert "with --workers 0 every machine needs a thread of its own" in err.getvalue()


# -- stateward demo --ray --------------------------------------------------------------


RAY_CHECKS = (
    "every acknowledged transition is stored",
    "no update was lost",
    "each history is consistent with its state",
    "each injected crash failed only its own transition",
    "every actor and thread stopped",
)


@pytest.mark.timeout(200)
def test_demo_on_ray_starts_its_own_cluster_verifies_every_check_and_stops_it(
    tmp_path: Path,
) -> None:
    """``demo --ray`` on a local cluster the command starts and stops: the same
    clients and checks, its cluster's files in a temporary folder that is gone
    afterwards, and nothing written into the home directory."""
    pytest.importorskip("ray")
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "ray.db"
    result = subprocess.run(
        [
            str(SCRIPT), "demo", "--ray", "--machines", "60", "--clients", "2", "--seconds",
            "0.5", "--crash-rate", "0.05", "--json", "--progress-every", "0.001",
            "--store", str(store),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["machines"] == 60
    assert list(report["checks"]) == list(RAY_CHECKS)
    assert report["ray"]["shards"] == 2
    folder = Path(report["ray"]["cluster_folder"])
    assert folder.name.startswith("stateward-demo-ray-") and not folder.exists()
    assert list(home.iterdir()) == []  # no ~/.ray (RAY_AUTH_MODE=disabled), nothing else
    assert report["transitions"] > 0 and report["modifies"] > 0
    assert report["crashes_injected"] > 0 and report["restarts"] == 0
    assert report["threads"]["after_shutdown"] == report["threads"]["before"]
    assert report["shutdown_clean"] is True
    phases = [line.split()[1] for line in result.stderr.splitlines() if "progress: " in line]
    assert list(dict.fromkeys(phases)) == ["creating", "driving", "stopping", "recovering"]
    assert store.exists()  # a given store is kept


def test_demo_ray_without_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--ray", "--machines", "3", "--store", str(tmp_path / "r.db")]
    assert main(argv, out=out, err=err) == 1
    assert err.getvalue() == (
        "stateward demo: error: --ray runs the demo on a local Ray cluster, and Ray is not "
        "installed: pip install 'stateward[ray]' (or leave --ray out)\n"
    )
    assert not (tmp_path / "r.db").exists()


def test_demo_shards_without_ray_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["demo", "--shards", "3"], out=out, err=err) == 2
    assert "usage: stateward demo" in err.getvalue()
    assert "--shards goes with --ray" in err.getvalue()
