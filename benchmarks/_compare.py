"""``run.py --against GIT_REF``: this checkout and an older one, side by side.

Two full runs of the same code can differ by a third on a shared machine, so
a number is only ever compared with one measured next to it. The old version
is written out of git into a temporary folder, removed at the end whatever
happens; each side runs in its own worker process that imports stateward from
its checkout and runs the case definitions of *this* checkout (_sides.py,
_worker.py). Every timing is taken inside the workers.

For every case, round by round and system by system, both sides measure one
after the other, the side that goes first alternating, so a drift of the
machine hits both alike; every round has a fresh pair of workers. Each round
gives one ratio per measure (wall clock, CPU time): new's time per operation
over old's (1.10 is 10% slower). A system's result is the median of its
per-round ratios, with the median's 95% interval and the range; it is slower
when the median of the measure it is judged by exceeds ``1 + max_slowdown``.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _cases import CASES
from _harness import cpus, load_average
from _sides import (
    ROOT,
    CompareError,
    Setup,
    Side,
    export,
    resolve,
    terminate_as_interrupt,
    this_checkout,
    workers,
)

#: The default threshold: a system more than 10% slower fails the comparison.
MAX_SLOWDOWN = 0.10
#: Untimed measurements (of a case's first system) by each fresh worker. Every
#: round has fresh workers: where a process lands in memory moves its speed by
#: a few percent for its whole life, so one pair of processes would carry its
#: own difference into every round, and the spread would not show it.
WARMUP = 1
#: The measures a comparison reports, by the `Sample` field of their rate: time
#: on the wall clock, and CPU time of the worker process (every thread).
MEASURES = {"wall": "ops_per_s", "cpu": "cpu_ops_per_s"}
#: A full comparison measures each system for at least MIN_ROUNDS rounds, and
#: stops once the 95% interval of its median ratio is within ± PRECISION, or
#: after MAX_ROUNDS rounds, or once its case has run for BUDGET_S seconds.
MIN_ROUNDS, MAX_ROUNDS, PRECISION, BUDGET_S = 10, 200, 0.03, 120.0


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


# -- the comparison ------------------------------------------------------------------------


def _progress(text: str) -> None:
    print(f"[against] {text}", file=sys.stderr, flush=True)


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
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"new": [], "old": []})

    def rates(self, side: str, measure: str) -> list[float]:
        return [float(sample[MEASURES[measure]]) for sample in self.samples[side]]

    def ratios(self) -> list[float]:
        return time_ratios(self.rates("new", self.judge_by), self.rates("old", self.judge_by))


def _known(tally: _Tally) -> str:
    ratios = tally.ratios()
    low, high = median_interval(ratios)
    return f"{len(ratios)} rounds, {tally.judge_by} new/old median in {low:.3f} to {high:.3f} (95%)"


def _settled(tally: _Tally) -> str | None:
    """Why a system needs no more rounds (adaptive mode), or None."""
    ratios = tally.ratios()
    if len(ratios) < MIN_ROUNDS:
        return None
    low, high = median_interval(ratios)
    return f"settled: {_known(tally)}" if (high - low) / 2 <= PRECISION else None


def _side_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One side of one system over the kept rounds: medians and correctness."""
    latencies = [s["median_us"] for s in samples if s["median_us"] is not None]
    return {
        "ops_per_s": round(statistics.median(s["ops_per_s"] for s in samples), 1),
        "cpu_ops_per_s": round(statistics.median(s["cpu_ops_per_s"] for s in samples), 1),
        "median_us": round(statistics.median(latencies), 2) if latencies else None,
        "correct": all(s["correct"] for s in samples),
        "problems": list(dict.fromkeys(p for s in samples for p in s["problems"])),
    }


def _load_case(case: str, sides: dict[str, Side]) -> dict[str, Any]:
    loaded = {name: side.ask(op="load", case=case) for name, side in sides.items()}
    for name, answer in loaded.items():
        if "error" in answer:
            raise CompareError(f"the {name} side failed to load {case}: {answer['error']}")
    return loaded


def compare_case(
    case: str,
    setup: Setup,
    *,
    rounds: int | None,
    adaptive: bool,
    warmup: int,
    max_slowdown: float,
    judge_by: str | None,
) -> dict[str, Any]:
    """Measure one case's stateward systems on both sides, interleaved.

    Every round has a fresh pair of workers, warmed up by ``warmup`` untimed
    measurements of the first system. With ``adaptive``, a system is measured
    for at least `MIN_ROUNDS` rounds, until the 95% interval of its median
    ratio is within ``± PRECISION``, for `MAX_ROUNDS` rounds at most, and the
    case stops after `BUDGET_S` seconds; else for ``rounds`` rounds (or the
    case's own number). ``judge_by`` (``cpu`` or ``wall``) overrides what each
    system's definition says.
    """
    began = time.perf_counter()
    systems: dict[str, dict[str, Any]] = {}
    tallies: dict[str, _Tally] = {}
    live: list[str] = []
    names: list[str] = []
    count = kept = 0
    first = True
    while first or (live and kept < count):
        with workers(setup) as sides:
            loaded = _load_case(case, sides)
            if first:
                first = False
                if "skipped" in loaded["new"]:
                    return {"status": "failed", "why": f"the new side: {loaded['new']['skipped']}"}
                if "skipped" in loaded["old"]:
                    return {"status": "skipped", "why": f"the old side: {loaded['old']['skipped']}"}
                names = list(loaded["new"]["systems"])
                count = MAX_ROUNDS if adaptive else rounds or loaded["new"]["rounds"]
                for name in names:
                    if name not in loaded["old"]["systems"]:
                        why = "the old side has no such system"
                        systems[name] = {"status": "skipped", "why": why}
                live = [n for n in names if n not in systems]
                tallies = {n: _Tally(judge_by or loaded["new"]["systems"][n]) for n in live}
                if not live:
                    break
            # Who goes first alternates over the rounds, half and half.
            order = ("new", "old") if kept % 2 == 0 else ("old", "new")
            kept += 1
            label = f"round {kept}" + ("" if adaptive else f"/{count}")
            for _ in range(warmup):
                name = live[0]
                stopped = _measure_pair(case, name, sides, order, -1, tallies[name], keep=False)
                if stopped is not None:
                    systems[name] = stopped
                    live.remove(name)
                    break
            for name in list(live):
                stopped = _measure_pair(case, name, sides, order, kept, tallies[name], keep=True)
                if stopped is not None:
                    systems[name] = stopped
                    live.remove(name)
                    continue
                tally = tallies[name]
                last = {side: tally.samples[side][-1] for side in ("new", "old")}
                _progress(f"{label}  {case}/{name}: " + _round_text(last))
                settled = _settled(tally) if adaptive else None
                if settled is not None:
                    live.remove(name)
                    _progress(f"{case}/{name}: {settled}")
        if adaptive and kept >= MIN_ROUNDS and time.perf_counter() - began >= BUDGET_S:
            for name in live:
                _progress(f"{case}/{name}: {BUDGET_S:g} s budget used: {_known(tallies[name])}")
            break
    for name, tally in tallies.items():
        if name not in systems:  # not skipped or failed on the way
            systems[name] = _result(tally, max_slowdown)
    return {"status": "measured", "systems": {name: systems[name] for name in names}}


def _measure_pair(
    case: str,
    name: str,
    sides: dict[str, Side],
    order: tuple[str, str],
    round_no: int,
    tally: _Tally,
    keep: bool,
) -> dict[str, Any] | None:
    """One round of one system on both sides, into ``tally``; or why it cannot go on."""
    taken = {}
    for side in order:
        answer = sides[side].ask(op="measure", case=case, system=name, round=round_no)
        if "sample" not in answer:
            why = answer.get("error") or answer.get("skipped", "no answer")
            status = "skipped" if side == "old" else "failed"
            return {"status": status, "why": f"the {side} side: {why}"}
        taken[side] = answer["sample"]
    if not taken["old"]["correct"]:  # this version cannot run it as the case expects
        why = "; ".join(taken["old"]["problems"])
        return {"status": "skipped", "why": f"the old side's checks failed: {why}"}
    if keep:
        for side in ("new", "old"):
            tally.samples[side].append(taken[side])
    else:
        _progress(f"warm-up  {case}/{name}: " + _round_text(taken))
    return None


def _result(tally: _Tally, max_slowdown: float) -> dict[str, Any]:
    """The JSON entry of one measured system."""
    result: dict[str, Any] = {"judged_by": tally.judge_by}
    for measure in MEASURES:
        new_rates, old_rates = tally.rates("new", measure), tally.rates("old", measure)
        result[measure] = judge(new_rates, old_rates, max_slowdown)
    result["status"] = result[tally.judge_by]["status"]
    result["rates"] = {
        f"{side}_{MEASURES[measure]}": [round(r, 1) for r in tally.rates(side, measure)]
        for side in ("new", "old")
        for measure in MEASURES
    }
    for side in ("new", "old"):
        result[side] = _side_summary(tally.samples[side])
    if result["new"]["problems"]:
        result["status"] = "incorrect"
        result["why"] = "the new side's checks failed: " + "; ".join(result["new"]["problems"])
    return result


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
    with (
        terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="stateward-against-", dir=tmp_dir) as tmp,
    ):
        folder = Path(tmp)
        old_root = export(commit, folder / "old")
        results["old"]["checkout"] = str(old_root)
        setup = Setup({"new": ROOT, "old": old_root}, quick, folder, pin)
        _progress(f"new: {ROOT}; old: {ref} ({commit[:12]}) in {old_root}")
        with workers(setup) as sides:  # where each side imports stateward from
            for name, side in sides.items():
                results[name]["imported_from"] = side.hello.get("imported_from")
        for name in CASES:
            if only and name not in only:
                continue
            if CASES[name].around is not None:
                results["cases"][name] = {
                    "status": "skipped",
                    "why": "it runs on a Ray cluster of its own: compared only by a full run",
                }
                continue
            started, load = time.perf_counter(), load_average()
            _progress(f"{name} ...")
            results["cases"][name] = compare_case(
                name,
                setup,
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
