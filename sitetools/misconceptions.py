"""Collect the site's "common misconceptions" boxes and generate the page that lists them.

A concept page gathers, under its heading ``## Common misconceptions``, one collapsed box per
misconception: a custom admonition whose title names the tempting idea and whose body says
what is true and holds the program that proves it::

    ??? misconception "`nn.Linear(10, 5)` stores a `[10, 5]` weight"

        It is tempting to think ...; in fact ..., and this program shows it:

        ```{.python}
        ...
        ```

Each box has its anchor written in the page, on the line above it (the pre-build refuses a
box without it, and says the line to write)::

    <div class="gn-anchor" id="misconception-nnlinear10-5-stores-a-10-5-weight" markdown></div>

    ??? misconception "`nn.Linear(10, 5)` stores a `[10, 5]` weight"

``python -m sitetools.prebuild`` writes the list of them all (``generated/misconceptions.md``,
included by ``docs/misconceptions.md``), grouped by concept, each linking to its box.
Titles keep their inline code (``get_batch`` keeps its underscore in the link).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

KIND = "misconception"
PAGE = "misconceptions.md"
_MARK = re.compile(
    r'^(?P<indent>[ \t]*)(?P<marker>!!!|\?\?\?\+?)[ \t]+' + '(?P<kind>' + KIND + r'|correction)(?:[ \t]+[\w-]+)*[ \t]+"(?P<title>[^"]+)"[ \t]*$'
)
_HEADING = re.compile(r"^#\s+(?P<title>.+?)\s*#*\s*$", re.M)


@dataclass(frozen=True)
class Misconception:
    line: int  # 0-based index of the admonition line
    indent: str
    marker: str  # "???" (collapsed), "???+" (open) or "!!!" (not collapsible)
    title: str
    anchor: str


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"`|\*|_", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60].strip("-")


def find(markdown: str) -> list[Misconception]:
    out: list[Misconception] = []
    seen: dict[str, int] = {}
    for i, line in enumerate(markdown.splitlines()):
        m = _MARK.match(line)
        if not m:
            continue
        if m["kind"] != KIND:
            continue  # an admonition type of old, reported by problems()
        base = f"{KIND}-" + slugify(m["title"])
        seen[base] = seen.get(base, 0) + 1
        anchor = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(Misconception(line=i, indent=m["indent"], marker=m["marker"], title=m["title"], anchor=anchor))
    return out


SECTION = "## Common misconceptions"


def problems(markdown: str, where: str) -> list[str]:
    """What breaks the rules for misconception boxes on a page: each is collapsed (``???``),
    and sits under its page's ``## Common misconceptions`` heading; the old ``correction``
    type (a commentary on someone's notes) is gone."""
    out = []
    lines = markdown.splitlines()
    section = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    for i, line in enumerate(lines):
        m = _MARK.match(line)
        if not m:
            continue
        if m["kind"] != KIND:
            out.append(f"{where}:{i + 1}: '{m['kind']}' boxes are gone: make it '??? {KIND} \"...\"' "
                       f"under '{SECTION}', addressed to the reader")
            continue
        if m["marker"] != "???":
            out.append(f"{where}:{i + 1}: a {KIND} box is collapsed: write '??? {KIND}', not '{m['marker']} {KIND}'")
        nested_after = section is not None and i > section
        heading_between = any(re.match(r"^##\s", lines[j]) for j in range(section + 1, i)) if nested_after else True
        if not nested_after or heading_between:
            out.append(f"{where}:{i + 1}: the {KIND} box {m['title']!r} is not in the page's '{SECTION}' section")
    return out


def anchor_line(c: Misconception) -> str:
    """The line that gives box ``c`` its anchor, written right above it (then a blank line)."""
    return f'{c.indent}<div class="gn-anchor" id="{c.anchor}" markdown></div>'


def anchor_problems(markdown: str, where: str) -> list[str]:
    """Boxes without their anchor line right above them (blank lines between allowed)."""
    lines = markdown.splitlines()
    out = []
    for c in find(markdown):
        above = next((lines[i] for i in range(c.line - 1, -1, -1) if lines[i].strip()), "")
        if above.strip() != anchor_line(c).strip():
            out.append(f"{where}:{c.line + 1}: the {KIND} box {c.title!r} needs its anchor on the line "
                       f"above it (then a blank line):\n    {anchor_line(c).strip()}")
    return out


def add_anchors(markdown: str) -> str:
    """``markdown`` with the missing anchor lines written above the boxes."""
    lines = markdown.splitlines()
    missing = {p for p in anchor_problems(markdown, "")}
    for c in reversed(find(markdown)):
        if any(p.startswith(f":{c.line + 1}:") for p in missing):
            lines[c.line:c.line] = [anchor_line(c), ""]
    return "\n".join(lines) + "\n"


def page_title(markdown: str, fallback: str) -> str:
    m = _HEADING.search(markdown)
    return m["title"] if m else fallback


def render_page(docs_dir: str | Path, order: list[str]) -> str:
    """The Markdown of the generated page of common misconceptions.

    ``order`` lists the documentation files (relative to ``docs_dir``) in navigation order.
    """
    docs = Path(docs_dir)
    intro = [
        "# Common misconceptions",
        "",
        "Ideas about GPTs and PyTorch that are easy to pick up and wrong, or right only in "
        "part: a weight matrix stored the other way round, a mask that hides too much, a "
        "claim about what PyTorch does that it does not do. Each page keeps its own in a "
        "collapsed box near its end, where a short program shows what is true. This list is "
        "made by the build from those boxes, grouped by concept.",
        "",
    ]
    lines: list[str] = []
    total = 0
    for rel in order:
        text = (docs / rel).read_text(encoding="utf-8")
        found = find(text)
        if not found:
            continue
        title = page_title(text, rel)
        lines += [f"## {title}", ""]
        for c in found:
            lines.append(f"- [{c.title}]({rel}#{c.anchor})")
            total += 1
        lines.append("")
    count = f"The site answers **{total}** of them at present."
    return "\n".join([*intro, count, "", *lines]) + "\n"
