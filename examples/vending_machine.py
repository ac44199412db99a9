"""A vending machine whose transactions are database rows, moved by a workflow.

A port of state-machine-framework's vending-machine example to stateward, in
our own words. Each purchase is a row of ``vend_transactions`` (a SQLAlchemy
model, in a SQLite file in a temporary folder); its ``status`` column holds the
machine's state:

    selected -> paid -> dispensed
        |         '---> refunded
        '---> cancelled

- `RowBinding` tells the machine which columns hold the state, the key and a
  version; `RowMachines` moves rows through the `SQLAlchemyAdapter` (an
  implementation of the `ORMAdapter` protocol, so other ORMs can follow).
- A `WorkflowContext` declares what a purchase needs: a machine id, a product
  selection checked against a schema (a pydantic model when pydantic is
  installed, else a dataclass), and the transaction row it creates.
- A pre-transition hook gives every new row its transaction id.
- A validator and the display hooks are registered from another module,
  ``_vending_hooks.py``; the validator vetoes an insufficient payment.
- Every move reads the row inside the database transaction, and writes an
  audit entry in that same transaction: a vetoed payment leaves no trace.

Run it with ``python examples/vending_machine.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
from pathlib import Path

import _vending_hooks
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stateward.actors import Runtime
from stateward.actors.rows import (
    RequirementError,
    RowBinding,
    RowMachines,
    SQLAlchemyAdapter,
    WorkflowContext,
)
from stateward.core import InvalidTransition, MachineBuilder, TransitionRejected

# -- the model ---------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class VendTransaction(Base):
    __tablename__ = "vend_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[str] = mapped_column(sa.String(20), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int] = mapped_column(default=0)
    product: Mapped[str] = mapped_column(sa.String(40))
    slot: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[int] = mapped_column()  # cents
    paid: Mapped[int] = mapped_column(default=0)
    change: Mapped[int] = mapped_column(default=0)


# -- the machine -------------------------------------------------------------------------------

vending = MachineBuilder(
    "selected",
    {
        "selected": ["paid", "cancelled"],
        "paid": ["dispensed", "refunded"],
        "dispensed": [],
        "cancelled": [],
        "refunded": [],
    },
    events={
        "pay": "selected -> paid",
        "dispense": "paid -> dispensed",
        "cancel": "selected -> cancelled",
        "refund": "paid -> refunded",
    },
    name="vending",
)

# Transaction ids come from a counter so that every run prints the same ones.
_numbers = itertools.count(1)


@vending.pre_transition("selected")
def generate_transaction_id(ctx):
    """Give a new purchase its id: the pre-transition enrichment of the creation."""
    return {"transaction_id": f"TXN-{next(_numbers):04d}"}


@vending.on_enter("paid")
def take_the_coins(ctx):
    """Keep what was paid and the change due; these columns are written with the move."""
    coins = ctx.payload.coins
    return {"paid": coins, "change": coins - ctx.data.price}


_vending_hooks.register(vending)  # the validator and the display hooks


# -- the workflow ------------------------------------------------------------------------------

try:
    from pydantic import BaseModel, Field
except ImportError:  # the workflow context works with dataclasses alone

    @dataclasses.dataclass(frozen=True)
    class Selection:
        product: str
        slot: str
        price: int

        def __post_init__(self) -> None:
            if self.price <= 0:
                raise ValueError(f"'price' must be positive, got {self.price}")

else:

    class Selection(BaseModel):  # type: ignore[no-redef]
        product: str = Field(min_length=1)
        slot: str
        price: int = Field(gt=0)


class VendingWorkflow(WorkflowContext):
    """One purchase: checked on entry, then moved step by step."""

    def define_requirements(self) -> None:
        self.require_value("machine_id", str)
        self.require_dict("selection", Selection)
        self.require_model("transaction", VendTransaction, created_in_state="selected")

    def select(self):
        selection = self.values["selection"]
        return self.transition_to(
            "selected",
            {"product": selection.product, "slot": selection.slot, "price": selection.price},
        )


def show_display() -> None:
    while _vending_hooks.DISPLAY:
        print(f"   [display] {_vending_hooks.DISPLAY.pop(0)}")


def pay(workflow: VendingWorkflow, coins: int) -> None:
    try:
        result = workflow.transition_to("paid", {"coins": coins})
    except TransitionRejected as err:
        print(f"   paying {coins} cents: vetoed by {err.guard!r}: {err.reason}")
    else:
        print(f"   paying {coins} cents: {result.state}, change {result.data.change} cents")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'vending.db'}")
        Base.metadata.create_all(engine)
        try:
            run(engine)
        finally:
            engine.dispose()


def run(engine: sa.Engine) -> None:
    binding = RowBinding(VendTransaction, state="status", version="version")
    adapter = SQLAlchemyAdapter(engine, busy_timeout=2.0)
    with (
        Runtime("vending") as runtime,
        RowMachines(vending, binding, adapter, runtime=runtime) as purchases,
    ):
        print("1. a request that does not meet the workflow's requirements")
        try:
            with VendingWorkflow(purchases, machine_id=7, selection={"product": "", "price": 0}):
                pass
        except RequirementError as err:
            print(f"   refused before anything was written: {len(err.problems)} problems")
            for problem in err.problems:
                print(f"     - {problem}")

        print()
        print("2. a cola: an insufficient payment is vetoed, then paid and dispensed")
        cola = {"product": "Cola", "slot": "A1", "price": 150}
        with VendingWorkflow(purchases, machine_id="VM-7", selection=cola) as first:
            created = first.select()
            print(f"   created {created.data.transaction_id} in state {created.state!r}")
            pay(first, 100)
            print(f"   still {purchases.state_of(first.key)!r} in the database")
            pay(first, 200)
            first.transition_to("dispensed")
            show_display()
            print("   " + first.get_history_summary().replace("\n", "\n   "))

        print()
        print("3. chips: selected, then cancelled")
        chips = {"product": "Chips", "slot": "B2", "price": 120}
        with VendingWorkflow(purchases, machine_id="VM-7", selection=chips) as second:
            second.select()
            second.transition_to("cancelled")
            show_display()
            try:
                second.transition_to("paid", {"coins": 120})
            except InvalidTransition as err:
                print(f"   paying now: InvalidTransition (state {err.state!r})")

        print()
        print("4. water: paid, but the spiral jams, so it is refunded")
        water = {"product": "Water", "slot": "C3", "price": 90}
        with VendingWorkflow(purchases, machine_id="VM-7", selection=water) as third:
            third.select()
            pay(third, 100)
            purchases.trigger(third.key, "refund", {"reason": "slot C3 jammed"})
            show_display()

        print()
        print("audit log (each entry committed in the same transaction as its row):")
        for key in (first.key, second.key, third.key):
            for entry in purchases.history(key):
                source = entry["from_state"] or "(new)"
                print(
                    f"   {binding.name}[{entry['row_key']}] v{entry['version']}  "
                    f"{source:>8} -> {entry['to_state']:<9} event={entry['event']}"
                )
        print("   (the vetoed payment of 100 cents left no entry)")


if __name__ == "__main__":
    main()
