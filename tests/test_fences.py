"""Every Python fence of the site runs in the tests, and follows the site's conventions.

Three parsers must agree on where the Python fences are:

1. ``sitetools.fences``, the line scanner that the build and the copy-paste test use;
2. markdown-it, through pytest-markdown-docs (taught about containers in conftest.py):
   the fences that pytest actually collects and runs;
3. Python-Markdown, in the HTML of the built site: the code blocks a reader actually sees.

A fence may escape testing only with ``notest`` and a reason in an HTML comment on the line
above it; those are listed in the test output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sitetools import fences
from tests.site_files import ROOT, markdown_files, rel


def _scan() -> dict[str, list[fences.Fence]]:
    return {rel(p): [f for f in fences.parse_text(p.read_text(encoding="utf-8"), rel(p)) if f.is_python] for p in markdown_files()}


def test_pytest_markdown_docs_collects_every_python_fence():
    """The fences pytest runs are exactly the Python fences that are not marked notest."""
    files = [rel(p) for p in markdown_files()]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
         "--markdown-docs", "--markdown-docs-syntax=superfences", *files],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    collected = set()
    for line in proc.stdout.splitlines():
        m = re.match(r"^(?P<file>\S+\.md)::\[CodeFence#\d+\]\[line:(?P<line>\d+)\]$", line.strip())
        if m:
            collected.add((m["file"], int(m["line"])))
    expected = {(path, f.line) for path, fs in _scan().items() for f in fs if f.runs}
    assert expected, "no Python fence found on the site at all"
    assert collected == expected, (
        f"not run by pytest: {sorted(expected - collected)}; unexpected: {sorted(collected - expected)}"
    )


@pytest.mark.site
def test_every_python_code_block_of_the_built_site_is_a_tested_fence(built_site: Path):
    """Count the Python code blocks a reader sees on each page: one per Python fence."""
    scanned = _scan()
    checked = 0
    for path, fs in scanned.items():
        if not path.startswith("docs/") or path.startswith("docs/api/"):
            continue
        page = Path(path).relative_to("docs").with_suffix("")
        html_file = built_site / ("index.html" if page.name == "index" and page.parent == Path(".") else
                                  (page.parent / "index.html" if page.name == "index" else page / "index.html"))
        text = html_file.read_text(encoding="utf-8")
        shown = len(re.findall(r'<div class="language-python highlight">', text))
        assert shown == len(fs), f"{path}: {shown} Python blocks in {html_file.name}, {len(fs)} Python fences in the source"
        checked += len(fs)
    assert checked == sum(len(fs) for p, fs in scanned.items() if p.startswith("docs/") and not p.startswith("docs/api/"))


def test_notest_fences_are_justified():
    untested = [f for fs in _scan().values() for f in fs if not f.runs]
    for f in untested:
        assert f.notest_reason, f"{f.where}: notest without '<!-- notest: reason -->' on the line above"
    # Listed in the output of `pytest -rA` / on failure, so that every exception is visible.
    print("\n".join(f"notest {f.where}: {f.notest_reason}" for f in untested) or "no notest fences")


def test_fence_options_use_the_brace_form():
    """A plain ``python continuation`` info string renders as broken text in Material."""
    bad = [f.where for fs in _scan().values() for f in fs if f.info and not f.info.startswith("{") and (f.flags or f.attrs)]
    assert not bad, f"use {{.python continuation}} style options: {bad}"


def test_every_snippet_imports_gptnotes_and_asserts_its_claims():
    for fs in _scan().values():
        for f in fs:
            if not f.runs:
                continue
            assert re.search(r"^\s*(from|import)\s+gptnotes\b", f.code, re.M), f"{f.where}: does not import gptnotes"
            assert re.search(r"^\s*assert\b", f.code, re.M), f"{f.where}: asserts nothing; state its claims with assert"


def test_chains_are_well_formed():
    for path in markdown_files():
        fences.chains(fences.parse_file(path))  # raises for a continuation with nothing before it


def test_unknown_fence_flags_are_rejected():
    known = {"continuation", "notest"}
    for fs in _scan().values():
        for f in fs:
            assert f.flags <= known, f"{f.where}: unknown fence flag(s) {sorted(f.flags - known)}"


# Material's content column shows about 80 characters of code at 1280 px (with both
# sidebars); a longer line makes its block scroll sideways. A box (an admonition or a
# collapsed block; indented in the source) takes about 4 characters of that, a tab inside a
# box no more. The browser tests measure the built pages (outputs included); this test
# names the offending source lines at once.
MAX_CODE_LINE = 80
MAX_CODE_LINE_IN_A_BOX = 76


def line_limit(fence: fences.Fence) -> int:
    return MAX_CODE_LINE if not fence.indent else MAX_CODE_LINE_IN_A_BOX


def long_lines(fence: fences.Fence, limit: int | None = None) -> list[str]:
    limit = line_limit(fence) if limit is None else limit
    return [f"{fence.where} (+{i}): {len(line)} characters, over {limit}"
            for i, line in enumerate(fence.code.splitlines()) if len(line) > limit]


def test_no_code_line_is_wider_than_the_content_column():
    wide = [w for p in markdown_files() if rel(p).startswith("docs/")
            for f in fences.parse_text(p.read_text(encoding="utf-8"), rel(p)) if f.lang != "mermaid"
            for w in long_lines(f)]
    assert not wide, f"{len(wide)} code lines over {MAX_CODE_LINE} characters:\n" + "\n".join(wide)


def test_the_line_length_check_finds_a_long_line():
    page = "```{.python}\nfrom gptnotes import softmax\nx = '" + "a" * 80 + "'\nassert x\n```\n"
    (fence,) = fences.parse_text(page, "crafted.md")
    assert long_lines(fence) == ["crafted.md:1 (+1): 86 characters, over 80"]
    assert long_lines(fence, limit=86) == []
    boxed = "??? deeper \"Box\"\n\n" + "".join("    " + line + "\n" for line in page.replace("a" * 80, "a" * 78).splitlines())
    (fence,) = fences.parse_text(boxed, "crafted.md")
    assert line_limit(fence) == 76 and long_lines(fence) == ["crafted.md:3 (+1): 84 characters, over 76"]
