"""Every page of the built site, as a reader's browser shows it (headless system Chromium).

For each page (tests/site_files.py lists them from docs/ before the build; a test checks
that they are exactly the pages of the build), in a fresh browser context, one load, one
test that names every check that fails:

- it loads with no console error, no uncaught exception, no failed request, no HTTP error,
  and no request to any host other than the local server;
- it loads no maths or diagram script (KaTeX, its auto-render, Mermaid): formulas and
  diagrams come drawn in the HTML, at build time;
- every formula is typeset by KaTeX at build time (no ``.katex-error``, no raw ``\\(``,
  ``\\[``, ``$$``);
- every diagram is drawn at build time: an inline ``<svg role="img">`` with a name and text;
- every code block has Material's copy button, aimed at that block;
- every image loads (the other palette's twin included);
- axe-core finds no WCAG 2 A/AA violation; colour contrast is checked, in light and in dark
  mode, on the pages of CONTRAST, which hold every kind of element the site uses (checked);
- the header's toggle switches the palette (``data-md-color-scheme`` default <-> slate)
  and each figure switches between its light SVG and its ``-dark.svg`` twin;
- what it reads comfortably at 1280 px, and then, the same page narrowed to 390 px, on a
  phone (see ``sitetools.browser.phone_problems``);
- what a reader receives stays within the page budget (:func:`budget`).

Also: the search box finds every page by its title, and a few words listed below. Screenshots of the home page and the softmax page
(light, dark, phone) go to test-artifacts/screenshots/. The checkers themselves are tested on
broken pages in tests/test_browser_checks.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sitetools import browser, linkcheck
from tests.site_files import ARTIFACTS, record_reading, record_weight, site_pages

pytestmark = [pytest.mark.site, pytest.mark.browser]

PAGES = site_pages()

# axe-core violations accepted on purpose, each with its reason. Empty: the theme's few
# failures (link colour alone, code comments and the footer's grey just under 4.5:1, dark
# syntax colours) are fixed in docs/assets/stylesheets/extra.css. A violation that only a
# fork of Material's templates could fix would be listed here, one rule and place at a time.
AXE_ALLOWED: list[browser.Allowed] = []

SCREENSHOTS = {"": "home", "concepts/softmax/": "softmax", "concepts/attention/": "attention",
               "concepts/embeddings/": "embeddings"}

# Pages whose colour contrast is checked, in both palettes. Contrast depends on the theme's
# colour for each kind of element (a tag and its classes: prose, links, inline code, each
# token class of highlighted code, maths, tabs, admonitions, tables, the API reference's
# signatures, labels and symbols...), not on the words, and axe's contrast rule is the
# slowest check (1 to 2 s a page and palette). Together these pages hold every kind of
# element that any page's content has: a test checks that, and names the pages to add when
# a new kind appears. The header, navigation and footer are the same on every page.
CONTRAST = {"", "concepts/training/", "concepts/training-speed/", "concepts/bitnet/", "concepts/bitnet/bitlinear/",
            "concepts/embedding-space/", "concepts/gpt/",
            "api/embedding/", "api/training/", "api/distributed/", "api/gpt/"}

# What a reader receives reading one page with an empty cache: every response (HTML, CSS,
# JavaScript, fonts, images) from the page's load to the end of a read through it (scrolled
# to the bottom, so that the lazy images a reader sees load; in the light palette, boxes left
# collapsed), as the browser received them from the local server (uncompressed; GitHub
# Pages gzips text, see the summary's estimate). Not counted: the search index, which every
# page loads and which grows with the whole site (its size is printed in the summary).
HOME_BUDGET_BYTES = 500_000
PAGE_BUDGET_BYTES = 1_000_000


def budget(path: str) -> int:
    """A page's budget in bytes: the home page (a first visit) 500 KB, every other page 1 MB."""
    return HOME_BUDGET_BYTES if path == "" else PAGE_BUDGET_BYTES


# Words a reader would type, and the page (by a part of its title) that must come up.
# A page that has not been written yet makes its line wait (listed in the test output).
SEARCHES = [
    ("temperature", "Softmax and temperature"),
    ("multinomial", "Softmax and temperature"),  # written `torch.multinomial` on the page
    ("greedy", "Softmax and temperature"),
    ("BitLinear", "BitNet"),
]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p or "home")
def test_page_in_the_browser(path, built_site: Path, site_server: str, browser_context):
    """Every check of the module's docstring on one page, in one load: at 1280 px, in both
    palettes, then narrowed to a phone's 390 px; and its weight within :func:`budget`
    (bytes received by a reader who reads the page to its end, the search index aside)."""
    name = SCREENSHOTS.get(path)
    shot = ARTIFACTS / "screenshots" / name if name else None
    result = browser.audit(browser_context, site_server, path, site=built_site, allowed=AXE_ALLOWED, screenshot=shot,
                           contrast=path in CONTRAST, concept=is_concept(path), phone=True)
    record_weight(result.weight)
    record_reading(result.reading)
    record_reading(result.phone_reading)

    for warning in result.console_warnings:  # shown with the test's output; not failures
        print(f"console warning: {warning}")
    result.problems["weight"] = browser.budget_problems(result.weight, budget(path))
    result.problems["screenshots"] = [f"screenshot {s} is missing or empty" for s in result.screenshots
                                      if not (s.is_file() and s.stat().st_size > 10_000)]
    assert not result.failed(), "problems in the browser:\n" + result.report()


def is_concept(path: str) -> bool:
    """Pages held to the core budget: the concept pages and chapter 0."""
    return path.startswith("concepts/") or path == "gpt-in-one-page/"


def test_the_contrast_sample_is_made_of_pages_of_the_site():
    assert CONTRAST <= set(PAGES), sorted(CONTRAST - set(PAGES))


def _element_kinds(html: str) -> set[tuple[str, str]]:
    """The kinds of element in a page's content (``<article>``): each tag with its classes.

    A formula counts as one kind (its ``span.katex``): the spans KaTeX lays it out with take
    the formula's colour, so one formula of the sample checks them all."""
    from html.parser import HTMLParser

    class Kinds(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.kinds, self.formula = 0, set(), 0  # depth inside a formula

        def handle_starttag(self, tag, attrs):
            self.inside += tag == "article"
            classes = (dict(attrs).get("class") or "").split()
            if self.formula:  # KaTeX writes well-formed HTML, MathML and SVG: every tag closes
                self.formula += 1
                return
            self.formula = "katex" in classes
            if self.inside:
                self.kinds.add((tag, " ".join(sorted(classes))))

        def handle_endtag(self, tag):
            self.inside -= tag == "article" and self.inside > 0
            self.formula = max(0, self.formula - 1)

    parser = Kinds()
    parser.feed(html)
    return parser.kinds


def test_element_kinds_are_read_from_the_content_only():
    html = ('<header class="md-header"><p class="x">h</p></header><article class="md-content__inner">'
            '<p class="b a">t <span>s</span></p><img alt="i"></article><footer><em class="f">f</em></footer>')
    assert _element_kinds(html) == {("article", "md-content__inner"), ("p", "a b"), ("span", ""), ("img", "")}


def test_a_formula_is_one_kind_of_element():
    html = ('<article><p>x <span class="katex"><span class="mord mathbb">R</span><svg><path d="M0"/></svg>'
            '</span> and <span class="mord">y</span></p></article>')
    assert _element_kinds(html) == {("article", ""), ("p", ""), ("span", "katex"), ("span", "mord")}


def test_the_contrast_sample_holds_every_kind_of_element(built_site: Path):
    kinds = {p: _element_kinds((built_site / p / "index.html").read_text(encoding="utf-8")) for p in PAGES}
    sampled = set().union(*(kinds[p] for p in CONTRAST))
    unchecked = set().union(*kinds.values()) - sampled
    assert not unchecked, "kinds of element on no page of CONTRAST (add one of the pages listed):\n" + "\n".join(
        f"  <{tag} class={cls!r}>: on {[p or 'home' for p in PAGES if (tag, cls) in kinds[p]][:4]}"
        for tag, cls in sorted(unchecked)
    )


def test_the_pages_checked_are_the_pages_of_the_build(built_site: Path):
    """A page made some other way than from docs/ (or a generated page) is not missed."""
    built = set(browser.html_pages(built_site))
    assert built == set(PAGES), (
        f"pages built but not checked: {sorted(built - set(PAGES))}; "
        f"pages checked but not built: {sorted(set(PAGES) - built)}"
    )


def _titles(site: Path) -> dict[str, str]:
    out = {}
    for path in browser.html_pages(site):
        info = linkcheck.parse_page(site, site / (path + "index.html" if path == "" or path.endswith("/") else path))
        h1 = [text for level, _, text in info.headings if level == 1]
        out[path] = h1[0].replace("¶", "").strip() if h1 else ""
    return out


def search_cases(site: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """What the search box must find, from the built site: ``(cases, waiting)``.

    - every page, by its title;
    - the words of SEARCHES, on the page whose title contains the given part (``waiting``
      lists those whose page is not in the site yet).

    (Not: every page by every word on it. Search ranks and a word common to many pages need
    not bring up each of them; the titles and the listed words are what readers type.)
    """
    titles = _titles(site)
    cases = [(title, path) for path, title in titles.items() if title]
    waiting = []
    for word, part in SEARCHES:
        pages = [p for p, t in titles.items() if part.lower() in t.lower()]
        if not pages:
            waiting.append(f"{word!r}: no page titled like {part!r} yet")
        for path in pages:
            text = re.sub(r"<[^>]+>", " ", (site / path / "index.html").read_text(encoding="utf-8"))
            assert word.lower() in text.lower(), (
                f"SEARCHES: {word!r} is no longer on {path}; update the list in tests/test_browser.py")
            cases.append((word, path))
    return cases, waiting


def test_search_finds_pages_by_their_words(built_site: Path, site_server: str, browser_context):
    cases, waiting = search_cases(built_site)
    assert any(word == "temperature" for word, _ in cases)
    visit = browser.open_page(browser_context, site_server, "")
    try:
        problems = browser.search_problems(visit, cases)
    finally:
        visit.page.close()
    text = "\n".join([f"{len(cases)} searches:"] + [f"  {w!r} -> {p or '/'}" for w, p in cases]
                     + ["waiting for their page:"] + [f"  {w}" for w in waiting])
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "search.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    assert not problems, "\n".join(problems)
