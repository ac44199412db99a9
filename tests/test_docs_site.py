"""The API reference, as a reader sees it: the site is built (``mkdocs build
--strict``) into a temporary folder and its reference pages are read back.

Every public name is documented, a class heading shows how to create one, no
heading runs over a line, nothing of the module's plumbing (``__all__``) or of
reST (a stray ``::``) shows, each module's page opens with its docstring (once),
and each page keeps its errors after the things a program starts from. Needs
the ``docs`` extra (mkdocs and mkdocstrings); without it these tests skip,
except with CI=true, where they fail.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_API = Path(__file__).resolve().parent / "public_api.txt"
LONGEST_HEADING = 80


@dataclass
class Heading:
    level: int
    id: str
    text: str = ""


@dataclass
class Page:
    """What a reader sees of one built page: its headings in order, the
    signature block under each object heading, and the prose (not code)."""

    path: Path
    headings: list[Heading] = field(default_factory=list)
    signature_after: dict[str, str] = field(default_factory=dict)
    prose: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # prose and inline code, in order


class _PageReader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.depth = 0
        self.article_depth: int | None = None
        self.code_depth: int | None = None
        self.pre_depth: int | None = None
        self.heading: Heading | None = None
        self.signature_depth: int | None = None
        self.signature_text: list[str] = []
        self.last_heading: Heading | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "img", "hr", "input", "meta", "link"}:
            return
        self.depth += 1
        classes = (dict(attrs).get("class") or "").split()
        if tag == "article" and self.article_depth is None:
            self.article_depth = self.depth
        if self.article_depth is None:
            return
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.heading = Heading(int(tag[1]), dict(attrs).get("id") or "")
        elif tag == "div" and "doc-signature" in classes:
            self.signature_depth = self.depth
            self.signature_text = []
        if tag in {"pre", "code"} and self.code_depth is None:
            self.code_depth = self.depth
        if tag == "pre" and self.pre_depth is None:
            self.pre_depth = self.depth

    def handle_endtag(self, tag: str) -> None:
        if tag in {"br", "img", "hr", "input", "meta", "link"}:
            return
        if self.heading is not None and tag == f"h{self.heading.level}":
            self.heading.text = " ".join(self.heading.text.replace("¶", " ").split())
            self.page.headings.append(self.heading)
            self.last_heading, self.heading = self.heading, None
        if self.signature_depth == self.depth:
            owner = self.last_heading
            if owner is not None and owner.id not in self.page.signature_after:
                self.page.signature_after[owner.id] = "".join(self.signature_text)
            self.signature_depth = None
        if self.code_depth == self.depth:
            self.code_depth = None
        if self.pre_depth == self.depth:
            self.pre_depth = None
        if self.article_depth == self.depth:
            self.article_depth = None
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.article_depth is None:
            return
        if self.heading is not None:
            self.heading.text += data
        if self.pre_depth is None and self.signature_depth is None:
            self.page.text.append(data)
        if self.signature_depth is not None:
            self.signature_text.append(data)
        elif self.code_depth is None and data.strip():
            self.page.prose.append(data)
            if self.heading is None and self.last_heading is not None:
                # Text between two headings ends the run in which a signature
                # counts as the heading's own.
                self.last_heading = None


def _read(path: Path) -> Page:
    page = Page(path)
    _PageReader(page).feed(path.read_text(encoding="utf-8"))
    return page


def _resolve(dotted: str) -> Any:
    """The object a documented path names (the longest importable module, then
    attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise LookupError(dotted)


def _is_error(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, BaseException)


def _has_own_constructor(cls: type) -> bool:
    """Whether creating one runs stateward's code (an ``__init__`` written in
    Python), so that its signature tells the reader something. A protocol is
    not created, and a class that keeps object's or an exception's constructor
    has nothing to show."""
    if getattr(cls, "_is_protocol", False):
        return False
    return inspect.isfunction(cls.__init__)


@pytest.fixture(scope="module")
def reference(built_site: Path) -> list[Page]:
    site = built_site
    pages = sorted((site / "reference").rglob("index.html"))
    assert pages, "the site has no reference pages"
    return [_read(path) for path in pages]


def _objects(pages: list[Page]) -> list[tuple[Page, Heading]]:
    return [(page, h) for page in pages for h in page.headings if h.id.startswith("stateward.")]


def test_every_public_name_is_documented_in_the_reference(reference: list[Page]) -> None:
    # A name is documented under its own path, or as the object it re-exports
    # (stateward.actors.MemoryStore is documented as stateward.actors.stores.MemoryStore).
    anchors = {h.id for _, h in _objects(reference)}
    documented = [_resolve(anchor) for anchor in anchors]
    missing = [
        name
        for name in PUBLIC_API.read_text().split()
        if name not in anchors and not any(_resolve(name) is value for value in documented)
    ]
    assert missing == [], f"public names with no entry in the API reference: {missing}"


def test_the_reference_does_not_render_all(reference: list[Page]) -> None:
    rendered = [h.id for _, h in _objects(reference) if h.id.rsplit(".", 1)[-1].startswith("_")]
    assert rendered == [], f"private names and __all__ rendered as entries: {rendered}"
    mentioned = [page.path.parent.name for page in reference if "__all__" in "".join(page.prose)]
    assert mentioned == []


def test_every_class_heading_in_the_reference_shows_its_signature(
    reference: list[Page],
) -> None:
    classes = [(p, h, _resolve(h.id)) for p, h in _objects(reference)]
    classes = [(p, h, value) for p, h, value in classes if inspect.isclass(value)]
    assert len(classes) >= 100, len(classes)
    unsigned = []
    for page, heading, cls in classes:
        name = heading.id.rsplit(".", 1)[-1]
        signature = page.signature_after.get(heading.id, "").strip()
        if _has_own_constructor(cls) and not signature.startswith(f"{name}("):
            unsigned.append(heading.id)
    assert unsigned == [], f"class headings with no signature under them: {unsigned}"


def test_reference_headings_fit_on_a_line(reference: list[Page]) -> None:
    long = [h.text for page in reference for h in page.headings if len(h.text) > LONGEST_HEADING]
    assert long == [], f"headings over {LONGEST_HEADING} characters: {long}"


def test_the_reference_shows_no_rest_literal_markers(reference: list[Page]) -> None:
    # A docstring's reST "example::" renders as a stray "::" before its code:
    # the examples are Markdown fences.
    stray = [
        (page.path.parent.name, text.strip()[-60:])
        for page in reference
        for text in page.prose
        if "::" in text
    ]
    assert stray == []


def test_each_reference_page_puts_its_errors_last(reference: list[Page]) -> None:
    # Pages start from what a program creates (StateMachine before ActorCrashed).
    for page in reference:
        top = [
            h.id
            for h in page.headings
            if h.id.startswith("stateward.")
            and inspect.ismodule(_resolve(h.id.rsplit(".", 1)[0]))
            and not inspect.ismodule(_resolve(h.id))
        ]
        kinds = [_is_error(_resolve(anchor)) for anchor in top]
        if True in kinds:
            first_error = kinds.index(True)
            after = [anchor for anchor, error in zip(top, kinds, strict=True) if not error]
            late = [a for a in after if top.index(a) > first_error]
            assert late == [], f"{page.path}: documented after the first error: {late}"


def _words(text: str) -> str:
    return " ".join(text.replace("`", "").replace("¶", " ").split())


def test_each_module_page_opens_with_its_docstring_once(reference: list[Page]) -> None:
    # The reference is split by module, and a page's intro is its module's
    # docstring alone: no second intro written beside it on the page.
    modules = {}
    for page in reference:
        title = next(h.text for h in page.headings if h.level == 1)
        if title.startswith("stateward."):
            modules[title] = page
    assert len(modules) >= 5, sorted(modules)
    for title, page in modules.items():
        summary = _words(inspect.getdoc(_resolve(title)).split("\n\n")[0])
        text = _words("".join(page.text))
        assert text.startswith(f"{title} {summary}"), (title, text[:300])
        assert text.count(summary) == 1, title
