"""Every Python block in docs/ runs as written and prints what its ``# -> text``
comments say. (A ```python block runs; Python that cannot run alone, such as a Django
model, a fragment or a peer library the suite does not install, is fenced ```py.)"""

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


def test_the_architecture_page_names_only_modules_that_exist() -> None:
    # The page follows a call through the modules by file name: a file that
    # was moved or renamed must take the page with it.
    page = (DOCS / "architecture.md").read_text()
    root = DOCS.parent
    named = set(re.findall(r"\b((?:core|actors|tests)/[\w/]*\.py)\b", page))
    assert len(named) >= 20, sorted(named)
    missing = sorted(path for path in named if not (root / path).is_file())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
    folders = set(re.findall(r"\b((?:core|actors)/[\w/]+/)(?=[\s`|])", page))
    assert not sorted(f for f in folders if not (root / f).is_dir())


def test_the_comparison_table_shows_statewards_column_first() -> None:
    # On a page ~720 px wide, the last columns of a wide table are off-screen.
    page = (DOCS / "comparison.md").read_text()
    header = page.split("## At a glance\n")[1].strip().splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")][:2] == ["", "stateward"]


def test_no_page_installs_stateward_from_pypi() -> None:
    # stateward is not published: every install line works in a clone.
    pages = sorted(DOCS.rglob("*.md"))
    offending = [p.name for p in pages if re.search(r"pip install '?stateward\[", p.read_text())]
    assert offending == []
