"""A machine definition drawn as text: Mermaid state diagrams and Graphviz dot.

Pure functions of a `MachineSpec`; ``stateward graph`` prints what they return.
"""

from __future__ import annotations

import json

from ._spec import MachineSpec


def _edges(spec: MachineSpec) -> list[tuple[str, str, str]]:
    """Every allowed move as (source, target, the names of its events joined by ', ')."""
    return [
        (source, target, ", ".join(spec.events_between(source, target)))
        for source in spec.states
        for target in spec.transitions[source]
    ]


def to_mermaid(spec: MachineSpec) -> str:
    """The machine as a Mermaid state diagram (``stateDiagram-v2``).

    The initial state is drawn as ``[*] --> initial``, each terminal state as
    ``state --> [*]``, and each allowed move as ``source --> target``, labelled
    with the names of the events that make it (``: pay, settle``) if any do.
    States and moves come in definition order.

    Args:
        spec: the machine definition.

    Returns:
        The diagram's text, ending with a newline.
    """
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial}"]
    for source, target, label in _edges(spec):
        lines.append(f"    {source} --> {target}" + (f" : {label}" if label else ""))
    lines += [f"    {state} --> [*]" for state in spec.terminal_states]
    return "\n".join(lines) + "\n"


def to_dot(spec: MachineSpec, name: str | None = None) -> str:
    """The machine as a Graphviz ``digraph``, laid out left to right.

    A point marks the start and points at the initial state, terminal states
    are double circles, and each allowed move is an edge labelled with the
    names of the events that make it, if any do. Names are written as
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
