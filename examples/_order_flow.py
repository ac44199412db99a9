"""The order machine of ``order_workflow.py``: its states, events and core hooks.

This module owns the `MachineBuilder`. Other modules import it and add their
own hooks (see ``_order_hooks.py``); whoever builds the spec imports both
first, because a spec holds the hooks registered by the time it is built.
"""

from __future__ import annotations

import itertools
from typing import Any

from stateward.core import MachineBuilder, Reject

orders = MachineBuilder(
    "new",
    {
        "new": ["pending"],
        "pending": ["processing", "cancelled"],
        "processing": ["completed", "cancelled"],
        "completed": [],
        "cancelled": [],
    },
    events={
        "place": "new -> pending",
        "start": "pending -> processing",
        "complete": "processing -> completed",
        "cancel": "pending|processing -> cancelled",
    },
    name="orders",
)

#: What the after-commit hooks "send". A real service would hand these to a
#: mailer; here the example prints them at the end.
OUTBOX: list[dict[str, Any]] = []

# Order numbers come from a counter so every run prints the same ids. Like a
# database sequence, a number is used up even when a guard then vetoes the
# order: pre-transition hooks run before the guards.
_order_numbers = itertools.count(1)


@orders.pre_transition("pending")
def generate_order_id(ctx):
    """Give a new order its id (runs on the machine's actor thread)."""
    return {"order_id": f"ORD-{next(_order_numbers):04d}"}


# ``order=`` sorts the guards of one move, whichever module registers them:
# this one runs before customer_email_valid (order=2, in _order_hooks.py).
@orders.guard("pending", order=1)
def amount_positive(ctx):
    """Veto an order whose amount is not above zero."""
    amount = ctx.payload.get("amount", 0)
    if amount <= 0:
        raise Reject(f"the order amount must be positive, got {amount!r}")


@orders.on_enter("pending")
def remember_order(ctx):
    """Keep the order's facts in the machine's data; the payload lasts one move."""
    return {
        "order_id": ctx.payload.order_id,
        "amount": ctx.payload.amount,
        "customer_email": ctx.payload.customer_email,
    }
