"""The same sources built with MkDocs (the site), ProperDocs and Zensical.

After the pre-build, each tool builds mkdocs.yml strictly; the link check runs on each
output, and each is compared with the MkDocs build: the same pages, the same words (so the
same snippet outputs, tables, install box and version stamps), the same figures, anchors,
notebooks and wheel (sitetools/builders.py). ProperDocs must match exactly. What Zensical
does differently is listed below as a known gap, printed at the end of the run
(test-artifacts/builders.txt), and checked both ways: a new difference fails, and so does a
gap that went away (then remove it from the list, and consider switching: see the README).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sitetools import builders, linkcheck
from tests.site_files import ARTIFACTS

pytestmark = [pytest.mark.site, pytest.mark.slow]

#: What Zensical 0.0.57 does differently from MkDocs 1.6 + Material 9.8 on this site, each
#: with the pattern of the differences it explains.
ZENSICAL_GAPS = {
    "page titles: Zensical's <title> is the page's own heading, MkDocs' the label of the nav "
    "(and on the home page it repeats the site's name)": re.compile(r"^[^:]*index\.html: title "),
    "404 page: its 'Skip to content' link points at #__skip, which the page does not have":
        re.compile(r"^link check: 404\.html:\d+ <a href='#__skip'>: no anchor #__skip on 404\.html$"),
}

_REPORT = ARTIFACTS / "builders"


def _record(tool: str, lines: list[str]) -> None:
    """Keep what this test found for the summary at the end of the run (tests/conftest.py)."""
    _REPORT.mkdir(parents=True, exist_ok=True)
    (_REPORT / f"{tool}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _differences(built_site: Path, other: Path) -> list[str]:
    report = linkcheck.check_site(other, linkcheck.site_url_of(other))
    return [f"link check: {p}" for p in report.problems] + builders.compare(built_site, other)


def test_the_mkdocs_build_shows_what_the_site_adds(built_site: Path):
    """The reference of the comparisons has every feature the comparisons count."""
    totals = {name: 0 for name in builders.FEATURES}
    for page in builders.pages(built_site):
        for name, n in builders.features((built_site / page).read_text(encoding="utf-8")).items():
            totals[name] += n
    missing = [name for name in ("snippet outputs", "version stamp", "figures (light and dark)",
                                 "misconception anchors", "notebook links", "tables") if not totals[name]]
    assert not missing, f"the MkDocs build has none of: {missing}"


def test_properdocs_builds_the_same_site(built_site: Path, other_builds: dict[str, Path]):
    found = _differences(built_site, other_builds["properdocs"])
    _record("properdocs", ["ProperDocs 1.6.7 against MkDocs 1.6.1 + Material 9.8.1:",
                           *(f"  {d}" for d in found or ["no difference"])])
    assert found == []


def test_zensical_builds_the_same_site_but_for_its_known_gaps(built_site: Path, other_builds: dict[str, Path]):
    found = _differences(built_site, other_builds["zensical"])
    explained = {gap: [d for d in found if pattern.search(d)] for gap, pattern in ZENSICAL_GAPS.items()}
    unexplained = [d for d in found if not any(p.search(d) for p in ZENSICAL_GAPS.values())]
    lines = ["Zensical 0.0.57 against MkDocs 1.6.1 + Material 9.8.1: known gaps"]
    for gap, hits in explained.items():
        lines.append(f"  - {gap} ({len(hits)} difference{'s' if len(hits) != 1 else ''})")
        lines += [f"      {d}" for d in hits[:3]] + ([f"      ... and {len(hits) - 3} more"] if len(hits) > 3 else [])
    if unexplained:
        lines.append("  unexplained (not a known gap):")
        lines += [f"      {d}" for d in unexplained]
    _record("zensical", lines)
    assert unexplained == [], "Zensical's build differs in ways no known gap explains:\n" + "\n".join(unexplained)
    gone = [gap for gap, hits in explained.items() if not hits]
    assert gone == [], f"known gaps that Zensical no longer has (remove them from ZENSICAL_GAPS): {gone}"


def test_the_comparison_finds_a_missing_output_a_changed_word_and_a_missing_page(built_site: Path, tmp_path: Path):
    import shutil

    other = tmp_path / "site"
    shutil.copytree(built_site, other)
    page = other / "concepts" / "softmax" / "index.html"
    head, body = page.read_text(encoding="utf-8").split("<article", 1)
    body = body.replace('class="language-text gn-output', 'class="language-text', 1)
    page.write_text(head + "<article" + body.replace(">Temperature<", ">Temprature<", 1), encoding="utf-8")
    shutil.rmtree(other / "writing")
    found = builders.compare(built_site, other)
    assert "page missing: writing/index.html" in found
    assert any(re.match(r"concepts/softmax/index\.html: snippet outputs: (\d+) -> (\d+)$", d) for d in found)
    assert any(d.startswith("concepts/softmax/index.html: text differs") and "Temprature" in d for d in found)
    assert builders.compare(built_site, built_site) == []
