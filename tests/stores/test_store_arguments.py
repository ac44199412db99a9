"""SQLiteStore refuses timings it cannot keep, when it is made.

A ``snapshot_interval`` too large for a timed wait (``inf``, ``1e300``) used to
be accepted, and then killed snapshot mode's writer thread with an
``OverflowError`` at the first commit: nothing was saved until shutdown, and a
crash lost every acknowledged commit. A ``busy_timeout`` that is NaN or
negative was accepted too. Each is refused with a ValueError that names it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stateward.actors import SQLiteStore


@pytest.mark.parametrize("interval", [math.inf, 1e300, math.nan, 0.0, -1.0])
def test_a_snapshot_interval_that_cannot_be_waited_is_refused(
    tmp_path: Path, interval: float
) -> None:
    with pytest.raises(ValueError, match="snapshot_interval"):
        SQLiteStore(tmp_path / "s.db", durability="snapshot", snapshot_interval=interval)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("timeout", [math.nan, -1.0])
def test_a_busy_timeout_that_is_not_a_duration_is_refused(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ValueError, match="busy_timeout"):
        SQLiteStore(tmp_path / "s.db", busy_timeout=timeout)
    assert not (tmp_path / "s.db").exists()
