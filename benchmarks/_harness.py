"""The measuring loop shared by every case: systems, samples and round-robin rounds.

A case builds a list of `System` objects (one per library or configuration).
`run_rounds` measures them round-robin, ``for round in rounds: for system in
systems: measure once``, so slow drifts of a shared machine (frequency scaling,
other tenants) hit every system alike. `summarize` turns the samples into the
JSON entry of one system: the median over the rounds, the spread, correctness
and notes.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class CaseUnavailable(Exception):
    """A case cannot run here (a library it needs is not installed): the run
    records why and goes on with the next case."""


@dataclass
class Sample:
    """One measurement of one system in one round.

    Attributes:
        ops_per_s: operations completed per second in this measurement.
        median_us: median latency of one operation, or None where one operation
            has no latency of its own (pipelined requests).
        correct: whether the checks after the measurement passed.
        problems: why it was not correct, in words.
        counts: numbers summed over the rounds (rejected calls, lost updates).
        values: numbers whose median over the rounds is reported (memory).
        cpu_ops_per_s: operations per second of CPU time that the whole process
            (every thread) used meanwhile; None where not measured.
    """

    ops_per_s: float
    median_us: float | None
    correct: bool = True
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    cpu_ops_per_s: float | None = None


@dataclass
class System:
    """One contender in a case.

    Attributes:
        name: the key in the JSON output.
        measure: takes the round number, returns one `Sample`.
        note: what the system is and what it does, for the notes column.
        detail: builds the measured part of the notes from the summed counts
            and the median values.
        finish: runs once after the last round, with every sample: it may add
            values to the samples (an untimed memory pass) and returns more
            fields for the JSON entry.
        judge_by: what ``run.py --against`` judges the system by: ``cpu``, the
            process's CPU time, for work that keeps a CPU busy (other processes
            on the machine hardly move it); ``wall``, the wall clock, for work
            that waits on a disk, which CPU time does not see.
    """

    name: str
    measure: Callable[[int], Sample]
    note: str = ""
    detail: Callable[[dict[str, int], dict[str, float]], str] | None = None
    finish: Callable[[list[Sample]], dict[str, Any]] | None = None
    judge_by: str = "cpu"


def measure_once(system: System, round_no: int) -> Sample:
    """One measurement of ``system``, after a full garbage collection."""
    gc.collect()  # garbage of the previous measurement is not this one's cost
    return system.measure(round_no)


def run_rounds(systems: list[System], rounds: int) -> dict[str, list[Sample]]:
    """Measure every system once per round, round-robin."""
    samples: dict[str, list[Sample]] = {s.name: [] for s in systems}
    for round_no in range(rounds):
        for system in systems:
            samples[system.name].append(measure_once(system, round_no))
    return samples


def summarize(system: System, samples: list[Sample]) -> dict[str, Any]:
    """The JSON entry of one system from its samples (after its `System.finish`)."""
    extra = system.finish(samples) if system.finish is not None else {}
    rates = [s.ops_per_s for s in samples]
    latencies = [s.median_us for s in samples if s.median_us is not None]
    counts: dict[str, int] = {}
    for sample in samples:
        for key, value in sample.counts.items():
            counts[key] = counts.get(key, 0) + value
    keys = {key for sample in samples for key in sample.values}
    values = {
        key: statistics.median(s.values[key] for s in samples if key in s.values)
        for key in sorted(keys)
    }
    problems = list(dict.fromkeys(p for s in samples for p in s.problems))
    notes = [system.note] if system.note else []
    if system.detail is not None:
        detail = system.detail(counts, values)
        if detail:
            notes.append(detail)
    notes += problems
    entry: dict[str, Any] = {
        "ops_per_s": round(statistics.median(rates), 1),
        "median_us": round(statistics.median(latencies), 2) if latencies else None,
        "correct": all(s.correct for s in samples),
        "notes": "; ".join(notes),
        "spread": {
            "ops_per_s_min": round(min(rates), 1),
            "ops_per_s_max": round(max(rates), 1),
            "median_us_min": round(min(latencies), 2) if latencies else None,
            "median_us_max": round(max(latencies), 2) if latencies else None,
            "rounds": len(samples),
        },
        "rounds": {
            "ops_per_s": [round(r, 1) for r in rates],
            "median_us": [None if s.median_us is None else round(s.median_us, 2) for s in samples],
        },
    }
    cpu_rates = [s.cpu_ops_per_s for s in samples if s.cpu_ops_per_s is not None]
    if cpu_rates:
        entry["cpu_ops_per_s"] = round(statistics.median(cpu_rates), 1)
    if counts:
        entry["counts"] = counts
    if values:
        entry["values"] = {key: round(value, 3) for key, value in values.items()}
    entry.update(extra)
    return entry


def run_case(systems: list[System], rounds: int) -> dict[str, dict[str, Any]]:
    """Measure ``systems`` round-robin and summarize each one."""
    samples = run_rounds(systems, rounds)
    return {s.name: summarize(s, samples[s.name]) for s in systems}


class Stopwatch:
    """The wall-clock and the CPU time of the timed part of one measurement.

    CPU time is the whole process's, every thread's (`time.process_time`). On
    a shared machine it leaves out the time other processes held the CPUs,
    which the wall clock counts: ``run.py --against`` compares both.
    """

    __slots__ = ("_began", "cpu", "wall")

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._began = (0.0, 0.0)

    def start(self) -> Stopwatch:
        self._began = (time.perf_counter(), time.process_time())
        return self

    def stop(self) -> Stopwatch:
        wall, cpu = time.perf_counter(), time.process_time()
        self.wall, self.cpu = wall - self._began[0], cpu - self._began[1]
        return self

    def rates(self, done: float) -> tuple[float, float]:
        """``done`` operations per wall-clock second and per CPU second."""
        return done / self.wall, done / max(self.cpu, 1e-9)


def timed_calls(call: Callable[[int], Any], count: int) -> tuple[Stopwatch, float]:
    """Run ``call(i)`` for i in range(count); return the stopwatch and the median µs.

    Every call is timed on its own; the rate counts the timing overhead too,
    which is the same for every system.
    """
    samples = [0.0] * count
    clock = time.perf_counter
    timed = Stopwatch().start()
    for i in range(count):
        started = clock()
        call(i)
        samples[i] = clock() - started
    timed.stop()
    return timed, statistics.median(samples) * 1e6


def rss_mib() -> float | None:
    """The resident set size of this process in MiB (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(ordered: list[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of an ascending list (nearest rank)."""
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def cpus_allowed() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def cpus() -> int:
    """How many CPUs this process may run on."""
    return len(cpus_allowed())


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine skews results."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
