#!/usr/bin/env python3
"""Measure every page of a built site as a reader meets it, at 1280 px and 390 px wide.

Prints one row per page: words of prose visible without expanding anything, programs
visible, code blocks that scroll sideways at each width, and the smallest figure text (CSS
px) at each width. Optionally saves full-page screenshots of some pages.

    python scripts/measure-reading.py site/ [--json out.json] [--shots DIR [--pages home,concepts/attention/]]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sitetools import browser  # noqa: E402

WIDTHS = (1280, 390)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("site")
    ap.add_argument("--json")
    ap.add_argument("--shots", help="folder for screenshots of the pages named after it")
    ap.add_argument("--pages", default="home,concepts/attention/,concepts/embeddings/",
                    help="comma-separated pages to screenshot ('home' is the home page)")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    pages = [p for p in browser.html_pages(a.site) if p.startswith("concepts/") or p in ("", "gpt-in-one-page/")]
    rows = {}
    with browser.serve(a.site) as base, sync_playwright() as pw:
        chromium = browser.launch(pw)
        for width in WIDTHS:
            ctx = chromium.new_context(**{**browser.CONTEXT_OPTIONS, "viewport": {"width": width, "height": 900}})
            for path in pages:
                visit = browser.open_page(ctx, base, path, cold=False)
                r = browser.reading(visit, width)
                row = rows.setdefault(path or "home", {})
                row[width] = r.__dict__ | {"smallest": r.smallest_figure_text}
                if a.shots and (path or "home") in a.pages.split(","):
                    out = Path(a.shots) / f"{(path.strip('/') or 'home').replace('/', '-')}-{width}.png"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    visit.page.screenshot(path=str(out), full_page=True, animations="disabled")
                visit.page.close()
            ctx.close()
        chromium.close()
    fmt = "{:<32} {:>6} {:>5} {:>9} {:>8} {:>8} {:>8}"
    print(fmt.format("page", "words", "progs", "ovf 1280", "ovf 390", "fig1280", "fig390"))
    for path, row in rows.items():
        d, m = row[1280], row[390]
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(fmt.format(path, d["core_words"], d["core_programs"], len(d["overflowing"]), len(m["overflowing"]),
                         f(d["smallest"]), f(m["smallest"])))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
