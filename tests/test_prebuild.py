"""The pre-build (sitetools/prebuild.py) and the Markdown extension (sitetools/outputs.py)
that replace the MkDocs hooks: the checks of the pages, the parallel runs, and the outputs
and stamps that any tool reading mkdocs.yml shows."""

from __future__ import annotations

import textwrap
from pathlib import Path

import markdown
import pytest

from sitetools import fences, generated, misconceptions, outputs, prebuild, runner
from tests.site_files import ROOT

FENCE = "```"


def _page(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _problems(text: str, rel: str = "x.md") -> list[str]:
    return prebuild.check_pages({rel: _page(text)}).problems


# -- the checks of the pages -----------------------------------------------------------------

def test_the_sites_pages_pass_every_check_of_the_pre_build():
    pages = {p.relative_to(ROOT / "docs").as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "docs").rglob("*.md"))}
    checked = prebuild.check_pages(pages)
    assert checked.problems == []
    assert len(checked.chains) > 200  # every page's programs, in chains


def test_fence_options_and_chains_are_checked_and_say_where():
    assert _problems(f"# T\n\n{FENCE}python continuation\nprint(1)\n{FENCE}\n") == [
        "docs/x.md:3: fence options need the brace form, e.g. {.python continuation}; "
        "'python continuation' renders as broken text in Material"]
    assert _problems(f"# T\n\n{FENCE}{{.python notest}}\nprint(1)\n{FENCE}\n") == [
        "docs/x.md:3: a notest fence needs '<!-- notest: reason -->' on the line above it"]
    assert _problems(f"# T\n\n{FENCE}{{.python continuation}}\nprint(1)\n{FENCE}\n") == [
        "docs/x.md:3: a continuation fence with no Python fence before it"]


BOXES = '''
# Batches

## Common misconceptions

??? misconception "`get_batch` copies"

    Text.
'''


def test_a_misconception_box_without_its_anchor_is_refused_with_the_line_to_write():
    found = _problems(BOXES)
    anchor = '<div class="gn-anchor" id="misconception-getbatch-copies" markdown></div>'
    assert found == [f"docs/x.md:5: the misconception box '`get_batch` copies' needs its anchor on the line "
                     f"above it (then a blank line):\n    {anchor}"]
    fixed = misconceptions.add_anchors(_page(BOXES))
    assert f"{anchor}\n\n??? misconception" in fixed
    assert _problems(fixed) == []
    wrong = fixed.replace("misconception-getbatch-copies", "misconception-old-title")
    assert len(_problems(wrong)) == 1


def test_a_figure_is_written_as_registered_alt_texted_light_and_dark_twins():
    prebuild.figures.discover()
    name = sorted(prebuild.figures.FIGURES)[0]
    twins = prebuild.twins("What it shows", "../figures/", name)
    assert twins == (f"![What it shows](../figures/{name}.svg#only-light){{.gn-figure loading=lazy}}"
                     f"![What it shows](../figures/{name}-dark.svg#only-dark){{.gn-figure loading=lazy}}")
    assert _problems(f"# T\n\n{twins}\n") == []
    plain = _problems(f"# T\n\n![What it shows](../figures/{name}.svg)\n")
    assert len(plain) == 1 and plain[0].startswith("docs/x.md:3: write the figure") and twins in plain[0]
    assert _problems(f"# T\n\n{twins.split('{')[0]}{{.gn-figure loading=lazy}}\n")  # the light one alone
    assert _problems("# T\n\n![x](../figures/no-such-figure.svg)\n") == [
        "docs/x.md:3: no figure named 'no-such-figure' is registered in sitetools/figures"]
    assert _problems(f"# T\n\n{prebuild.twins('', '../figures/', name)}\n") == [
        f"docs/x.md:3: the figure {name!r} needs alt text: ![what it shows](...)"]


def test_a_concept_page_shows_its_notebook_links_under_its_title():
    links = generated.include(generated.notebook_links("concepts/x.md"))
    assert links == '--8<-- "generated/notebook-links/concepts/x.md"'
    assert _problems(f"# X\n\n{links}\n\nText.\n", "concepts/x.md") == []
    assert _problems("# X\n\nText.\n", "concepts/x.md") == [
        f"docs/concepts/x.md: put the notebook links right under the page's title, as the line\n    {links}"]
    assert _problems("# X\n\nText.\n", "writing.md") == []  # not a concept page


def test_the_old_install_marker_is_refused():
    found = _problems("# X\n\n<!-- gn-install -->\n")
    assert found == ["docs/x.md:3: the build no longer replaces '<!-- gn-install -->': include the file "
                     'instead, --8<-- "generated/install.md"']


# -- the parallel runs -------------------------------------------------------------------------

def _chain(code: str, where: str = "docs/p.md") -> list[fences.Fence]:
    return fences.chains(fences.parse_text(f"{FENCE}{{.python}}\n{code}\n{FENCE}\n", where))[0]


def test_the_pool_runs_chains_in_parallel_processes_and_fills_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CACHE_DIR", tmp_path)
    ok = [_chain(f"import os\nprint('chain {i}', __name__, os.listdir('.'))") for i in range(3)]
    assert all(runner.cached(c) is None for c in ok)
    failures, _ = prebuild.run_pool([("chain", c) for c in ok], jobs=2, log=print)
    assert failures == []
    assert [runner.cached(c) for c in ok] == [[f"chain {i} __main__ []"] for i in range(3)]  # isolated, __main__


def test_a_failing_chain_or_a_warning_in_the_pool_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CACHE_DIR", tmp_path)
    bad = [_chain("raise ValueError('no')", "docs/a.md"), _chain("import warnings\nwarnings.warn('careful')", "docs/b.md")]
    failures, _ = prebuild.run_pool([("chain", c) for c in bad], jobs=2, log=print)
    assert len(failures) == 2
    assert any("docs/a.md:1" in f and "ValueError: no" in f for f in failures)
    assert any("docs/b.md:1" in f and "UserWarning: careful" in f for f in failures)  # warnings are errors
    assert all(runner.cached(c) is None for c in bad)


# -- the Markdown extension --------------------------------------------------------------------

def _convert(text: str, inner: bool = False) -> tuple[str, markdown.Markdown]:
    md = markdown.Markdown(extensions=["admonition", "attr_list", "pymdownx.superfences", "sitetools.outputs"])
    if inner:  # what mkdocstrings' Markdown instance for docstrings has and a page's does not
        from markdown.treeprocessors import Treeprocessor

        md.treeprocessors.register(Treeprocessor(md), "mkdocstrings_headings_list", 1)
    return md.convert(text), md


def test_the_extension_shows_each_output_under_its_snippet_and_stamps_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CACHE_DIR", tmp_path)
    page = _page(f'''
        # T

        {FENCE}{{.python}}
        x = 6 * 7
        print(x)
        {FENCE}

        !!! note "In a box"

            {FENCE}{{.python continuation}}
            print(x + 1)
            {FENCE}
        ''')
    html, _ = _convert(page)
    first, second = html.split('class="admonition note"')
    assert 'gn-output' in first and ">42\n" in first.replace("</span>", "")
    assert 'gn-output' in second and ">43\n" in second.replace("</span>", "")  # the chain, inside the box
    assert html.rstrip().endswith(f'<p class="gn-stamp" data-gn-stamp="">{outputs.versions()}</p>')
    assert "run with gptnotes" in outputs.versions()
    # a second conversion reads the cache: the outputs of the chain are there
    assert runner.cached(fences.chains(fences.parse_text(page))[0]) == ["42", "43"]


def test_the_extension_leaves_docstrings_and_pages_without_programs_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CACHE_DIR", tmp_path)
    docstring = f"Example:\n\n{FENCE}python\nprint('never run')\n{FENCE}\n"
    html, _ = _convert(docstring, inner=True)
    assert "gn-output" not in html and "gn-stamp" not in html and list(tmp_path.iterdir()) == []
    html, _ = _convert("# Prose\n\nNo program here.\n")
    assert "gn-stamp" not in html


def test_a_failing_snippet_stops_the_conversion_and_names_the_page_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CACHE_DIR", tmp_path)
    text = (ROOT / "docs" / "concepts" / "softmax.md").read_text(encoding="utf-8")
    assert outputs.page_path(text) == "docs/concepts/softmax.md"  # which page, though Markdown does not say
    with pytest.raises(outputs.SnippetError, match=r"(?s)fence at <page>:3 failed.*ZeroDivisionError"):
        _convert(f"# T\n\n{FENCE}{{.python}}\n1 / 0\n{FENCE}\n")
    with pytest.raises(outputs.SnippetError, match=r"<page>:3: fence options need the brace form"):
        _convert(f"# T\n\n{FENCE}python continuation\nprint(1)\n{FENCE}\n")


def test_the_pre_build_writes_only_what_changed(tmp_path: Path):
    f = tmp_path / "a" / "b.md"
    assert prebuild.write_if_changed(f, "x") and not prebuild.write_if_changed(f, "x")
    (tmp_path / "a" / "stale.md").write_text("old")
    assert prebuild.sync_folder(tmp_path / "a", {"b.md": "x", "c/d.md": "y"}) == 2  # one made, one removed
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == ["a/b.md", "a/c/d.md"]
