"""Fixtures of the browser tests: the system's Chromium and a local server for the built site.

One browser per test process (with pytest-xdist, one per worker that runs browser tests),
launched on first use; each page gets a fresh context (an empty cache, no stored palette).

Artifacts go to ``test-artifacts/`` (CI uploads it): screenshots, page weights, the list of
external links. The page weights and readings measured by the workers are gathered at the
end of the run into ``test-artifacts/page-weight.txt`` and ``reading.txt``, and printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.site_files import ARTIFACTS, READING, WEIGHTS

# Property tests draw the same examples on every run of the test command, so that a red run
# is reproducible and a green one is not luck. HYPOTHESIS_PROFILE=explore draws new ones each
# run, to search for cases nobody has tried (then keep what it finds as an @example).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def chromium():
    """The headless system Chromium (``GPTNOTES_CHROMIUM`` or ``chromium``); fails, never skips, without one."""
    from sitetools import browser

    try:
        browser.chromium_executable()
    except browser.BrowserMissing as err:
        pytest.fail(str(err), pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        instance = browser.launch(playwright)
    except Exception as err:  # noqa: BLE001 - say which browser failed to start, and why
        playwright.stop()
        pytest.fail(f"Chromium ({browser.chromium_executable()}) did not start: {err}", pytrace=False)
    yield instance
    instance.close()
    playwright.stop()


@pytest.fixture(scope="session")
def site_server(built_site: Path):
    """The built site, served read-only on 127.0.0.1; the base URL, ending in '/'."""
    from sitetools import browser

    with browser.serve(built_site) as base:
        yield base


@pytest.fixture
def browser_context(chromium):
    """A fresh browser context (empty cache and storage, light colour scheme)."""
    from sitetools import browser

    context = chromium.new_context(**browser.CONTEXT_OPTIONS)
    yield context
    context.close()


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config):
    if _is_controller(config):
        for folder in (WEIGHTS, READING):
            for old in folder.glob("*.json") if folder.is_dir() else []:  # from an earlier run
                old.unlink()


def _reading_summary(terminalreporter) -> None:
    """One line per page: what a reader sees at 1280 px and at 390 px."""
    rows: dict[str, dict[int, dict]] = {}
    for p in sorted(READING.glob("*.json")) if READING.is_dir() else []:
        r = json.loads(p.read_text(encoding="utf-8"))
        rows.setdefault(r["path"] or "home", {})[r["width"]] = r
    if not rows:
        return

    def smallest(r):
        px = [f["px"] for f in r["figures"]] if r else []
        return f"{min(px):.1f}" if px else "-"

    fmt = "{:<32} {:>6} {:>5} {:>9} {:>8} {:>8} {:>8}"
    lines = [fmt.format("page", "words", "progs", "ovf 1280", "ovf 390", "fig 1280", "fig 390")]
    for path, row in sorted(rows.items()):
        d, m = row.get(1280), row.get(390)
        lines.append(fmt.format(path, d["core_words"] if d else "-", d["core_programs"] if d else "-",
                                len(d["overflowing"]) if d else "-", len(m["overflowing"]) if m else "-",
                                smallest(d), smallest(m)))
    text = "\n".join(lines) + "\n"
    (ARTIFACTS / "reading.txt").write_text(text, encoding="utf-8")
    terminalreporter.write_sep("-", "what a reader sees (test-artifacts/reading.txt)")
    terminalreporter.write(text)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _is_controller(config):
        return
    _reading_summary(terminalreporter)
    if not WEIGHTS.is_dir():
        return
    from sitetools.browser import Weight

    weights = [Weight(**json.loads(p.read_text(encoding="utf-8"))) for p in sorted(WEIGHTS.glob("*.json"))]
    if not weights:
        return
    home = next((w for w in weights if w.path == ""), None)
    ranked = sorted(weights, key=lambda w: -w.budgeted)
    median = ranked[len(ranked) // 2]
    index = max(w.search_index for w in weights)
    kinds: dict[str, list[int]] = {}
    for w in weights:
        for kind, size in w.kinds.items():
            kinds.setdefault(kind, []).append(size)
    lines = ["Page weight: what a reader receives reading a page to its end with an empty cache, the search",
             "index aside (bytes from the local server, which does not compress; 'gzipped' estimates GitHub",
             "Pages, which gzips text). Budgets: home page 500,000 bytes, every page 1,000,000.",
             f"  search index:  {index:,} bytes (loaded by every page, not counted below)"]
    if home is not None:
        lines.append(f"  home page:     {home.line()}")
    lines.append(f"  heaviest page: {ranked[0].line()}")
    lines.append(f"  median page:   {median.line()}")
    lines.append("  by kind (median over the pages that load it, pages):")
    lines += [f"    {kind:<13} {sorted(v)[len(v) // 2]:>10,} bytes  ({len(v)} pages)"
              for kind, v in sorted(kinds.items(), key=lambda kv: -sorted(kv[1])[len(kv[1]) // 2])]
    lines.append(f"  largest responses of the heaviest page: {ranked[0].largest_line(8)}")
    lines.append("  every page:")
    lines += [f"    {w.line()}" for w in ranked]
    text = "\n".join(lines) + "\n"
    (ARTIFACTS / "page-weight.txt").write_text(text, encoding="utf-8")
    terminalreporter.write_sep("-", "page weight (test-artifacts/page-weight.txt)")
    terminalreporter.write(text)
