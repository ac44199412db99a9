"""Every record a store writes is, byte for byte, what `encode` makes of it.

The stores encode their records with the private `encode_checked`; a spy put
in its place in `_records` (private, on purpose: it is the only place that
sees every record a store writes) compares each record with `encode`.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Ticks

from stateward.actors import ConfigManager, Runtime, SQLiteStore, StateMachine, StateManager
from stateward.actors.stores import _records
from stateward.core import MachineSpec, encode

WAIT = 20.0
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


@pytest.mark.parametrize("durability", ["strict", "batched", "snapshot"])
def test_every_record_a_store_writes_is_what_encode_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    real = _records.encode_checked
    written: list[Any] = []
    mismatches: list[str] = []

    def spy(value: Any) -> bytes:
        written.append(value)
        try:
            got = real(value)
        except Exception as exc:
            try:
                encode(value)
            except Exception as refused:
                if (type(refused), str(refused)) != (type(exc), str(exc)):
                    mismatches.append(f"refused differently: {exc!r} / {refused!r}")
            else:
                mismatches.append(f"encode_checked refused what encode takes: {value!r}")
            raise
        try:
            expected = encode(value)
        except Exception as refused:
            mismatches.append(f"encode_checked took what encode refuses ({refused}): {value!r}")
        else:
            if got != expected:
                mismatches.append(f"different bytes for {value!r}")
        return got

    monkeypatch.setattr(_records, "encode_checked", spy)

    class S(str, enum.Enum):
        A = "a"
        B = "b"

    spec = MachineSpec(S.A, {S.A: [S.B], S.B: [S.A]}, events={"go": (S.A, S.B)})
    new_york = zoneinfo.ZoneInfo("America/New_York")
    clocks: list[Callable[[], dt.datetime]] = [
        Ticks(T0),
        Ticks(dt.datetime(2026, 11, 1, 1, 0, tzinfo=new_york, fold=1)),
        Ticks(T0.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30), "IST"))),
        Ticks(dt.datetime(2026, 1, 1)),
    ]
    path = tmp_path / f"{durability}.db"
    finals: dict[str, Any] = {}
    for n, clock in enumerate(clocks):
        store = SQLiteStore(path, durability=durability, snapshot_every=3)
        with Runtime(f"r{n}", store=store, clock=clock, default_timeout=WAIT) as runtime:
            machine = StateMachine(spec, name=f"m{n}", runtime=runtime, history_limit=4)
            manager = StateManager({"n": 0, "gone": 1}, name=f"s{n}", runtime=runtime)
            config = ConfigManager({"a": 1, "b": {"c": [1, 2]}}, name=f"c{n}", runtime=runtime)
            stamp = clock
            for i in range(7):
                target = S.B if machine.current_state == S.A else S.A
                machine.transition(target, {"i": i, "big": 2**66})
                manager.modify(
                    lambda s, i=i, stamp=stamp: s.update(
                        n=s.n + 1, at=stamp(), big=-(2**70), tags={i, "t"}
                    )
                )
                config.update_config({"a": i, "when": clock(), "t": (i, [i])}, {"who": "me"})
            manager.modify(lambda s: s.without("gone"))
            config.rollback(0, {"why": "test"})
            finals[f"m{n}"] = machine.snapshot
            finals[f"s{n}"] = manager.snapshot
            finals[f"c{n}"] = config.get_history()
    assert mismatches == []
    assert len(written) > 20
    with Runtime("back", store=SQLiteStore(path, durability=durability)) as runtime:
        for n in range(len(clocks)):
            machine = StateMachine(spec, name=f"m{n}", runtime=runtime, history_limit=4)
            assert machine.snapshot == finals[f"m{n}"]
            manager = StateManager({}, name=f"s{n}", runtime=runtime)
            assert manager.snapshot == finals[f"s{n}"]
            config = ConfigManager({}, name=f"c{n}", runtime=runtime)
            assert config.get_history() == finals[f"c{n}"]
            assert "snapshot" not in vars(config)
