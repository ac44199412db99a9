"""What each hook result and exception does to a transition, the same through every driver.

Every hook kind (pre_transition, guard, exit, event effect, enter), plain or
async, returning None, True, False, a mapping or a number, or raising a veto, an
error, StopIteration, KeyboardInterrupt or CancelledError, is run through every
way into the algorithm (`support.DRIVERS`): the outcome, the error (its type,
message, notes and chain) and the hook's calls must be the same each way.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any

import pytest
from support import BOTH, DRIVERS, FLOW, Done, Raised, at_t0, observe

from stateward.core import (
    HookReturnError,
    MachineBuilder,
    MachineSnapshot,
    MachineSpec,
    Reject,
    TransitionContext,
    TransitionRejected,
    apply_creation,
    apply_transition,
)

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
