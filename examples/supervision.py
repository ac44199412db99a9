"""Supervision: a crash restarts the actor from its last committed state.

A payment worker keeps a connection that its hooks use. One payment makes the
gateway client blow up. With ``on_error="restart"`` that is a crash: the
request fails with ActorCrashed, nothing of it is committed, and the supervisor
starts a new incarnation, whose ``on_start`` opens a fresh connection. The
payments queued behind the crashing one are handled by the new incarnation, in
order. Then a worker that crashes too often makes its supervisor give up.

Run it with ``python examples/supervision.py``.
"""

from stateward.actors import ActorCrashed, ActorStopped, Runtime, StateManager, Supervisor

connections = []


def say(text):
    """print() in one write: actor threads print too, and print() may split lines."""
    print(text + "\n", end="")


def open_connection(state):
    """on_start: runs on the actor's thread for every incarnation."""
    connections.append(f"connection-{len(connections) + 1}")
    say(f"  on_start: opened {connections[-1]} (state: {state.processed} processed)")


def pay(amount):
    def apply(state):
        if amount < 0:
            raise ConnectionResetError(f"{connections[-1]} broke on amount {amount}")
        return state.update(processed=state.processed + 1, total=state.total + amount)

    apply.__qualname__ = f"pay({amount})"
    return apply


def main() -> None:
    with Runtime("payments") as runtime:
        runtime.subscribe(
            lambda e: (
                say(f"  [{e.supervisor}] {e.kind} {e.child or ''}".rstrip())
                if e.kind in ("failed", "restarted", "gave_up", "escalated")
                else None
            )
        )
        workers = Supervisor(
            "workers", runtime=runtime, strategy="one_for_one", max_restarts=3, within=10.0
        )
        say("starting the payment worker")
        payments = StateManager(
            {"processed": 0, "total": 0},
            name="payments",
            runtime=runtime,
            supervisor=workers,
            on_error="restart",
            on_start=open_connection,
        )
        payments.modify(pay(10))

        say("sending four payments at once; the second one crashes the worker")
        replies = [payments.request_modify(pay(amount)) for amount in (20, -1, 30, 40)]
        for amount, reply in zip((20, -1, 30, 40), replies, strict=True):
            try:
                state = reply.result(timeout=10)
                say(f"  pay({amount}): ok, {state.processed} processed, total {state.total}")
            except ActorCrashed as crash:
                say(f"  pay({amount}): ActorCrashed, cause: {crash.cause!r}")
        say(f"after the crash: {dict(payments.get_state())}, restarts: {payments.restarts}")
        assert payments.get_state().total == 100 and payments.restarts == 1

        say("a second worker that fails on every request")
        flaky = StateManager(
            {"n": 0},
            name="flaky",
            runtime=runtime,
            supervisor=Supervisor(
                "flaky-sup", runtime=runtime, max_restarts=2, within=10.0, restart="temporary"
            ),
            on_error="restart",
        )
        for attempt in range(3):
            try:
                flaky.modify(lambda state: 1 / 0)
            except ActorCrashed:
                say(f"  attempt {attempt + 1}: crashed")
        try:
            flaky.modify(lambda state: state)
        except ActorStopped as stopped:
            say(f"  then: ActorStopped ({stopped.reason})")
        stats = runtime.stats()
        say(f"events: {stats.events}")
        say(f"payments still running: {payments.alive}, fatal: {runtime.fatal}")


if __name__ == "__main__":
    main()
