"""The caller's context: a request's hooks, guards, ``modify`` functions,
after-commit hooks and observers run in a copy of the `contextvars` of the
code that made the request, whichever thread or loop runs them, and what they
set stays in that copy.

Every test runs on each host (``each_host``): a thread per actor, and a pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import random
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Workers

from stateward.actors import Runtime, SelfCallError, SQLiteStore, StateMachine, StateManager
from stateward.core import ImmutableState, MachineBuilder
from stateward.core._messages import Modify, Move

pytestmark = pytest.mark.usefixtures("each_host")

WAIT = 10.0

#: What a web framework would set per request: the id of the request served.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "test_request_id", default=None
)
#: Set by a hook: it must stay in that request's context.
set_by_a_hook: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "test_set_by_a_hook", default=None
)

SYNC_HOOKS = ["pre_transition", "guard", "exit", "enter", "after_commit", "observer"]


class Seen:
    """What each hook saw of `request_id`, by the id its request carries in
    its payload (``{"id": ...}``); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_request: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        self.threads: set[threading.Thread] = set()

    def add(self, hook: str, rid: str) -> None:
        with self._lock:
            self.by_request[rid].append((hook, request_id.get()))
            self.threads.add(threading.current_thread())

    def clear(self) -> None:
        with self._lock:
            self.by_request.clear()
            self.threads.clear()

    def wrong(self) -> dict[str, list[tuple[str, str | None]]]:
        """The requests whose hooks saw another request id than their own."""
        return {
            rid: seen
            for rid, seen in self.by_request.items()
            if any(value != rid for _, value in seen)
        }


def recording_flow(seen: Seen, *, asynchronous: bool = False) -> MachineBuilder:
    """A machine that may move from "open" to "open" again, again and again,
    whose every hook records what it sees of `request_id`. With
    ``asynchronous``, its guard, enter and after-commit hooks are coroutines."""
    flow = MachineBuilder("open", {"open": ["open"]})

    @flow.pre_transition
    def pre(ctx: Any) -> None:
        seen.add("pre_transition", ctx.payload.id)

    @flow.on_exit("open")
    def leave(ctx: Any) -> None:
        seen.add("exit", ctx.payload.id)

    if asynchronous:

        @flow.guard
        async def allowed(ctx: Any) -> bool:
            await asyncio.sleep(0)
            seen.add("guard", ctx.payload.id)
            return True

        @flow.on_enter("open")
        async def arrive(ctx: Any) -> dict[str, Any]:
            await asyncio.sleep(0)
            seen.add("enter", ctx.payload.id)
            return {"id": ctx.payload.id}

        @flow.after_commit
        async def notify(ctx: Any) -> None:
            await asyncio.sleep(0)
            seen.add("after_commit", ctx.payload.id)

    else:

        @flow.guard
        def allowed_now(ctx: Any) -> bool:
            seen.add("guard", ctx.payload.id)
            return True

        @flow.on_enter("open")
        def arrive_now(ctx: Any) -> dict[str, Any]:
            seen.add("enter", ctx.payload.id)
            return {"id": ctx.payload.id}

        @flow.after_commit
        def notify_now(ctx: Any) -> None:
            seen.add("after_commit", ctx.payload.id)

    return flow


def recording_machine(
    seen: Seen, runtime: Runtime, *, asynchronous: bool = False, name: str | None = None
) -> StateMachine:
    machine = StateMachine(
        recording_flow(seen, asynchronous=asynchronous), runtime=runtime, name=name
    )

    def observe(old: Any, new: Any) -> None:
        seen.add("observer", new.data.id)

    machine.add_observer(observe)
    return machine


def as_request(rid: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` as code serving request ``rid``: in a context of its own
    where `request_id` is ``rid`` (what a web framework does per request)."""

    def serve() -> Any:
        request_id.set(rid)
        return fn(*args)

    return contextvars.copy_context().run(serve)


def move(machine: StateMachine, rid: str) -> Any:
    """A blocking move carrying ``rid`` in its payload."""
    return machine.transition("open", {"id": rid})


def send(machine: StateMachine, rid: str) -> Any:
    """A queued move carrying ``rid`` in its payload: its reply."""
    return machine.request_transition("open", {"id": rid})


async def atransition(machine: StateMachine, target: str, data: dict[str, Any]) -> Any:
    """The awaited transition (``atransition`` once it exists, else the
    coroutine every ``a*`` call goes through)."""
    call = getattr(machine, "atransition", None)
    if call is not None:
        return await call(target, data)
    return await machine._acall(Move((target, None, ImmutableState(**data))), None)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with Runtime("ctx", default_timeout=WAIT) as rt:
        yield rt


@pytest.fixture
def queued_runtime() -> Iterator[Runtime]:
    """A runtime whose blocking calls never run inline: each goes to the
    actor's worker (its own thread, or one of the pool's)."""
    with Runtime("ctx-queued", default_timeout=WAIT, inline_calls=False) as rt:
        yield rt


# -- from threads ------------------------------------------------------------------------


def marking_machine(seen: Seen, runtime: Runtime, **options: Any) -> tuple[StateMachine, list[Any]]:
    """A recording machine whose first hook also sets `set_by_a_hook`, after
    noting what it found there (None, unless something leaked)."""
    found: list[Any] = []
    flow = recording_flow(seen)

    @flow.pre_transition
    def mark(ctx: Any) -> None:
        found.append(set_by_a_hook.get())
        set_by_a_hook.set(f"set while serving {ctx.payload.id}")

    machine = StateMachine(flow, runtime=runtime, **options)
    machine.add_observer(lambda old, new: seen.add("observer", new.data.id))
    return machine, found


def test_an_inline_calls_hooks_see_the_callers_context_and_what_they_set_stays_there(
    runtime: Runtime,
) -> None:
    seen = Seen()
    machine, found = marking_machine(seen, runtime)
    # Its first request starts it (on its own thread, with a thread per
    # actor); from then on, an idle actor runs a blocking call inline.
    as_request("warm-up", move, machine, "warm-up")
    seen.clear()

    def serve() -> tuple[threading.Thread, str | None]:
        machine.transition("open", {"id": "r-1"})
        machine.transition("open", {"id": "r-1"})
        return threading.current_thread(), set_by_a_hook.get()

    caller, after = as_request("r-1", serve)
    assert seen.threads == {caller}  # it ran inline, on the caller's thread
    assert seen.by_request["r-1"] == [(hook, "r-1") for hook in SYNC_HOOKS] * 2
    assert after is None, "a hook's ContextVar.set leaked into the caller's context"
    assert found == [None] * 3, "a hook saw what a hook of an earlier request set"
    assert machine.version == 3


def test_a_blocking_call_run_by_the_actors_worker_sees_the_callers_context(
    queued_runtime: Runtime, workers: Workers
) -> None:
    seen = Seen()
    machine = recording_machine(seen, queued_runtime)
    callers = 3
    for n in range(callers):
        rid = f"thread-{n}"
        workers.start(as_request, rid, move, machine, rid)
    workers.join()
    assert threading.current_thread() not in seen.threads
    assert sorted(seen.by_request) == [f"thread-{n}" for n in range(callers)]
    for rid, hooks in seen.by_request.items():
        assert hooks == [(hook, rid) for hook in SYNC_HOOKS], rid


def test_requests_queued_behind_a_busy_actor_each_see_their_senders_context(
    runtime: Runtime, workers: Workers
) -> None:
    seen = Seen()
    entered, release = threading.Event(), threading.Event()
    flow = recording_flow(seen)

    @flow.guard
    def hold_the_first(ctx: Any) -> bool:
        if ctx.payload.id == "first":
            entered.set()
            assert release.wait(WAIT)
        return True

    machine = StateMachine(flow, runtime=runtime)
    machine.add_observer(lambda old, new: seen.add("observer", new.data.id))
    first = as_request("first", send, machine, "first")
    assert entered.wait(WAIT)
    replies: dict[str, Any] = {}

    def send_behind(rid: str) -> None:
        replies[rid] = send(machine, rid)

    for n in range(3):
        workers.start(as_request, f"behind-{n}", send_behind, f"behind-{n}")
    workers.join()
    assert not any(reply.done() for reply in replies.values())  # queued: the actor is busy
    release.set()
    assert first.result(WAIT).version >= 1
    assert sorted(reply.result(WAIT).data.id for reply in replies.values()) == sorted(replies)
    assert seen.wrong() == {}
    assert sorted(seen.by_request) == sorted(["first", *replies])
    for rid, hooks in seen.by_request.items():
        assert [hook for hook, _ in hooks] == SYNC_HOOKS, rid


def test_what_a_hook_sets_never_reaches_the_next_message(queued_runtime: Runtime) -> None:
    seen = Seen()
    machine, found = marking_machine(seen, queued_runtime)
    count = 2 * queued_runtime.workers + 3  # so that some worker of a pool runs several
    for n in range(count):
        machine.transition("open", {"id": f"r-{n}"})
    assert found == [None] * count, "a hook saw what the hook of an earlier request set"
    assert set_by_a_hook.get() is None


def test_a_modify_function_sees_the_callers_context(
    queued_runtime: Runtime, workers: Workers
) -> None:
    manager = StateManager({"served": []}, runtime=queued_runtime)

    def note(state: ImmutableState) -> ImmutableState:
        return state.update(served=[*state.served, request_id.get()])

    for n in range(4):
        workers.start(as_request, f"m-{n}", manager.modify, note)
    workers.join()
    served = manager.get_state().served
    assert sorted(served, key=repr) == [f"m-{n}" for n in range(4)], served


def test_concurrent_callers_each_see_their_own_request_id(
    runtime: Runtime, workers: Workers
) -> None:
    """Threads send blocking and queued requests to a few shared machines, in
    an order a seeded random generator picks, each request with an id of its
    own; every hook of every request sees that request's id.

    STATEWARD_CTX_REQUESTS=<n> sends n requests per thread (default 40)."""
    import os

    per_thread = int(os.environ.get("STATEWARD_CTX_REQUESTS", "40"))
    seen = Seen()
    machines = [recording_machine(seen, runtime, name=f"shared-{m}") for m in range(3)]
    rng = random.Random(15)
    plans = [
        [(rng.choice(machines), rng.random() < 0.5) for _ in range(per_thread)] for _ in range(4)
    ]

    def client(t: int) -> None:
        replies = []
        for n, (machine, blocking) in enumerate(plans[t]):
            rid = f"t{t}-{n}"
            if blocking:
                as_request(rid, move, machine, rid)
            else:
                replies.append(as_request(rid, send, machine, rid))
        for reply in replies:
            reply.result(WAIT)

    for t in range(len(plans)):
        workers.start(client, t)
    workers.join()
    assert len(seen.by_request) == len(plans) * per_thread
    assert seen.wrong() == {}
    assert all(len(hooks) == len(SYNC_HOOKS) for hooks in seen.by_request.values())


class Span:
    """An object a caller keeps in a ContextVar (a trace span, a session)."""


span: contextvars.ContextVar[Span | None] = contextvars.ContextVar("test_span", default=None)


def test_hooks_get_the_senders_objects_and_an_answered_reply_lets_them_go(
    queued_runtime: Runtime,
) -> None:
    got: list[bool] = []
    flow = MachineBuilder("open", {"open": ["open"]})

    @flow.guard
    def check(ctx: Any) -> bool:
        got.append(isinstance(span.get(), Span))
        return True

    machine = StateMachine(flow, runtime=queued_runtime)

    def serve() -> tuple[Any, weakref.ref[Span]]:
        current = Span()
        span.set(current)
        reply = machine.request_transition("open")
        reply.result(WAIT)
        return reply, weakref.ref(current)

    reply, gone = contextvars.copy_context().run(serve)
    gc.collect()
    assert got == [True]
    assert reply.done() and gone() is None, "an answered reply keeps its sender's context alive"


# -- from asyncio --------------------------------------------------------------------------


def test_an_awaiting_tasks_context_reaches_the_hooks(runtime: Runtime) -> None:
    seen = Seen()
    machine = recording_machine(seen, runtime)

    async def serve(rid: str, how: str) -> None:
        request_id.set(rid)
        data = {"id": rid}
        if how == "request":
            snapshot = await machine.request_transition("open", data)
        else:
            snapshot = await atransition(machine, "open", data)
        assert snapshot.data.id == rid
        assert request_id.get() == rid and set_by_a_hook.get() is None

    async def main() -> None:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(
                *(serve(f"task-{n}", ("request", "acall")[n % 2]) for n in range(20))
            )

    asyncio.run(main())
    assert len(seen.by_request) == 20
    assert seen.wrong() == {}


def test_async_hooks_see_the_callers_context_wherever_they_are_awaited(
    runtime: Runtime, queued_runtime: Runtime, workers: Workers
) -> None:
    """Coroutine guards, enter and after-commit hooks (and their sync
    neighbours once the turn goes on) see the sender's id: requests from
    asyncio tasks, from threads queued to the actor's worker, and inline."""
    seen = Seen()
    awaited = recording_machine(seen, runtime, asynchronous=True)
    queued = recording_machine(seen, queued_runtime, asynchronous=True)

    async def serve(rid: str) -> None:
        request_id.set(rid)
        await awaited.request_transition("open", {"id": rid})

    async def main() -> None:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(serve(f"task-{n}") for n in range(6)))

    asyncio.run(main())
    for n in range(3):
        rid = f"thread-{n}"
        workers.start(as_request, rid, move, queued, rid)
    workers.join()
    as_request("inline", move, awaited, "inline")
    assert len(seen.by_request) == 6 + 3 + 1
    assert seen.wrong() == {}
    for rid, hooks in seen.by_request.items():
        assert sorted(hook for hook, _ in hooks) == sorted(SYNC_HOOKS), rid


def test_an_async_hook_sees_what_the_hooks_before_it_set(queued_runtime: Runtime) -> None:
    found: list[tuple[str, Any, Any]] = []
    flow = MachineBuilder("open", {"open": ["open"]})

    @flow.pre_transition
    def mark(ctx: Any) -> None:
        set_by_a_hook.set(f"pre {ctx.payload.id}")

    @flow.guard
    async def check(ctx: Any) -> bool:
        await asyncio.sleep(0)
        found.append(("guard", request_id.get(), set_by_a_hook.get()))
        set_by_a_hook.set("set by the async guard")  # in its own task's context
        return True

    @flow.on_enter("open")
    def arrive(ctx: Any) -> None:
        found.append(("enter", request_id.get(), set_by_a_hook.get()))

    machine = StateMachine(flow, runtime=queued_runtime)
    as_request("r-1", move, machine, "r-1")
    assert found == [("guard", "r-1", "pre r-1"), ("enter", "r-1", "pre r-1")]
    assert set_by_a_hook.get() is None


# -- after the commit ------------------------------------------------------------------------


def test_after_commit_hooks_and_observers_of_a_group_commit_see_each_senders_context(
    tmp_path: Path, workers: Workers
) -> None:
    """On a pool, a SQLite store's commits are written by the worker's batch,
    which then runs their after-commit hooks and observers: each in its own
    request's context."""
    seen = Seen()
    with Runtime("ctx-durable", store=SQLiteStore(tmp_path / "ctx.db"), default_timeout=WAIT) as rt:
        machines = [recording_machine(seen, rt, name=f"durable-{m}") for m in range(4)]
        replies: list[Any] = []
        lock = threading.Lock()

        def client(t: int) -> None:
            for n in range(10):
                rid = f"t{t}-{n}"
                machine = machines[(t + n) % len(machines)]
                reply = as_request(rid, send, machine, rid)
                with lock:
                    replies.append(reply)

        for t in range(3):
            workers.start(client, t)
        workers.join()
        for reply in replies:
            reply.result(WAIT)
    assert len(seen.by_request) == 30
    assert seen.wrong() == {}
    for rid, hooks in seen.by_request.items():
        assert [hook for hook, _ in hooks] == SYNC_HOOKS, rid


def test_a_request_sent_from_another_actors_hook_carries_that_requests_context(
    runtime: Runtime,
) -> None:
    """An after-commit hook of ``orders`` queues a request to ``audit``: the
    audit's hooks see the id the order's caller set, and are the audit's own
    (a blocking call to itself raises `SelfCallError`)."""
    seen = Seen()
    refused: list[BaseException] = []
    audit_flow = recording_flow(seen)

    @audit_flow.on_enter("open")
    def call_itself(ctx: Any) -> None:
        try:
            audit.transition("open", {"id": "never"})
        except SelfCallError as error:
            refused.append(error)

    audit = StateMachine(audit_flow, runtime=runtime, name="audit")
    audit.add_observer(lambda old, new: seen.add("observer", new.data.id))
    order_flow = MachineBuilder("new", {"new": ["paid"], "paid": []})
    sent: list[Any] = []

    @order_flow.after_commit("paid")
    def tell_audit(ctx: Any) -> None:
        sent.append(audit.request_transition("open", {"id": ctx.payload.id}))

    order = StateMachine(order_flow, runtime=runtime, name="order")
    as_request("order-1", lambda: order.transition("paid", {"id": "order-1"}))
    assert sent[0].result(WAIT).data.id == "order-1"
    assert seen.by_request["order-1"] == [(hook, "order-1") for hook in SYNC_HOOKS]
    assert len(refused) == 1 and refused[0].actor == "audit"


# -- logging -------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """The kind of filter a web service installs: it stamps each record with
    the request id of the context that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)


def test_a_logging_filter_reads_the_request_id_in_records_logged_by_hooks(
    queued_runtime: Runtime, workers: Workers
) -> None:
    log = logging.getLogger("tests.caller_context.orders")
    handler = Collect()
    handler.addFilter(RequestIdFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        flow = MachineBuilder("open", {"open": ["open"]})

        @flow.guard
        def check(ctx: Any) -> bool:
            log.info("checking %s", ctx.payload.id)
            return True

        @flow.after_commit
        async def notify(ctx: Any) -> None:
            log.info("notified %s", ctx.payload.id)

        machine = StateMachine(flow, runtime=queued_runtime)
        machine.add_observer(lambda old, new: log.info("observed"))
        for n in range(3):
            rid = f"http-{n}"
            workers.start(as_request, rid, move, machine, rid)
        workers.join()
    finally:
        log.removeHandler(handler)
        log.propagate = True
    stamped = [(record.request_id, record.getMessage()) for record in handler.records]
    assert len(stamped) == 9
    for rid, message in stamped:
        if message != "observed":
            assert message.split()[1] == rid, (message, rid)
    by_request: dict[Any, list[str]] = defaultdict(list)
    for rid, message in stamped:
        by_request[rid].append(message.split()[0])
    assert dict(by_request) == {
        f"http-{n}": ["checking", "notified", "observed"] for n in range(3)
    }, stamped


def test_manager_observers_see_the_callers_context(queued_runtime: Runtime) -> None:
    manager = StateManager({"n": 0}, runtime=queued_runtime)
    seen: list[str | None] = []
    manager.add_observer(lambda old, new: seen.append(request_id.get()))
    for n in range(3):
        as_request(f"u-{n}", manager.modify, lambda s: s.update(n=s.n + 1))
    assert seen == ["u-0", "u-1", "u-2"]


def test_an_awaited_modify_carries_the_tasks_context(runtime: Runtime) -> None:
    manager = StateManager({"served": []}, runtime=runtime)

    async def note(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(0)
        return state.update(served=[*state.served, request_id.get()])

    async def serve(rid: str) -> None:
        request_id.set(rid)
        await manager._acall(Modify((note,)), None)

    async def main() -> None:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(serve(f"a-{n}") for n in range(5)))

    asyncio.run(main())
    served = manager.get_state().served
    assert sorted(served, key=repr) == [f"a-{n}" for n in range(5)], served
