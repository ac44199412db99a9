"""A compound machine with a history state on every host (a thread per actor
and the pool, ``each_host``; a dedicated worker; awaited from asyncio): its
configuration, its history state's memory, and recovery from a SQLite store.
A parallel machine's one event moves both regions in one version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stateward.actors import Runtime, SQLiteStore, StateMachine
from stateward.core import MachineSpec, TransitionContext

pytestmark = pytest.mark.usefixtures("each_host")

WAIT = 10.0


async def powered(ctx: TransitionContext) -> bool:
    await asyncio.sleep(0)
    return ctx.payload.get("fuse", True) is True


SPEC = MachineSpec(
    "off",
    events={
        "power": {"move": "off -> on", "guards": powered},
        "off": "on -> off",
        "work": "idle -> working",
        "jam": "busy -> stuck",
        "resume": "off -> on_deep",
    },
    compound={"on": ["idle", "working"], "working": ["busy", "stuck"]},
    history={"on_deep": ("on", "deep")},
)


@pytest.mark.parametrize("dedicated", [False, True])
def test_a_compound_machine_keeps_its_configuration_and_history_across_recovery(
    tmp_path: Path, dedicated: bool
) -> None:
    path = tmp_path / "charts.db"
    with Runtime("charts", store=SQLiteStore(path), default_timeout=WAIT) as rt:
        machine = StateMachine(SPEC, name="m", runtime=rt, dedicated=dedicated)
        assert machine.trigger("power").configuration == {"on", "idle"}
        assert machine.wait_until("on", timeout=WAIT).state == "idle"  # a parent is active
        machine.trigger("work")
        machine.trigger("jam")
        assert machine.configuration == {"on", "working", "stuck"}
        assert machine.current_state == "stuck"
        assert machine.can_transition("off") and not machine.can_transition("idle")
        assert machine.trigger("off").configuration == {"off"}
    with Runtime("charts-again", store=SQLiteStore(path), default_timeout=WAIT) as rt:
        machine = StateMachine(SPEC, name="m", runtime=rt, dedicated=dedicated)
        assert machine.configuration == {"off"} and machine.version == 4
        records = machine.history
        assert records[-1].configuration_before == {"on", "working", "stuck"}
        assert machine.trigger("resume").configuration == {"on", "working", "stuck"}


def test_a_compound_machine_awaited_from_asyncio(tmp_path: Path) -> None:
    async def run(machine: StateMachine) -> list[Any]:
        seen = [(await machine.atrigger("power", timeout=WAIT)).configuration]
        seen.append((await machine.atrigger("work", timeout=WAIT)).configuration)
        seen.append((await machine.atrigger("off", timeout=WAIT)).configuration)
        seen.append((await machine.atrigger("resume", timeout=WAIT)).configuration)
        return seen

    with Runtime("charts-async", store=SQLiteStore(tmp_path / "a.db"), default_timeout=WAIT) as rt:
        machine = StateMachine(SPEC, name="m", runtime=rt)
        assert asyncio.run(run(machine)) == [
            {"on", "idle"},
            {"on", "working", "busy"},
            {"off"},
            {"on", "working", "busy"},
        ]


def test_a_parallel_machine_moves_every_region_in_one_version() -> None:
    spec = MachineSpec(
        "running",
        events={"next": ["a1 -> a2", "b1 -> b2"]},
        compound={"left": ["a1", "a2"], "right": ["b1", "b2"]},
        parallel={"running": ["left", "right"]},
    )
    with Runtime("parallel", default_timeout=WAIT) as rt:
        machine = StateMachine(spec, runtime=rt)
        assert machine.current_state == "running"
        snap = machine.trigger("next")
        assert snap.configuration == {"running", "left", "a2", "right", "b2"}
        assert machine.version == 1 and len(machine.history) == 1
