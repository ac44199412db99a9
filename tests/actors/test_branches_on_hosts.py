"""An event's alternatives, chosen by async guards, on every host: a thread per
actor and the pool (``each_host``), a dedicated worker, and awaited from
asyncio. A refusal of every alternative changes nothing and the actor lives on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stateward.actors import Runtime, StateMachine
from stateward.core import TransitionContext, TransitionRejected

pytestmark = pytest.mark.usefixtures("each_host")

WAIT = 10.0


async def exhausted(ctx: TransitionContext) -> bool:
    await asyncio.sleep(0)
    return ctx.payload.get("exhausted", False) is True


async def busy(ctx: TransitionContext) -> bool:
    await asyncio.sleep(0)
    return ctx.payload.get("busy", False) is True


EVENTS: dict[str, Any] = {
    "clean_up": [
        {"move": "sweaty -> asleep", "guards": exhausted},
        {"move": "sweaty -> hanging out", "unless": busy},
    ],
    "sweat": "asleep|hanging out -> sweaty",
    "fidget": {"move": "sweaty -> sweaty", "internal": True},
}
STATES = {"sweaty": [], "asleep": [], "hanging out": []}


@pytest.mark.parametrize("dedicated", [False, True])
def test_async_guards_choose_the_branch_on_each_host(dedicated: bool) -> None:
    with Runtime("branches", default_timeout=WAIT) as rt:
        hero = StateMachine("sweaty", STATES, events=EVENTS, runtime=rt, dedicated=dedicated)
        assert hero.trigger("clean_up", {"exhausted": True}).state == "asleep"
        hero.trigger("sweat")
        assert hero.trigger("clean_up").state == "hanging out"
        hero.trigger("sweat")
        assert hero.trigger("fidget").history[-1].kind == "internal"
        before = (hero.current_state, hero.version, len(hero.history))
        with pytest.raises(TransitionRejected) as info:
            hero.trigger("clean_up", {"busy": True})
        assert [b.target for b in info.value.alternatives] == ["asleep", "hanging out"]
        assert (hero.current_state, hero.version, len(hero.history)) == before
        assert hero.trigger("clean_up", {"exhausted": True}).state == "asleep"  # still alive


def test_branches_awaited_from_asyncio() -> None:
    async def run(hero: StateMachine) -> tuple[str, str]:
        first = await hero.atrigger("clean_up", {"exhausted": True}, timeout=WAIT)
        await hero.atrigger("sweat", timeout=WAIT)
        second = await hero.atrigger("clean_up", timeout=WAIT)
        return first.state, second.state

    with Runtime("branches-async", default_timeout=WAIT) as rt:
        hero = StateMachine("sweaty", STATES, events=EVENTS, runtime=rt)
        assert asyncio.run(run(hero)) == ("asleep", "hanging out")
