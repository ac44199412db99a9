"""The class form type-checks in user code: ``class on(State.Compound)`` is a
state at run time, and a type checker must accept it as written in the docs
(its moves ``on.to(off)``, ``off.to(on)``, its children ``on.h``, its class
keywords ``initial=True``). Runs mypy, strict, on the examples of
docs/statecharts.md that write nested states, as a user's project would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PAGE = ROOT / "docs" / "statecharts.md"


def _nested_state_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "State.Compound" in b or "State.Parallel" in b]


def test_the_docs_have_class_form_examples_with_nested_states() -> None:
    assert len(_nested_state_examples()) >= 2


def test_the_class_form_with_nested_states_type_checks_in_user_code(tmp_path: Path) -> None:
    # stateward as it installs (core/ -> stateward.core), as .ci/typecheck lays it out.
    package = tmp_path / "layout" / "stateward"
    package.mkdir(parents=True)
    (package / "core").symlink_to(ROOT / "core")
    (package / "actors").symlink_to(ROOT / "actors")
    files = []
    for index, block in enumerate(_nested_state_examples()):
        path = tmp_path / f"example_{index}.py"
        path.write_text(block)
        files.append(str(path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",  # the user's code only, as with an installed package
            "--namespace-packages",
            "--explicit-package-bases",
            "--no-error-summary",
            f"--cache-dir={tmp_path / 'cache'}",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(tmp_path / "layout")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
