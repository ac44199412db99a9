"""MachineSpec, MachineBuilder, Event and Hook: definitions and definition errors."""

from __future__ import annotations

from typing import Any

import pytest
from support import ORDER_FLOW

from stateward.core import (
    ANY,
    Event,
    FrozenStateError,
    Hook,
    ImmutableState,
    MachineBuilder,
    MachineDefinitionError,
    MachineSpec,
    StatewardError,
    TransitionContext,
    utc_now,
)


def order_spec(**kwargs: Any) -> MachineSpec:
    return MachineSpec("pending", ORDER_FLOW, **kwargs)


def noop(ctx: TransitionContext) -> None:
    return None


# -- the mapping form ----------------------------------------------------------------------


def test_mapping_form_defines_states_moves_and_terminal_states() -> None:
    spec = order_spec()
    assert spec.initial == "pending"
    assert spec.states == ("pending", "paid", "shipped", "delivered", "cancelled")
    assert spec.allowed_targets("pending") == {"paid", "cancelled"}
    assert spec.allowed_targets("delivered") == frozenset()
    assert spec.terminal_states == ("delivered", "cancelled")
    assert spec.is_terminal("cancelled")
    assert not spec.is_terminal("paid")
    assert spec.allows("paid", "shipped")
    assert not spec.allows("pending", "shipped")
    assert not spec.allows("nowhere", "paid")
    assert spec.transitions["paid"] == ("shipped", "cancelled")
    assert spec.events == ()
    assert spec.hooks == ()
    assert spec.history_limit == 100


def test_duplicate_targets_are_listed_once() -> None:
    spec = MachineSpec("a", {"a": ["b", "b"], "b": []})
    assert spec.transitions["a"] == ("b",)


def test_extra_states_can_be_declared() -> None:
    spec = MachineSpec("a", {"a": ["b"], "b": []}, states=["island"])
    assert spec.states == ("a", "b", "island")
    assert spec.is_terminal("island")


def test_asking_about_an_unknown_state_names_it() -> None:
    spec = order_spec()
    with pytest.raises(MachineDefinitionError, match="'nowhere' is not a state") as info:
        spec.allowed_targets("nowhere")
    assert info.value.state == "nowhere"
    with pytest.raises(MachineDefinitionError):
        spec.allowed_events("nowhere")


# -- events ---------------------------------------------------------------------------------


def test_events_as_a_mapping_with_several_sources() -> None:
    spec = MachineSpec(
        "draft",
        {"draft": [], "submitted": [], "pending": ["paid"], "paid": [], "cancelled": []},
        events={"submit": "draft -> submitted", "cancel": "pending|paid -> cancelled"},
    )
    assert spec.allowed_targets("draft") == {"submitted"}
    assert spec.allowed_targets("pending") == {"paid", "cancelled"}
    assert spec.allowed_targets("paid") == {"cancelled"}
    assert spec.allowed_events("pending") == ("cancel",)
    assert spec.allowed_events("submitted") == ()
    cancel = spec.event_for("cancel", "paid")
    assert cancel is not None
    assert cancel.target == "cancelled"
    assert cancel.sources == {"pending", "paid"}
    assert spec.event_for("cancel", "draft") is None
    assert spec.has_event("submit")
    assert not spec.has_event("ship")


def test_events_as_strings_and_event_objects() -> None:
    spec = MachineSpec(
        "a",
        {"a": [], "b": [], "c": []},
        events=["go: a -> b", Event("jump", frozenset({"a", "b"}), "c")],
    )
    assert spec.allowed_targets("a") == {"b", "c"}
    assert spec.allowed_events("a") == ("go", "jump")
    assert [ev.name for ev in spec.events] == ["go", "jump"]


def test_event_parse_accepts_pairs() -> None:
    assert Event.parse("go", ("a|b", "c")) == Event("go", frozenset({"a", "b"}), "c")
    assert Event.parse("go", (["a", "b"], "c")).sources == {"a", "b"}
    assert Event.parse("go", " a | b ->  c ").sources == {"a", "b"}
    ev = Event("x", frozenset({"a"}), "b")
    assert Event.parse("ignored", ev) is ev


def test_star_source_means_every_state() -> None:
    spec = MachineSpec("a", {"a": ["b"], "b": ["c"], "c": []}, events={"reset": "* -> a"})
    for state in spec.states:
        assert "a" in spec.allowed_targets(state)
        assert spec.allowed_events(state) == ("reset",)
    assert ANY == "*"


def test_events_and_mapping_are_unioned() -> None:
    spec = MachineSpec(
        "pending",
        {"pending": ["paid"], "paid": [], "refunded": []},
        events={"refund": "paid -> refunded"},
    )
    assert spec.allowed_targets("paid") == {"refunded"}
    assert spec.transitions["paid"] == ("refunded",)  # every allowed move, events included
    assert spec.allows("paid", "refunded")


def test_events_alone_define_the_states() -> None:
    spec = MachineSpec("idle", events={"start": "idle -> running", "stop": "running -> idle"})
    assert set(spec.states) == {"idle", "running"}
    assert spec.allowed_targets("idle") == {"running"}
    assert spec.terminal_states == ()


# -- definition errors ------------------------------------------------------------------------


def test_unknown_target_state() -> None:
    with pytest.raises(
        MachineDefinitionError,
        match=r"transitions\['paid'\] names unknown target state 'shiped'; add 'shiped': \[\]",
    ) as info:
        MachineSpec("pending", {"pending": ["paid"], "paid": ["shiped"]})
    assert info.value.state == "shiped"
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StatewardError)


def test_missing_initial_state() -> None:
    with pytest.raises(MachineDefinitionError, match=r"no initial state: pass initial="):
        MachineSpec(transitions=ORDER_FLOW)
    with pytest.raises(MachineDefinitionError, match="no initial state"):
        MachineBuilder(transitions=ORDER_FLOW).build()


def test_initial_state_that_is_not_a_state() -> None:
    with pytest.raises(
        MachineDefinitionError, match=r"initial state 'draft' is not a state.*'pending'"
    ) as info:
        MachineSpec("draft", ORDER_FLOW)
    assert info.value.state == "draft"


def test_duplicate_event() -> None:
    with pytest.raises(
        MachineDefinitionError, match=r"duplicate event 'pay': pending -> paid is defined twice"
    ) as info:
        order_spec(events=["pay: pending -> paid", "pay: pending -> paid"])
    assert info.value.event == "pay"


def test_duplicate_event_between_mapping_and_builder() -> None:
    b = MachineBuilder("pending", ORDER_FLOW, events={"pay": "pending -> paid"})

    @b.event("pay", "pending", "paid")
    def pay(ctx: TransitionContext) -> None:
        return None

    with pytest.raises(MachineDefinitionError, match="duplicate event 'pay'") as info:
        b.build()
    assert info.value.event == "pay"


def test_ambiguous_event() -> None:
    with pytest.raises(
        MachineDefinitionError,
        match=r"ambiguous event 'close': from 'paid' it leads both to 'cancelled' and to 'shipped'",
    ) as info:
        order_spec(events=["close: pending|paid -> cancelled", "close: paid -> shipped"])
    assert info.value.event == "close"
    assert info.value.state == "paid"


def test_transitions_value_given_as_a_bare_string() -> None:
    with pytest.raises(
        MachineDefinitionError, match=r"must be a list of states, got the string 'b'; write \['b'\]"
    ) as info:
        MachineSpec("a", {"a": "b", "b": []})  # type: ignore[dict-item]
    assert info.value.state == "a"


@pytest.mark.parametrize("limit", [-1, "10", 1.5, None])
def test_bad_history_limit(limit: object) -> None:
    with pytest.raises(MachineDefinitionError, match=r"history_limit must be an int >= 0"):
        order_spec(history_limit=limit)


def test_event_naming_an_unknown_state() -> None:
    with pytest.raises(
        MachineDefinitionError, match="event 'pay' names unknown state 'payed'"
    ) as e:
        order_spec(events={"pay": "pending -> payed"})
    assert (e.value.event, e.value.state) == ("pay", "payed")


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"go": "pending to paid"}, r"'pending to paid' is not of the form 'source -> target'"),
        ({"go": "pending -> *"}, r"event 'go' needs one target state, not '\*'"),
        ({"go": " -> paid"}, r"event 'go' sources must be non-empty"),
        ({"go": 42}, r"expected 'source -> target' or \(sources, target\), got 42"),
        (["go pending -> paid"], r"is not of the form 'name: source -> target'"),
        ([42], r"cannot read an event from 42"),
        ({"": "pending -> paid"}, r"event names must be non-empty str"),
    ],
)
def test_malformed_events(events: Any, message: str) -> None:
    with pytest.raises(MachineDefinitionError, match=message):
        order_spec(events=events)


def test_bad_state_names_and_transitions() -> None:
    with pytest.raises(MachineDefinitionError, match="state names must be non-empty str other"):
        MachineSpec("a", {"a": [], ANY: []})
    with pytest.raises(MachineDefinitionError, match="state names must be non-empty str"):
        MachineSpec("a", {"a": [], "": []})
    with pytest.raises(MachineDefinitionError, match=r"transitions must be a mapping .* got list"):
        MachineSpec("a", [("a", [])])  # type: ignore[arg-type]


def test_hook_on_an_unknown_state() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)

    @b.guard("shiped")
    def check(ctx: TransitionContext) -> bool:
        return True

    with pytest.raises(
        MachineDefinitionError,
        match=r"guard hook '.*check' is registered on unknown state 'shiped' \(to=\)",
    ) as info:
        b.build()
    assert info.value.state == "shiped"


def test_exit_hook_on_an_unknown_state_names_the_source_filter() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    b.on_exit("nowhere")(noop)
    with pytest.raises(MachineDefinitionError, match=r"unknown state 'nowhere' \(source=\)"):
        b.build()


def test_hook_on_an_unknown_event() -> None:
    b = MachineBuilder("pending", ORDER_FLOW, events={"pay": "pending -> paid"})
    b.after_commit(event="pya")(noop)
    with pytest.raises(
        MachineDefinitionError,
        match=r"after_commit hook 'noop' is registered on unknown event 'pya'; events: pay",
    ) as info:
        b.build()
    assert info.value.event == "pya"


def test_effect_for_an_unknown_event() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    b.event("ship")(noop)
    with pytest.raises(MachineDefinitionError, match="effect registered for unknown event 'ship'"):
        b.build()


def test_effect_registration_errors_are_immediate() -> None:
    b = MachineBuilder("pending", ORDER_FLOW, events={"pay": "pending -> paid"})
    b.event("pay")(noop)
    with pytest.raises(MachineDefinitionError, match="event 'pay' already has an effect"):
        b.event("pay")(noop)
    with pytest.raises(MachineDefinitionError, match="give both source and target, or neither"):
        b.event("ship", "paid")(noop)


def test_bad_hooks() -> None:
    with pytest.raises(MachineDefinitionError, match="unknown hook kind 'before'"):
        Hook("before", noop, "noop")  # type: ignore[arg-type]
    with pytest.raises(MachineDefinitionError, match="guard hook 'x' is not callable"):
        Hook("guard", 42, "x")  # type: ignore[arg-type]
    with pytest.raises(MachineDefinitionError, match="hooks must be Hook objects"):
        order_spec(hooks=[noop])  # type: ignore[list-item]
    with pytest.raises(MachineDefinitionError, match="non-empty state or event names"):
        MachineBuilder("pending", ORDER_FLOW).guard(to="")(noop)


# -- immutability ---------------------------------------------------------------------------


def test_spec_is_immutable() -> None:
    spec = order_spec()
    with pytest.raises(FrozenStateError, match="MachineSpec is immutable: cannot set 'initial'"):
        spec.initial = "paid"
    with pytest.raises(AttributeError):
        spec.brand_new = 1
    with pytest.raises(FrozenStateError, match="cannot delete 'initial'"):
        del spec.initial
    with pytest.raises(TypeError):
        spec.transitions["pending"] = ("shipped",)  # type: ignore[index]
    assert spec.initial == "pending"
    assert spec.transitions["pending"] == ("paid", "cancelled")


def test_spec_does_not_see_later_changes_to_its_inputs() -> None:
    flow = {"a": ["b"], "b": []}
    spec = MachineSpec("a", flow)
    flow["a"].append("a")
    flow["c"] = []
    assert spec.allowed_targets("a") == {"b"}
    assert spec.states == ("a", "b")


def test_repr_names_the_machine() -> None:
    spec = order_spec(name="orders", events={"pay": "pending -> paid"})
    assert repr(spec) == "<MachineSpec 'orders' initial='pending' states=5 events=1 hooks=0>"


# -- the builder and its decorators ------------------------------------------------------------


def test_decorators_work_bare_and_called() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)

    @b.guard
    def everywhere(ctx: TransitionContext) -> bool:
        return True

    @b.guard("paid")
    def into_paid(ctx: TransitionContext) -> bool:
        return True

    @b.guard()
    def also_everywhere(ctx: TransitionContext) -> bool:
        return True

    # The decorators give the function back unchanged.
    assert everywhere(None) is True  # type: ignore[arg-type]
    spec = b.build()
    hooks = {h.fn.__name__: h for h in spec.hooks}
    assert hooks["everywhere"].to is None
    assert hooks["also_everywhere"].to is None
    assert hooks["into_paid"].to == {"paid"}
    assert hooks["into_paid"].kind == "guard"
    assert [h.fn for h in spec.hooks_for("guard", "pending", "paid", None)] == [
        everywhere,
        into_paid,
        also_everywhere,
    ]
    assert [h.fn for h in spec.hooks_for("guard", "pending", "cancelled", None)] == [
        everywhere,
        also_everywhere,
    ]


def test_filters_by_target_source_event_and_order() -> None:
    b = MachineBuilder(
        "pending", ORDER_FLOW, events={"pay": "pending -> paid", "cancel": "pending -> cancelled"}
    )
    b.guard(to="paid|cancelled", source="pending", event="pay", order=5, name="late")(noop)
    b.guard(to=["paid"], order=-1, name="early")(noop)
    b.validator(name="middle")(noop)
    spec = b.build()
    assert [h.name for h in spec.hooks_for("guard", "pending", "paid", "pay")] == [
        "early",
        "middle",
        "late",
    ]
    assert [h.name for h in spec.hooks_for("guard", "pending", "paid", None)] == [
        "early",
        "middle",
    ]
    assert [h.name for h in spec.hooks_for("guard", "pending", "cancelled", "cancel")] == ["middle"]
    late = next(h for h in spec.hooks if h.name == "late")
    assert late.to == {"paid", "cancelled"}
    assert late.source == {"pending"}
    assert late.event == {"pay"}
    assert late.order == 5


def test_exit_positional_names_the_state_left() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    b.on_exit("pending")(noop)
    b.on_enter("pending")(noop)
    spec = b.build()
    (exit_hook,) = (h for h in spec.hooks if h.kind == "exit")
    (enter_hook,) = (h for h in spec.hooks if h.kind == "enter")
    assert exit_hook.source == {"pending"}
    assert exit_hook.to is None
    assert enter_hook.to == {"pending"}
    assert spec.hooks_for("exit", "pending", "paid", None) == (exit_hook,)
    assert spec.hooks_for("exit", "paid", "shipped", None) == ()


def test_every_hook_kind_registers_through_its_decorator() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    b.pre_transition(noop)
    b.guard(noop)
    b.on_exit(noop)
    b.on_enter(noop)
    b.after_commit(noop)
    spec = b.build()
    assert [h.kind for h in spec.hooks] == [
        "pre_transition",
        "guard",
        "exit",
        "enter",
        "after_commit",
    ]
    assert all(h.name == "noop" for h in spec.hooks)


def register_audit_hooks(builder: MachineBuilder, seen: list[str]) -> None:
    """What a second module does: import the builder and decorate its functions."""

    @builder.after_commit
    def audit(ctx: TransitionContext) -> None:
        seen.append(f"{ctx.source}->{ctx.target}")

    @builder.guard("shipped", name="address_known")
    def has_address(ctx: TransitionContext) -> bool:
        return "address" in ctx.payload


def test_hooks_can_be_registered_from_another_module() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    seen: list[str] = []
    register_audit_hooks(b, seen)
    spec = b.build()
    assert [h.name for h in spec.hooks] == ["address_known", "register_audit_hooks.<locals>.audit"]
    (guard,) = spec.hooks_for("guard", "paid", "shipped", None)
    assert spec.hooks_for("guard", "pending", "paid", None) == ()
    (audit,) = spec.hooks_for("after_commit", "pending", "paid", None)
    ctx = TransitionContext(
        "pending", "paid", None, ImmutableState(), ImmutableState(), 1, None, utc_now()
    )
    audit.fn(ctx)
    assert seen == ["pending->paid"]
    assert guard.fn(ctx) is False
    assert guard.fn(ctx.with_payload(ImmutableState(address="x"))) is True


def test_event_effects_are_registered_by_decorator() -> None:
    cats = MachineBuilder("unknown", {"unknown": [], "alive": [], "dead": []})

    @cats.event("survive", "unknown", "alive")
    def survive(ctx: TransitionContext) -> dict[str, bool]:
        return {"can_meow": True}

    @cats.event("perish", ["unknown"], "dead")
    def perish(ctx: TransitionContext) -> None:
        return None

    spec = cats.build()
    ev = spec.event_for("survive", "unknown")
    assert ev is not None
    assert ev.target == "alive"
    assert ev.effect is survive
    assert spec.allowed_targets("unknown") == {"alive", "dead"}
    assert spec.allowed_events("unknown") == ("perish", "survive")


def test_an_effect_can_attach_to_a_declared_event() -> None:
    b = MachineBuilder("pending", ORDER_FLOW, events={"cancel": "pending|paid -> cancelled"})

    @b.event("cancel")
    def cancel(ctx: TransitionContext) -> None:
        return None

    spec = b.build()
    for source in ("pending", "paid"):
        ev = spec.event_for("cancel", source)
        assert ev is not None
        assert ev.effect is cancel


def test_has_async_hooks() -> None:
    async def later(ctx: TransitionContext) -> None:
        return None

    assert not order_spec().has_async_hooks
    b = MachineBuilder("pending", ORDER_FLOW)
    b.after_commit(later)
    assert b.build().has_async_hooks
    b2 = MachineBuilder("pending", ORDER_FLOW)
    b2.event("pay", "pending", "paid")(later)
    assert b2.build().has_async_hooks
    assert Hook("guard", later, "later").is_async
    assert not Hook("guard", noop, "noop").is_async


def test_a_built_spec_is_not_changed_by_later_registrations() -> None:
    b = MachineBuilder("pending", ORDER_FLOW)
    first = b.build()
    b.guard(noop)
    second = b.build()
    assert first.hooks == ()
    assert len(second.hooks) == 1


def test_to_builder_extends_a_spec_into_a_new_one() -> None:
    b = MachineBuilder("pending", ORDER_FLOW, events={"pay": "pending -> paid"}, name="orders")
    b.guard("paid")(noop)
    b.event("pay")(noop)
    spec = b.build()

    extended = spec.to_builder()
    extended.after_commit(noop)
    bigger = extended.build()
    assert bigger.name == "orders"
    assert bigger.states == spec.states
    assert all(bigger.allowed_targets(s) == spec.allowed_targets(s) for s in spec.states)
    assert bigger.hooks == (*spec.hooks, bigger.hooks[-1])
    assert bigger.hooks[-1].kind == "after_commit"
    ev = bigger.event_for("pay", "pending")
    assert ev is not None
    assert ev.effect is noop
    assert len(spec.hooks) == 1  # the original is unchanged


def test_hook_applies() -> None:
    hook = Hook("guard", noop, "noop", to=frozenset({"b"}), event=frozenset({"go"}))
    assert hook.applies("a", "b", "go")
    assert not hook.applies("a", "b", None)
    assert not hook.applies("a", "c", "go")
    anywhere = Hook("guard", noop, "noop")
    assert anywhere.applies("x", "y", None)


def test_overlapping_event_with_the_same_target_is_a_duplicate_not_ambiguous() -> None:
    with pytest.raises(MachineDefinitionError, match="duplicate event 'go': the move 'a' -> 'c'"):
        MachineSpec("a", events=["go: a|b -> c", "go: a -> c"])


def test_history_limit_rejects_bool() -> None:
    with pytest.raises(MachineDefinitionError, match="history_limit must be an int"):
        MachineSpec("a", {"a": []}, history_limit=True)
