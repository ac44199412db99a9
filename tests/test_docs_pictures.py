"""The docs' pictures: a machine's picture is what ``stateward graph`` prints
for it today, and the site draws every picture without the network."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

#: A ```text block that shows a `stateward graph` command and what it printed.
GRAPH_SAMPLE = re.compile(r"```text\n\$ stateward graph (\w+):(\w+)\n(.*?)```", re.DOTALL)
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def graph_samples() -> list[tuple[str, str, str, str, str, str]]:
    """Every ``stateward graph MODULE:ATTR`` sample in the docs, as (page,
    module, attribute, the module's source, the output shown, the fence that
    follows it). The module is ``examples/MODULE.py`` if there is one (the
    command run in examples/), else the page's nearest Python block before
    the sample ("Say `flows.py` holds: ...")."""
    samples = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for sample in GRAPH_SAMPLE.finditer(text):
            module, attribute, shown = sample.groups()
            before = re.findall(r"```python\n(.*?)```", text[: sample.start()], re.DOTALL)
            after = FENCE.search(text, sample.end())
            example = EXAMPLES / f"{module}.py"
            source = example.read_text() if example.is_file() else before[-1] if before else ""
            picture = f"```{after.group(1)}\n{after.group(2)}" if after else "(nothing)"
            samples.append((page.name, module, attribute, source, shown, picture))
    return samples


def test_the_docs_draw_machines_as_stateward_graph_prints_them() -> None:
    # getting-started's flows.py and the statecharts page's player.py at least.
    pages = {sample[0] for sample in graph_samples()}
    assert {"getting-started.md", "statecharts.md"} <= pages


@pytest.mark.parametrize(
    ("page", "module", "attribute", "source", "shown", "picture"),
    graph_samples(),
    ids=[f"{s[0]}:{s[1]}:{s[2]}" for s in graph_samples()],
)
def test_a_graph_sample_is_what_the_command_prints_and_its_picture_follows(
    tmp_path: Path, page: str, module: str, attribute: str, source: str, shown: str, picture: str
) -> None:
    assert re.search(rf"^(class )?{attribute}\b", source, re.MULTILINE), (
        f"{page}: no Python block before `stateward graph {module}:{attribute}` defines "
        f"{attribute!r} (say `{module}.py` holds: ...)"
    )
    folder = EXAMPLES if (EXAMPLES / f"{module}.py").is_file() else tmp_path
    if folder == tmp_path:
        (tmp_path / f"{module}.py").write_text(source)
    printed = subprocess.run(
        [sys.executable, "-m", "stateward.actors.cli", "graph", f"{module}:{attribute}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
    )
    assert (printed.returncode, printed.stderr) == (0, "")
    assert shown == printed.stdout, f"{page} shows an old output: run the command again"
    # The picture right after the sample is that output, drawn by the site.
    assert picture == "```mermaid\n" + printed.stdout, (
        f"{page}: the block after `stateward graph {module}:{attribute}` must be a "
        "```mermaid fence holding exactly what it prints"
    )


# -- mermaid.js shipped in the site --------------------------------------------------


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mermaid_hook", ROOT / "docs_hooks/mermaid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(built_site: Path) -> Path:
    return built_site


def test_every_page_with_a_picture_loads_mermaid_from_the_site(site: Path) -> None:
    shipped = site / _hook().SITE_PATH
    assert shipped.read_bytes() == _hook().mermaid_js().read_bytes()
    pictured = [p for p in sorted(site.rglob("*.html")) if 'class="mermaid"' in p.read_text()]
    # concepts, supervision, durability, rows, getting-started, statecharts at least
    assert len(pictured) >= 6, pictured
    for page in pictured:
        html = page.read_text()
        scripts = re.findall(r'<script src="([^"]+)"', html)
        local = [s for s in scripts if s.endswith(_hook().SITE_PATH)]
        assert local, f"{page.relative_to(site)} draws a picture but does not load mermaid.js"
        assert (page.parent / local[0]).resolve() == shipped.resolve()


def test_materials_bundle_uses_the_loaded_mermaid_instead_of_fetching_one(site: Path) -> None:
    # Material fetches mermaid from a CDN only when no window.mermaid is
    # defined: if a new Material stops checking, the shipped file is useless.
    page = (site / "concepts" / "index.html").read_text()
    (bundle,) = re.findall(r'<script src="([^"]*assets/javascripts/bundle[^"]*)"', page)
    code = (site / "concepts" / bundle).resolve().read_text()
    fetch = code.index("unpkg.com/mermaid")
    assert 'typeof mermaid=="undefined"' in code[max(0, fetch - 200) : fetch]


def test_the_hook_says_what_to_install_when_mermaid_is_missing() -> None:
    hook = _hook()
    with pytest.raises(hook.MermaidNotFound, match=r"pip install -e '\.\[docs\]'"):
        hook.mermaid_js("no_such_package_carries_mermaid")


def test_the_hook_refuses_a_file_that_does_not_define_window_mermaid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook()
    (tmp_path / "fake_mermaid" / "assets").mkdir(parents=True)
    (tmp_path / "fake_mermaid" / "__init__.py").write_text("")
    (tmp_path / "fake_mermaid" / "assets" / "mermaid.js").write_text("export default {};\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(hook.MermaidNotFound, match=r"does not define window\.mermaid"):
        hook.mermaid_js("fake_mermaid")
    (tmp_path / "fake_mermaid" / "assets" / "mermaid.js").unlink()
    with pytest.raises(hook.MermaidNotFound, match="no longer carries"):
        hook.mermaid_js("fake_mermaid")
