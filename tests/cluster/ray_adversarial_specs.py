"""Functions the adversarial Ray tests send to a shard: module-level, so that
a shard's worker imports them by path (this folder is on the workers'
PYTHONPATH)."""

from __future__ import annotations

import threading
from typing import Any


class NeedsTwoArguments(Exception):
    """An exception that plain pickling cannot rebuild (its constructor takes
    two arguments; ``Exception`` pickles with ``args``, here one)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def raise_needs_two_arguments(state: Any) -> Any:
    raise NeedsTwoArguments("refused on purpose", 7)


def return_a_lock(state: Any) -> Any:
    """A ``modify`` function whose result cannot be stored (nor pickled)."""
    return {"lock": threading.Lock()}


def slow_increment(seconds: float) -> Any:
    """A ``modify`` function that takes ``seconds`` (on the shard), then adds 1."""

    def modify(state: Any) -> Any:
        threading.Event().wait(seconds)
        return {"n": state.get("n", 0) + 1}

    return modify


def add_one(state: Any) -> Any:
    return {"n": state.get("n", 0) + 1}
