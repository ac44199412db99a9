"""The docs site as a reader sees it: built with ``mkdocs build --strict``, every page rendered
in headless Chromium at 1,400 x 900 from file:// URLs (no network), and checked: no code block or
table scrolls sideways, no code line runs under a code block's copy button, nothing is fetched
from another host (neither linked from the built HTML and CSS nor requested while a page loads
and runs its scripts), the changelog has one title, pages link to the next and previous page.
(tests/test_docs_fences.py checks that Python is fenced as Python.)

Chromium is Debian's package (``.ci/chromium`` installs it in CI). Without it (or without mkdocs,
the ``docs`` extra) these tests skip, saying so, except with ``CI=true``, where they fail: CI
must build and render the site.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The window the site is checked in: a laptop's browser, both sidebars shown.
WIDTH, HEIGHT = 1400, 900

#: Each page's probe waits this long after ``load`` (Material's script wraps tables and adds the
#: copy buttons on load) before it measures; virtual time, so it costs nothing real.
SETTLE_MS = 500

#: Injected at the end of each page's copy. It measures the page as laid out and posts a JSON
#: report to the harness page that frames every page. Mermaid fences (``pre.mermaid``, marked
#: ``data-diagram`` in the copy, as Material's script drops the class when it takes a fence to
#: draw) are diagrams' sources, drawn by mermaid.js: not code a reader scrolls, so they are left
#: out (the site ships mermaid.js, so they are drawn as pictures scaled to the column).
PROBE_JS = """
(function () {
  function firstLine(el) {
    var text = el.textContent.replace(/^\\s+/, "");
    return text.split("\\n")[0].slice(0, 100);
  }
  function measure() {
    var report = {page: window.name,
                  viewport: document.documentElement.clientWidth,
                  codeBlocks: 0, tables: 0, code: [], tableOverflow: [], underButton: []};
    document.querySelectorAll("article pre > code").forEach(function (code) {
      var pre = code.parentElement;
      if (pre.classList.contains("mermaid") || pre.hasAttribute("data-diagram")) return;
      report.codeBlocks += 1;
      if (code.scrollWidth > code.clientWidth + 1) {
        report.code.push({line: firstLine(code), hidden: code.scrollWidth - code.clientWidth});
      }
      var nav = pre.querySelector(".md-code__nav");
      if (!nav) return;
      var box = nav.getBoundingClientRect();
      var walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
      var range = document.createRange();
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!/\\S/.test(node.data)) continue;
        range.selectNodeContents(node);
        var rects = range.getClientRects();
        for (var i = 0; i < rects.length; i++) {
          var r = rects[i];
          if (r.width > 0 && r.bottom > box.top + 1 && r.top < box.bottom - 1 &&
              r.right > box.left + 1) {
            report.underButton.push({line: firstLine(code),
                                     covered: node.data.trim().slice(0, 60)});
            return;
          }
        }
      }
    });
    document.querySelectorAll("article table").forEach(function (table) {
      report.tables += 1;
      var box = table.closest(".md-typeset__scrollwrap") || table.parentElement;
      if (box.scrollWidth > box.clientWidth + 1) {
        report.tableOverflow.push({line: firstLine(table.rows[0]).replace(/\\s+/g, " "),
                                   hidden: box.scrollWidth - box.clientWidth});
      }
    });
    // Every request the page made to another host, answered or not (this check runs offline).
    report.remote = performance.getEntriesByType("resource").map(function (entry) {
      return entry.name;
    }).filter(function (url) { return /^https?:/.test(url); });
    parent.postMessage(JSON.stringify(report), "*");
  }
  window.addEventListener("load", function () { setTimeout(measure, %(settle)d); });
})();
"""

#: The harness: every page in a WIDTH x HEIGHT frame; it writes their reports into its DOM.
HARNESS = """<!doctype html>
<html><body style="margin:0">
<pre id="reports"></pre>
%(frames)s
<script>
var reports = [];
window.addEventListener("message", function (event) {
  reports.push(JSON.parse(event.data));
  document.getElementById("reports").textContent = JSON.stringify(reports);
});
</script>
</body></html>
"""

CHROMIUM_MISSING = (
    "no chromium on PATH: the docs layout is checked in headless Chromium "
    "(Debian: apt-get install chromium; CI installs it with .ci/chromium)"
)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def site(built_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built site, which the probe may add its own pages to."""
    out = tmp_path_factory.mktemp("layout") / "site"
    shutil.copytree(built_site, out)
    return out


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("index.html"))


def _name(site: Path, page: Path) -> str:
    """A page as the reader's address bar names it: ``concepts/``, ``howto/threads/``, ``/``."""
    return page.parent.relative_to(site).as_posix().removeprefix(".") + "/"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        if _in_ci():
            pytest.fail(f"CI=true: {CHROMIUM_MISSING}")
        pytest.skip(CHROMIUM_MISSING)
    return binary


@pytest.fixture(scope="module")
def layout(site: Path, chromium: str) -> list[dict[str, object]]:
    """Every page's report, measured by the probe in one Chromium run."""
    frames = []
    probe = f"<script>{PROBE_JS % {'settle': SETTLE_MS}}</script></body>"
    for page in _pages(site):
        probed = page.with_name("layout-probe.html")
        text = page.read_text().replace(
            '<pre class="mermaid">', '<pre class="mermaid" data-diagram>'
        )
        probed.write_text(text.replace("</body>", probe, 1))
        src = probed.relative_to(site).as_posix()
        frames.append(
            f'<iframe name="{_name(site, page)}" src="{src}" width="{WIDTH}" height="{HEIGHT}"'
            ' style="border:0"></iframe>'
        )
    harness = site / "layout-harness.html"
    harness.write_text(HARNESS % {"frames": "\n".join(frames)})
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--window-size={WIDTH},{HEIGHT}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="reports">(.*?)</pre>', result.stdout, flags=re.DOTALL)
    assert found, result.stdout[:2000]
    return json.loads(html.unescape(found.group(1)) or "[]")


def test_every_page_is_rendered_and_measured(site: Path, layout: list[dict[str, object]]) -> None:
    assert sorted(str(r["page"]) for r in layout) == sorted(_name(site, p) for p in _pages(site))
    # The window really is the one the check claims, less a scrollbar.
    assert all(WIDTH - 20 <= int(str(r["viewport"])) <= WIDTH for r in layout), layout
    # The site has plenty of both: a probe that found none would check nothing.
    assert sum(int(str(r["codeBlocks"])) for r in layout) > 50
    assert sum(int(str(r["tables"])) for r in layout) > 10


#: docs/benchmarks.md is generated from the benchmark results by benchmarks/_report.py; its
#: layout is checked apart, below.
BENCHMARKS_PAGE = "benchmarks/"


def _found(layout: list[dict[str, object]], key: str, *, benchmarks: bool = False) -> list[str]:
    return [
        f"{report['page']}: {item}"
        for report in layout
        if (report["page"] == BENCHMARKS_PAGE) == benchmarks
        for item in report[key]  # type: ignore[attr-defined]
    ]


def test_no_code_block_scrolls_sideways_at_1400_px(layout: list[dict[str, object]]) -> None:
    overflowing = _found(layout, "code")
    assert not overflowing, f"{len(overflowing)} code blocks scroll sideways:\n" + "\n".join(
        overflowing
    )


def test_no_code_line_runs_under_the_copy_button(layout: list[dict[str, object]]) -> None:
    covered = _found(layout, "underButton")
    assert not covered, f"{len(covered)} code blocks have text under the copy button:\n" + (
        "\n".join(covered)
    )


def test_no_table_scrolls_sideways_at_1400_px(layout: list[dict[str, object]]) -> None:
    overflowing = _found(layout, "tableOverflow")
    assert not overflowing, f"{len(overflowing)} tables scroll sideways:\n" + "\n".join(overflowing)


def test_the_benchmarks_page_needs_no_sideways_scrolling(
    layout: list[dict[str, object]],
) -> None:
    problems = [
        *_found(layout, "code", benchmarks=True),
        *_found(layout, "underButton", benchmarks=True),
        *_found(layout, "tableOverflow", benchmarks=True),
    ]
    assert not problems, "\n".join(problems)


def test_no_page_requests_anything_from_another_host_when_rendered(
    layout: list[dict[str, object]],
) -> None:
    # What the browser really asked for while the page loaded and ran its scripts: fonts,
    # styles, scripts, and what scripts fetch (a repository's star count, a search index).
    requests = [
        f"{report['page']}: {url}"
        for report in layout
        for url in report["remote"]  # type: ignore[attr-defined]
    ]
    assert not requests, "\n".join(requests)


class _RemoteFetches(HTMLParser):
    """The URLs a page makes the browser fetch from another host: any remote ``src``,
    ``href``, ``srcset``, ``data`` or ``poster`` of an element other than a link the reader
    follows (``<a>``), and remote ``@import`` or ``url()`` in inline styles."""

    NOT_FETCHED = frozenset({"canonical", "alternate", "author", "license", "me"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._in_style = tag == "style"
        rel = set((values.get("rel") or "").split())
        if tag == "a" or (tag == "link" and rel and rel <= self.NOT_FETCHED):
            return
        for name in ("src", "href", "srcset", "data", "poster"):
            if REMOTE.match(values.get(name) or ""):
                self.found.append(f"<{tag} {name}={values[name]}>")
        self.found.extend(_remote_in_css(values.get("style") or ""))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found.extend(_remote_in_css(data))


#: A URL on another host: http:, https: or protocol-relative.
REMOTE = re.compile(r"\s*(https?:)?//", re.IGNORECASE)
CSS_REMOTE = re.compile(
    r"""(@import\s+(url\()?|url\()\s*["']?\s*(https?:)?//[^"')\s;]*""", re.IGNORECASE
)


def _remote_in_css(css: str) -> list[str]:
    return [m.group(0) for m in CSS_REMOTE.finditer(css)]


def test_the_built_site_fetches_nothing_from_the_network(site: Path) -> None:
    # Read offline (a laptop on a train, a docs folder on an air-gapped host), the site
    # must not wait on, or break without, another host: no web fonts, scripts or styles.
    found = []
    for page in _pages(site):
        parser = _RemoteFetches()
        parser.feed(page.read_text())
        found.extend(f"{_name(site, page)}: {url}" for url in parser.found)
    for sheet in sorted(site.rglob("*.css")):
        found.extend(f"{sheet.relative_to(site)}: {u}" for u in _remote_in_css(sheet.read_text()))
    assert not found, "\n".join(found)


def test_the_remote_fetch_check_finds_what_a_web_font_adds() -> None:
    parser = _RemoteFetches()
    parser.feed(
        '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>'
        '<link rel="stylesheet" href="//fonts.example/css?family=Roboto">'
        '<script src="https://cdn.example/x.js"></script>'
        "<style>@import url(https://fonts.example/a.css); b{background:url('data:x')}</style>"
        '<a href="https://example.org/">a link</a><link rel="canonical" href="https://x.org/">'
    )
    assert len(parser.found) == 4, parser.found


def test_the_changelog_has_one_title(site: Path) -> None:
    page = (site / "changelog" / "index.html").read_text()
    titles = re.findall(r"<h1\b[^>]*>(.*?)</h1>", page, flags=re.DOTALL)
    assert len(titles) == 1, titles


def test_every_page_links_to_the_next_and_the_previous(site: Path) -> None:
    # Long pages end with the way on (Material's navigation.footer).
    pages = [p.read_text() for p in _pages(site)]
    assert sum("md-footer__link--next" in p for p in pages) == len(pages) - 1
    assert sum("md-footer__link--prev" in p for p in pages) == len(pages) - 1
