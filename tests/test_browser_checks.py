"""The browser checkers catch what they are for.

Each test takes a real page of the build (the theme's scripts, maths typeset and diagrams
drawn at build time, the palette toggle, search), breaks it in a copy, and shows that the corresponding check of
sitetools/browser.py reports that exact fault. Faults that cannot mask one another share a
page, to keep the browser work short; each assertion looks for its own fault by name. The
untouched softmax page passes the same checks (and tests/test_browser.py runs all of them
on every real page). The copies live in a copy of the build in a temporary directory, with
their own local server: the build itself is never modified.

Bases: the softmax page (formulas, a diagram, figures, code blocks) where the fault needs
them; else the small misconceptions page (no formula, no diagram).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from sitetools import browser

pytestmark = [pytest.mark.site, pytest.mark.browser]

RICH = "concepts/softmax/index.html"  # crafted copies go to concepts/<name>/ (same depth)
SMALL = "misconceptions/index.html"  # crafted copies go to crafted-<name>/ (same depth)
ARTICLE = '<article class="md-content__inner md-typeset">'


@pytest.fixture(scope="module")
def crafted(built_site: Path, tmp_path_factory):
    """``(site directory, base URL, make)``; ``make(name, *edits, rich=False)`` writes a copy
    of a page passed through the edits and returns its path."""
    site = tmp_path_factory.mktemp("crafted") / "site"
    shutil.copytree(built_site, site)
    originals = {RICH: (site / RICH).read_text(encoding="utf-8"), SMALL: (site / SMALL).read_text(encoding="utf-8")}

    def make(name: str, *edits, rich: bool = False) -> str:
        html = originals[RICH if rich else SMALL]
        for edit in edits:
            before, html = html, edit(html)
            assert html != before, f"an edit of {name!r} changed nothing"
        path = f"concepts/{name}/" if rich else f"crafted-{name}/"
        out = site / path / "index.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
        return path

    with browser.serve(site) as base:
        yield site, base, make


@pytest.fixture(scope="module")
def module_context(chromium):
    context = chromium.new_context(**browser.CONTEXT_OPTIONS)
    yield context
    context.close()


@pytest.fixture
def visit(crafted, browser_context):
    """``visit(name, *edits, rich=False)``: open a crafted page (closed after the test)."""
    _, base, make = crafted
    opened = []

    def open_(name: str, *edits, rich: bool = False) -> browser.Visit:
        v = browser.open_page(browser_context, base, make(name, *edits, rich=rich), timeout_s=60)
        opened.append(v)
        return v

    yield open_
    for v in opened:
        v.page.close()


@pytest.fixture(scope="module")
def pristine(crafted, module_context):
    """The untouched softmax page, opened once for the tests that only look at it."""
    _, base, make = crafted
    v = browser.open_page(module_context, base, make("pristine-view", rich=True), timeout_s=60)
    yield v
    v.page.close()


def insert(fragment: str):
    """An edit that adds ``fragment`` at the start of the page's article."""
    return lambda html: html.replace(ARTICLE, ARTICLE + fragment, 1)


def replace(old: str, new: str):
    def edit(html: str) -> str:
        assert old in html, f"{old!r} is not in the page"
        return html.replace(old, new, 1)
    return edit


def has(found: list[str], *words: str) -> bool:
    return any(all(w in p for w in words) for p in found)


# -- loading: console, uncaught errors, requests, images ---------------------------------------

def test_console_errors_failed_and_outside_requests_and_render_scripts_are_caught(visit):
    v = visit("loading", insert(
        '<script>console.error("deliberate error")</script>'
        '<script>throw new Error("deliberate exception")</script>'
        '<p><img src="../figures/no-such-figure.svg" alt="A figure that is not there"></p>'
        '<script src="https://cdn.example.com/lib.js"></script>'
        '<p><img src="https://images.example.org/pixel.png" alt="A pixel from elsewhere"></p>'
        # the scripts that would draw maths and diagrams in the browser (the build ships
        # neither: requested all the same, each is a 404 as well)
        '<script src="../assets/vendor/mermaid/mermaid.min.js"></script>'
        '<script src="../assets/vendor/katex/katex.min.js"></script>'
    ))
    console = browser.console_problems(v)
    assert has(console, "console error", "deliberate error"), console
    assert has(console, "uncaught error", "deliberate exception"), console
    requests = browser.request_problems(v)
    assert has(requests, "HTTP error", "no-such-figure.svg", "404"), requests
    assert has(requests, "another host", "https://cdn.example.com/lib.js"), requests
    assert has(requests, "another host", "https://images.example.org/pixel.png"), requests
    # nothing left the machine: the browser resolves no host name but the local server's
    assert has(requests, "failed request", "cdn.example.com", "NAME_NOT_RESOLVED"), requests
    images = browser.image_problems(v)
    assert has(images, "no-such-figure.svg") and has(images, "pixel.png"), images
    scripts = browser.render_script_problems(v)
    assert has(scripts, "2 maths or diagram script(s)", "mermaid.min.js", "katex.min.js"), scripts


def test_a_clean_page_has_no_loading_problem_and_no_render_script(pristine):
    assert browser.console_problems(pristine) == []
    assert browser.request_problems(pristine) == []
    assert browser.image_problems(pristine) == []
    assert browser.render_script_problems(pristine) == []


# -- maths ------------------------------------------------------------------------------------

def test_broken_and_unrendered_maths_is_caught(visit):
    v = visit("maths", insert(
        # formulas the build did not typeset: the TeX is still there, in its wrapper
        r'<p>Unknown: <span class="arithmatex">\(z = \fraq{a}{b}\)</span>.</p>'
        r'<p>Unbalanced: <span class="arithmatex">\(y = \frac{a}{\)</span>.</p>'
        # what KaTeX leaves with throwOnError: false
        r'''<p><span class="katex-error" title="ParseError: KaTeX parse error: Expected '}'">\frac{1}{</span></p>'''
        r"<p>Stray delimiters: an unmatched \[ display and two dollars $$ alone.</p>"
        # a formula rendered at build time: KaTeX's HTML inside the arithmatex wrapper
        r"<p>A good one: <span class='arithmatex'><span class='katex'>e<sup>iπ</sup> + 1 = 0</span></span>.</p>"
    ))
    found = browser.math_problems(v)
    assert has(found, "not rendered by KaTeX", "fraq"), found
    assert has(found, "not rendered by KaTeX", r"\frac{a}{"), found
    assert has(found, "KaTeX error: ParseError"), found
    assert has(found, r"raw maths delimiter \[", "display"), found
    assert has(found, "raw maths delimiter $$", "two dollars"), found
    assert not has(found, "iπ"), found  # the good formula is rendered and not reported


def test_rendered_maths_passes(pristine):
    assert browser.math_problems(pristine) == []
    assert pristine.page.evaluate("() => document.querySelectorAll('.arithmatex .katex').length") > 10


# -- diagrams drawn at build time (inline SVG) -----------------------------------------------

def svg_diagram(width: int, *, text: str = "a step", style: str = "max-width:100%;height:auto",
                role: str = ' role="img" aria-label="Diagram: a step."') -> str:
    """A diagram as the build draws it: a container holding an inline SVG, 14 px text."""
    return (f'<div class="gn-diagram"><svg xmlns="http://www.w3.org/2000/svg"{role} viewBox="0 0 {width} 60" '
            f'width="{width}" height="60" style="{style}" font-size="14"><text x="20" y="30">{text}</text></svg></div>')


def test_diagram_faults_are_caught(visit):
    v = visit("inline-diagrams", insert(
        '<div class="gn-diagram"></div>'                # drawn nothing
        + svg_diagram(200, role="")                      # no role, no name
        + svg_diagram(300, text="legible")               # sound
        + svg_diagram(3000, text="shrunk")               # shrinks to the column: 14 * 688 / 3000 px
        + svg_diagram(1000, text="wide", style="min-width:1000px")  # keeps its size: scrolls sideways
    ))
    found = browser.diagram_problems(v)
    assert has(found, "diagram 1 has no <svg>"), found
    assert has(found, "diagram 2", 'role="img"'), found
    assert len(found) == 2, found  # the others are sound drawings
    read = browser.reading(v, browser.DESKTOP)
    drawn = {d["diagram"]: d for d in read.diagrams}
    assert drawn[2]["px"] == pytest.approx(14, abs=0.1), drawn  # 300 px wide: shown at its size
    assert drawn[3]["px"] < 4, drawn
    problems = browser.reading_problems(read, concept=False)
    assert has(problems, "diagram 3 shows text of", "at least 11"), problems
    assert has(problems, "diagram 4 is 1000 px wide", "wider than its column"), problems
    assert not has(problems, "diagram 1 ") and not has(problems, "diagram 2 "), problems


def test_the_diagram_of_the_softmax_page_is_sound(pristine):
    assert pristine.page.evaluate(f"() => document.querySelectorAll('article {browser.DIAGRAM_CONTAINER} > svg').length") == 1
    assert browser.diagram_problems(pristine) == []


# -- copy buttons -----------------------------------------------------------------------------

CODE = '<div class="language-python highlight"><pre><span></span><code>print("hello")\n</code></pre></div>'


def test_code_block_without_a_copy_button_is_caught(visit):
    v = visit("no-copy", replace('"content.code.copy", ', ""), insert(CODE))
    assert has(browser.copy_button_problems(v), "no copy button", "print")


def test_copy_button_aimed_at_another_block_is_caught(visit):
    # An element that takes the id Material gives the first block: its button copies that.
    v = visit("copy-elsewhere", insert('<div id="__code_0" hidden><code>something else</code></div>' + CODE))
    assert has(browser.copy_button_problems(v), "copies '#__code_0 > code', another block")


def test_every_code_block_of_the_softmax_page_has_its_button(pristine):
    assert browser.copy_button_problems(pristine) == []
    assert pristine.page.evaluate("() => document.querySelectorAll('.md-content pre button[data-md-type=copy]').length") > 10


# -- accessibility and the light/dark toggle --------------------------------------------------

FIGURE = ('<p><img alt="A figure" class="gn-figure" src="../figures/softmax-temperature.svg#only-light">'
          '<img alt="A figure" class="gn-figure" src="../figures/{dark}#only-dark"></p>')


def test_axe_and_figure_faults_in_both_palettes_are_caught_and_only_listed_ones_allowed(visit):
    v = visit("looks", insert(
        '<p id="faint" style="color:#c8c8c8">Faint grey text.</p>'
        '<p><img src="../figures/softmax-temperature.svg"></p>'
        '<style>[data-md-color-scheme="slate"] #dim { color: #3a3a44; }</style>'
        '<p id="dim">Readable in light mode only.</p>'
        "<style>.md-typeset img.gn-figure { display: block !important; }</style>"
        + FIGURE.format(dark="softmax-temperature-dark.svg")
        + FIGURE.format(dark="softmax-temperature.svg")  # a "dark" twin that is the light SVG
    ))
    light = browser.axe_problems(v)
    assert has(light, "color-contrast", "#faint") and not has(light, "#dim"), light
    assert has(light, "image-alt"), light
    allowed = [browser.Allowed("color-contrast", r"^#faint$", "a test of the allow-list")]
    left = browser.axe_problems(v, allowed=allowed)
    assert not has(left, "color-contrast") and has(left, "image-alt"), left
    figures = browser.figure_problems(v)
    assert has(figures, "the dark figure", "is shown in the light scheme"), figures
    assert has(figures, "../figures/softmax-temperature.svg#only-dark", "is not a -dark.svg"), figures
    assert browser.toggle_scheme(v) == browser.DARK
    dark = browser.axe_problems(v, rules=["color-contrast"], label="dark: ")
    assert has(dark, "dark: color-contrast", "#dim"), dark
    assert has(browser.figure_problems(v), "the light figure", "is shown in the dark scheme")


def test_missing_toggle_is_caught(crafted, browser_context):
    site, base, make = crafted
    path = make("no-toggle", lambda html: re.sub(r'<form class="md-header__option" data-md-component="palette">.*?</form>',
                                                 "", html, count=1, flags=re.S))
    result = browser.audit(browser_context, base, path, site=site)
    assert has(result.failed().get("light/dark", []), "did not switch to the dark scheme")
    assert set(result.failed()) == {"light/dark"}, result.report()  # every other check passed


def test_figures_switch_with_the_toggle(pristine):
    def shown():
        return pristine.page.evaluate(
            "() => [...document.images].filter(i => i.getClientRects().length).map(i => i.getAttribute('src'))")

    assert browser.scheme(pristine) == browser.LIGHT
    assert shown() == ["../../figures/softmax-temperature.svg#only-light"]
    assert browser.toggle_scheme(pristine) == browser.DARK
    assert shown() == ["../../figures/softmax-temperature-dark.svg#only-dark"]
    assert browser.figure_problems(pristine) == []
    assert browser.toggle_scheme(pristine) == browser.LIGHT
    assert browser.figure_problems(pristine) == []


# -- weight and search ------------------------------------------------------------------------

def test_weight_counts_every_byte_of_the_files_a_full_read_loads(crafted, pristine):
    site, base, _ = crafted
    weight = pristine.weight(site)
    read = pristine.finished[: pristine.read]
    bodies = 0
    for req in read:
        rel = req.url[len(base):].split("?")[0].split("#")[0]
        f = site / rel / "index.html" if rel == "" or rel.endswith("/") else site / rel
        bodies += f.stat().st_size
    assert weight.requests == len(read) > 10
    # the bodies as on disk (the local server does not compress), plus some headers each
    assert bodies < weight.transferred < bodies + 1000 * weight.requests
    assert weight.gzip_estimate < weight.transferred
    assert sum(weight.kinds.values()) == weight.transferred
    index = (site / browser.SEARCH_INDEX).stat().st_size
    assert index < weight.search_index < index + 1000  # counted apart, not in the budget
    assert weight.budgeted == weight.transferred - weight.search_index
    assert [u for u, _ in weight.resources].count(browser.SEARCH_INDEX) == 1
    assert len(weight.resources) == weight.requests
    assert [b for _, b in weight.resources] == sorted((b for _, b in weight.resources), reverse=True)


def test_weight_counts_what_a_reader_scrolls_to_and_not_the_hidden_twin(visit):
    v = visit("lazy", insert(
        '<p><img loading="lazy" alt="far down" src="../figures/softmax-temperature.svg?far"'
        ' style="margin-top: 9000px"></p>'  # loads when the reader gets there
        '<p><img loading="lazy" alt="hidden" src="../figures/softmax-temperature-dark.svg?hidden"'
        ' style="display: none"></p>'  # the other palette's twin: never shown in this one
    ))
    read = [r.url for r in v.finished[: v.read]]
    assert any(u.endswith("?far") for u in read), read
    assert not any(u.endswith("?hidden") for u in read), read
    assert any(r.url.endswith("?hidden") for r in v.finished)  # loaded later, for the image check
    weight = v.weight()
    assert browser.budget_problems(weight, weight.budgeted) == []
    over = browser.budget_problems(weight, 1000)
    assert has(over, "crafted-lazy/ receives", f"{weight.budgeted:,} bytes", "over its budget of 1,000",
               "Largest: ", "search index", "By kind: "), over


def test_search_reports_a_page_it_does_not_find(pristine):
    assert browser.search_problems(pristine, [("temperature", "concepts/softmax/")]) == []
    found = browser.search_problems(pristine, [("qzxwvjk", "concepts/softmax/"), ("temperature", "concepts/no-such-page/")])
    assert len(found) == 2 and all("does not find" in p for p in found), found
    assert pristine.page.evaluate("() => document.getElementById('__search').checked") is False  # closed again


# -- reading comfort: code width, figure text, collapsed boxes, the core, the lightbox ---------

LONG_CODE = ('<div class="language-python highlight"><pre><span></span><code>x = "' + "a" * 150
             + '"\n</code></pre></div>')
TINY_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="1600pt" height="200pt" viewBox="0 0 1600 200">'
            '<text x="10" y="100" style="font-size: 9px">tiny once scaled to the column</text></svg>')


def test_reading_faults_at_the_desktop_width_are_caught(crafted, visit):
    site, _, _ = crafted
    (site / "figures" / "crafted-tiny.svg").write_text(TINY_SVG, encoding="utf-8")
    v = visit("reading", insert(
        LONG_CODE
        + '<p><img class="gn-figure" alt="A wide figure" src="../figures/crafted-tiny.svg"></p>'
        + '<details class="misconception" open><summary>An open box</summary><p>x</p></details>'
        + '<div class="admonition misconception"><p class="admonition-title">A fixed box</p></div>'
        + '<div style="width: 3000px">a line wider than any screen</div>'
        + "<p>" + "word " * 1700 + "</p>"
        + CODE * 6
    ))
    r = browser.reading(v, browser.DESKTOP)
    found = browser.reading_problems(r, concept=True)
    assert has(found, "code block scrolls sideways", "aaaa"), found
    assert has(found, "crafted-tiny.svg", "shows text of"), found
    assert r.smallest_figure_text is not None and r.smallest_figure_text < 6  # 9 pt * 4/3 * 688/2133
    assert has(found, "misconception box is open on arrival", "An open box"), found
    assert has(found, "cannot be collapsed"), found
    assert has(found, "the page scrolls sideways"), found
    assert has(found, "the core", "words, over"), found
    assert has(found, "the core shows", "programs, over"), found
    # the same page is not held to the core budget when it is not a concept page
    assert not has(browser.reading_problems(r, concept=False), "the core"), found
    assert has(browser.lightbox_problems(v), "crafted-tiny.svg", "is not a lightbox link")


def test_the_softmax_page_reads_well_and_its_figure_opens_full_screen(visit):
    v = visit("reads-well", rich=True)
    r = browser.reading(v, browser.DESKTOP)
    assert browser.reading_problems(r, concept=True) == []
    assert r.figures and r.smallest_figure_text >= browser.MIN_FIGURE_TEXT_PX
    assert 0 < r.core_programs <= browser.CORE_PROGRAMS and 0 < r.core_words <= browser.CORE_WORDS
    kinds = {"misconception", "deeper", "question", "tip", "success"}  # the anatomy's collapsed boxes
    assert r.collapsed and all(kinds & set(c["classes"].split()) for c in r.collapsed), r.collapsed
    assert {"misconception", "question"} <= {k for c in r.collapsed for k in c["classes"].split()}
    assert browser.lightbox_problems(v) == []
    assert v.page.evaluate("() => !!document.querySelector('.glightbox-container')") is False  # closed


# Every animation that starts on the page, with its duration.
_RECORD_ANIMATIONS_JS = """() => { window.__gnAnimations = [];
  document.addEventListener("animationstart", e => window.__gnAnimations.push(
    [e.animationName, getComputedStyle(e.target).animationDuration]), true); }"""


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
def test_the_figure_viewer_fades_unless_the_reader_asks_for_less_motion(motion, crafted, chromium):
    """The page tests run with less motion (CONTEXT_OPTIONS); the viewer works both ways, and
    fades (GLightbox's 0.5 s) only for a reader who has not asked for less motion."""
    _, base, make = crafted
    context = chromium.new_context(**{**browser.CONTEXT_OPTIONS, "reduced_motion": motion})
    try:
        v = browser.open_page(context, base, make(f"motion-{motion}", rich=True), timeout_s=60)
        figure = next(img for img in v.page.query_selector_all("article img.gn-figure") if img.is_visible())
        figure.scroll_into_view_if_needed()
        v.page.evaluate(_RECORD_ANIMATIONS_JS)
        figure.click()
        v.page.wait_for_selector(".glightbox-container .gslide.current img")
        v.page.keyboard.press("Escape")
        v.page.wait_for_selector(".glightbox-container", state="detached")
        seen = {name: duration for name, duration in v.page.evaluate("() => window.__gnAnimations")}
        assert {"gfadeIn", "gfadeOut"} <= set(seen), seen  # it faded in and out
        fade = {"no-preference": "0.5s", "reduce": "0.001s"}[motion]
        assert {seen["gfadeIn"], seen["gfadeOut"]} == {fade}, seen
        assert browser.lightbox_problems(v) == []  # opens full-screen, closes with Escape
    finally:
        context.close()


def test_a_figure_that_opens_nothing_is_caught(visit):
    # a lightbox link whose script never runs: the click just follows the link
    v = visit("dead-lightbox", replace('<a class="glightbox"', '<a class="glightbox-not"'), rich=True)
    found = browser.lightbox_problems(v)
    assert has(found, "is not a lightbox link") or has(found, "opened no full-screen view"), found


def test_the_start_link_must_be_on_the_first_screen_and_lead_to_chapter_0(visit):
    v = visit("start", insert('<div id="gn-spacer"></div><p><a id="gn-start-here" href="../gpt-in-one-page/">'
                              'Start here</a></p>'))
    assert browser.start_link_problems(v) == []
    v.page.evaluate("""() => {  // pushed down a long way, leading elsewhere, saying something else
      document.getElementById("gn-spacer").style.height = "3000px";
      const a = document.getElementById("gn-start-here");
      a.setAttribute("href", "../elsewhere/");
      a.textContent = "Go";
    }""")
    found = browser.start_link_problems(v)
    assert has(found, "not on the first screen"), found
    assert has(found, "leads to", "elsewhere"), found
    assert has(found, "reads 'Go'"), found
    v.page.evaluate("() => document.getElementById('gn-start-here').remove()")
    assert browser.start_link_problems(v) == ["no start link (#gn-start-here)"]


def test_phone_checks_catch_a_page_wider_than_the_screen_and_a_diagram_too_small_or_too_wide(crafted, chromium):
    _, base, make = crafted
    path = make("phone-wide", insert('<div style="width: 900px">wider than a phone</div>' + LONG_CODE
                                     + svg_diagram(330, text="fits") + svg_diagram(700, text="shrinks")
                                     + svg_diagram(600, text="scrolls", style="min-width:600px")))
    context = chromium.new_context(**browser.PHONE_OPTIONS)
    try:
        read, found = browser.phone_audit(context, base, path)
    finally:
        context.close()
    assert read.width == browser.PHONE
    assert has(found, "the page scrolls sideways", "at 390 px"), found
    assert has(found, "diagram 2 shows text of", "at 390 px"), found
    assert has(found, "diagram 3 is 600 px wide at 390 px", "wider than its column"), found
    assert not has(found, "diagram 1 "), found
    assert not has(found, "code block"), found  # a code block may scroll inside itself on a phone
    assert read.overflowing  # but it is measured


def test_a_page_narrowed_to_a_phone_is_checked_as_a_phone(crafted, browser_context):
    """audit(phone=True) checks the page it loaded at 1280 px again at 390 px."""
    site, base, make = crafted
    path = make("narrowed", insert('<div style="width: 700px">wider than a phone</div>'))
    result = browser.audit(browser_context, base, path, site=site, contrast=False, phone=True)
    assert set(result.failed()) == {"phone"}, result.report()  # 700 px fit at 1280 px
    assert has(result.failed()["phone"], "the page scrolls sideways", "at 390 px"), result.report()
    assert result.reading.width == browser.DESKTOP and result.phone_reading.width == browser.PHONE
