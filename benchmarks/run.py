"""stateward side by side with transitions, python-statemachine, provide-foundation
and raw pykka, in one process.

    python -m pip install -e '.[bench]'
    python benchmarks/run.py [--quick] [--out results.json] [--markdown docs/benchmarks.md]

Every case runs every system interleaved over several rounds (round-robin), and
reports each system's median and spread. Ratios stateward/peer are taken round
by round within this run, and the issue's targets are checked against them.
The JSON document goes to ``--out`` (or stdout); ``--markdown`` renders it as
the page docs/benchmarks.md. ``--from results.json --markdown PATH`` renders a
saved run again without measuring. ``--quick`` uses tiny counts: it checks that
the harness works and that stateward is correct, and says nothing about speed.
The Ray cases (``ray_blocking``, ``ray_pipelined``: benchmarks/_ray_cases.py)
each start and stop a local Ray cluster of their own; without Ray installed
(the ``ray`` extra) they are listed under ``unavailable`` and the run goes on.

    python benchmarks/run.py --cases spawn_machines [--spawn-count N] [--spawn-alone 1000000]

``--spawn-count`` sets stateward's machines in spawn_machines (the peers keep
theirs), ``--spawn-alone`` adds stateward alone at N machines. A stateward that
starts a thread per actor is measured at a count the host can take (the case
notes say so), and a count it cannot reach is refused before anything runs.

    python benchmarks/run.py --against GIT_REF [--cases ...] [--rounds N]

compares this checkout with an older version instead (benchmarks/_compare.py):
stateward's own systems in both, each version in its own worker process,
interleaved round by round; per system the median of the per-round time ratios
new/old with their spread, and exit status 1 when one is more than
``--max-slowdown`` (default 0.10) slower.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _compare
from _cases import CASES
from _harness import CaseUnavailable, cpus, cpus_allowed, load_average, run_case
from _report import render_comparison, render_markdown
from _sides import CompareError
from _systems import FULL, QUICK, Peers, thread_host_cap, thread_limit, threads_per_machine

#: Distributions whose versions the results record.
VERSIONED = (
    "stateward",
    "pykka",
    "transitions",
    "python-statemachine",
    "provide-foundation",
    "automat",
)


def _ratios(case: dict[str, Any], top: str, bottom: str, key: str) -> dict[str, float] | None:
    """Median, min and max of the per-round ratios ``top / bottom`` of ``key``."""
    if top not in case or bottom not in case:
        return None
    pairs = zip(case[top]["rounds"][key], case[bottom]["rounds"][key], strict=True)
    ratios = [a / b for a, b in pairs if a is not None and b]
    if not ratios:
        return None
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
    }


def all_ratios(cases: dict[str, Any]) -> dict[str, Any]:
    """stateward / every other system, ops per second, for each case that has both."""
    out: dict[str, Any] = {}
    for name, case in cases.items():
        if "stateward" not in case:
            continue
        ratios = {
            f"stateward/{peer}": _ratios(case, "stateward", peer, "ops_per_s")
            for peer in case
            if peer != "stateward"
        }
        ratios = {k: v for k, v in ratios.items() if v is not None}
        if ratios:
            out[name] = ratios
    return out


def _target(
    text: str,
    case: str,
    measured: dict[str, float] | float | None,
    passes: Callable[[float], bool],
    unit: str,
    *,
    also: bool = True,
    why_not: str = "",
) -> dict[str, Any]:
    spread = measured if isinstance(measured, dict) else None
    value = spread["median"] if spread else measured
    entry: dict[str, Any] = {"target": text, "case": case, "measured": value, "unit": unit}
    if spread:
        entry["spread"] = [spread["min"], spread["max"]]
    if value is None:
        entry.update(met=False, status="n/a")
    else:
        met = bool(passes(value)) and also
        entry.update(met=met, status="met" if met else "missed")
    if why_not and value is not None and not also:
        entry["why"] = why_not
    return entry


def check_targets(cases: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each measured within this run."""
    targets: list[dict[str, Any]] = []
    one = cases.get("blocking_transition_1thread", {})
    if one:
        targets += [
            _target(
                "blocking_transition_1thread: ≥ 1.5x transitions LockedMachine's throughput",
                "blocking_transition_1thread",
                _ratios(one, "stateward", "transitions-LockedMachine", "ops_per_s"),
                lambda r: r >= 1.5,
                "x",
            ),
            _target(
                "blocking_transition_1thread: ≥ 2.5x python-statemachine's throughput",
                "blocking_transition_1thread",
                _ratios(one, "stateward", "python-statemachine", "ops_per_s"),
                lambda r: r >= 2.5,
                "x",
            ),
            _target(
                "blocking_transition_1thread: median latency ≤ 1.5x raw pykka ask()",
                "blocking_transition_1thread",
                _ratios(one, "stateward", "pykka-ask", "median_us"),
                lambda r: r <= 1.5,
                "x",
            ),
        ]
    four = cases.get("blocking_transition_4threads", {})
    if four:
        correct = bool(four.get("stateward", {}).get("correct"))
        targets.append(
            _target(
                "blocking_transition_4threads: ≥ 2x LockedMachine's throughput, and correct",
                "blocking_transition_4threads",
                _ratios(four, "stateward", "transitions-LockedMachine", "ops_per_s"),
                lambda r: r >= 2.0,
                "x",
                also=correct,
                why_not="stateward's checks failed",
            )
        )
    piped = cases.get("pipelined_transitions", {})
    if piped:
        targets += [
            _target(
                "pipelined_transitions: ≥ 150,000 transitions per second",
                "pipelined_transitions",
                piped.get("stateward", {}).get("ops_per_s"),
                lambda r: r >= 150_000,
                " /s",
            ),
            _target(
                "pipelined_transitions: ≥ 7x LockedMachine",
                "pipelined_transitions",
                _ratios(piped, "stateward", "transitions-LockedMachine", "ops_per_s"),
                lambda r: r >= 7.0,
                "x",
            ),
        ]
    reads = cases.get("reads_under_write", {})
    if reads:
        targets += [
            _target(
                "reads_under_write: ≥ 50x LockedMachine's consistent reads (under its lock)",
                "reads_under_write",
                _ratios(reads, "stateward", "transitions-LockedMachine-locked", "ops_per_s"),
                lambda r: r >= 50.0,
                "x",
            ),
            _target(
                "reads_under_write: ≥ 50x LockedMachine's lock-free attribute reads (torn)",
                "reads_under_write",
                _ratios(reads, "stateward", "transitions-LockedMachine", "ops_per_s"),
                lambda r: r >= 50.0,
                "x",
            ),
        ]
    modify = cases.get("modify_8threads", {})
    if modify and "stateward" in modify:
        targets.append(
            _target(
                "modify_8threads: exact, and ≥ 30,000 per second",
                "modify_8threads",
                modify["stateward"]["ops_per_s"],
                lambda r: r >= 30_000,
                " /s",
                also=bool(modify["stateward"]["correct"]),
                why_not="updates were lost",
            )
        )
    durable = cases.get("durable_transitions", {})
    if durable:
        targets.append(
            _target(
                "durable_transitions: batched with 32 callers ≥ 20x strict with 1 caller",
                "durable_transitions",
                _ratios(durable, "stateward-batched-32", "stateward-strict-1", "ops_per_s"),
                lambda r: r >= 20.0,
                "x",
            )
        )
    if durable:
        targets.append(
            _target(
                "durable_transitions: batched with 32 callers ≥ 0.25x memory with 32 callers",
                "durable_transitions",
                _ratios(durable, "stateward-batched-32", "stateward-memory-32", "ops_per_s"),
                lambda r: r >= 0.25,
                "x",
            )
        )
    durable_pipelined = _ratios(
        durable, "stateward-batched-pipelined", "stateward-memory-pipelined", "ops_per_s"
    )
    if durable_pipelined is not None:
        piped_entry = durable["stateward-batched-pipelined"]
        targets.append(
            _target(
                f"durable_transitions: one caller with {piped_entry.get('in_flight', 0):,} in "
                f"flight over {piped_entry.get('machines', 0)} machines, batched ≥ 0.5x memory",
                "durable_transitions",
                durable_pipelined,
                lambda r: r >= 0.5,
                "x",
            )
        )
    targets += spawn_targets(cases.get("spawn_machines", {}))
    fanout = cases.get("fanout_transitions", {})
    if fanout:
        machines = fanout.get("stateward", {}).get("machines", 0)
        targets.append(
            _target(
                f"fanout_transitions: one transition on each of {machines:,} machines ≥ the "
                "single-machine pipelined rate",
                "fanout_transitions",
                _ratios(fanout, "stateward", "stateward-one-machine", "ops_per_s"),
                lambda r: r >= 1.0,
                "x",
            )
        )
    fair = cases.get("fairness", {}).get("stateward")
    if fair:
        quantum = fair.get("quantum") or 0
        nominal = "" if fair.get("quantum_named") else ", nominal"
        targets.append(
            _target(
                f"fairness: each of {fair.get('cells', 0):,} cells answered within one quantum "
                f"({quantum:,.0f} messages{nominal}) of a cell with {fair.get('backlog', 0):,} "
                "queued",
                "fairness",
                fair.get("max_lag"),
                lambda lag: lag <= quantum,
                " messages (max lag)",
                also=bool(fair["correct"]),
                why_not="messages were lost",
            )
        )
    targets += asyncio_targets(cases)
    targets += ray_targets(cases)
    restart = cases.get("restart_latency", {}).get("stateward")
    if restart:
        targets.append(
            _target(
                "restart_latency: median < 5 ms",
                "restart_latency",
                restart.get("median_ms"),
                lambda r: r < 5.0,
                " ms",
            )
        )
    return targets


def asyncio_targets(cases: dict[str, Any]) -> list[dict[str, Any]]:
    """The asyncio cases' targets (issue 15)."""
    targets: list[dict[str, Any]] = []
    one = cases.get("asyncio_one_at_a_time", {})
    if one:
        targets.append(
            _target(
                "asyncio_one_at_a_time: ≥ 5x python-statemachine's await sm.send()",
                "asyncio_one_at_a_time",
                _ratios(one, "stateward", "python-statemachine", "ops_per_s"),
                lambda r: r >= 5.0,
                "x",
            )
        )
    flight = cases.get("asyncio_in_flight", {})
    if flight:
        targets.append(
            _target(
                "asyncio_in_flight: ≥ 10x python-statemachine one at a time",
                "asyncio_in_flight",
                _ratios(flight, "stateward", "python-statemachine-one-at-a-time", "ops_per_s"),
                lambda r: r >= 10.0,
                "x",
            )
        )
        lag = flight.get("stateward", {}).get("values", {}).get("lag_p99_ms")
        targets.append(
            _target(
                "asyncio_in_flight: the event loop's lag p99 ≤ 10 ms while it runs",
                "asyncio_in_flight",
                lag,
                lambda ms: ms <= 10.0,
                " ms",
            )
        )
    return targets


def ray_targets(cases: dict[str, Any]) -> list[dict[str, Any]]:
    """The Ray cases' targets (issue 16), each against raw Ray in the same run."""
    targets: list[dict[str, Any]] = []
    blocking = cases.get("ray_blocking", {})
    if blocking:
        targets.append(
            _target(
                "ray_blocking: median latency ≤ 1.5x a raw Ray actor call doing the same "
                "transition and store write",
                "ray_blocking",
                _ratios(blocking, "stateward", "raw-ray", "median_us"),
                lambda r: r <= 1.5,
                "x",
                also=all(entry["correct"] for entry in blocking.values()),
                why_not="a system's checks failed",
            )
        )
    piped = cases.get("ray_pipelined", {})
    if piped:
        entry = piped.get("stateward", {})
        targets.append(
            _target(
                f"ray_pipelined: {entry.get('in_flight', 0):,} in flight over "
                f"{entry.get('machines', 0):,} machines on 2 shards ≥ 10x raw Ray with one "
                "call per request",
                "ray_pipelined",
                _ratios(piped, "stateward", "raw-ray", "ops_per_s"),
                lambda r: r >= 10.0,
                "x",
                also=all(entry["correct"] for entry in piped.values()),
                why_not="a system's checks failed",
            )
        )
    return targets


#: Threads a pooled runtime may add beyond its workers (a timer, a supervisor).
SPAWN_SPARE_THREADS = 4


def spawn_targets(spawn: dict[str, Any]) -> list[dict[str, Any]]:
    """spawn_machines' targets, for stateward and for ``stateward-N`` (alone)."""
    targets: list[dict[str, Any]] = []
    for name, entry in spawn.items():
        if name != "stateward" and not name.startswith("stateward-"):
            continue
        values = entry.get("values", {})
        at = f"spawn_machines ({name} at {entry.get('machines', 0):,})"
        if name == "stateward":
            peer = spawn.get("transitions-Machine")
            at_peer = f", transitions at {peer['machines']:,}" if peer else ""
            targets.append(
                _target(
                    f"{at[:-1]}{at_peer}): created ≥ 30x as fast as transitions' Machine",
                    "spawn_machines",
                    _ratios(spawn, "stateward", "transitions-Machine", "ops_per_s"),
                    lambda r: r >= 30.0,
                    "x",
                )
            )
        targets.append(
            _target(
                f"{at}: ≤ 1 KiB per machine (tracemalloc)",
                "spawn_machines",
                values.get("tracemalloc_bytes_per_machine"),
                lambda b: b <= 1024,
                " B",
            )
        )
        if name == "stateward":
            workers = int(values.get("workers", 0))
            targets.append(
                _target(
                    f"{at}: threads ≤ workers ({workers}) + {SPAWN_SPARE_THREADS}",
                    "spawn_machines",
                    values.get("threads"),
                    lambda t, limit=workers + SPAWN_SPARE_THREADS: t <= limit,
                    " threads",
                )
            )
        create, shutdown = values.get("create_s"), values.get("shutdown_s")
        targets.append(
            _target(
                f"{at}: shutdown no slower than creation "
                f"({'-' if create is None else f'{create:.2f}'} s)",
                "spawn_machines",
                shutdown / create if create and shutdown is not None else None,
                lambda r: r <= 1.0,
                "x creation time",
            )
        )
    return targets


def _versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def run(
    quick: bool,
    only: list[str] | None,
    tmp_dir: Path | None,
    command: str,
    spawn_count: int | None = None,
    spawn_alone: int = 0,
) -> dict[str, Any]:
    """Measure every case (or ``only`` these) and return the results document.

    ``spawn_count`` sets stateward's count in spawn_machines; ``spawn_alone``
    adds stateward alone at that count (`refuse_thread_counts` checks both).
    """
    sizes = QUICK if quick else FULL
    if spawn_count is not None:
        sizes = dataclasses.replace(sizes, spawn_stateward=spawn_count)
    if spawn_alone:
        sizes = dataclasses.replace(sizes, spawn_alone=spawn_alone)
    peers = Peers()
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": cpus(),
        "platform": f"{platform.system()} {platform.machine()}",
        "mode": "quick" if quick else "full",
        "command": command,
        "versions": _versions(),
        "missing": peers.missing,
        "load_average_at_start": load_average(),
        "cases": {},
        "case_info": {},
        "unavailable": {},
    }
    began = time.perf_counter()
    for name, case in CASES.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        load = load_average()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            with (
                tempfile.TemporaryDirectory(prefix="stateward-bench-", dir=tmp_dir) as scratch,
                case.around() if case.around else contextlib.nullcontext(),
            ):
                systems = case.build(sizes, peers, Path(scratch))
                results["cases"][name] = run_case(systems, case.rounds(sizes))
        except CaseUnavailable as exc:
            results["unavailable"][name] = str(exc)
            print(f"[bench] {name}: not measured: {exc}", file=sys.stderr, flush=True)
            continue
        seconds = time.perf_counter() - started
        results["case_info"][name] = {"seconds": round(seconds, 1), "load_average_at_start": load}
        print(f"[bench] {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - began, 1)
    results["load_average_at_end"] = load_average()
    results["ratios"] = all_ratios(results["cases"])
    results["targets"] = check_targets(results["cases"])
    return results


def refuse_thread_counts(counts: dict[str, int | None]) -> str | None:
    """Why these stateward machine counts cannot run here, or None.

    A stateward that starts a thread per actor (measured on a throwaway
    runtime) cannot reach a count near the process's thread limit: Linux stops
    a process at about 32,000 threads, and the try would take minutes before
    failing. A pooled stateward runs any count.
    """
    wanted = {option: n for option, n in counts.items() if n}
    if not wanted or threads_per_machine() < 0.5:
        return None
    cap = thread_host_cap()
    over = {option: n for option, n in wanted.items() if n > cap}
    if not over:
        return None
    shown = ", ".join(f"{option} {n:,}" for option, n in over.items())
    return (
        f"{shown}: this stateward starts one thread per actor and this process may start "
        f"about {thread_limit():,} threads, so it is measured at {cap:,} machines at most; "
        f"ask for {cap:,} or fewer (a pooled stateward runs any count)"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"a fraction such as 0.10 for 10%, got {text}")
    return value


def _cpu_list(text: str) -> list[int]:
    try:
        cpus = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"CPU numbers separated by commas, got {text!r}") from None
    allowed = cpus_allowed()
    if not set(cpus) <= allowed:
        raise argparse.ArgumentTypeError(f"this process may only run on CPUs {sorted(allowed)}")
    return cpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (checks, not speed)")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    parser.add_argument("--markdown", type=Path, help="write the Markdown page here")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="render this saved JSON instead of measuring",
    )
    parser.add_argument(
        "--cases", help=f"comma-separated subset of: {', '.join(CASES)}", default=None
    )
    parser.add_argument(
        "--tmp-dir", type=Path, help="where the cases put their files (durable_transitions' SQLite)"
    )
    parser.add_argument(
        "--spawn-count",
        type=_positive_int,
        help=f"stateward's machines in spawn_machines (default: {FULL.spawn:,}, {QUICK.spawn:,} "
        f"with --quick, like the peers, but {FULL.spawn_thread_host:,} when stateward starts a "
        "thread per actor; a count such a stateward cannot reach is refused)",
    )
    parser.add_argument(
        "--spawn-alone",
        type=_positive_int,
        metavar="N",
        help="spawn_machines also creates N stateward machines alone, without the peers "
        "(the issue's 1,000,000; refused up front when stateward starts a thread per actor "
        "and N is near the thread limit)",
    )
    against = parser.add_argument_group(
        "comparing two versions",
        "--against GIT_REF measures stateward's own systems in this checkout and in GIT_REF, "
        "interleaved round by round, and fails (exit status 1) when one is slower than "
        "--max-slowdown",
    )
    against.add_argument("--against", metavar="GIT_REF", help="the version to compare with")
    against.add_argument(
        "--rounds",
        type=_positive_int,
        help=f"rounds per system (default: at least {_compare.MIN_ROUNDS}, until the median "
        f"ratio is known within ±{_compare.PRECISION:g}, at most {_compare.MAX_ROUNDS} rounds "
        f"or {_compare.BUDGET_S:g} s; with --quick, each case's own rounds)",
    )
    against.add_argument(
        "--cpus",
        type=_cpu_list,
        help="pin both workers to these CPUs, e.g. 1 or 0,1 (Linux)",
    )
    against.add_argument(
        "--warmup",
        type=int,
        default=_compare.WARMUP,
        help=f"untimed rounds first (default {_compare.WARMUP})",
    )
    against.add_argument(
        "--max-slowdown",
        type=_fraction,
        default=_compare.MAX_SLOWDOWN,
        help="the median time ratio new/old may exceed 1 by this much (default 0.10)",
    )
    against.add_argument(
        "--judge-by",
        choices=sorted(_compare.MEASURES),
        help="judge every system by the worker's CPU time or by the wall clock (default: "
        "CPU time, and the wall clock for the systems that wait on a disk)",
    )
    args = parser.parse_args(argv)
    if args.against is None and (args.rounds is not None or args.warmup != _compare.WARMUP):
        parser.error("--rounds and --warmup go with --against")
    spawn_options = {"--spawn-count": args.spawn_count, "--spawn-alone": args.spawn_alone}
    if args.against is not None and any(spawn_options.values()):
        parser.error("--spawn-count and --spawn-alone measure one version: not with --against")
    if args.source is None:
        refused = refuse_thread_counts(spawn_options)
        if refused:
            parser.error(refused)
    if args.source is not None:
        results = json.loads(args.source.read_text())
    else:
        only = [c.strip() for c in args.cases.split(",")] if args.cases else None
        unknown = [c for c in only or [] if c not in CASES]
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
        command = shlex.join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])])
        if args.against is not None:
            try:
                results = _compare.compare(
                    args.against,
                    only,
                    quick=args.quick,
                    rounds=args.rounds,
                    warmup=args.warmup,
                    max_slowdown=args.max_slowdown,
                    judge_by=args.judge_by,
                    pin=args.cpus,
                    tmp_dir=args.tmp_dir,
                    command=command,
                )
            except CompareError as exc:
                print(f"[against] {exc}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print("[against] interrupted; the temporary checkout is removed", file=sys.stderr)
                return 130
        else:
            results = run(
                args.quick, only, args.tmp_dir, command, args.spawn_count, args.spawn_alone or 0
            )
        text = json.dumps(results, indent=2, ensure_ascii=False)
        if args.out is not None:
            args.out.write_text(text + "\n")
        else:
            print(text)
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(results))
    if results.get("kind") == "comparison":
        print(render_comparison(results), file=sys.stderr)
        return 0 if args.source is not None or results["passed"] else 1
    for target in results.get("targets", []):
        measured = target.get("measured")
        status = target.get("status", "met" if target.get("met") else "missed")
        shown = "n/a" if measured is None else f"{measured:,.3f}{target.get('unit', '')}"
        print(f"[bench] {status:>6}  {shown:>14}  {target['target']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
