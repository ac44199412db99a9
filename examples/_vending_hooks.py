"""Validators and hooks for the vending machine, kept away from its definition.

``vending_machine.py`` owns the `MachineBuilder` and calls `register` before it
builds anything, so these land in the same definition: a validator that vetoes
an insufficient payment, and after-commit hooks that write to the machine's
display. This module never imports the example (that one runs as a script);
the builder comes in as an argument, so there is no import cycle.
"""

from __future__ import annotations

from stateward.core import MachineBuilder, Reject

#: What the after-commit hooks "show" on the machine's display, in order.
DISPLAY: list[str] = []


def payment_covers_price(ctx):
    """Veto a payment that does not cover the price (runs before anything is written)."""
    coins = ctx.payload.get("coins", 0)
    if coins < ctx.data.price:
        raise Reject(f"insufficient payment: {coins} of {ctx.data.price} cents")


def show_thanks(ctx):
    DISPLAY.append(
        f"{ctx.data.transaction_id}: enjoy your {ctx.data.product}, "
        f"take your {ctx.data.change} cents change"
    )


def show_goodbye(ctx):
    DISPLAY.append(f"{ctx.data.transaction_id}: cancelled, nothing was charged")


def show_refund(ctx):
    DISPLAY.append(
        f"{ctx.data.transaction_id}: {ctx.data.product} is stuck, "
        f"{ctx.data.paid} cents returned ({ctx.payload.get('reason', 'no reason given')})"
    )


def register(vending: MachineBuilder) -> None:
    """Register this module's validator and hooks on ``vending``.

    After-commit hooks run once the row's transaction has committed, on the
    row's actor thread, before the caller gets its answer; they cannot undo
    the move.
    """
    vending.validator("paid", order=1, name="payment_covers_price")(payment_covers_price)
    vending.after_commit("dispensed", name="show_thanks")(show_thanks)
    vending.after_commit("cancelled", name="show_goodbye")(show_goodbye)
    vending.after_commit("refunded", name="show_refund")(show_refund)
