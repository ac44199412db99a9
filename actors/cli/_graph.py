"""``stateward graph``: find a machine definition by ``MODULE:ATTR`` and draw it.

The drawing itself is `stateward.core.to_mermaid` / `stateward.core.to_dot`;
this module only imports the user's module and finds the definition in it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, TextIO

from stateward.core import MachineBuilder, MachineSpec, to_dot, to_mermaid

from ._usage import UsageError


def load_spec(target: str) -> MachineSpec:
    """The machine definition named ``MODULE:ATTR`` (a spec, a builder, a
    `StateChart` class, a machine, or anything with a ``spec``)."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(
            f"expected MODULE:ATTR, got {target!r} (for example 'myapp.orders:order_flow')"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        if "/" in module_name or module_name.endswith(".py"):
            hint = (
                "; give a module name, not a file path (for example "
                "'examples.named_events:spec', run from the project folder)"
            )
        raise UsageError(f"cannot import module {module_name!r}: {exc}{hint}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(value, MachineBuilder):
        return value.build()
    if isinstance(value, MachineSpec):
        return value
    spec = getattr(value, "spec", None)
    if isinstance(spec, MachineSpec):
        return spec
    raise UsageError(
        f"{target} is a {type(value).__name__}, not a machine definition "
        "(MachineSpec, MachineBuilder, a StateChart class, StateMachine or RowMachines)"
    )


def run_graph(args: argparse.Namespace, out: TextIO) -> int:
    spec = load_spec(args.target)
    name = args.target.partition(":")[2]
    out.write(to_mermaid(spec) if args.format == "mermaid" else to_dot(spec, name))
    return 0
