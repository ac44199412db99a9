"""What a row transition returns (`RowResult`), and how a lost race is retried (`RetryPolicy`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stateward.core import ImmutableState, TransitionRecord

__all__ = ["RetryPolicy", "RowResult"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a transition that lost a race (`ConcurrentTransition`) or found its
    row locked (`RowBusy`): up to ``attempts`` more times, waiting an
    exponential, jittered backoff between tries. Each retry reads the row
    again and decides again: a retried payment after a cancellation gets
    `InvalidTransition`, not a second write."""

    attempts: int = 3
    min_delay: float = 0.005
    max_delay: float = 0.5
    seed: int | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 0:
            raise ValueError(f"attempts must be an int >= 0, got {self.attempts!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        base: float = min(self.max_delay, self.min_delay * 2**attempt)
        return base * rng.uniform(0.5, 1.5)


@dataclass(frozen=True)
class RowResult:
    """A committed transition (or creation) of one row.

    Attributes:
        key: the row's key.
        state: its state now.
        version: its version now (None without a version column).
        data: its data columns now, as the hooks saw and left them.
        record: the transition (None for a creation).
        retries: how many times it was retried before it committed.
    """

    key: Any
    state: str
    version: int | None
    data: ImmutableState
    record: TransitionRecord | None
    retries: int = 0
