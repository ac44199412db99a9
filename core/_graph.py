"""A machine definition drawn as text: Mermaid state diagrams and Graphviz dot.

Pure functions of a `MachineSpec`; ``stateward graph`` prints what they return.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ._parts import describe
from ._spec import MachineSpec


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", None) or describe(fn)


def _label(spec: MachineSpec, source: str, target: str) -> str:
    """The events that move ``source -> target``, joined by ', '; each with its
    own guards (``[is_exhausted]``, an ``unless`` one as ``[not busy]``), or
    ``[else]`` for the unguarded last branch of an event with several, and
    ``(internal)`` for an internal transition."""
    parts: list[str] = []
    for name in spec.events_between(source, target):
        alternatives = spec.alternatives(name, source)
        for ev in alternatives:
            if ev.target != target:
                continue
            guards = [_name(fn) for fn in ev.guards] + [f"not {_name(fn)}" for fn in ev.unless]
            part = name
            if guards:
                part += f" [{', '.join(guards)}]"
            elif len(alternatives) > 1 and ev is alternatives[-1]:
                part += " [else]"
            if ev.internal:
                part += " (internal)"
            parts.append(part)
    return ", ".join(parts)


def _edges(spec: MachineSpec) -> list[tuple[str, str, str]]:
    """Every allowed move as (source, target, its label: see `_label`)."""
    return [
        (source, target, _label(spec, source, target))
        for source in spec.states
        for target in spec.transitions[source]
    ]


def _mermaid_ids(spec: MachineSpec) -> dict[str, str]:
    """Each state's id in a Mermaid diagram: its name if Mermaid reads it as
    one, else an identifier made from it (``hanging out`` -> ``hanging_out``),
    distinct from every other state's."""
    ids: dict[str, str] = {}
    taken = {state for state in spec.states if _PLAIN.fullmatch(state)}
    for state in spec.states:
        if _PLAIN.fullmatch(state):
            ids[state] = state
            continue
        base = re.sub(r"\W", "_", state, flags=re.ASCII)
        if not _PLAIN.fullmatch(base):  # it starts with a digit
            base = f"s_{base}"
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        ids[state] = candidate
    return ids


#: A state name Mermaid reads as an id as it is.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_mermaid(spec: MachineSpec) -> str:
    """The machine as a Mermaid state diagram (``stateDiagram-v2``).

    The initial state is drawn as ``[*] --> initial``, each terminal state as
    ``state --> [*]``, and each allowed move as ``source --> target``, labelled
    with the names of the events that make it (``: pay, settle``) if any do.
    A guarded event shows its own guards (``clean_up [is_exhausted]``, an
    ``unless`` guard as ``[not busy]``), the unguarded last branch of an event
    with several shows ``[else]``, and an internal transition ``(internal)``.
    States and moves come in definition order. A state whose name Mermaid
    would not read as an id (``hanging out``) is declared first with an id
    made from it: ``state "hanging out" as hanging_out``.

    Args:
        spec: the machine definition.

    Returns:
        The diagram's text, ending with a newline.
    """
    ids = _mermaid_ids(spec)
    lines = ["stateDiagram-v2"]
    lines += [
        f"    state {json.dumps(state)} as {ids[state]}"
        for state in spec.states
        if ids[state] != state
    ]
    lines.append(f"    [*] --> {ids[spec.initial]}")
    for source, target, label in _edges(spec):
        lines.append(f"    {ids[source]} --> {ids[target]}" + (f" : {label}" if label else ""))
    lines += [f"    {ids[state]} --> [*]" for state in spec.terminal_states]
    return "\n".join(lines) + "\n"


def to_dot(spec: MachineSpec, name: str | None = None) -> str:
    """The machine as a Graphviz ``digraph``, laid out left to right.

    A point marks the start and points at the initial state, terminal states
    are double circles, and each allowed move is an edge labelled with the
    names of the events that make it, if any do, marked as in `to_mermaid`
    (guards, ``[else]``, ``(internal)``). Names are written as
    double-quoted strings.

    Args:
        spec: the machine definition.
        name: the graph's name; by default the spec's ``name``, or
            ``"machine"`` if it has none.

    Returns:
        The graph's text, ending with a newline.
    """
    name = name or spec.name or "machine"
    lines = [
        f"digraph {json.dumps(name)} {{",
        "    rankdir=LR;",
        "    node [shape=circle];",
        '    "__start__" [shape=point, label=""];',
        f'    "__start__" -> {json.dumps(spec.initial)};',
    ]
    lines += [f"    {json.dumps(state)} [shape=doublecircle];" for state in spec.terminal_states]
    for source, target, label in _edges(spec):
        attrs = f" [label={json.dumps(label)}]" if label else ""
        lines.append(f"    {json.dumps(source)} -> {json.dumps(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"
