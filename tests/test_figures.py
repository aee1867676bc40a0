"""The site's figures: legible where a reader meets them, and drawing the numbers of their pages.

The build refuses a figure whose smallest text would be shown under ``MIN_TEXT_PX`` CSS px
in Material's 688 px content column at a 1280 px wide window (sitetools/figures/__init__.py,
``check_legible``). These tests run that check on every registered figure in both palettes,
show that it rejects figures that are too small to read (tiny text, too wide, a small
exponent) including from the render cache, and check that figures which draw a page's
numbers draw the same numbers as the page's programs.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

from sitetools import fences, figures
from sitetools.figures import FIGURES, THEMES, IllegibleFigure, check_legible, text_size

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

figures.discover()


def _svg(make, theme=figures.LIGHT) -> bytes:
    """Draw ``make()`` (a function returning a matplotlib Figure) as the build would."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(figures._style(theme)):
        fig = make()
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
    return buf.getvalue()


def _line_chart(width_in: float, fontsize: float | None = None, log: bool = False):
    def make():
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(width_in, 3.5))
        ax.plot([1, 10, 100, 1000], [1, 2, 3, 4], label="a line")
        if log:
            ax.set_xscale("log")  # tick labels 10^0 ... 10^3 in mathematical text
        if fontsize is not None:
            ax.tick_params(labelsize=fontsize)
            ax.set_xlabel("x", fontsize=fontsize)
        ax.set_title("A line")
        ax.legend()
        return fig

    return make


# --------------------------------------------------------------------------------------
# Every figure of the site passes
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("theme", THEMES, ids=lambda t: t.name)
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_legible_at_1280_px(name, theme):
    svg = figures.render(name, theme)  # render() itself refuses an illegible figure
    size = check_legible(name, svg)
    assert size.shown_px() >= figures.MIN_TEXT_PX, (name, size)
    assert size.smallest_pt >= 10, f"{name}: {size.smallest_pt} pt text is hard to read on a phone"


# --------------------------------------------------------------------------------------
# The check itself: it measures right, and it rejects bad figures
# --------------------------------------------------------------------------------------


def test_a_legible_figure_passes_and_is_measured_as_the_browser_would():
    svg = _svg(_line_chart(6.0))
    size = check_legible("good", svg)
    assert size.smallest_pt == 11  # tick labels and legend: the site's smallest style size
    assert size.width_px < figures.COLUMN_PX  # shown at its natural size: 4/3 px per pt
    assert size.shown_px() == pytest.approx(11 * 4 / 3)
    assert size.shown_px(figures.PHONE_COLUMN_PX) == pytest.approx(11 * 4 / 3 * 358 / size.width_px)


def test_the_check_rejects_tiny_text():
    svg = _svg(_line_chart(6.0, fontsize=6))
    with pytest.raises(IllegibleFigure) as err:
        check_legible("tiny-text", svg)
    message = str(err.value)
    assert "'tiny-text'" in message and "6 pt" in message and "8.0 CSS px" in message
    assert "at least 8.3 pt" in message  # what to change: 11 px at its natural size is 8.25 pt


def test_the_check_rejects_a_figure_wider_than_the_column():
    svg = _svg(_line_chart(14.0))  # 11 pt text, but the column shrinks the figure to about half
    size = text_size(svg)
    assert size.smallest_pt == 11 and size.width_px > 2 * figures.COLUMN_PX * 0.6
    with pytest.raises(IllegibleFigure) as err:
        check_legible("too-wide", svg)
    message = str(err.value)
    assert "'too-wide'" in message and "wider than the 688 px column" in message
    assert "narrower" in message and "stacked vertically" in message


def test_the_check_counts_the_small_exponents_of_mathematical_text():
    svg = _svg(_line_chart(6.0, log=True))  # 10^3: the exponent is drawn at 70% of 11 pt
    assert text_size(svg).smallest_pt == pytest.approx(7.7)
    with pytest.raises(IllegibleFigure, match="pow10_formatter"):
        check_legible("log-axis", svg)


def test_pow10_formatter_writes_full_size_exponents():
    fmt = figures.pow10_formatter()
    assert [fmt(v) for v in (1e-3, 1e-1, 1.0, 10.0, 100.0, 1e4, 2e-3)] == ["10⁻³", "10⁻¹", "1", "10", "10²", "10⁴", ""]


def _register(monkeypatch, name: str, make) -> None:
    def draw(theme):
        return make()

    draw.__module__ = __name__
    monkeypatch.setitem(FIGURES, name, figures.FigureSpec(name=name, make=draw, module=__name__))


def test_render_refuses_a_registered_figure_with_tiny_text(monkeypatch, tmp_path):
    monkeypatch.setattr(figures, "CACHE_DIR", tmp_path)
    _register(monkeypatch, "test-tiny", _line_chart(6.0, fontsize=5))
    with pytest.raises(IllegibleFigure, match="'test-tiny'"):
        figures.render("test-tiny", figures.LIGHT, use_cache=False)
    with pytest.raises(IllegibleFigure, match="'test-tiny'"):
        figures.render("test-tiny", figures.DARK, use_cache=True)


def test_render_checks_cached_renders_too(monkeypatch, tmp_path):
    """A render that was cached before the rule (or by hand) is checked when it is used."""
    monkeypatch.setattr(figures, "CACHE_DIR", tmp_path)
    _register(monkeypatch, "test-cached", _line_chart(6.0))
    figures.render("test-cached", figures.LIGHT)  # legible: passes, and is cached
    [cached] = tmp_path.glob("*.svg")
    cached.write_bytes(_svg(_line_chart(6.0, fontsize=6)))  # the cache now holds a bad render
    with pytest.raises(IllegibleFigure, match="'test-cached'"):
        figures.render("test-cached", figures.LIGHT)


# --------------------------------------------------------------------------------------
# Numbers in figures agree with their pages
# --------------------------------------------------------------------------------------


def _program(page: str, marker: str) -> str:
    """The code of the first Python block of ``page`` (under docs/) that contains ``marker``."""
    for fence in fences.parse_file(DOCS / page):
        if fence.lang == "python" and marker in fence.code:
            return fence.code
    raise AssertionError(f"docs/{page} has no Python block containing {marker!r}: update the figure and this test")


def _shown_text(name: str) -> str:
    svg = figures.render(name, figures.LIGHT).decode("utf-8")
    return " ".join(re.sub(r"<[^>]+>", " ", svg).split())


def test_softmax_figure_draws_the_logits_and_temperatures_of_the_page():
    from sitetools.figures import sampling

    code = _program("concepts/softmax.md", "softmax_with_temperature(logits, t)")
    logits = ast.literal_eval(re.search(r"logits = torch\.tensor\((\[[^\]]*\])\)", code).group(1))
    temps = ast.literal_eval(re.search(r"for t in (\[[^\]]*\])", code).group(1))
    assert tuple(logits) == sampling.LOGITS
    assert tuple(temps) == sampling.TEMPERATURES
    shown = _shown_text("softmax-temperature")
    assert f"The same {sampling._count(len(logits))} logits at {sampling._count(len(temps))} temperatures" in shown
    assert f"uniform 1/{len(logits)}" in shown


def test_attention_scale_figure_shows_the_variances_the_page_prints():
    from sitetools.experiments import attention as experiment

    code = _program("concepts/attention.md", "def top_weight")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/concepts/attention.md", "exec"), {"__name__": "__page__"})  # noqa: S102 - the page's own program
    printed = [float(v) for v in re.findall(r"variance\s+([\d.]+),", out.getvalue())]
    assert len(printed) == 3, out.getvalue()
    _, hs, C, scores = experiment.scale_experiment()
    drawn = [(scores * s).var().item() for s in (1.0, hs**-0.5, C**-0.5)]
    assert [f"{v:.2f}" for v in drawn] == [f"{v:.2f}" for v in printed]
    shown = _shown_text("attention-scale")
    for v in printed:
        assert f"score variance {v:.2f}" in shown


def test_the_profile_tables_show_every_profile_of_the_benchmark_results():
    from sitetools.figures import speed

    text = speed.RESULTS.read_text(encoding="utf-8")
    found = speed.profiles(text)
    assert len(found) == text.count("**Where the time goes:") >= 2
    for title, rows, total in found:
        assert title and total.startswith("Self CPU time total:")
        assert 1 <= len(rows) <= 10 and all(r["Name"] and r["# of Calls"].isdigit() for r in rows)
    markdown = speed.profile_tables()
    assert markdown.count("| operation |") == len(found)
    assert max(len(line) for line in markdown.splitlines()) < 120  # no 134-column profiler dump
    assert f"`{found[0][1][0]['Name']}`" in markdown
