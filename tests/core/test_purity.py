"""stateward.core is a pure kernel: it imports and works with pykka and threading blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys, _thread

    class Block:
        def find_spec(self, name, path, target=None):
            if name in ("threading", "pykka", "asyncio") or name.startswith("pykka."):
                raise ImportError(f"{name} is blocked in this test")

    # site may have imported threading already; forget it so that any import of
    # it from here on goes through the blocker.
    for name in ("threading", "logging", "asyncio"):
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, Block())
    tasks_before = len(os.listdir("/proc/self/task"))

    from stateward.core import (ConfigHistory, ImmutableState, MachineBuilder,
                                MachineSnapshot, apply_transition, decode, encode,
                                run_after_commit)

    state = ImmutableState(n=1, items=[1, 2])
    assert decode(encode(state.update(n=2))) == {"n": 2, "items": [1, 2]}

    flow = MachineBuilder("a", {"a": ["b"], "b": []})

    @flow.after_commit
    def seen(ctx):
        print("moved", ctx.source, ctx.target)

    spec = flow.build()
    outcome = apply_transition(spec, MachineSnapshot.initial(spec), "b")
    assert run_after_commit(outcome) == ()
    history = ConfigHistory.start({"x": 1}).update({"x": 2}).rollback(0)
    assert history.config == {"x": 1} and history.version == 2

    for name in ("threading", "pykka", "asyncio", "logging"):
        assert name not in sys.modules, f"{name} was imported"
    assert len(os.listdir("/proc/self/task")) == tasks_before, "a thread was started"
    print("pure ok")
    """
)


def test_core_works_with_pykka_and_threading_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "moved a b" in result.stdout
    assert "pure ok" in result.stdout
