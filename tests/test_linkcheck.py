"""Links and structure of the built site (sitetools/linkcheck.py), and proof that the checker
catches each kind of problem on small crafted sites.

MkDocs' strict build checks the links written in Markdown; this checks the final HTML, so
raw HTML, the theme's templates, the generated pages and the search index are covered too.
External links are listed in test-artifacts/external-links.txt, never fetched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sitetools import linkcheck
from tests.site_files import ARTIFACTS


@pytest.mark.site
def test_built_site_has_no_broken_link_and_a_sound_structure(built_site: Path):
    site_url = linkcheck.site_url_of(built_site)
    assert site_url, "the build has no sitemap.xml to read its site_url from"
    report = linkcheck.check_site(built_site, site_url)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "external-links.txt").write_text(report.external_links_text(), encoding="utf-8")
    print(report.external_links_text())
    print(f"{report.pages} pages, {report.links_checked} links checked")
    assert report.pages >= 5 and report.links_checked > 100
    assert not report.problems, "\n".join(report.problems)


# -- the checker on crafted sites -------------------------------------------------------------

GOOD_PAGE = """<!doctype html><html><head><title>{title}</title>
<link rel="stylesheet" href="{up}assets/style.css"><link rel="icon" href="{up}assets/logo.png">
<link rel="canonical" href="https://example.org/docs/{path}"></head>
<body><h1 id="top">{title}</h1><p><a href="#part">part</a> and <a href="{up}index.html#top">home</a></p>
<h2 id="part">Part</h2><h3>Sub</h3><h2>Other</h2>
<p><img src="{up}assets/logo.png" alt="The logo"> <a href="https://example.com/page">elsewhere</a>
<a href="mailto:someone@example.org">mail</a></p>
<script src="{up}assets/app.js"></script></body></html>"""


def _site(tmp_path: Path, pages: dict[str, str] | None = None) -> Path:
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "assets" / "style.css").write_text("body{}")
    (site / "assets" / "app.js").write_text("")
    (site / "assets" / "logo.png").write_bytes(b"\x89PNG")
    (site / "index.html").write_text(GOOD_PAGE.format(title="Home", up="", path=""))
    (site / "a").mkdir()
    (site / "a" / "index.html").write_text(GOOD_PAGE.format(title="A", up="../", path="a/"))
    for rel, html in (pages or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(html)
    return site


def _page(body: str, head: str = "") -> str:
    return f"<!doctype html><html><head><title>t</title>{head}</head><body><h1>T</h1>{body}</body></html>"


def _problems(tmp_path: Path, body: str, head: str = "", site_url: str | None = None) -> list[str]:
    site = _site(tmp_path, {"b/index.html": _page(body, head)})
    return linkcheck.check_site(site, site_url).problems


def test_a_sound_site_has_no_problem_and_its_external_links_are_listed(tmp_path):
    report = linkcheck.check_site(_site(tmp_path), "https://example.org/docs/")
    assert report.problems == []
    assert {u: sorted(p) for u, p in report.external_links.items()} == {"https://example.com/page": ["/", "a/"]}
    assert report.pages == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<a href="../a/#nowhere">x</a>', "no anchor #nowhere on a/index.html"),
        ('<a href="#nowhere">x</a>', "no anchor #nowhere on b/index.html"),
        ('<a href="../missing/">x</a>', "no file 'missing/'"),
        ('<a href="../a/missing.html">x</a>', "no file 'a/missing.html'"),
        ('<img src="../assets/missing.png" alt="gone">', "no file 'assets/missing.png'"),
        ('<img srcset="../assets/logo.png 1x, ../assets/logo@2x.png 2x" src="../assets/logo.png" alt="x">',
         "no file 'assets/logo@2x.png'"),
        ('<a href="../../../etc/passwd">x</a>', "no file 'etc/passwd'"),  # ".." stops at the root
        ('<a href="/other/">x</a>', "absolute path outside the site"),
        ('<script src="https://cdn.example.com/lib.js"></script>', "loads a resource from outside the site"),
        ('<img src="//cdn.example.com/x.png" alt="x">', "loads a resource from outside the site"),
        ('<a href="javascript:alert(1)">x</a>', "unexpected javascript: address"),
        ('<a href="file:///home/me/notes.html">x</a>', "unexpected file: address"),
    ],
)
def test_each_broken_reference_is_caught(tmp_path, body, expected):
    problems = _problems(tmp_path, body, site_url="https://example.org/docs/")
    assert any(expected in p for p in problems), problems


def test_external_stylesheet_is_caught_but_a_canonical_link_is_not_a_load(tmp_path):
    problems = _problems(tmp_path, "", head='<link rel="stylesheet" href="https://fonts.example.com/x.css">'
                                           '<link rel="canonical" href="https://elsewhere.example.com/">')
    assert len(problems) == 1 and "fonts.example.com" in problems[0] and "outside the site" in problems[0]


def test_links_into_the_site_url_resolve_like_internal_ones(tmp_path):
    ok = _problems(tmp_path, '<a href="https://example.org/docs/a/#part">x</a><a href="/docs/a/">y</a>',
                   site_url="https://example.org/docs/")
    assert ok == []
    bad = _problems(tmp_path / "2", '<a href="https://example.org/docs/a/#gone">x</a>', site_url="https://example.org/docs/")
    assert any("no anchor #gone on a/index.html" in p for p in bad), bad


def test_anchor_given_by_a_name_counts(tmp_path):
    assert _problems(tmp_path, '<a name="old-style"></a><a href="#old-style">x</a>') == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<img src="../assets/logo.png">', "has no alt text"),
        ('<img src="../assets/logo.png" alt="  ">', "has no alt text"),
        ("<h2>A</h2><h4>Skipped</h4>", "heading level skipped, h2 then h4 ('Skipped')"),
        ("<h3>Too deep</h3>", "heading level skipped, h1 then h3"),
        ("<h1>Second</h1>", "2 <h1> headings"),
        ('<p id="x">a</p><p id="x">b</p>', "id 'x' is used 2 times"),
    ],
)
def test_each_structural_problem_is_caught(tmp_path, body, expected):
    problems = _problems(tmp_path, body)
    assert any(expected in p for p in problems), problems


def test_going_back_up_the_heading_levels_is_fine(tmp_path):
    assert _problems(tmp_path, "<h2>A</h2><h3>B</h3><h4>C</h4><h2>D</h2><h3>E</h3>") == []


def test_page_without_h1_is_caught(tmp_path):
    site = _site(tmp_path, {"b/index.html": "<html><body><h2>No title</h2></body></html>"})
    assert any("0 <h1> headings" in p for p in linkcheck.check_site(site).problems)


def test_search_index_and_sitemap_entries_must_resolve(tmp_path):
    site = _site(tmp_path)
    (site / "search").mkdir()
    (site / "search" / "search_index.json").write_text(json.dumps({"docs": [
        {"location": "a/#part"}, {"location": "a/#gone"}, {"location": "nowhere/"}]}))
    (site / "sitemap.xml").write_text("<urlset><url><loc>https://example.org/docs/a/</loc></url>"
                                      "<url><loc>https://example.org/docs/gone/</loc></url></urlset>")
    problems = linkcheck.check_site(site, linkcheck.site_url_of(site)).problems
    assert linkcheck.site_url_of(site) == "https://example.org/docs/a/"  # the shortest address
    problems = linkcheck.check_site(site, "https://example.org/docs/").problems
    assert any("location 'a/#gone'" in p and "no anchor #gone" in p for p in problems), problems
    assert any("location 'nowhere/'" in p for p in problems), problems
    assert any("sitemap.xml" in p and "gone/" in p for p in problems), problems
    assert len(problems) == 3, problems


def test_command_line_exit_status(tmp_path, capsys):
    assert linkcheck.main([str(_site(tmp_path))]) == 0
    site = _site(tmp_path / "bad", {"b/index.html": _page('<a href="#gone">x</a>')})
    assert linkcheck.main([str(site)]) == 1
    assert "no anchor #gone" in capsys.readouterr().out


def test_the_code_blocks_have_no_line_ids_to_collide(built_site: Path):
    """pymdownx.highlight writes no per-line ids (no anchor_linenums, no line_spans): two code
    blocks of a page and a source listing can no longer give an id twice (the link check
    above finds none), and nothing repairs them after the build."""
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "__codelineno-" not in html and 'id="__span-' not in html, page


def test_the_link_check_reads_zensicals_search_index_too(tmp_path: Path):
    site = _site(tmp_path)
    items = [{"location": ""}, {"location": "a/#part"}, {"location": "a/#gone"}, {"location": "c/"}]
    (site / "search.json").write_text(json.dumps({"items": items}), encoding="utf-8")
    problems = linkcheck.check_site(site).problems
    assert len(problems) == 2
    assert problems[0].startswith("search.json: location 'a/#gone'") and "#gone" in problems[0]
    assert problems[1] == "search.json: location 'c/': no file 'c/' in the site"
