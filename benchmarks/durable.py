"""Durable transitions per second: SQLiteStore strict, batched and snapshot
against MemoryStore, with 1 caller and with 32 callers across 32 machines.

    python benchmarks/durable.py [--seconds 2] [--rounds 3]

All modes run in one process, interleaved round by round; each round uses a
fresh store file in a temporary folder. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from stateward.actors import MemoryStore, Runtime, SQLiteStore, StateMachine

MODES = ("memory", "strict", "batched", "snapshot")
TOGGLE = {"a": ["b"], "b": ["a"]}


def _store(mode: str, folder: Path, label: str) -> MemoryStore | SQLiteStore:
    if mode == "memory":
        return MemoryStore()
    return SQLiteStore(folder / f"{mode}-{label}.db", durability=mode)


def run_case(mode: str, callers: int, seconds: float, folder: Path, round_no: int) -> float:
    """Transitions per second with ``callers`` threads, one machine each."""
    store = _store(mode, folder, f"{callers}-{round_no}")
    with Runtime(f"durable-{mode}", store=store) as runtime:
        machines = [
            StateMachine("a", TOGGLE, name=f"m{i}", runtime=runtime) for i in range(callers)
        ]
        start = threading.Barrier(callers + 1, timeout=60)
        stop_at = [0.0]
        counts = [0] * callers

        def drive(index: int) -> None:
            machine = machines[index]
            start.wait()
            done = 0
            while time.perf_counter() < stop_at[0]:
                machine.transition("b" if done % 2 == 0 else "a")
                done += 1
            counts[index] = done

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        stop_at[0] = began + seconds
        start.wait()
        for thread in threads:
            thread.join(seconds + 60)
        elapsed = time.perf_counter() - began
        for machine, count in zip(machines, counts, strict=True):
            assert machine.version == count, "a transition was lost"
    return sum(counts) / elapsed


def measure(seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    results: dict[str, list[float]] = {f"{m}/{c}": [] for m in MODES for c in (1, 32)}
    with tempfile.TemporaryDirectory() as folder:
        for round_no in range(rounds):
            for callers in (1, 32):
                for mode in MODES:
                    rate = run_case(mode, callers, seconds, Path(folder), round_no)
                    results[f"{mode}/{callers}"].append(rate)
    return {
        key: {
            "per_s": round(statistics.median(v), 1),
            "min": round(min(v), 1),
            "max": round(max(v), 1),
        }
        for key, v in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    summary: dict[str, object] = dict(measure(args.seconds, args.rounds))
    strict_1 = summary["strict/1"]["per_s"]  # type: ignore[index]
    batched_32 = summary["batched/32"]["per_s"]  # type: ignore[index]
    summary["ratio_batched32_to_strict1"] = round(batched_32 / strict_1, 2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
