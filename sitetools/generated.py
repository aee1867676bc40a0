"""Where ``python -m sitetools.prebuild`` writes what the pages include or link (all git-ignored).

- Markdown that pages include with pymdownx.snippets (``--8<-- "generated/..."``), kept out
  of docs/ so that no tool mistakes it for a page: the result tables, the "Install" box,
  the list of common misconceptions, the notebook links of each concept page;
- assets under docs/, copied into the site by every tool as they are: the figures
  (``docs/figures/``), the notebooks (``docs/notebooks/``) and the wheel (``docs/wheels/``).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = "generated"
DIR = ROOT / FOLDER
DOCS = ROOT / "docs"

INSTALL = f"{FOLDER}/install.md"
MISCONCEPTIONS = f"{FOLDER}/misconceptions.md"
ASSET_DIRS = ("figures", "notebooks", "wheels")  # under docs/


def table(name: str) -> str:
    """The file a page includes to show the result table ``name``."""
    return f"{FOLDER}/tables/{name}.md"


def notebook_links(src_uri: str) -> str:
    """The file a concept page includes under its title: "Download notebook", "Open in Colab"."""
    return f"{FOLDER}/notebook-links/{src_uri}"


def include(rel: str, indent: str = "") -> str:
    """The pymdownx.snippets line that includes ``rel``."""
    return f'{indent}--8<-- "{rel}"'


#: Included files that belong to the page on the site, not to its notebook.
NOT_IN_NOTEBOOKS = (INSTALL, f"{FOLDER}/notebook-links/")
