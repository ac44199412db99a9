"""Producer and consumer with backpressure: the actor's mailbox is the queue.

The classic asyncio pattern puts items in an ``asyncio.Queue`` that consumers
take from. With stateward the consumer is an actor: its mailbox is the queue
and its turn is the consumer loop, one item at a time, in order. What the
plain queue does not give by default is a bound; here ``mailbox_limit=8``
bounds the items waiting, so a producer faster than the actor is slowed to
its pace instead of growing memory:

- from asyncio, ``await jobs.amodify(...)`` suspends while the mailbox is
  full; the producer's other work (and the rest of the loop) goes on;
- from a thread, ``request_modify`` does not wait: it raises ``MailboxFull``
  at once, and the producer decides what to do (here: retry a little later).

Either way, nothing accepted is dropped and every item is handled once, in
the order it got in.

Run it with ``python examples/async_backpressure.py``.
"""

from __future__ import annotations

import asyncio
import threading

from stateward.actors import MailboxFull, Runtime, StateManager
from stateward.core import ImmutableState

ITEMS = 40
LIMIT = 8
WORK = 0.005  # seconds the consumer spends on an item (the producer spends none)


def handle(item: int):
    """The consumer's work for ``item``: a coroutine ``modify`` function, so the
    actor holds its turn while it awaits and takes the next item after."""

    async def process(state: ImmutableState) -> ImmutableState:
        await asyncio.sleep(WORK)  # e.g. a call to another service
        return state.update(handled=(*state.handled, item))

    return process


async def asyncio_producer(runtime: Runtime) -> None:
    jobs = StateManager({"handled": ()}, name="jobs", mailbox_limit=LIMIT, runtime=runtime)
    deepest = 0

    async def watch_depth() -> None:
        nonlocal deepest
        while True:
            deepest = max(deepest, jobs.stats().queue_depth)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch_depth())
    # The producer hands out every item at once; each send suspends while
    # LIMIT items already wait, and is answered once its item is handled.
    await asyncio.gather(*(jobs.amodify(handle(item)) for item in range(ITEMS)))
    watcher.cancel()
    handled = jobs.get_state().handled
    print(f"asyncio producer: {len(handled)} of {ITEMS} items handled")
    print(f"  in the order sent: {list(handled) == list(range(ITEMS))}")
    print(f"  items waiting never above the limit: {deepest <= LIMIT} (deepest {deepest})")


def thread_producer(runtime: Runtime) -> None:
    jobs = StateManager({"handled": ()}, name="jobs-2", mailbox_limit=LIMIT, runtime=runtime)
    refused = 0
    replies = []
    for item in range(ITEMS):
        while True:
            try:
                replies.append(jobs.request_modify(handle(item)))
                break
            except MailboxFull:
                refused += 1  # full: back off until an older item is handled
                replies[max(0, len(replies) - LIMIT - 1)].result(timeout=10)
    for reply in replies:
        reply.result(timeout=10)
    handled = jobs.get_state().handled
    print(
        f"thread producer: {len(handled)} of {ITEMS} items handled, in order: "
        f"{list(handled) == list(range(ITEMS))}"
    )
    print(f"  request_modify refused with MailboxFull at least once: {refused > 0}")


if __name__ == "__main__":
    with Runtime("backpressure") as rt:
        asyncio.run(asyncio_producer(rt))
        worker = threading.Thread(target=thread_producer, args=(rt,))
        worker.start()
        worker.join()
