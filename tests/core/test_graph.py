"""to_mermaid and to_dot: a machine definition drawn as Mermaid or Graphviz text."""

from __future__ import annotations

import textwrap

from support import ORDER_FLOW_UNTIL_SHIPPED

from stateward.core import MachineBuilder, MachineSpec, to_dot, to_mermaid

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
