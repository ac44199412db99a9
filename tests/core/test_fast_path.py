"""The fast transition path: quick_init records, the table of checked moves, and the
plain-code hook runner, which must agree with the generator the async driver uses."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import inspect
import pickle
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple

import pytest

from stateward.core import (
    CreationOutcome,
    HookReturnError,
    ImmutableState,
    InvalidTransition,
    MachineBuilder,
    MachineDefinitionError,
    MachineSnapshot,
    MachineSpec,
    Reject,
    TransitionContext,
    TransitionOutcome,
    TransitionRecord,
    TransitionRejected,
    apply_creation,
    apply_transition,
    apply_transition_async,
)
from stateward.core._machine import _run_here, transition_step
from stateward.core._quick import quick_init

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def at_t0() -> dt.datetime:
    return T0


# -- drivers ----------------------------------------------------------------------------------
#
# Every way into the algorithm, as one signature: the plain-code runner (through
# apply_transition with its private loop or a caller's runner, and through the
# actors' transition_step) and the generator behind apply_transition_async.


def _via_apply(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    return apply_transition(spec, snap, clock=at_t0, **kw)


def _via_async(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    return asyncio.run(apply_transition_async(spec, snap, clock=at_t0, **kw))


def _via_runner(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    def runner(awaitable: Awaitable[Any]) -> Any:
        async def wait() -> Any:
            return await awaitable

        return asyncio.run(wait())

    return apply_transition(spec, snap, clock=at_t0, run_async=runner, **kw)


def _via_step(spec: MachineSpec, snap: MachineSnapshot, **kw: Any) -> TransitionOutcome:
    target = kw.pop("target", None)
    new, entry, ctx, after = transition_step(
        spec, snap, target, kw.get("event"), kw.get("payload"), T0, kw.get("machine"), _run_here
    )
    return TransitionOutcome(snap, new, TransitionRecord(*entry), ctx, after)


Driver = Callable[..., TransitionOutcome]
DRIVERS: dict[str, Driver] = {
    "apply_transition": _via_apply,
    "apply_transition_async": _via_async,
    "apply_transition+run_async": _via_runner,
    "transition_step": _via_step,
}
BOTH = ["apply_transition", "apply_transition_async"]


# -- describing an outcome or an error, chain and notes included --------------------------------


class Raised(NamedTuple):
    type: type[BaseException]
    message: str
    notes: tuple[str, ...] = ()
    cause: Raised | None = None
    context: Raised | None = None
    suppress_context: bool = False


def raised(exc: BaseException | None, depth: int = 0) -> Raised | None:
    if exc is None:
        return None
    assert depth < 5, "an exception chain this long is not what these tests make"
    return Raised(
        type(exc),
        str(exc),
        tuple(getattr(exc, "__notes__", ())),
        raised(exc.__cause__, depth + 1),
        raised(exc.__context__, depth + 1),
        exc.__suppress_context__,
    )


class Done(NamedTuple):
    state: str
    payload: dict[str, Any]
    data: dict[str, Any]
    payload_keys: tuple[str, ...]


def observe(run: Callable[[], TransitionOutcome | CreationOutcome]) -> Done | Raised | None:
    try:
        outcome = run()
    except BaseException as exc:  # KeyboardInterrupt included: it is one of the behaviours
        return raised(exc)
    keys = outcome.record.payload_keys if isinstance(outcome, TransitionOutcome) else ()
    return Done(
        outcome.snapshot.state,
        dict(outcome.context.payload),
        dict(outcome.context.data),
        keys,
    )


# -- every hook behaviour, through every driver --------------------------------------------------

KINDS = ["pre_transition", "guard", "exit", "effect", "enter"]
BEHAVIOURS = [
    "none",
    "true",
    "false",
    "mapping",
    "number",
    "reject",
    "error",
    "stop_iteration",
    "keyboard_interrupt",
    "cancelled",
]
FLOW = {"a": ["b"], "b": []}
PAYLOAD = {"p": 1}
DATA = {"d": 0}


def behave(behaviour: str) -> Any:
    if behaviour == "none":
        return None
    if behaviour == "true":
        return True
    if behaviour == "false":
        return False
    if behaviour == "mapping":
        return {"x": 1}
    if behaviour == "number":
        return 42
    if behaviour == "reject":
        raise Reject("no way")
    if behaviour == "error":
        raise ValueError("boom")
    if behaviour == "stop_iteration":
        raise StopIteration("stop")
    if behaviour == "keyboard_interrupt":
        raise KeyboardInterrupt
    if behaviour == "cancelled":
        raise asyncio.CancelledError
    raise AssertionError(behaviour)


def hook_spec(kind: str, behaviour: str, flavour: str, calls: list[str]) -> MachineSpec:
    """A spec whose only hook, ``probe`` (of ``kind``), behaves as told on ``a -> b``."""

    def probe(ctx: TransitionContext) -> Any:
        """Not today."""
        calls.append(kind)
        assert ctx.payload == PAYLOAD
        assert ctx.data == DATA
        return behave(behaviour)

    async def async_probe(ctx: TransitionContext) -> Any:
        """Not today."""
        await asyncio.sleep(0)
        return probe(ctx)

    fn = async_probe if flavour == "async" else probe
    fn.__qualname__ = "probe"  # an effect is named by its function
    b = MachineBuilder("a", FLOW, events={"go": "a -> b"}, name="m")
    if kind == "effect":
        b.event("go")(fn)
    elif kind in ("exit", "enter"):
        getattr(b, f"on_{kind}")(name="probe")(fn)
    else:
        getattr(b, kind)(name="probe")(fn)
    return b.build()


def note(kind: str, source: str | None = "a", target: str = "b") -> str:
    return f"raised by {kind} hook 'probe' during {source!r} -> {target!r}"


def expected(kind: str, behaviour: str, flavour: str) -> Done | Raised:
    """What each behaviour gives, as the version before the fast path gave it."""
    unchanged = Done("b", PAYLOAD, DATA, ("p",))
    usable = "return None or a mapping of payload additions"
    if kind != "pre_transition":
        usable = "return None, a mapping of changes to the machine's data, or False to veto"
    if behaviour == "none":
        return unchanged
    if behaviour == "true" and kind != "pre_transition":
        return unchanged
    if behaviour in ("true", "false", "number") and (
        kind == "pre_transition" or (behaviour == "number" and kind != "guard")
    ):
        value = {"true": True, "false": False, "number": 42}[behaviour]
        return Raised(HookReturnError, f"{kind} hook 'probe' returned {value!r}; {usable}")
    if behaviour == "number":  # a guard: only False vetoes
        return unchanged
    if behaviour == "false":
        return Raised(
            TransitionRejected,
            "machine 'm': transition 'a' -> 'b' (event 'go') rejected by 'probe': Not today.",
        )
    if behaviour == "mapping":
        if kind == "pre_transition":
            return Done("b", {"p": 1, "x": 1}, DATA, ("p", "x"))
        if kind == "guard":
            return unchanged
        return Done("b", PAYLOAD, {"d": 0, "x": 1}, ("p",))
    if behaviour == "reject":
        veto = Raised(Reject, "no way")
        return Raised(
            TransitionRejected,
            "machine 'm': transition 'a' -> 'b' (event 'go') rejected by 'probe': no way",
            cause=veto,
            context=veto,
            suppress_context=True,
        )
    if behaviour == "error":
        return Raised(ValueError, "boom", (note(kind),))
    if behaviour == "stop_iteration":
        # PEP 479: neither a generator nor a coroutine lets StopIteration out.
        stop = Raised(StopIteration, "stop")
        where = "coroutine" if flavour == "async" else "generator"
        return Raised(
            RuntimeError,
            f"{where} raised StopIteration",
            (note(kind),),
            cause=stop,
            context=stop,
            suppress_context=True,
        )
    if behaviour == "keyboard_interrupt":  # not an Exception: never annotated, never caught
        return Raised(KeyboardInterrupt, "")
    if behaviour == "cancelled":
        return Raised(asyncio.CancelledError, "")
    raise AssertionError(behaviour)


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_hook_behaviour_gives_the_same_result_through_every_driver(
    kind: str, behaviour: str, flavour: str, driver: str
) -> None:
    calls: list[str] = []
    spec = hook_spec(kind, behaviour, flavour, calls)
    before = MachineSnapshot.initial(spec, DATA)
    result = observe(lambda: DRIVERS[driver](spec, before, event="go", payload=PAYLOAD))
    assert result == expected(kind, behaviour, flavour)
    assert calls == [kind]  # the hook ran once
    assert (before.state, before.version, before.data) == ("a", 0, DATA)
    assert list(before.history) == []


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt(), Reject("no")])
def test_the_caller_gets_the_hooks_own_exception(
    error: BaseException, flavour: str, driver: str
) -> None:
    """Not a copy: the very object, noted once if it is an Exception, or as the veto's cause."""
    b = MachineBuilder("a", FLOW)
    thrown = copy.copy(error)

    async def async_guard(ctx: TransitionContext) -> bool:
        raise thrown

    def guard(ctx: TransitionContext) -> bool:
        raise thrown

    b.guard(name="probe")(async_guard if flavour == "async" else guard)
    spec = b.build()
    with pytest.raises(BaseException) as info:  # noqa: PT011 - the type is checked below
        DRIVERS[driver](spec, MachineSnapshot.initial(spec), target="b")
    if isinstance(thrown, Reject):
        assert type(info.value) is TransitionRejected
        assert info.value.__cause__ is thrown
        assert not hasattr(thrown, "__notes__")
    elif isinstance(thrown, Exception):
        assert info.value is thrown
        assert thrown.__notes__ == [note("guard")]
    else:
        assert info.value is thrown
        assert not hasattr(thrown, "__notes__")


@pytest.mark.parametrize("behaviour", ["false", "reject", "error", "stop_iteration", "number"])
@pytest.mark.parametrize("kind", ["pre_transition", "guard", "enter"])
def test_creation_hooks_behave_as_transition_hooks_do(kind: str, behaviour: str) -> None:
    calls: list[str] = []

    def probe(ctx: TransitionContext) -> Any:
        """Not today."""
        calls.append(kind)
        assert ctx.source is None
        return behave(behaviour)

    b = MachineBuilder("a", FLOW, name="m")
    getattr(b, "on_enter" if kind == "enter" else kind)(name="probe")(probe)
    spec = b.build()
    result = observe(lambda: apply_creation(spec, PAYLOAD, data=DATA, clock=at_t0))
    assert calls == [kind]
    rejected = "machine 'm': transition '(new)' -> 'a' rejected by 'probe': "
    if behaviour == "false" and kind != "pre_transition":
        assert result == Raised(TransitionRejected, rejected + "Not today.")
    elif behaviour == "reject":
        veto = Raised(Reject, "no way")
        assert result == Raised(TransitionRejected, rejected + "no way", (), veto, veto, True)
    elif behaviour == "error":
        assert result == Raised(ValueError, "boom", (note(kind, None, "a"),))
    elif behaviour == "stop_iteration":
        stop = Raised(StopIteration, "stop")
        assert result == Raised(
            RuntimeError,
            "generator raised StopIteration",
            (note(kind, None, "a"),),
            stop,
            stop,
            True,
        )
    elif behaviour == "number" and kind == "guard":
        assert result == Done("a", PAYLOAD, DATA, ())
    else:
        assert isinstance(result, Raised)
        assert result.type is HookReturnError
        assert result.notes == ()


@pytest.mark.parametrize("driver", BOTH)
def test_a_hook_error_keeps_its_own_context(driver: str) -> None:
    """An error raised while a hook handled another keeps that one as its context."""
    b = MachineBuilder("a", FLOW)

    @b.guard(name="probe")
    def probe(ctx: TransitionContext) -> bool:
        try:
            {}["missing"]  # the KeyError is the point
        except KeyError as exc:
            raise LookupError("wrapped") from exc
        return True

    spec = b.build()
    result = observe(lambda: DRIVERS[driver](spec, MachineSnapshot.initial(spec), target="b"))
    missing = Raised(KeyError, "'missing'")
    assert result == Raised(LookupError, "wrapped", (note("guard"),), missing, missing, True)


def test_coroutine_hooks_run_through_run_async_once_each() -> None:
    ran: list[str] = []
    b = MachineBuilder("a", FLOW)

    @b.pre_transition
    async def enrich(ctx: TransitionContext) -> dict[str, int]:
        return {"n": 1}

    @b.guard
    def plain(ctx: TransitionContext) -> bool:
        return True

    @b.on_enter
    async def enter(ctx: TransitionContext) -> dict[str, int]:
        return {"seen": ctx.payload["n"]}

    spec = b.build()

    def runner(awaitable: Awaitable[Any]) -> Any:
        assert inspect.iscoroutine(awaitable)
        ran.append(awaitable.cr_code.co_name)
        return _finish(awaitable)

    outcome = apply_transition(spec, MachineSnapshot.initial(spec), "b", run_async=runner)
    assert ran == ["enrich", "enter"]
    assert outcome.snapshot.data == {"seen": 1}
    created = apply_creation(spec, run_async=runner)  # unfiltered hooks run on creation too
    assert ran == ["enrich", "enter", "enrich", "enter"]
    assert created.snapshot.data == {"seen": 1}


def _finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends for real (these hooks do not)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine suspended")


def test_a_base_exception_from_run_async_is_neither_caught_nor_noted() -> None:
    b = MachineBuilder("a", FLOW)

    @b.guard
    async def guard(ctx: TransitionContext) -> bool:
        return True

    spec = b.build()

    def runner(awaitable: Awaitable[Any]) -> Any:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        apply_transition(spec, MachineSnapshot.initial(spec), "b", run_async=runner)
    assert not hasattr(info.value, "__notes__")


# -- quick_init: still a frozen dataclass in every way ---------------------------------------------


def make_point(quick: bool) -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        """A point."""

        x: int
        y: int = 0
        label: str = "p"

    return quick_init(Point) if quick else Point


def test_quick_init_keeps_the_dataclass_signature_and_errors() -> None:
    plain, quick = make_point(False), make_point(True)
    assert quick.__init__ is not plain.__init__
    assert inspect.signature(quick) == inspect.signature(plain)
    assert quick.__init__.__qualname__ == plain.__init__.__qualname__
    assert quick.__init__.__module__ == plain.__init__.__module__ == __name__
    assert quick.__init__.__doc__ == plain.__init__.__doc__
    bad_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}),
        ((1, 2, "a", 4), {}),
        ((1,), {"x": 2}),
        ((1,), {"nope": 2}),
    ]
    for args, kwargs in bad_calls:
        messages = []
        for cls in (plain, quick):
            with pytest.raises(TypeError) as info:
                cls(*args, **kwargs)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def test_quick_init_classes_keep_value_behaviour() -> None:
    quick = make_point(True)
    a = quick(1)
    assert (a.x, a.y, a.label) == (1, 0, "p")
    assert a == quick(x=1, y=0, label="p") == quick(1, label="p")
    assert hash(a) == hash(quick(1))
    assert a != quick(2)
    assert repr(a) == "make_point.<locals>.Point(x=1, y=0, label='p')"
    assert dataclasses.replace(a, y=5) == quick(1, 5)
    assert dataclasses.astuple(a) == (1, 0, "p")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.x  # type: ignore[attr-defined]
    assert not hasattr(a, "__dict__")
    match a:
        case quick(x, y, label):  # type: ignore[misc]
            assert (x, y, label) == (1, 0, "p")
    assert copy.copy(a) == a
    assert copy.deepcopy(a) == a


def record() -> TransitionRecord:
    return TransitionRecord(1, "a", "b", "go", T0, ("p",))


def context() -> TransitionContext:
    return TransitionContext("a", "b", "go", ImmutableState(p=1), ImmutableState(d=0), 1, "m", T0)


def snapshot() -> MachineSnapshot:
    return MachineSnapshot("b", 1, ImmutableState(d=0), (record(),))


SAMPLES: dict[type, Callable[[], Any]] = {
    TransitionRecord: record,
    MachineSnapshot: snapshot,
    TransitionContext: context,
    TransitionOutcome: lambda: TransitionOutcome(
        MachineSnapshot("a"), snapshot(), record(), context(), ()
    ),
    CreationOutcome: lambda: CreationOutcome(MachineSnapshot("a"), context(), ()),
}


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_the_records_of_a_transition_are_still_frozen_dataclasses(cls: type) -> None:
    value = SAMPLES[cls]()
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == names
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert cls.__init__.__module__ == cls.__module__
    by_keyword = cls(**{name: getattr(value, name) for name in names})
    assert by_keyword == value
    assert hash(by_keyword) == hash(value)
    assert repr(by_keyword) == repr(value)
    assert repr(value).startswith(f"{cls.__name__}({names[0]}=")
    assert dataclasses.replace(value) == value
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, names[0], None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(value, names[-1])
    with pytest.raises(TypeError, match="missing"):
        cls()


def test_record_and_snapshot_defaults() -> None:
    bare = MachineSnapshot("s")
    assert (bare.state, bare.version, bare.data, list(bare.history)) == ("s", 0, {}, [])
    assert isinstance(bare.data, ImmutableState)
    assert MachineSnapshot(state="s", version=3).version == 3
    assert TransitionRecord(1, "a", "b", None, T0).payload_keys == ()
    assert dataclasses.replace(MachineSnapshot("s"), state="t").state == "t"
    assert dataclasses.replace(record(), event=None).event is None


def _plain() -> type:
    class Plain:
        x: int

    return Plain


def _unfrozen() -> type:
    @dataclasses.dataclass(slots=True)
    class Unfrozen:
        x: int

    return Unfrozen


def _unslotted() -> type:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    return Unslotted


def _post_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    return PostInit


def _factory() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        x: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    return Factory


def _not_in_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInInit:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    return NotInInit


def _keyword_only() -> type:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        x: int

    return KeywordOnly


def _init_var() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: dataclasses.InitVar[int] = 1

    return WithInitVar


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_plain, "must be a frozen dataclass with slots=True"),
        (_unfrozen, "must be a frozen dataclass with slots=True"),
        (_unslotted, "must be a frozen dataclass with slots=True"),
        (_post_init, "no __post_init__"),
        (_factory, "use a default, not a default_factory"),
        (_not_in_init, "must take every field, in order"),
        (_keyword_only, "must take every field, in order"),
        (_init_var, "must take every field, in order"),
    ],
)
def test_quick_init_refuses_what_it_cannot_reproduce(
    make: Callable[[], type], message: str
) -> None:
    cls = make()
    before = cls.__dict__.get("__init__")
    with pytest.raises(TypeError, match=message):
        quick_init(cls)
    assert cls.__dict__.get("__init__") is before


# -- the table of checked moves --------------------------------------------------------------------

ORDERS = {
    "pending": ["paid", "cancelled"],
    "paid": ["shipped", "cancelled"],
    "shipped": [],
    "cancelled": [],
}
ORDER_EVENTS = {
    "pay": "pending -> paid",
    "cancel": "pending|paid -> cancelled",
    "abort": "paid -> cancelled",  # with cancel: paid -> cancelled is ambiguous by target
    "ship": "paid -> shipped",
}
STATES = list(ORDERS)
TARGETS: list[str | None] = [None, *STATES, "nowhere"]
EVENTS: list[str | None] = [None, *ORDER_EVENTS, "nope"]


def orders() -> MachineBuilder:
    b = MachineBuilder("pending", ORDERS, events=ORDER_EVENTS, name="o")

    @b.on_enter("paid")
    def count(ctx: TransitionContext) -> dict[str, int]:
        return {"paid": ctx.data.get("paid", 0) + 1}

    @b.event("ship")
    def ship(ctx: TransitionContext) -> dict[str, bool]:
        return {"shipped": True}

    @b.guard("cancelled")
    def allowed(ctx: TransitionContext) -> bool:
        """Cancelling is switched off."""
        return not ctx.payload.get("refuse", False)

    @b.after_commit
    def after(ctx: TransitionContext) -> None:
        pass

    return b


def attempt(
    spec: MachineSpec, state: str, target: str | None, event: str | None, driver: str
) -> tuple[Any, ...]:
    snap = MachineSnapshot(state, 3, ImmutableState(paid=1))
    try:
        out = DRIVERS[driver](spec, snap, target=target, event=event, payload={"k": 1})
    except Exception as exc:
        return (type(exc), str(exc), getattr(exc, "__notes__", None))
    return (out.snapshot, out.record, out.context, out.after_commit)


@pytest.mark.parametrize("driver", BOTH)
def test_the_table_gives_what_a_fresh_spec_gives_and_keeps_only_allowed_moves(
    driver: str,
) -> None:
    builder = orders()
    warm = builder.build()
    allowed: set[tuple[str, str | None, str | None]] = set()
    refused: set[tuple[str, str | None, str | None]] = set()
    for _ in range(2):  # the second round reads every allowed move from the table
        for state in STATES:
            for target in TARGETS:
                for event in EVENTS:
                    fresh = builder.build()
                    want = attempt(fresh, state, target, event, driver)
                    assert attempt(warm, state, target, event, driver) == want
                    key = (state, target, event)
                    if isinstance(want[0], type):
                        refused.add(key)
                        assert key not in warm._moves
                    else:
                        allowed.add(key)
                        assert key in warm._moves
    assert set(warm._moves) == allowed
    assert not allowed & refused
    # Spot checks of what the table settled: a move by target names its event.
    assert ("pending", "paid", None) in allowed
    assert ("paid", "cancelled", None) in refused  # two events lead there
    assert ("paid", "shipped", "pay") in refused
    again = attempt(warm, "pending", "paid", None, driver)
    assert again[1].event == "pay"
    assert again[0].data == {"paid": 2}


#: What the version before the table said to each refused request, word for word.
ALLOWED_FROM_PENDING = "allowed targets from 'pending': 'cancelled', 'paid'"
EVENTS_FROM_PENDING = "events from 'pending': 'cancel', 'pay'"
REFUSALS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "pending",
        {"target": "shipped"},
        InvalidTransition,
        f"machine 'o': cannot go from 'pending' to 'shipped'; {ALLOWED_FROM_PENDING}",
    ),
    (
        "pending",
        {"event": "nope"},
        InvalidTransition,
        f"machine 'o': event 'nope' cannot fire from state 'pending'; {ALLOWED_FROM_PENDING}; "
        f"{EVENTS_FROM_PENDING}; there is no event named 'nope'",
    ),
    (
        "pending",
        {"event": "ship"},
        InvalidTransition,
        f"machine 'o': event 'ship' cannot fire from state 'pending'; {ALLOWED_FROM_PENDING}; "
        f"{EVENTS_FROM_PENDING}",
    ),
    (
        "pending",
        {"target": "nowhere"},
        InvalidTransition,
        f"machine 'o': cannot go from 'pending' to 'nowhere'; {ALLOWED_FROM_PENDING}; "
        "'nowhere' is not a state of this machine",
    ),
    (
        "pending",
        {"target": "cancelled", "event": "pay"},
        InvalidTransition,
        "machine 'o': cannot go from 'pending' to 'cancelled' (event 'pay'); "
        f"{ALLOWED_FROM_PENDING}; {EVENTS_FROM_PENDING}; event 'pay' leads to 'paid'",
    ),
    ("pending", {}, TypeError, "a transition needs a target state or an event"),
    (
        "paid",
        {"target": "cancelled"},
        InvalidTransition,
        "machine 'o': cannot go from 'paid' to 'cancelled'; allowed targets from 'paid': "
        "'cancelled', 'shipped'; events 'cancel', 'abort' all lead there: "
        "name one with trigger(event)",
    ),
    (
        "bogus",
        {"event": "cancel"},
        MachineDefinitionError,
        "'bogus' is not a state of this machine; states: 'pending', 'paid', 'shipped', 'cancelled'",
    ),
]


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_a_refused_move_says_the_same_every_time_and_is_never_kept(driver: str) -> None:
    spec = orders().build()
    for state, kwargs, error, message in REFUSALS:
        for _ in range(3):
            with pytest.raises(error) as info:
                DRIVERS[driver](spec, MachineSnapshot(state), **kwargs)
            assert str(info.value) == message
        assert spec._moves == {}
    DRIVERS[driver](spec, MachineSnapshot("pending"), target="paid")
    for state, kwargs, error, message in REFUSALS:
        with pytest.raises(error, match=re.escape(message)):
            DRIVERS[driver](spec, MachineSnapshot(state), **kwargs)
    assert list(spec._moves) == [("pending", "paid", None)]


def test_a_vetoed_move_is_still_allowed_and_a_later_try_passes() -> None:
    spec = orders().build()
    snap = MachineSnapshot.initial(spec)
    for _ in range(2):
        with pytest.raises(TransitionRejected, match="Cancelling is switched off"):
            apply_transition(spec, snap, event="cancel", payload={"refuse": True})
    assert apply_transition(spec, snap, event="cancel").snapshot.state == "cancelled"


def test_each_spec_has_its_own_table() -> None:
    first = orders().build()
    apply_transition(first, MachineSnapshot.initial(first), "paid")
    second = first.to_builder().build()
    assert second._moves == {}
    b = MachineBuilder("pending", ORDERS, events=ORDER_EVENTS)

    @b.on_enter("paid")
    def other(ctx: TransitionContext) -> dict[str, str]:
        return {"by": "other"}

    third = b.build()
    snap = MachineSnapshot.initial(third)
    assert apply_transition(third, snap, "paid").snapshot.data == {"by": "other"}
    assert apply_transition(first, snap, "paid").snapshot.data == {"paid": 1}


# -- payloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize(
    "payload", [None, {}, ImmutableState()], ids=["none", "empty-dict", "empty-state"]
)
def test_an_empty_payload_of_any_form(driver: str, payload: Any) -> None:
    seen: list[ImmutableState] = []
    b = MachineBuilder("a", FLOW)

    @b.guard
    def look(ctx: TransitionContext) -> bool:
        seen.append(ctx.payload)
        return True

    spec = b.build()
    out = DRIVERS[driver](spec, MachineSnapshot.initial(spec), target="b", payload=payload)
    assert out.record.payload_keys == ()
    assert out.context.payload == ImmutableState()
    assert isinstance(out.context.payload, ImmutableState)
    assert seen == [ImmutableState()]


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_payloads_are_frozen_kept_and_their_keys_recorded_sorted(driver: str) -> None:
    b = MachineBuilder("a", FLOW)
    spec = b.build()
    snap = MachineSnapshot.initial(spec)
    given = ImmutableState(z=1, a=2)
    assert DRIVERS[driver](spec, snap, target="b", payload=given).context.payload is given
    raw = {"z": [1], "a": 2}
    out = DRIVERS[driver](spec, snap, target="b", payload=raw)
    raw["z"].append(2)
    raw["q"] = 3
    assert out.context.payload == {"z": [1], "a": 2}
    assert isinstance(out.context.payload, ImmutableState)
    assert out.record.payload_keys == ("a", "z")

    @b.pre_transition
    def enrich(ctx: TransitionContext) -> dict[str, int]:
        return {"m": 0}

    enriched = b.build()
    out = DRIVERS[driver](enriched, snap, target="b", payload=given)
    assert out.record.payload_keys == ("a", "m", "z")
    assert given == {"z": 1, "a": 2}


# -- history -----------------------------------------------------------------------------------

LOOP = {"a": ["b"], "b": ["a"]}


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("limit", [0, 1, 2, 100])
def test_history_keeps_the_last_records_up_to_the_limit(limit: int, driver: str) -> None:
    spec = MachineBuilder("a", LOOP, history_limit=limit).build()
    snap = MachineSnapshot.initial(spec)
    records: list[TransitionRecord] = []
    for step in range(1, 151):
        target = "b" if snap.state == "a" else "a"
        out = DRIVERS[driver](spec, snap, target=target)
        snap = out.snapshot
        records.append(out.record)
        kept = records[-limit:] if limit else []
        assert list(snap.history) == kept, step
        assert len(snap.history) == min(limit, step)
    assert [r.version for r in snap.history] == list(range(151 - limit, 151))[:limit]


@pytest.mark.parametrize("driver", BOTH)
@pytest.mark.parametrize("limit", [0, 1, 2, 100])
def test_a_longer_history_than_the_limit_is_cut_on_the_next_move(limit: int, driver: str) -> None:
    """A snapshot kept under a larger limit (or built by hand) is trimmed, oldest first."""
    spec = MachineBuilder("a", LOOP, history_limit=limit).build()
    old = tuple(
        TransitionRecord(v, "a" if v % 2 else "b", "b" if v % 2 else "a", None, T0)
        for v in range(1, 121)
    )
    snap = MachineSnapshot("a", 120, ImmutableState(), old)
    out = DRIVERS[driver](spec, snap, target="b")
    want = [*old, out.record][-limit:] if limit else []
    assert list(out.snapshot.history) == want
    assert out.snapshot.version == 121
    assert list(snap.history) == list(old)
