"""Restart latency: from a crash to the next message being handled.

    python benchmarks/restart_latency.py [--crashes 500]

A crashing request is queued with a request behind it; the time runs from the
moment the crashing handler raises to the moment the next handler starts, in
a new incarnation (a new thread) restored from the last committed snapshot.
Prints one JSON document with the median and p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from stateward.actors import ActorCrashed, Runtime, StateManager, Supervisor
from stateward.core import ImmutableState


def measure(crashes: int) -> dict[str, float]:
    samples: list[float] = []
    with Runtime("restart-latency") as runtime:
        sup = Supervisor("bench", runtime=runtime, max_restarts=crashes + 1, within=3600.0)
        store = StateManager({"n": 0}, runtime=runtime, supervisor=sup, on_error="restart")
        marks: dict[str, float] = {}

        def crash(state: ImmutableState) -> ImmutableState:
            marks["crash"] = time.perf_counter()
            raise RuntimeError("injected")

        def next_message(state: ImmutableState) -> ImmutableState:
            marks["next"] = time.perf_counter()
            return state.update(n=state.n + 1)

        for _ in range(crashes):
            failing = store.request_modify(crash)
            following = store.request_modify(next_message)
            try:
                failing.result(timeout=30)
            except ActorCrashed:
                pass
            following.result(timeout=30)
            samples.append(marks["next"] - marks["crash"])
        assert store.restarts == crashes
        assert store.get_state().n == crashes
    samples.sort()
    return {
        "crashes": crashes,
        "median_ms": round(statistics.median(samples) * 1e3, 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e3, 3),
        "max_ms": round(samples[-1] * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=500)
    print(json.dumps(measure(parser.parse_args().crashes), indent=2))


if __name__ == "__main__":
    main()
