"""Suite-wide fixtures: every test must leave no thread behind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: How long a test may take to stop the threads it started.
THREAD_GRACE_S = 5.0


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running after it ends."""
    before = set(threading.enumerate())
    yield
    leaked: list[threading.Thread] = []
    for thread in set(threading.enumerate()) - before:
        thread.join(THREAD_GRACE_S)
        if thread.is_alive():
            leaked.append(thread)
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"


class Workers:
    """Start threads that are always joined, and re-raise what they raised."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def start(self, target: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # re-raised in the test thread by join()
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads.clear()
        if self._errors:
            first = self._errors[0]
            raise AssertionError(f"{len(self._errors)} worker(s) failed; first: {first!r}") \
                from first
        assert not alive, f"workers still running after {timeout}s: {alive}"


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Threads for a test; joined (and their errors re-raised) at the end."""
    pool = Workers()
    yield pool
    pool.join()
