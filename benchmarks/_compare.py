"""``run.py --against GIT_REF``: this checkout and an older one, side by side.

Two full runs of the same code can differ by a third on a shared machine, so
a number is only ever compared with one measured next to it. The old version
is taken out of git into a temporary folder (``git archive``, removed at the
end whatever happens); each side runs in its own worker process
(benchmarks/_worker.py) that imports stateward from its checkout and runs the
case definitions of *this* checkout. The workers start once; every
measurement happens inside them, so the processes cost nothing measured.

For every case, round by round and system by system, both sides measure one
after the other, the side that goes first alternating (new, old, then old,
new), so a drift of the machine hits both alike. Each round gives one ratio,
new time per operation over old (old ops/s over new ops/s: 1.10 is 10%
slower); a system's result is the median of those per-round ratios, with
their spread. A system is slower when that median exceeds
``1 + max_slowdown``.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from _cases import CASES
from _harness import cpus, load_average

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_worker.py"
#: How long one request to a worker may take, in seconds (a spawn_machines
#: round with its shutdown is the longest, well under a minute).
REQUEST_TIMEOUT = 900.0
#: The default threshold: a system more than 10% slower fails the comparison.
MAX_SLOWDOWN = 0.10
#: Untimed rounds per case first, on both sides.
WARMUP = 1
#: The measures a comparison reports, by the `Sample` field of their rate: time
#: on the wall clock, and CPU time of the worker process (every thread).
MEASURES = {"wall": "ops_per_s", "cpu": "cpu_ops_per_s"}
#: A full comparison measures each system for at least MIN_ROUNDS rounds, and
#: stops once the 95% interval of its median ratio is within ± PRECISION, or
#: after MAX_ROUNDS rounds, or once its measurements (both sides) took BUDGET_S.
MIN_ROUNDS, MAX_ROUNDS, PRECISION, BUDGET_S = 10, 100, 0.03, 90.0


class CompareError(Exception):
    """The comparison cannot run (a bad ref, a worker that died)."""


# -- the numbers ---------------------------------------------------------------------------


def time_ratios(new_rates: list[float], old_rates: list[float]) -> list[float]:
    """Per round: new time per operation over old (old ops/s over new ops/s)."""
    return [old / new for new, old in zip(new_rates, old_rates, strict=True) if new > 0]


def median_interval(ratios: list[float]) -> tuple[float, float]:
    """A 95% confidence interval of the median: two order statistics.

    Distribution-free: the rounds' ratios are independent draws, and the
    number of them below the true median is binomial(n, 1/2).
    """
    ordered = sorted(ratios)
    n = len(ordered)
    k = max(1, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    return ordered[k - 1], ordered[n - k]


def spread(ratios: list[float]) -> dict[str, Any]:
    """Median, min, max, quartiles and the median's 95% interval of the ratios."""
    if len(ratios) > 1:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    else:
        q1 = q3 = ratios[0]
    low, high = median_interval(ratios)
    return {
        "median": round(statistics.median(ratios), 4),
        "min": round(min(ratios), 4),
        "max": round(max(ratios), 4),
        "q1": round(q1, 4),
        "q3": round(q3, 4),
        "median_95": [round(low, 4), round(high, 4)],
    }


def judge(
    new_rates: list[float], old_rates: list[float], max_slowdown: float = MAX_SLOWDOWN
) -> dict[str, Any]:
    """The verdict on one system by one measure, from its per-round rates on both sides.

    ``status`` is ``slower`` when the median per-round time ratio new/old is
    above ``1 + max_slowdown``, else ``ok``; the ratio's median, min, max and
    quartiles come with it, and the ratio of every round.
    """
    ratios = time_ratios(new_rates, old_rates)
    if not ratios:
        return {"status": "error", "why": "no round measured any operation on the new side"}
    summary = spread(ratios)
    slower = summary["median"] > 1 + max_slowdown
    return {
        "status": "slower" if slower else "ok",
        **summary,
        "rounds": [round(r, 4) for r in ratios],
    }


# -- the old checkout ----------------------------------------------------------------------


def _git(*args: str, data: bool = False) -> Any:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args],
        capture_output=True,
        check=False,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)} failed: {done.stderr.decode().strip()}")
    return done.stdout if data else done.stdout.decode().strip()


def resolve(ref: str) -> str:
    """The full commit hash ``ref`` names in this repository."""
    try:
        return str(_git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
    except CompareError:
        raise CompareError(
            f"{ref!r} names no commit in {ROOT}: give a branch, tag or commit hash "
            "(git log --oneline lists them)"
        ) from None


def export(commit: str, into: Path) -> Path:
    """Write the tree of ``commit`` into the folder ``into`` (git archive)."""
    tar = _git("archive", "--format=tar", commit, data=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into


def this_checkout() -> dict[str, Any]:
    """The commit of this checkout, and whether its files differ from it."""
    commit = str(_git("rev-parse", "HEAD"))
    changed = bool(str(_git("status", "--porcelain", "--untracked-files=no")))
    return {"commit": commit, "uncommitted_changes": changed}


# -- the workers ---------------------------------------------------------------------------


@dataclass
class Side:
    """One worker process: ``name`` is new or old."""

    name: str
    process: subprocess.Popen[str]
    answers: queue.Queue[str | None]
    pump: threading.Thread
    hello: dict[str, Any]

    def ask(self, **request: Any) -> dict[str, Any]:
        if self.process.stdin is None:
            raise CompareError(f"the {self.name} side's worker has no stdin")
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise CompareError(
                f"the {self.name} side's worker has exited ({self.process.poll()})"
            ) from None
        return self._read(request)

    def _read(self, request: dict[str, Any] | None) -> dict[str, Any]:
        try:
            line = self.answers.get(timeout=REQUEST_TIMEOUT)
        except queue.Empty:
            raise CompareError(
                f"the {self.name} side's worker did not answer {request} "
                f"within {REQUEST_TIMEOUT:g} s"
            ) from None
        if line is None:
            raise CompareError(
                f"the {self.name} side's worker exited ({self.process.poll()}) "
                f"before answering {request}; its stderr is above"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer


def _pump(stream: IO[str], answers: queue.Queue[str | None]) -> None:
    """Hand the worker's answer lines over; None once it has closed them."""
    with stream:
        for line in stream:
            answers.put(line)
    answers.put(None)


def start_side(
    name: str, root: Path, quick: bool, scratch: Path, pin: list[int] | None = None
) -> Side:
    """A worker that measures the stateward of ``root`` (on the CPUs ``pin``, if given)."""
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same hashing on both sides
    pinned = [",".join(map(str, pin))] if pin else []
    process = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            str(root),
            "quick" if quick else "full",
            str(scratch),
            *pinned,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=scratch,
    )
    answers: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None
    pump = threading.Thread(
        target=_pump, args=(process.stdout, answers), name=f"bench-{name}", daemon=True
    )
    pump.start()
    side = Side(name, process, answers, pump, {})
    side.hello = side._read(None)
    return side


def stop_side(side: Side) -> None:
    """Close the worker's stdin and wait for it; kill it if it does not end."""
    try:
        if side.process.stdin is not None:
            side.process.stdin.close()
    except BrokenPipeError:
        pass
    try:
        side.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        side.process.kill()
        side.process.wait(timeout=60)
    side.pump.join(timeout=60)  # it closes the worker's stdout at its end


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the temporary checkout is removed."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the comparison ------------------------------------------------------------------------


def _progress(text: str) -> None:
    print(f"[against] {text}", file=sys.stderr, flush=True)


def _imported_under(side: Side, root: Path) -> None:
    """Check that the worker's stateward really is the one in ``root``."""
    for module, where in side.hello.get("imported_from", {}).items():
        if where is None or not Path(where).resolve().is_relative_to(root.resolve()):
            raise CompareError(f"the {side.name} side imported {module} from {where}, not {root}")


def _round_text(taken: dict[str, dict[str, Any]]) -> str:
    """One round of one system, for the progress lines."""
    parts = []
    for measure, rate in MEASURES.items():
        new_rate, old_rate = taken["new"][rate], taken["old"][rate]
        ratio = old_rate / new_rate if new_rate else float("inf")
        parts.append(f"{measure} new {new_rate:,.0f}/s old {old_rate:,.0f}/s ({ratio:.3f})")
    return ", ".join(parts)


@dataclass
class _Tally:
    """What one system of a case has gathered so far."""

    judge_by: str
    rates: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: {(side, m): [] for side in ("new", "old") for m in MEASURES}
    )
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0  # spent measuring it, both sides

    def ratios(self) -> list[float]:
        measure = self.judge_by
        return time_ratios(self.rates["new", measure], self.rates["old", measure])


def _settled(tally: _Tally) -> str | None:
    """Why a system needs no more rounds (adaptive mode), or None."""
    ratios = tally.ratios()
    if len(ratios) < MIN_ROUNDS:
        return None
    low, high = median_interval(ratios)
    known = f"{tally.judge_by} new/old median in {low:.3f} to {high:.3f} (95%)"
    if (high - low) / 2 <= PRECISION:
        return f"settled after {len(ratios)} rounds: {known}"
    if tally.seconds >= BUDGET_S:
        return f"{tally.seconds:.0f} s budget used after {len(ratios)} rounds: {known}"
    return None


def compare_case(
    case: str,
    new: Side,
    old: Side,
    *,
    rounds: int | None,
    adaptive: bool,
    warmup: int,
    max_slowdown: float,
    judge_by: str | None,
) -> dict[str, Any]:
    """Measure one case's stateward systems on both sides, interleaved.

    With ``adaptive``, a system is measured for at least `MIN_ROUNDS` rounds,
    until the 95% interval of its median ratio is narrower than ``± PRECISION``,
    for `MAX_ROUNDS` rounds or `BUDGET_S` seconds at most; else for ``rounds``
    rounds (or the case's own number). ``judge_by`` (``cpu`` or ``wall``) overrides what each
    system's definition says its verdict goes by.
    """
    loaded = {side.name: side.ask(op="load", case=case) for side in (new, old)}
    for side in (new, old):
        answer = loaded[side.name]
        if "error" in answer:
            raise CompareError(f"the {side.name} side failed to load {case}: {answer['error']}")
    if "skipped" in loaded["new"]:
        return {"status": "failed", "why": f"the new side: {loaded['new']['skipped']}"}
    if "skipped" in loaded["old"]:
        return {"status": "skipped", "why": f"the old side: {loaded['old']['skipped']}"}
    names: list[str] = list(loaded["new"]["systems"])
    count = MAX_ROUNDS if adaptive else rounds or loaded["new"]["rounds"]
    systems: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in loaded["old"]["systems"]:
            systems[name] = {"status": "skipped", "why": "the old side has no such system"}
    live = [n for n in names if n not in systems]
    tallies = {n: _Tally(judge_by or loaded["new"]["systems"][n]) for n in live}
    for round_no in range(warmup + count):
        if not live:
            break
        keep = round_no >= warmup
        label = f"round {round_no - warmup + 1}/{count}" if keep else f"warm-up {round_no + 1}"
        if keep and adaptive:
            label = f"round {round_no - warmup + 1}"
        order = (new, old) if round_no % 2 == 0 else (old, new)
        for name in list(live):
            taken = {}
            started = time.perf_counter()
            for side in order:
                answer = side.ask(op="measure", case=case, system=name, round=round_no, keep=keep)
                if "sample" not in answer:
                    why = answer.get("error") or answer.get("skipped", "no answer")
                    status = "skipped" if side is old else "failed"
                    systems[name] = {"status": status, "why": f"the {side.name} side: {why}"}
                    live.remove(name)
                    break
                taken[side.name] = answer["sample"]
            if len(taken) < 2:
                continue
            tally = tallies[name]
            tally.seconds += time.perf_counter() - started
            if not taken["new"]["correct"]:
                tally.problems += taken["new"]["problems"]
            if not taken["old"]["correct"]:  # this version cannot run it as the case expects
                why = "; ".join(taken["old"]["problems"])
                systems[name] = {"status": "skipped", "why": f"the old side's checks failed: {why}"}
                live.remove(name)
                continue
            if not keep:
                _progress(f"{label}  {case}/{name}: " + _round_text(taken))
                continue
            for (side_name, measure), kept in tally.rates.items():
                kept.append(taken[side_name][MEASURES[measure]])
            _progress(f"{label}  {case}/{name}: " + _round_text(taken))
            settled = _settled(tally) if adaptive else None
            if settled is not None:
                live.remove(name)
                _progress(f"{case}/{name}: {settled}")
    summaries = {side.name: side.ask(op="summary", case=case) for side in (new, old)}
    for name, tally in tallies.items():
        if name in systems:  # skipped or failed on the way
            continue
        result: dict[str, Any] = {"judged_by": tally.judge_by}
        for measure in MEASURES:
            result[measure] = judge(
                tally.rates["new", measure], tally.rates["old", measure], max_slowdown
            )
        result["status"] = result[tally.judge_by]["status"]
        result["rates"] = {
            f"{side_name}_{MEASURES[measure]}": [round(r, 1) for r in values]
            for (side_name, measure), values in tally.rates.items()
        }
        if tally.problems:
            result["status"] = "incorrect"
            result["why"] = "the new side's checks failed: " + "; ".join(
                dict.fromkeys(tally.problems)
            )
        for side_name in ("new", "old"):
            result[side_name] = summaries[side_name].get("entries", {}).get(name)
        systems[name] = result
    return {"status": "measured", "systems": {name: systems[name] for name in names}}


def compare(
    ref: str,
    only: list[str] | None,
    *,
    quick: bool,
    rounds: int | None,
    warmup: int,
    max_slowdown: float,
    judge_by: str | None = None,
    pin: list[int] | None = None,
    tmp_dir: Path | None,
    command: str,
) -> dict[str, Any]:
    """Measure this checkout against ``ref``; the results document."""
    commit = resolve(ref)
    began = time.perf_counter()
    results: dict[str, Any] = {
        "kind": "comparison",
        "python": platform.python_version(),
        "cpus": cpus(),
        "platform": f"{platform.system()} {platform.machine()}",
        "mode": "quick" if quick else "full",
        "command": command,
        "new": {"checkout": str(ROOT), **this_checkout()},
        "old": {"ref": ref, "commit": commit},
        "max_slowdown": max_slowdown,
        "judged_by": judge_by,
        "cpus_pinned": pin,
        "rounds": rounds
        or (
            "each case's own"
            if quick
            else {"min": MIN_ROUNDS, "max": MAX_ROUNDS, "budget_s": BUDGET_S}
        ),
        "precision": None if rounds or quick else PRECISION,
        "warmup": warmup,
        "load_average_at_start": load_average(),
        "cases": {},
        "case_info": {},
    }
    sides: list[Side] = []
    with (
        _terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="stateward-against-", dir=tmp_dir) as tmp,
    ):
        folder = Path(tmp)
        old_root = export(commit, folder / "old")
        results["old"]["checkout"] = str(old_root)
        try:
            _progress(f"new: {ROOT}; old: {ref} ({commit[:12]}) in {old_root}")
            new = start_side("new", ROOT, quick, folder, pin)
            sides.append(new)
            old = start_side("old", old_root, quick, folder, pin)
            sides.append(old)
            for side, root in ((new, ROOT), (old, old_root)):
                if side.hello.get("ready"):
                    _imported_under(side, root)
                    results[side.name]["imported_from"] = side.hello["imported_from"]
                elif side is new:
                    why = side.hello["error"]
                    raise CompareError(f"this checkout cannot run the cases:\n{why}")
            for name in CASES:
                if only and name not in only:
                    continue
                started, load = time.perf_counter(), load_average()
                _progress(f"{name} ...")
                results["cases"][name] = compare_case(
                    name,
                    new,
                    old,
                    rounds=rounds,
                    adaptive=rounds is None and not quick,
                    warmup=warmup,
                    max_slowdown=max_slowdown,
                    judge_by=judge_by,
                )
                seconds = time.perf_counter() - started
                results["case_info"][name] = {
                    "seconds": round(seconds, 1),
                    "load_average_at_start": load,
                }
                _progress(f"{name}: {seconds:.1f} s")
        except BaseException:  # interrupted or failed: no measurement to wait for
            for side in sides:
                side.process.kill()
            raise
        finally:
            for side in sides:
                stop_side(side)
    results["seconds"] = round(time.perf_counter() - began, 1)
    results["load_average_at_end"] = load_average()
    results.update(outcome(results["cases"]))
    return results


def outcome(cases: dict[str, Any]) -> dict[str, Any]:
    """Which systems are slower, failed or skipped; passed when none is slower or failed."""
    found: dict[str, list[str]] = {"slower": [], "failed": [], "skipped": []}
    for case, result in cases.items():
        if result["status"] == "skipped":
            found["skipped"].append(case)
        elif result["status"] == "failed":
            found["failed"].append(case)
        for system, entry in result.get("systems", {}).items():
            key = {"incorrect": "failed", "error": "failed"}.get(entry["status"], entry["status"])
            if key in found:
                found[key].append(f"{case}/{system}")
    return {**found, "passed": not found["slower"] and not found["failed"]}
