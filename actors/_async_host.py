"""The event loop where actors run their async hooks, in a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable
from typing import Any

from ._context import current_cell


class AsyncHost:
    """An event loop in its own thread, where actors run their async hooks.

    Whoever runs the turn (a host's worker, or a caller inline) submits the
    coroutine and waits for it, so the hook runs to completion before the
    actor takes its next message, while the loop stays free to run the async
    hooks of other actors meanwhile.
    """

    def __init__(self, runtime_name: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run,
            args=(ready,),
            name=f"stateward:{runtime_name}:event-loop",
            daemon=True,
        )
        self.thread.start()
        if not ready.wait(10):  # pragma: no cover - the thread could not start
            raise RuntimeError("the runtime's event loop thread did not start within 10 s")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(
        self,
        awaitable: Awaitable[Any],
        cell: Any,
        context: contextvars.Context | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Start ``awaitable`` on the loop; cancelling the future cancels it.

        It runs as a task in ``context`` (by default a copy of the calling
        thread's, which for a hook is its request's: the sender's context
        variables): give each task a context of its own, never one that a
        thread may be running in (a `contextvars.Context` runs in one place
        at a time). What it sets stays in that context, as in any task.
        """
        if context is None:
            context = contextvars.copy_context()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def as_actor() -> Any:
            current_cell.set(cell)  # in this task's context only
            return await awaitable

        def start() -> None:
            # The future stays pending while the task runs, so that a fence
            # (a deadline, a shutdown giving up) can still cancel it.
            if future.cancelled():  # cancelled before it started
                if inspect.iscoroutine(awaitable):
                    awaitable.close()  # never started: no "never awaited" warning
                return
            task = self.loop.create_task(as_actor(), context=context)
            task.add_done_callback(lambda done: _settle(future, done))
            future.add_done_callback(lambda _: self._cancel_soon(task))

        self.loop.call_soon_threadsafe(start)
        return future

    def _cancel_soon(self, task: asyncio.Task[Any]) -> None:
        """The future was cancelled (or is done): cancel ``task`` on the loop."""
        if task.done():
            return
        try:
            self.loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop has closed: its tasks are over
            pass

    def close(self, timeout: float) -> None:
        """Cancel the hooks still awaiting (their actors were abandoned), give
        them up to ``timeout`` seconds to unwind, then stop the loop."""
        deadline = time.monotonic() + timeout

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(
                min(timeout, threading.TIMEOUT_MAX)
            )
        except Exception:  # timed out, or the loop is gone: stop it all the same
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(min(threading.TIMEOUT_MAX, max(0.0, deadline - time.monotonic())))


def _settle(future: concurrent.futures.Future[Any], task: asyncio.Task[Any]) -> None:
    """Pass the done ``task``'s outcome on to ``future`` (on the loop's thread)."""
    if task.cancelled():
        future.cancel()
        return
    if not future.set_running_or_notify_cancel():  # cancelled meanwhile, and the task with it
        return
    error = task.exception()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(task.result())
