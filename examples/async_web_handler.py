"""A web handler in the style of FastAPI, backed by one order machine per order.

What a web service wants from the state it shares between requests, shown
without a web server (the handler is a plain coroutine; a FastAPI route would
call it the same way):

- ``await order.atransition(...)``: the call awaits the actor without
  blocking the event loop; an idle actor's turn runs right there, on the loop.
- The request's context reaches the machine's hooks: the request id that the
  handler puts in a ``ContextVar`` is in every log record a hook writes,
  through an ordinary ``logging.Filter``, whichever thread or loop runs the
  actor's turn; and what the handler sets stays in its own request's task.
- Errors map to responses: an illegal move or a guard's veto is a 409, a full
  mailbox a 429, a timeout a 504; nothing is half applied.
- ``asyncio.timeout`` bounds a call, as it bounds any other await.

Run it with ``python examples/async_web_handler.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys

from stateward.actors import ActorTimeout, MailboxFull, Runtime, StateMachine
from stateward.core import InvalidTransition, MachineBuilder, TransitionRejected

#: Set by the handler for each incoming request; read by the log filter.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds the current request id to every record (as web frameworks do)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


log = logging.getLogger("shop")

orders = MachineBuilder(
    "placed",
    {"placed": ["paid", "cancelled"], "paid": ["shipped"], "shipped": [], "cancelled": []},
    name="order",
)


@orders.guard("paid")
async def amount_matches(ctx):
    """the amount paid does not match the order total"""
    await asyncio.sleep(0.01)  # ask the payment service
    return ctx.payload.get("amount") == ctx.data.total


@orders.on_enter("paid")
def record_payment(ctx):
    log.info("order %s paid %s", ctx.machine, ctx.payload.amount)
    return {"paid": ctx.payload.amount}


@orders.after_commit("shipped")
def notify_customer(ctx):
    log.info("order %s shipped: customer notified", ctx.machine)


async def handle(book: dict[str, StateMachine], rid: str, order_id: str, target: str, body: dict):
    """One HTTP request: POST /orders/{order_id}/{target} with a JSON ``body``."""
    request_id.set(rid)
    order = book.get(order_id)
    if order is None:
        return 404, {"error": f"no order {order_id!r}"}
    try:
        async with asyncio.timeout(2.0):
            snapshot = await order.atransition(target, body)
    except (InvalidTransition, TransitionRejected) as err:
        return 409, {"error": str(err)}
    except MailboxFull as err:
        return 429, {"error": str(err)}
    except (TimeoutError, ActorTimeout):
        return 504, {"error": f"order {order_id!r} did not answer in time"}
    return 200, {"order": order_id, "state": snapshot.state, "version": snapshot.version}


async def main(runtime: Runtime) -> None:
    book = {
        f"A{n}": StateMachine(orders, data={"total": 10 * n}, name=f"A{n}", runtime=runtime)
        for n in (1, 2, 3)
    }
    calls = [
        ("req-1", "A1", "paid", {"amount": 10}),
        ("req-2", "A2", "paid", {"amount": 99}),  # wrong amount: the guard refuses
        ("req-3", "A3", "shipped", {}),  # not paid yet: illegal
        ("req-4", "A9", "paid", {"amount": 1}),  # no such order
    ]
    # A server runs each request in a task of its own: so do we.
    responses = await asyncio.gather(*(handle(book, *call) for call in calls))
    for (rid, order_id, target, _), (status, body) in zip(calls, responses, strict=True):
        print(f"{rid} POST /orders/{order_id}/{target} -> {status} {body}")
    status, body = await asyncio.create_task(handle(book, "req-5", "A1", "shipped", {}))
    print(f"req-5 POST /orders/A1/shipped -> {status} {body}")
    print(f"request id outside any request: {request_id.get()!r}")


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("  [log %(request_id)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    with Runtime("shop") as rt:
        asyncio.run(main(rt))
