"""The ``stateward`` command line: arguments, dispatch, exit codes.

    stateward demo [--machines 100000] [--seconds 5] [--workers 4] [--store PATH] [--json] ...
    stateward inspect PATH [--history NAME] [--json]
    stateward graph MODULE:ATTR [--format mermaid|dot]
    stateward top URL [--interval 2] [--once]

Exit codes: 0 ok, 1 failed (a demo check, a store that cannot be read),
2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from stateward.actors import StoreError
from stateward.core import StatewardError

from ._demo import run_demo
from ._demo_args import add_demo_parser
from ._graph import run_graph
from ._inspect import run_inspect
from ._top import add_top_parser, run_top
from ._usage import NotFound, UsageError

_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stateward",
        description="Actor-based concurrent state: state machines, stores and versioned "
        "config that many threads and coroutines change at once.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _SUBPARSERS.clear()

    demo = add_demo_parser(commands)

    inspect = commands.add_parser(
        "inspect",
        help="list the actors in a store, or one actor's history",
        description="List every actor in a SQLite store: name, kind, version, current state "
        "(or keys) and last change. Opens the file read-only.",
    )
    inspect.add_argument("path", metavar="PATH", help="the store file")
    inspect.add_argument("--history", metavar="NAME", help="show this actor's history")
    inspect.add_argument("--json", action="store_true", help="print JSON")

    graph = commands.add_parser(
        "graph",
        help="draw a machine definition as Mermaid or Graphviz dot",
        description="Draw the machine named MODULE:ATTR (a MachineSpec, a MachineBuilder, a "
        "StateChart class, a StateMachine or a RowMachines) with its initial and terminal "
        "states marked and event names on the edges (with their guards).",
    )
    graph.add_argument("target", metavar="MODULE:ATTR", help="for example myapp.orders:flow")
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="the output format (default mermaid)",
    )
    top = add_top_parser(commands)
    _SUBPARSERS.update(demo=demo, inspect=inspect, graph=graph, top=top)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``stateward`` command in this process and return its exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``),
            for example ``["inspect", "shop.db", "--json"]``.
        out: where the command writes its output (default: ``sys.stdout``).
        err: where errors and usage go (default: ``sys.stderr``); ``demo
            --json`` writes its progress here too.

    Returns:
        0 when the command succeeded; 1 when it failed (a demo check failed, a
        store could not be read); 2 for a bad argument found after parsing
        (an unknown actor, a ``MODULE:ATTR`` that names no machine); 130 when
        interrupted.

    Raises:
        SystemExit: from argparse, for ``--help`` (code 0) and for arguments it
            refuses itself (code 2), as in any argparse program.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args, out, err)
        if args.command == "inspect":
            return run_inspect(args, out, err)
        if args.command == "top":
            return run_top(args, out)
        return run_graph(args, out)
    except UsageError as exc:
        _SUBPARSERS[args.command].print_usage(err)
        print(f"stateward {args.command}: error: {exc}", file=err)
        return 2
    except (StoreError, StatewardError, NotFound) as exc:
        print(f"stateward {args.command}: error: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"stateward {args.command}: interrupted", file=err)
        return 130


def entry_point() -> None:
    """The console script."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``stateward inspect ... | head``): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)
