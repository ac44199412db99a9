"""A machine definition drawn as text: Mermaid state diagrams and Graphviz dot.

Pure functions of a `MachineSpec`; ``stateward graph`` prints what they return.
A statechart's compound and parallel states are drawn as Mermaid composite
states (``state on { ... }``, regions separated by ``--``) and as Graphviz
clusters (``subgraph "cluster_on"``), its history states as ``H`` / ``H*``
nodes inside their parent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ._parts import ANY, describe
from ._spec import MachineSpec


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", None) or describe(fn)


def _label(spec: MachineSpec, source: str, target: str) -> str:
    """The events that move ``source -> target``, joined by ', '; each with its
    own guards (``[is_exhausted]``, an ``unless`` one as ``[not busy]``), or
    ``[else]`` for the unguarded last branch of an event with several,
    ``(internal)`` for an internal transition, and ``after 1800 s:`` before
    the event of ``source``'s state timeout."""
    parts: list[str] = []
    timeout = spec.timeouts.get(source)
    for name in spec.events_between(source, target):
        alternatives = spec.alternatives(name, source)
        for ev in alternatives:
            if ev.target != target or (source not in ev.sources and ANY not in ev.sources):
                continue  # another target, or a move of an ancestor of ``source``
            guards = [_name(fn) for fn in ev.guards] + [f"not {_name(fn)}" for fn in ev.unless]
            part = name
            if timeout is not None and timeout.event == name:
                part = f"after {timeout.seconds:g} s: {name}"
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
    names = [*spec.states, *spec.history_states]
    taken = {state for state in names if _PLAIN.fullmatch(state)}
    for state in names:
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
    if spec.is_hierarchical:
        _mermaid_level(spec, ids, None, lines, "    ")
        return "\n".join(lines) + "\n"
    lines.append(f"    [*] --> {ids[spec.initial]}")
    for source, target, label in _edges(spec):
        lines.append(f"    {ids[source]} --> {ids[target]}" + (f" : {label}" if label else ""))
    lines += [f"    {ids[state]} --> [*]" for state in spec.terminal_states]
    return "\n".join(lines) + "\n"


def _home(spec: MachineSpec, source: str, target: str) -> str | None:
    """Where a statechart's edge is drawn: the innermost state containing both
    ends (None: the top level), as Mermaid draws an edge in one composite."""
    around = set(spec.ancestors(source))
    if target in spec.history_states:
        parent = spec.history_states[target][0]
        ups: tuple[str, ...] = (parent, *spec.ancestors(parent))
    else:
        ups = spec.ancestors(target)
    return next((up for up in ups if up in around), None)


def _level(spec: MachineSpec, parent: str | None) -> tuple[list[str], list[str]]:
    """The states directly in ``parent`` (None: the top level) and its history states."""
    states = [s for s in spec.states if spec.parent(s) == parent]
    history = [h for h, (p, _) in spec.history_states.items() if p == parent]
    return states, history


def _mermaid_level(
    spec: MachineSpec, ids: dict[str, str], parent: str | None, lines: list[str], pad: str
) -> None:
    """One level of a statechart: its initial arrow, its nested states as
    composites, its history nodes, its edges and its terminal states."""
    states, history = _level(spec, parent)
    if parent is None:
        lines.append(f"{pad}[*] --> {ids[spec.initial]}")
    elif spec.is_compound(parent):
        lines.append(f"{pad}[*] --> {ids[_initial_child(spec, parent)]}")
    for state in states:
        if spec.children(state):
            _mermaid_composite(spec, ids, state, lines, pad)
    for name in history:
        deep = spec.history_states[name][1] == "deep"
        lines.append(f'{pad}state "{"H*" if deep else "H"}" as {ids[name]}')
    for source, target, label in _edges(spec):
        if _home(spec, source, target) == parent:
            lines.append(f"{pad}{ids[source]} --> {ids[target]}" + (f" : {label}" if label else ""))
    lines += [
        # done: no move of its own leaves it (its parent's may)
        f"{pad}{ids[s]} --> [*]"
        for s in states
        if not spec.children(s) and not spec.transitions[s]
    ]


def _mermaid_composite(
    spec: MachineSpec, ids: dict[str, str], state: str, lines: list[str], pad: str
) -> None:
    """A state with children, as a Mermaid composite: its regions separated by
    ``--`` when it is parallel, its own level of states otherwise."""
    lines.append(f"{pad}state {ids[state]} {{")
    if spec.is_parallel(state):
        for n, region in enumerate(spec.children(state)):
            if n:
                lines.append(f"{pad}    --")
            _mermaid_region(spec, ids, region, lines, pad + "    ")
    else:
        _mermaid_level(spec, ids, state, lines, pad + "    ")
    lines.append(f"{pad}}}")


def _mermaid_region(
    spec: MachineSpec, ids: dict[str, str], region: str, lines: list[str], pad: str
) -> None:
    """A parallel state's region: a composite when it has children of its own."""
    if spec.children(region):
        _mermaid_composite(spec, ids, region, lines, pad)
    else:
        lines.append(f"{pad}{ids[region]}")
    for source, target, label in _edges(spec):
        if _home(spec, source, target) == spec.parent(region) and region in (
            source,
            *spec.ancestors(source),
        ):
            lines.append(f"{pad}{ids[source]} --> {ids[target]}" + (f" : {label}" if label else ""))


def _initial_child(spec: MachineSpec, parent: str) -> str:
    """A compound state's initial child."""
    child = spec.initial_child(parent)
    assert child is not None, f"{parent!r} is not compound"
    return child


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
    if spec.is_hierarchical:
        lines[1:1] = ["    compound=true;"]
        for state in spec.states:
            if spec.parent(state) is None:
                _dot_state(spec, state, lines, "    ")
    else:
        lines += [
            f"    {json.dumps(state)} [shape=doublecircle];" for state in spec.terminal_states
        ]
    for source, target, label in _edges(spec):
        attrs = [f"label={json.dumps(label)}"] if label else []
        if spec.is_hierarchical:
            # An edge from or to a cluster ends at its border.
            if spec.children(source) and not _inside(spec, target, source):
                attrs.append(f"ltail={json.dumps(f'cluster_{source}')}")
            if (
                target not in spec.history_states
                and spec.children(target)
                and not _inside(spec, source, target)
            ):
                attrs.append(f"lhead={json.dumps(f'cluster_{target}')}")
        text = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {json.dumps(source)} -> {json.dumps(target)}{text};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _inside(spec: MachineSpec, state: str, outer: str) -> bool:
    """Whether ``state`` (or a history state of it) is ``outer`` or inside it."""
    if state in spec.history_states:
        state = spec.history_states[state][0]
    return state == outer or outer in spec.ancestors(state)


def _dot_state(spec: MachineSpec, state: str, lines: list[str], pad: str) -> None:
    """A statechart's state in dot: a node, or a cluster holding its children,
    its history nodes and (for a compound state) a start point at its initial
    child; the cluster's own node, a point, is what edges to it attach to."""
    name = json.dumps(state)
    if not spec.children(state):
        done = not spec.transitions[state]
        lines.append(f"{pad}{name}{' [shape=doublecircle]' * done};")
        return
    parallel = spec.is_parallel(state)
    lines.append(f"{pad}subgraph {json.dumps(f'cluster_{state}')} {{")
    label = f"{state} (parallel)" if parallel else state
    lines.append(f"{pad}    label={json.dumps(label)};")
    if spec.parent(state) is not None and spec.is_parallel(spec.parent(state) or ""):
        lines.append(f"{pad}    style=dashed;")
    lines.append(f'{pad}    {name} [shape=point, width=0.05, label=""];')
    if not parallel:
        start = json.dumps(f"__start__{state}")
        lines.append(f'{pad}    {start} [shape=point, label=""];')
        lines.append(f"{pad}    {start} -> {json.dumps(_initial_child(spec, state))};")
    for child in spec.children(state):
        _dot_state(spec, child, lines, pad + "    ")
    for history, (parent, kind) in spec.history_states.items():
        if parent == state:
            text = "H*" if kind == "deep" else "H"
            lines.append(f"{pad}    {json.dumps(history)} [label={json.dumps(text)}];")
    lines.append(f"{pad}}}")
