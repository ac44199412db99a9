"""Hooks for the order machine, kept away from its definition.

Importing this module registers them on the builder from ``_order_flow.py``:
a second validator, a pre-transition hook that adds a tracking number, and the
after-commit hooks that "send" e-mails by appending to ``OUTBOX``. This module
imports the flow module, never the other way round, so there is no import cycle.
"""

from __future__ import annotations

from _order_flow import OUTBOX, orders


@orders.guard("pending", order=2)
def customer_email_valid(ctx):
    """the customer e-mail address is missing or malformed"""
    # Returning False vetoes; the reason is this function's docstring.
    return "@" in ctx.payload.get("customer_email", "")


@orders.pre_transition("completed")
def add_tracking_number(ctx):
    """Enrich the payload of the move to "completed" with a tracking number."""
    return {"tracking_number": "TRK-" + ctx.data.order_id.removeprefix("ORD-")}


@orders.on_enter("completed")
def remember_tracking_number(ctx):
    return {"tracking_number": ctx.payload.tracking_number}


# After-commit hooks run once the move is committed, on the actor's thread,
# before the caller gets its answer. They cannot undo the move.


@orders.after_commit("processing")
def send_confirmation(ctx):
    OUTBOX.append(
        {"to": ctx.data.customer_email, "subject": f"Order {ctx.data.order_id} confirmed"}
    )


@orders.after_commit("completed")
def send_shipping_notice(ctx):
    OUTBOX.append(
        {
            "to": ctx.data.customer_email,
            "subject": f"Order {ctx.data.order_id} shipped, tracking {ctx.payload.tracking_number}",
        }
    )


@orders.after_commit("cancelled")
def send_cancellation(ctx):
    OUTBOX.append(
        {
            "to": ctx.data.customer_email,
            "subject": f"Order {ctx.data.order_id} cancelled ({ctx.payload.get('reason', '')})",
        }
    )
