"""Maths typeset during the build (sitetools/maths.py): the HTML is KaTeX's own, a formula
KaTeX rejects stops the build, and each formula is typeset once (cached by content)."""

from __future__ import annotations

import markdown
import pytest
from py_mini_racer import MiniRacer

from sitetools import maths
from sitetools.maths import MathsError, render


@pytest.fixture(scope="module")
def katex():
    """KaTeX in a V8 context of its own: what the browser's KaTeX would make."""
    ctx = MiniRacer()
    ctx.eval(maths.KATEX_JS.read_text(encoding="utf-8"))
    return lambda tex, display: ctx.call("katex.renderToString", tex,
                                         {"displayMode": display, "throwOnError": True})


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(maths, "CACHE_DIR", tmp_path / "katex")
    monkeypatch.setattr(maths, "_memory", {})
    return tmp_path / "katex"


@pytest.mark.parametrize("tex, display", [
    (r"\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_{j=1}^{C} e^{z_j}}", True),
    (r"(B, T, C)", False),
    (r"\begin{aligned} a &= b \\ c &< d \end{aligned}", True),
    (r"W \in \{-1, 0, 1\}^{C_\text{out} \times C_\text{in}}", False),
])
def test_html_is_katex_own(katex, fresh_cache, tex, display):
    html = render(tex, display=display)
    assert html == katex(tex, display)
    assert html.startswith('<span class="katex-display">' if display else '<span class="katex">')


def test_a_bad_formula_fails_with_the_formula_and_the_reason(fresh_cache):
    with pytest.raises(MathsError) as err:
        render(r"\frac{a}{", display=True)
    msg = str(err.value)
    assert "block formula" in msg and r"'\\frac{a}{'" in msg and "expected '}'" in msg
    with pytest.raises(MathsError, match=r"Undefined control sequence: \\notacommand"):
        render(r"x + \notacommand", display=False)
    with pytest.raises(TypeError, match="tex must be a str"):
        render(3)


def test_each_formula_is_typeset_once(fresh_cache, monkeypatch):
    first = render(r"e^{i\pi} + 1 = 0", display=False)
    files = list(fresh_cache.rglob("*.html"))
    assert len(files) == 1 and files[0].read_text(encoding="utf-8") == first

    def no_v8():
        raise AssertionError("V8 was asked for a formula in the cache")

    monkeypatch.setattr(maths, "_v8", no_v8)
    assert render(r"e^{i\pi} + 1 = 0", display=False) == first       # from memory
    monkeypatch.setattr(maths, "_memory", {})
    assert render(r"e^{i\pi} + 1 = 0", display=False) == first       # from disk
    with pytest.raises(AssertionError, match="V8 was asked"):
        render(r"e^{i\pi} + 1 = 0", display=True)     # the mode is part of the key


def test_the_key_holds_katex_version_mode_and_source():
    assert maths.katex_version() == "0.16.47"
    keys = {maths._key("x", False), maths._key("x", True), maths._key("x ", False)}
    assert len(keys) == 3


BLOCK = r'\begin{aligned} a &< b \\ \text{"q"} &= 1 \end{aligned}'


def _md():
    return markdown.Markdown(extensions=["pymdownx.arithmatex", "sitetools.maths"],
                             extension_configs={"pymdownx.arithmatex": {"generic": True}})


def test_markdown_pages_get_katex_html_and_no_tex(fresh_cache):
    html = _md().convert("Inline \\(a < b\\) and:\n\n$$\n" + BLOCK + "\n$$\n\n"
                         "\\[\n\\sum_i p_i = 1\n\\]\n")
    assert f'<span class="arithmatex">{render("a < b")}</span>' in html
    block = render(BLOCK, True)     # arithmatex escapes it; KaTeX gets the TeX
    assert f'<div class="arithmatex">{block}</div>' in html
    assert render(r"\sum_i p_i = 1", True) in html
    assert "\\(" not in html and "$$" not in html and "\\[" not in html


def test_a_bad_formula_stops_the_page(fresh_cache):
    with pytest.raises(MathsError, match=r"inline formula.*\\frac\{1\}"):
        _md().convert("A broken one: \\(\\frac{1}\\) here.\n")
