"""The ``stateward demo`` options: what each means, its default, and what it accepts."""

from __future__ import annotations

import argparse

from stateward.actors._pool_host import DEFAULT_WORKERS
from stateward.actors.stores._sqlite import DURABILITY_MODES

#: Order machines the demo starts when not told otherwise.
DEFAULT_MACHINES = 100_000
#: Shards of ``demo --ray`` when not told otherwise.
DEFAULT_SHARDS = 2


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text.replace(",", ""))
    except ValueError:
        example = "2000 or 2,000" if kind is int else "2.5"
        raise argparse.ArgumentTypeError(
            f"expected a {'whole ' if kind is int else ''}number such as {example}, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def workers(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"must be 0 (a thread per machine) or more (a pool of that many threads), got {value}"
        )
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float))
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 and finite, got {text!r}")
    return value


def rate(text: str) -> float:
    value = float(_number(text, float))
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def add_demo_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``demo`` command and its options to ``commands``; return its parser."""
    demo = commands.add_parser(
        "demo",
        help="run a supervised order-processing daemon, then verify what it stored",
        description="Create order machines under a supervisor on a SQLite store, drive them "
        "from client threads with blocking, pipelined and fanned-out transitions and "
        "modify calls while crashing a seeded fraction of them (each crashed machine "
        "restarts from its last committed snapshot), then shut down, reopen the store "
        "and verify that every acknowledged transition is there, no update was lost, "
        "each history fits its state, the restarts match the crashes, and every actor "
        "and thread stopped. Reports machines, threads, memory per machine, the "
        "creation rate, transitions per second and the shutdown time. Exits 1 if any "
        "check fails.",
    )
    demo.add_argument(
        "--machines",
        type=positive_int,
        default=DEFAULT_MACHINES,
        metavar="N",
        help=f"order machines to create (default {DEFAULT_MACHINES:,})",
    )
    demo.add_argument(
        "--clients",
        type=positive_int,
        default=8,
        metavar="N",
        help="client threads driving them, each its own share of the machines (default 8)",
    )
    demo.add_argument(
        "--seconds",
        type=positive_float,
        default=5.0,
        help="how long the clients run (default 5)",
    )
    demo.add_argument(
        "--workers",
        type=workers,
        default=None,
        metavar="N",
        help=f"the runtime's pool of worker threads (default {DEFAULT_WORKERS}, the runtime's); "
        "0 gives each machine a thread of its own (a few thousand machines at most)",
    )
    demo.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite store (default: a new file in a temporary folder, "
        "removed when every check passed)",
    )
    demo.add_argument(
        "--durability",
        choices=DURABILITY_MODES,
        default="batched",
        help="the store's durability mode (default batched: every reply "
        "waits for its fsync, shared with other commits)",
    )
    demo.add_argument(
        "--crash-rate",
        type=rate,
        default=0.01,
        metavar="RATE",
        help="the fraction of transitions that crash their machine (default 0.01)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seed for the clients (default 1)")
    demo.add_argument(
        "--memory",
        choices=("rss", "tracemalloc"),
        default="rss",
        help="how to measure memory per machine: rss (default: the process's resident set "
        "growth while creating them) or tracemalloc (Python allocations only; creation "
        "runs about half as fast)",
    )
    demo.add_argument(
        "--progress-every",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="seconds between progress updates (default 0.5 on a terminal, where one line "
        "is rewritten; 5 otherwise, as 'progress:' lines)",
    )
    demo.add_argument(
        "--json", action="store_true", help="print the report as JSON (progress goes to stderr)"
    )
    demo.add_argument(
        "--ray",
        action="store_true",
        help="run the machines on a local Ray cluster that the demo starts and stops itself "
        "(its files in a temporary folder), on the shards of a RayRuntime over the same "
        "store; the same checks. Needs the ray extra (pip install 'stateward[ray]')",
    )
    demo.add_argument(
        "--shards",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"with --ray: the RayRuntime's shards (default {DEFAULT_SHARDS})",
    )
    return demo
