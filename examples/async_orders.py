"""An async order system: coroutine hooks that can veto, and ordered transition requests.

This follows the proposal for async, event-driven transitions (issue #35 of
jtushman/state_machine) on stateward:

- a coroutine guard, "risk control", refuses an illegal path;
- a coroutine enter hook on "paying" awaits a (mock) payment gateway and vetoes
  the move by returning False when the charge is declined;
- a coroutine exit hook and after-commit hooks run around the commit;
- ``request_transition`` queues a move without waiting and returns a `Reply`;
  a callback reports each result, and ``await`` collects them all.

Coroutine hooks run on the runtime's own event loop thread, to completion,
before the actor takes its next request. So requests are handled one by one in
the order they were sent, while the caller's event loop stays free: a ticker
task keeps counting the whole time.

Run it with ``python examples/async_orders.py``.
"""

from __future__ import annotations

import asyncio
import contextlib

from stateward.actors import Reply, Runtime, StateMachine
from stateward.core import MachineBuilder, Reject, TransitionRejected

# As in the proposal, the table itself lets any open state move to any other;
# the business rule about which paths are legal lives in the async guard.
# "cancelled" is terminal, so nothing leaves it whatever the guard says.
orders = MachineBuilder(
    "created",
    {
        "created": ["paying", "shipped", "cancelled"],
        "paying": ["created", "shipped", "cancelled"],
        "shipped": ["created", "paying", "cancelled"],
        "cancelled": [],
    },
    name="order",
)

#: The states each state may legally be entered from, per risk control.
LEGAL_FROM = {
    "created": set(),
    "paying": {"created"},
    "shipped": {"paying"},
    "cancelled": {"created", "paying", "shipped"},
}


async def mock_risk_service(source: str, target: str) -> bool:
    await asyncio.sleep(0.005)  # stands in for a network call
    return source in LEGAL_FROM[target]


async def mock_payment_gateway(amount: float) -> bool:
    await asyncio.sleep(0.01)  # stands in for a network call
    return amount <= 1000  # this gateway declines anything above 1,000


@orders.guard
async def risk_control(ctx):
    """Refuse a path the risk service does not allow (runs on the runtime's loop)."""
    allowed = await mock_risk_service(ctx.source, ctx.target)
    print(f"    [risk] {ctx.source} -> {ctx.target}: {'allowed' if allowed else 'refused'}")
    if not allowed:
        raise Reject(f"illegal path {ctx.source!r} -> {ctx.target!r}")


@orders.on_enter("paying")
async def start_payment(ctx):
    """the payment gateway declined the charge"""
    # Returning False vetoes the move; the reason is the docstring above.
    amount = ctx.payload.get("amount", 0)
    print(f"    [payment] charging {amount} ...")
    if not await mock_payment_gateway(amount):
        print("    [payment] declined")
        return False
    print("    [payment] accepted")
    return {"paid": amount}


@orders.on_exit("paying")
async def close_payment_session(ctx):
    await asyncio.sleep(0)  # an async clean-up step
    print(f"    [exit] leaving 'paying' for {ctx.target!r}: payment session closed")


@orders.after_commit
def announce(ctx):
    print(f"    [commit] v{ctx.version}: {ctx.source} -> {ctx.target}")


@orders.after_commit("paying")
async def log_payment(ctx):
    await asyncio.sleep(0)  # e.g. writing an audit record
    print(f"    [audit] payment of {ctx.data.paid} recorded")


def report(number: int, target: str, handled: list[int]):
    """A callback for request ``number``; it runs on the actor's thread when done."""

    def callback(reply: Reply) -> None:
        handled.append(number)
        error = reply.exception(timeout=0)
        if error is None:
            snapshot = reply.result(timeout=0)
            print(
                f"  callback #{number} ({target}): ok, now {snapshot.state!r} v{snapshot.version}"
            )
        else:
            print(f"  callback #{number} ({target}): {type(error).__name__}: {error}")

    return callback


async def main(runtime: Runtime) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(ticker())

    print("order-1: five requests submitted at once, without waiting")
    order = StateMachine(orders, name="order-1", runtime=runtime)
    requests = [
        ("paying", {"amount": 25}),
        ("shipped", None),
        ("paying", {"amount": 25}),  # refused by risk control: shipped -> paying
        ("cancelled", None),
        ("paying", {"amount": 25}),  # refused by the table: cancelled is terminal
    ]
    handled: list[int] = []
    ticks_before = ticks
    replies = [
        order.request_transition(target, payload, callback=report(n, target, handled))
        for n, (target, payload) in enumerate(requests, start=1)
    ]
    # Awaiting the replies never blocks this loop; errors come back as values here.
    results = await asyncio.gather(*replies, return_exceptions=True)
    ticked = ticks - ticks_before

    print()
    print("order-1 replies, awaited with asyncio.gather, in submission order:")
    for n, ((target, _), result) in enumerate(zip(requests, results, strict=True), start=1):
        if isinstance(result, BaseException):
            print(f"  #{n} {target}: {type(result).__name__}")
        else:
            print(f"  #{n} {target}: {result.state!r} v{result.version}")
    assert handled == list(range(1, len(requests) + 1)), handled
    print(f"  callbacks ran in submission order: {handled}")
    print(f"  final state: {order.current_state!r}, data {order.data.to_dict()}")

    assert ticked > 0, ticked
    print()
    print("the event loop kept running while the hooks awaited: the ticker ticked > 0 times")
    print(f"  ({ticked} ticks during order-1's requests on this run; the number varies)")

    print()
    print("order-2: a charge above 1,000 is declined by the enter hook")
    big = StateMachine(orders, name="order-2", runtime=runtime)
    try:
        await big.request_transition("paying", {"amount": 5000})
    except TransitionRejected as err:
        print(f"  TransitionRejected by {err.guard!r}: {err.reason}")
    print(f"  order-2 is still {big.current_state!r}, version {big.version}")

    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking


if __name__ == "__main__":
    with Runtime(name="shop") as runtime:
        asyncio.run(main(runtime))
