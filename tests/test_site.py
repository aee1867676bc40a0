"""The built site: strict build, no request outside the site, figures, version stamps.

The browser tests (tests/test_browser.py) load the same build in Chromium; the link
check (tests/test_linkcheck.py) reads all of its HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.site]


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html")


def test_strict_build_succeeds(built_site: Path):
    # The fixture runs `mkdocs build --strict` and fails the session's site tests if it fails.
    assert (built_site / "index.html").is_file()
    assert (built_site / "concepts" / "softmax" / "index.html").is_file()


_RESOURCE = re.compile(r'<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc="([^"]+)"|<link\b[^>]*\bhref="([^"]+)"', re.I)


def test_pages_load_nothing_from_outside_the_site(built_site: Path):
    """Every script, stylesheet, image or icon a page loads comes from the site itself.

    (Links a reader may click, such as the repository, are not loads. The browser tests
    check the same at run time, where JavaScript could also fetch things.)
    """
    for page in _pages(built_site):
        text = page.read_text(encoding="utf-8")
        for m in _RESOURCE.finditer(text):
            url = m.group(1) or m.group(2)
            tag = m.group(0)
            if m.group(2) and re.search(r'rel="(canonical|alternate)"', tag):
                continue
            assert not re.match(r"^(https?:)?//", url), f"{page.relative_to(built_site)} loads {url}"


def test_stylesheets_name_only_files_that_exist(built_site: Path):
    for css in (built_site / "assets").rglob("*.css"):
        for url in re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8")):
            url = url.strip("'\"")
            if url.startswith("data:") or url.startswith("#"):
                continue
            assert not re.match(r"^(https?:)?//", url), f"{css.name} references {url}"
            target = (css.parent / url.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), f"{css.relative_to(built_site)} references a missing file {url}"


def test_figures_exist_in_both_palettes(built_site: Path):
    from sitetools import figures

    names = figures.discover()
    assert names, "no figure is registered"
    for name in names:
        for theme in figures.THEMES:
            svg = built_site / "figures" / figures.file_name(name, theme)
            assert svg.is_file() and svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))
        light = (built_site / "figures" / figures.file_name(name, figures.LIGHT)).read_bytes()
        dark = (built_site / "figures" / figures.file_name(name, figures.DARK)).read_bytes()
        assert light != dark, f"{name}: the dark variant is identical to the light one"


def test_result_tables_are_html_tables_made_by_the_build(built_site: Path):
    from sitetools import figures

    figures.discover()
    assert "bitnet-gpt-results" in figures.TABLES
    for page in _pages(built_site):
        assert "gn-table:" not in page.read_text(encoding="utf-8"), f"{page}: a table marker was not replaced"
    html = (built_site / "concepts" / "bitnet" / "training" / "index.html").read_text(encoding="utf-8")
    table = html[html.index("<table>"): html.index("</table>")]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
        name, *numbers = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        rows[name] = numbers
    assert list(rows) == ["Full precision", "BitNet b1.58, trained with BitLinear",
                          "BitNet b1.58, integer inference path", "Full precision, ternarised after training"]
    assert rows["BitNet b1.58, integer inference path"] == rows["BitNet b1.58, trained with BitLinear"]
    fp_val, ptq_val = float(rows["Full precision"][1]), float(rows["Full precision, ternarised after training"][1])
    assert fp_val < float(rows["BitNet b1.58, trained with BitLinear"][1]) < ptq_val  # what the page's prose says
    gap = float(rows["Full precision, ternarised after training"][2])
    assert abs(gap - (ptq_val - fp_val)) <= 0.0015  # the gap is computed before rounding


def test_a_table_is_included_where_its_line_is_and_an_unknown_name_fails_the_pre_build(monkeypatch, tmp_path):
    import markdown

    from sitetools import figures, generated, prebuild

    spec = figures.FigureSpec(name="demo", make=lambda: "| a | b |\n| - | - |\n| 1 | 2 |", module=__name__)
    monkeypatch.setitem(figures.TABLES, "demo", spec)
    line = generated.include(generated.table("demo"), "    ")
    assert line == '    --8<-- "generated/tables/demo.md"'
    page = f'!!! note "Results"\n\n{line}\n\nAfter.\n'
    assert prebuild.check_pages({"x.md": page}).problems == []
    (tmp_path / "generated" / "tables").mkdir(parents=True)
    (tmp_path / "generated" / "tables" / "demo.md").write_text(figures.render_table("demo", use_cache=False) + "\n")
    html = markdown.markdown(page, extensions=["admonition", "tables", "pymdownx.snippets"],
                             extension_configs={"pymdownx.snippets": {"base_path": [str(tmp_path)], "check_paths": True}})
    assert '<div class="admonition note">' in html and "<table>" in html.split("admonition note")[1]  # in the box
    bad = prebuild.check_pages({"x.md": 'Text.\n\n--8<-- "generated/tables/no-such-table.md"\n'}).problems
    assert bad == ["docs/x.md:3: no table named 'no-such-table' is registered in sitetools/figures"]
    old = prebuild.check_pages({"x.md": "<!-- gn-table: demo -->\n"}).problems
    assert len(old) == 1 and "no longer replaces" in old[0] and old[0].startswith("docs/x.md:1:")


def test_pages_with_examples_show_the_versions_they_ran_with(built_site: Path):
    import platform

    import torch

    import gptnotes

    stamp = f"gptnotes {gptnotes.__version__}, torch {torch.__version__} and Python {platform.python_version()}"
    page = (built_site / "concepts" / "softmax" / "index.html").read_text(encoding="utf-8")
    assert "data-gn-stamp" in page and stamp in page


_SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|math|obj|exc):(?:<code>|`)")


def test_api_pages_have_no_sphinx_markup(built_site: Path):
    """mkdocstrings renders Markdown, not reStructuredText: a `:func:` role or a `.. math::`
    directive in a docstring would reach the reader as literal text instead of a link or a
    formula."""
    pages = _pages(built_site / "api")
    assert len(pages) >= 10, [p.name for p in pages]
    for page in pages:
        # The rendered docstrings, not the source listings under them.
        text = re.sub(r"<pre\b.*?</pre>", "", page.read_text(encoding="utf-8"), flags=re.S)
        where = page.relative_to(built_site)
        m = _SPHINX_ROLE.search(text)
        assert not m, f"{where}: Sphinx role {text[m.start():m.start() + 60]!r}"
        assert ".. math::" not in text, f"{where}: a '.. math::' directive was not converted"
        assert "$$" not in text, f"{where}: display maths left as raw '$$'"


def test_sphinx_markup_check_catches_a_role():
    # The pattern above, on what mkdocstrings makes of an unconverted role.
    assert _SPHINX_ROLE.search("<p>see :func:<code>gptnotes.train</code></p>")
    assert not _SPHINX_ROLE.search('<p>see <a href="#x"><code>train</code></a></p>')
