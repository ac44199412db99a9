"""Every Python block in docs/ runs as written and prints what its ``# -> text``
comments say."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCKS = [
    pytest.param(textwrap.dedent(block), id=f"{page.name}:{index}")
    for page in sorted(DOCS.rglob("*.md"))
    for index, block in enumerate(
        re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    )
]


def test_the_docs_have_code_to_run() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS)
def test_docs_block_runs(block: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=DOCS.parent,
    )
    assert result.returncode == 0, result.stderr
    for expected in re.findall(r"# -> (.*)$", block, flags=re.MULTILINE):
        assert expected in result.stdout, (expected, result.stdout)
