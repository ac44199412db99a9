"""The core in one page: an immutable record, a machine walk and a config rollback.

Run it with ``python examples/quickstart.py``. Everything here is pure
``stateward.core``: no threads, no actors.
"""

from stateward.core import (
    ConfigHistory,
    ImmutableState,
    InvalidTransition,
    MachineBuilder,
    MachineSnapshot,
    Reject,
    apply_transition,
    run_after_commit,
)


def records() -> None:
    """1. ImmutableState: values are frozen on the way in; update() returns a new one."""
    session = ImmutableState(user="ana", roles=["reader"], attempts=0)
    signed_in = session.update(attempts=1, roles=[*session.roles, "writer"])
    print("before:", session)
    print("after: ", signed_in)
    try:
        session.attempts = 5
    except AttributeError as err:
        print("refused:", err)


# 2. A machine definition with a guard, an enter hook and an after-commit hook.
orders = MachineBuilder(
    "pending",
    events={
        "pay": "pending -> paid",
        "ship": "paid -> shipped",
        "cancel": "pending|paid -> cancelled",
    },
)


@orders.guard("paid")
def amount_positive(ctx):
    if ctx.payload.get("amount", 0) <= 0:
        raise Reject("the amount must be positive")


@orders.on_enter("paid")
def remember_amount(ctx):
    return {"paid": ctx.payload["amount"]}


@orders.after_commit
def announce(ctx):
    print(f"  committed v{ctx.version}: {ctx.source} -> {ctx.target}")


spec = orders.build()  # `stateward graph quickstart:spec` draws it


def machine_walk() -> None:
    """Four events on one order, each computed, then kept ("committed")."""
    order = MachineSnapshot.initial(spec)
    for event, payload in [
        ("pay", {"amount": 0}),
        ("pay", {"amount": 42}),
        ("ship", None),
        ("cancel", None),
    ]:
        try:
            outcome = apply_transition(spec, order, event=event, payload=payload)
        except InvalidTransition as err:  # TransitionRejected is one too
            print(f"{event}: refused: {err}")
            continue
        order = outcome.snapshot  # "commit": keep the new snapshot
        run_after_commit(outcome)
    print("order:", order.state, dict(order.data), [r.to_state for r in order.history])


def config_rollback() -> None:
    """3. Versioned config: every change is a version; a rollback is a new version."""
    config = ConfigHistory.start({"log_level": "INFO", "timeout": 30})
    config = config.update({"log_level": "DEBUG", "timeout": 60}, {"author": "ops"})
    config = config.rollback(0, {"author": "ops", "reason": "too noisy"})
    for change in config.entries:
        print(f"v{change.version}: {dict(change.config)}  ({change.metadata.get('reason', '')})")
    print("diff v1 -> v2:", dict(config.diff(1, 2).changed))


if __name__ == "__main__":
    records()
    machine_walk()
    config_rollback()
