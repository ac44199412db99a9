"""Helpers shared by the tests (importable as ``support``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


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
            raise AssertionError(
                f"{len(self._errors)} worker(s) failed; first: {first!r}"
            ) from first
        assert not alive, f"workers still running after {timeout}s: {alive}"
