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
