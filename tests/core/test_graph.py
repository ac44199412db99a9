"""to_mermaid and to_dot: a machine definition drawn as Mermaid or Graphviz text."""

from __future__ import annotations

import textwrap

from support import ORDER_FLOW_UNTIL_SHIPPED

from stateward.core import (
    MachineBuilder,
    MachineSpec,
    State,
    StateChart,
    TransitionContext,
    to_dot,
    to_mermaid,
)

#: Two events make paid -> cancelled; ship makes paid -> shipped; pending -> paid
#: has no event; shipped and cancelled are terminal.
ORDERS = MachineSpec(
    "pending",
    ORDER_FLOW_UNTIL_SHIPPED,
    events={
        "cancel": "pending|paid -> cancelled",
        "refund": "paid -> cancelled",
        "ship": "paid -> shipped",
    },
    name="orders",
)


def test_mermaid_marks_initial_and_terminal_states_and_labels_edges_with_events() -> None:
    assert to_mermaid(ORDERS) == textwrap.dedent(
        """\
        stateDiagram-v2
            [*] --> pending
            pending --> paid
            pending --> cancelled : cancel
            paid --> shipped : ship
            paid --> cancelled : cancel, refund
            shipped --> [*]
            cancelled --> [*]
        """
    )


def test_dot_marks_initial_and_terminal_states_and_labels_edges_with_events() -> None:
    assert to_dot(ORDERS) == textwrap.dedent(
        """\
        digraph "orders" {
            rankdir=LR;
            node [shape=circle];
            "__start__" [shape=point, label=""];
            "__start__" -> "pending";
            "shipped" [shape=doublecircle];
            "cancelled" [shape=doublecircle];
            "pending" -> "paid";
            "pending" -> "cancelled" [label="cancel"];
            "paid" -> "shipped" [label="ship"];
            "paid" -> "cancelled" [label="cancel, refund"];
        }
        """
    )


def test_dot_graph_name_is_given_or_the_specs_or_machine() -> None:
    assert to_dot(ORDERS, "flows").startswith('digraph "flows" {\n')
    unnamed = MachineSpec("a", {"a": ["b"], "b": []})
    assert to_dot(unnamed).startswith('digraph "machine" {\n')


def test_dot_quotes_names_that_are_not_identifiers() -> None:
    spec = MachineSpec('say "hi"', {'say "hi"': ["on hold"], "on hold": []})
    text = to_dot(spec, 'my "flow"')
    assert text.startswith('digraph "my \\"flow\\"" {\n')
    assert '    "say \\"hi\\"" -> "on hold";' in text.splitlines()


def test_a_machine_without_terminal_states_has_no_final_markers() -> None:
    loop = MachineBuilder("on", {"on": ["off"], "off": ["on"]}).build()
    assert to_mermaid(loop).splitlines() == [
        "stateDiagram-v2",
        "    [*] --> on",
        "    on --> off",
        "    off --> on",
    ]
    assert "doublecircle" not in to_dot(loop)


def is_exhausted(ctx: TransitionContext) -> bool:
    return True


def busy(ctx: TransitionContext) -> bool:
    return False


#: clean_up branches (a guard, then the else), nap is refused while busy,
#: volume is internal, restart is a self transition.
BRANCHED = MachineSpec(
    "sweaty",
    events={
        "clean_up": [
            {"move": "sweaty -> asleep", "guards": is_exhausted},
            "sweaty -> idle",
        ],
        "nap": {"move": "idle -> asleep", "unless": busy},
        "volume": {"move": "asleep -> asleep", "internal": True},
        "restart": "asleep -> asleep",
    },
    name="hero",
)


def test_mermaid_labels_branches_their_guards_the_else_and_internal_moves() -> None:
    assert to_mermaid(BRANCHED).splitlines()[1:] == [
        "    [*] --> sweaty",
        "    sweaty --> asleep : clean_up [is_exhausted]",
        "    sweaty --> idle : clean_up [else]",
        "    asleep --> asleep : volume (internal), restart",
        "    idle --> asleep : nap [not busy]",
    ]


def test_dot_labels_branches_their_guards_the_else_and_internal_moves() -> None:
    lines = to_dot(BRANCHED).splitlines()
    assert '    "sweaty" -> "asleep" [label="clean_up [is_exhausted]"];' in lines
    assert '    "sweaty" -> "idle" [label="clean_up [else]"];' in lines
    assert '    "asleep" -> "asleep" [label="volume (internal), restart"];' in lines
    assert '    "idle" -> "asleep" [label="nap [not busy]"];' in lines


def test_a_single_unguarded_event_has_no_else() -> None:
    spec = MachineSpec("a", events={"go": "a -> b", "stop": {"move": "a -> c", "guards": busy}})
    assert "    a --> b : go" in to_mermaid(spec).splitlines()
    assert "    a --> c : stop [busy]" in to_mermaid(spec).splitlines()


class Chart(StateChart):
    asleep = State(initial=True)
    hanging_out = State("hanging out")
    saving = State("1 saving")
    hanging_out_2 = State("hanging_out")
    clean_up = asleep.to(hanging_out, cond="rested") | asleep.to(saving)
    back = hanging_out_2.from_(hanging_out, saving)

    def rested(self, ctx: TransitionContext) -> bool:
        return True


def test_mermaid_gives_states_that_are_not_identifiers_an_id_of_their_own() -> None:
    assert to_mermaid(Chart.spec).splitlines() == [
        "stateDiagram-v2",
        '    state "hanging out" as hanging_out_2',
        '    state "1 saving" as s_1_saving',
        "    [*] --> asleep",
        "    asleep --> hanging_out_2 : clean_up [rested]",
        "    asleep --> s_1_saving : clean_up [else]",
        "    hanging_out_2 --> hanging_out : back",
        "    s_1_saving --> hanging_out : back",
        "    hanging_out --> [*]",
    ]


# -- statecharts: compound, parallel and history states ------------------------------

CHART = MachineSpec(
    "off",
    events={
        "power": "off -> on",
        "shut": "on -> off",
        "play": "idle -> working",
        "jam": "playing -> stuck",
        "resume": "off -> on_h",
        "deeply": "off -> on_deep",
        "start": "off -> running",
        "next": ["a1 -> a2", "v1 -> v2"],
        "halt": "running -> off",
        "mute": {"move": "audio -> a1", "guards": lambda ctx: True},
    },
    compound={
        "on": ["idle", "working"],
        "working": {"initial": "stuck", "states": ["playing", "stuck"]},
        "audio": ["a1", "a2"],
        "video": ["v1", "v2"],
    },
    parallel={"running": ["audio", "video"]},
    history={"on_h": "on", "on_deep": ("on", "deep")},
    name="chart",
)


def mermaid_blocks(text: str) -> tuple[dict[str, list[str]], set[str], list[tuple[str, str]]]:
    """Read a Mermaid state diagram's structure: each composite's lines (the top
    level under ``""``), the ids it declares, and every edge's two ends. Fails
    on unbalanced braces."""
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    stack = [""]
    blocks: dict[str, list[str]] = {"": []}
    declared: set[str] = set()
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        item = line.strip()
        if item.startswith("state ") and item.endswith("{"):
            name = item.split()[1]
            declared.add(name)
            blocks[stack[-1]].append(item)
            stack.append(name)
            blocks[name] = []
        elif item == "}":
            assert len(stack) > 1, "a closing brace without an opening one"
            stack.pop()
        else:
            blocks[stack[-1]].append(item)
            if item.startswith("state "):
                declared.add(item.split(" as ")[1])
            elif "-->" in item:
                source, _, rest = item.partition(" --> ")
                edges.append((source, rest.split(" : ")[0]))
            elif item != "--":
                declared.add(item)  # a region without children
    assert stack == [""], f"unclosed composites: {stack[1:]}"
    return blocks, declared, edges


def test_mermaid_draws_compound_states_as_composites_with_their_initial_child() -> None:
    text = to_mermaid(CHART)
    blocks, declared, edges = mermaid_blocks(text)
    assert blocks["on"][0] == "[*] --> idle"
    assert blocks["working"][0] == "[*] --> stuck"  # the initial child given
    assert "state working {" in blocks["on"]
    assert "playing --> stuck : jam" in blocks["working"]  # an edge in its composite
    assert "idle --> working : play" in blocks["on"]
    assert "on --> off : shut" in blocks[""]  # from a parent, drawn outside it
    assert "off --> on : power" in blocks[""]
    named = declared | set(CHART.states) | {"[*]"}
    assert {end for edge in edges for end in edge} <= named


def test_mermaid_separates_regions_and_draws_history_states() -> None:
    blocks, _, _ = mermaid_blocks(to_mermaid(CHART))
    # each region in its own part; a move from a region to its child drawn in that part
    assert blocks["running"] == [
        "state audio {",
        "audio --> a1 : mute [<lambda>]",
        "--",
        "state video {",
    ]
    assert blocks["audio"][:2] == ["[*] --> a1", "a1 --> a2 : next"]
    assert "a2 --> [*]" in blocks["audio"]  # done: no move of its own leaves it
    assert blocks["video"][:2] == ["[*] --> v1", "v1 --> v2 : next"]
    assert 'state "H" as on_h' in blocks["on"]
    assert 'state "H*" as on_deep' in blocks["on"]
    assert "off --> on_h : resume" in blocks[""]
    assert "off --> on_deep : deeply" in blocks[""]


def test_mermaid_of_a_flat_spec_is_unchanged_by_statecharts() -> None:
    assert "state " not in to_mermaid(ORDERS)
    assert "{" not in to_mermaid(ORDERS)


def dot_structure(text: str) -> tuple[list[str], set[str], list[str]]:
    """A dot graph's clusters (in order), declared nodes and edge lines; fails
    on unbalanced braces."""
    depth = 0
    clusters: list[str] = []
    nodes: set[str] = set()
    edges: list[str] = []
    for line in text.splitlines():
        item = line.strip()
        if item.endswith("{"):
            depth += 1
            if item.startswith("subgraph "):
                clusters.append(item.split('"')[1])
        elif item == "}":
            depth -= 1
            assert depth >= 0
        elif " -> " in item:
            edges.append(item)
        elif item.startswith('"'):
            nodes.add(item.split('"')[1])
    assert depth == 0
    return clusters, nodes, edges


def test_dot_draws_compound_and_parallel_states_as_clusters() -> None:
    text = to_dot(CHART)
    clusters, nodes, edges = dot_structure(text)
    assert clusters == [f"cluster_{s}" for s in ("on", "working", "running", "audio", "video")]
    assert "    compound=true;" in text.splitlines()
    assert '        label="running (parallel)";' in text.splitlines()
    assert '            "__start__working" -> "stuck";' in text.splitlines()
    assert '        "on_deep" [label="H*"];' in text.splitlines()
    assert '"off" -> "on" [label="power", lhead="cluster_on"];' in edges
    assert '    "on" -> "off" [label="shut", ltail="cluster_on"];' in text.splitlines()
    assert '    "off" -> "on_h" [label="resume"];' in text.splitlines()
    ends = {part.split('"')[1] for edge in edges for part in edge.split(" -> ")}
    assert ends <= nodes | {"__start__"}
    assert set(CHART.states) | set(CHART.history_states) <= nodes


def test_a_chart_class_with_nested_states_draws_like_its_spec() -> None:
    class Player(StateChart):
        off = State(initial=True)

        class on(State.Compound):
            idle = State()
            busy = State()
            go = idle.to(busy)

        power = off.to(on)

    assert to_mermaid(Player.spec) == textwrap.dedent(
        """\
        stateDiagram-v2
            [*] --> off
            state on {
                [*] --> idle
                idle --> busy : go
                busy --> [*]
            }
            off --> on : power
        """
    )


def test_an_edge_from_a_parent_is_labelled_with_its_own_events_not_its_ancestors() -> None:
    """``p -> out`` is made by ``b`` alone; ``a`` is ``g``'s own move (it applies
    from ``p`` too, but is drawn once, from ``g``)."""
    spec = MachineSpec(
        "g",
        events={"a": "g -> out", "b": "p -> out"},
        compound={"g": ["p"], "p": ["x"]},
    )
    dot = to_dot(spec).splitlines()
    assert '    "p" -> "out" [label="b", ltail="cluster_p"];' in dot
    assert '    "g" -> "out" [label="a", ltail="cluster_g"];' in dot
    assert "    p --> out : b" in to_mermaid(spec).splitlines()


def test_a_state_timeout_is_labelled_on_the_edge_its_event_makes() -> None:
    spec = MachineSpec(
        "pending",
        events={"pay": "pending -> paid", "expire": "pending|paid -> cancelled"},
        timeouts={"pending": (1800, "expire")},
    )
    mermaid = to_mermaid(spec).splitlines()
    assert "    pending --> cancelled : after 1800 s: expire" in mermaid
    assert "    paid --> cancelled : expire" in mermaid  # no timeout in "paid"
    dot = to_dot(spec).splitlines()
    assert '    "pending" -> "cancelled" [label="after 1800 s: expire"];' in dot
    assert '    "paid" -> "cancelled" [label="expire"];' in dot
