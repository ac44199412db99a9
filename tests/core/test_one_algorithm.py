"""The transition algorithm is written once: the plain-code fast path is generated.

`stateward.core._hooks` holds the algorithm as generators (the async driver
awaits what they yield); `_generated_hooks` holds their plain-code twins, written
by ``python -m stateward.core._generate``. These tests fail while the committed
twins are not what the generator makes from the committed algorithm.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import stateward.core._generated_hooks as generated
import stateward.core._hooks as hooks
from stateward.core._generate import TWINS, generate, semantic_form

HOOKS = Path(inspect.getfile(hooks))
GENERATED = Path(inspect.getfile(generated))
REGENERATE = "run 'python -m stateward.core._generate' and commit the result"


def test_the_committed_fast_path_is_generated_from_the_algorithm() -> None:
    want = semantic_form(generate(HOOKS.read_text()))
    assert semantic_form(GENERATED.read_text()) == want, REGENERATE


def test_every_generator_of_the_algorithm_has_a_twin() -> None:
    """A new generator in `_hooks` cannot be left without its plain-code form."""
    generators = {
        node.name
        for node in ast.parse(HOOKS.read_text()).body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))
    }
    assert generators == set(TWINS)
    for name, twin in TWINS.items():
        assert inspect.isgeneratorfunction(getattr(hooks, name))
        plain = getattr(generated, twin)
        assert not inspect.isgeneratorfunction(plain)
        assert list(inspect.signature(plain).parameters)[-1] == "run_async"


def test_a_change_to_the_algorithm_makes_the_committed_twin_stale() -> None:
    source = HOOKS.read_text()
    changed = source.replace(
        "    for hook in plan.guards:\n", "    for hook in reversed(plan.guards):\n", 1
    )
    assert changed != source
    assert semantic_form(generate(changed)) != semantic_form(GENERATED.read_text())


def test_formatting_alone_does_not_make_the_twin_stale() -> None:
    text = GENERATED.read_text()
    reflowed = text.replace("    return result\n", "    return (result)\n", 1)
    reflowed = reflowed.replace("import inspect\n", "import inspect  # reordered\n", 1)
    assert reflowed != text
    assert semantic_form(reflowed) == semantic_form(text)


def test_the_twins_call_run_async_where_the_generators_yield() -> None:
    text = generate(HOOKS.read_text())
    assert "yield" not in text
    assert "run_async(result)" in text
    assert "_call_now(spec, ctx, *stage, run_async)" in text
    assert "_admit_now(spec, plan, ctx, run_async)" in text


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("result = yield result", "result = yield", "a bare 'yield'"),
        (
            "result = yield from _call(spec, ctx, hook.kind, hook.name, hook.fn)",
            "result = yield from iter(())",
            "'yield from' must call one of",
        ),
        (
            ") -> Generator[Awaitable[Any], Any, TransitionContext]:",
            ") -> TransitionContext:",
            "annotate the return as Generator",
        ),
    ],
)
def test_the_generator_refuses_what_its_rules_do_not_cover(
    replace: str, by: str, message: str
) -> None:
    source = HOOKS.read_text()
    assert replace in source
    with pytest.raises(ValueError, match=message):
        generate(source.replace(replace, by, 1))
