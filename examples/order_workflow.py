"""An order workflow: validators that veto, hooks that enrich, hooks with side effects.

The machine is defined in ``_order_flow.py``; more hooks are registered on it
from another module, ``_order_hooks.py``. The order of hooks for one move:

    pre-transition (enrich the payload) -> guards (may veto) -> exit -> enter
    -> commit -> after-commit (side effects; cannot undo the commit)

A veto leaves the order exactly as it was and reaches the caller as a
``TransitionRejected`` that names the guard and its reason. At the end each
order's history is summarised from ``machine.history``.

Run it with ``python examples/order_workflow.py``.
"""

from __future__ import annotations

# Importing _order_hooks registers its hooks on the builder from _order_flow
# (it imports that module itself). Build the spec only after that import: a
# spec holds the hooks registered by the time it is built.
import _order_hooks  # noqa: F401  (registers its hooks on import)
from _order_flow import OUTBOX, orders

from stateward.actors import Runtime, StateMachine
from stateward.core import TransitionRejected

spec = orders.build()


def show_hooks() -> None:
    print("hooks, in the order they run for a move they apply to:")
    for hook in spec.hooks:
        where = sorted(hook.to) if hook.to else "any"
        print(f"  {hook.kind:<15} {hook.name:<26} into {where}  ({hook.fn.__module__})")


def show_history(machine: StateMachine) -> None:
    print(f"{machine.name} history ({machine.current_state}, version {machine.version}):")
    for record in machine.history:
        keys = ", ".join(record.payload_keys) or "-"
        move = f"{record.from_state} -> {record.to_state}"
        print(f"  v{record.version}  {move:<25} event={record.event!s:<9} payload keys: {keys}")


def main() -> None:
    with Runtime(name="orders") as runtime:
        show_hooks()

        print()
        print("order-1: placed, started and completed")
        first = StateMachine(spec, name="order-1", runtime=runtime)
        first.trigger("place", {"amount": 99.99, "customer_email": "ana@example.com"})
        first.trigger("start")
        first.trigger("complete")
        print(f"  data: {first.data.to_dict()}")

        print()
        print("order-2: two vetoed attempts, then placed and cancelled")
        second = StateMachine(spec, name="order-2", runtime=runtime)
        for payload in (
            {"amount": 0, "customer_email": "bo@example.com"},
            {"amount": 12.5, "customer_email": "bo-at-example.com"},
        ):
            try:
                second.trigger("place", payload)
            except TransitionRejected as err:
                print(f"  vetoed by {err.guard!r}: {err.reason}")
                print(f"    message: {err}")
        print(f"  after the vetoes: state {second.current_state!r}, version {second.version}")
        print("  (the vetoed attempts used up ORD-0002 and ORD-0003: ids are drawn before guards)")
        second.trigger("place", {"amount": 12.5, "customer_email": "bo@example.com"})
        second.trigger("cancel", {"reason": "customer changed their mind"})
        print(f"  data: {second.data.to_dict()}")

        print()
        print("outbox (appended by after-commit hooks):")
        for mail in OUTBOX:
            print(f"  to {mail['to']}: {mail['subject']}")

        print()
        show_history(first)
        show_history(second)


if __name__ == "__main__":
    main()
