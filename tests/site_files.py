"""The Markdown files whose fences the tests run (every page under docs/ and the README),
and the pages of the site they become."""

from __future__ import annotations

import json
from pathlib import Path

from sitetools.notebooks import page_url  # the rule that turns a page into its address

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # gitignored; CI uploads it (screenshots, reports)
WEIGHTS = ARTIFACTS / "page-weight"  # one JSON file per page, gathered by tests/conftest.py
READING = ARTIFACTS / "reading"  # one JSON file per page and width, gathered by tests/conftest.py


def markdown_files() -> list[Path]:
    return sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def site_pages() -> list[str]:
    """Every page of the site, known before it is built: one per Markdown file under docs/
    (the list of misconceptions too: docs/misconceptions.md includes what the pre-build wrote)."""
    docs = [p.relative_to(ROOT / "docs").as_posix() for p in sorted((ROOT / "docs").rglob("*.md"))]
    return sorted({page_url(d) for d in docs})


def record_weight(weight) -> None:
    """Keep one page's weight (a sitetools.browser.Weight) for the end-of-run summary."""
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    name = (weight.path.strip("/").replace("/", "__") or "index") + ".json"
    (WEIGHTS / name).write_text(json.dumps(weight.__dict__), encoding="utf-8")


def record_reading(reading) -> None:
    """Keep what one page shows a reader at one width (a sitetools.browser.Reading)."""
    if reading is None:
        return
    READING.mkdir(parents=True, exist_ok=True)
    name = (reading.path.strip("/").replace("/", "__") or "index") + f"-{reading.width}.json"
    (READING / name).write_text(json.dumps(reading.__dict__), encoding="utf-8")
