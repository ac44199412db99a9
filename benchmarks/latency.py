"""Blocking-call latency and contended modify rate, next to a raw pykka ask().

    python benchmarks/latency.py [--rounds 5] [--calls 5000]

All systems run in one process, interleaved round by round, so the ratios
compare like with like on a noisy machine. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import pykka

from stateward.actors import Runtime, StateMachine, StateManager


class _Echo(pykka.ThreadingActor):
    def on_receive(self, message: object) -> object:
        return message


def _median_us(fn, calls: int) -> float:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def _modify_rate(manager: StateManager, threads: int, per_thread: int) -> float:
    start = threading.Barrier(threads + 1, timeout=60)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            manager.modify(lambda s: s.update(n=s.n + 1))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join(120)
    return threads * per_thread / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()

    echo = _Echo.start()
    results: dict[str, list[float]] = {
        "pykka_ask_us": [],
        "transition_us": [],
        "transition_threaded_us": [],
        "modify_8threads_per_s": [],
    }
    with (
        Runtime("latency") as inline_rt,
        Runtime("latency-threaded", inline_calls=False) as threaded_rt,
    ):
        machines = [
            StateMachine("a", {"a": ["b"], "b": ["a"]}, runtime=rt)
            for rt in (inline_rt, threaded_rt)
        ]
        for round_no in range(args.rounds):
            results["pykka_ask_us"].append(_median_us(lambda: echo.ask(1), args.calls))
            for key, machine in zip(
                ("transition_us", "transition_threaded_us"), machines, strict=True
            ):
                flip = iter(["b", "a"] * args.calls)
                results[key].append(
                    _median_us(lambda m=machine, f=flip: m.transition(next(f)), args.calls)
                )
            manager = StateManager({"n": 0}, runtime=inline_rt, name=f"counter-{round_no}")
            results["modify_8threads_per_s"].append(_modify_rate(manager, 8, 2000))
            assert manager.get_state().n == 16000 and manager.version == 16000
    echo.stop()
    summary = {
        key: {
            "median": round(statistics.median(v), 2),
            "min": round(min(v), 2),
            "max": round(max(v), 2),
        }
        for key, v in results.items()
    }
    pykka_us = summary["pykka_ask_us"]["median"]
    summary["ratio_transition_to_pykka_ask"] = round(
        summary["transition_us"]["median"] / pykka_us, 3
    )
    summary["ratio_threaded_transition_to_pykka_ask"] = round(
        summary["transition_threaded_us"]["median"] / pykka_us, 3
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
