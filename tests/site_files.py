"""The Markdown files whose fences the tests run: every page under docs/ and the README."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def markdown_files() -> list[Path]:
    return sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()
