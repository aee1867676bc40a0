"""A Python-Markdown extension: what each snippet prints, under it, and the versions it ran with.

Listed in ``markdown_extensions`` of mkdocs.yml as ``sitetools.outputs``, so that every tool
that reads that file and runs Python-Markdown (MkDocs, ProperDocs, Zensical) shows the same
outputs: no MkDocs hook, no plugin. Like markdown-exec, it works on the Markdown itself:

- a preprocessor, run before every other (before pymdownx.snippets and superfences), finds
  the page's Python fences with :mod:`sitetools.fences` (the parser the tests use), checks
  their options (:func:`fence_problems`), groups them into chains and puts what each fence
  printed right under it, as a fenced block ``{.text .gn-output title="Output"}``. The
  outputs come from the cache of :mod:`sitetools.runner`, which ``python -m
  sitetools.prebuild`` fills by running every chain in parallel processes; a chain missing
  from the cache (a page edited under ``mkdocs serve``) runs right there, with the runner's
  guarantees (a fresh ``__main__``, an empty working directory, warnings as errors);
- a tree processor appends the version stamp (``<p class="gn-stamp" data-gn-stamp>``) to a
  page that runs a program or shows a figure or a result table.

mkdocstrings renders docstrings with its own Markdown instance built from the same list of
extensions: this extension leaves those alone (their examples are doctests, run by pytest).
A failing snippet stops the build with :class:`SnippetError`, which names the page and line.
"""

from __future__ import annotations

import platform
import re
from functools import lru_cache
from pathlib import Path

from markdown import Extension
from xml.etree import ElementTree

from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from sitetools import fences, runner

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: A figure as the pages show it: the light SVG, then its dark twin (see sitetools.prebuild).
FIGURE_REF = re.compile(r"!\[[^\]]*\]\([^)\s]*?figures/[a-z0-9][a-z0-9-]*\.svg#only-light\)")
#: A result table as the pages include it (written by sitetools.prebuild).
TABLE_REF = re.compile(r'^[ \t]*--8<--[ \t]+"generated/tables/[^"]+\.md"[ \t]*$', re.M)


class SnippetError(Exception):
    """A snippet failed, or a fence breaks the site's rules: the message says where."""


@lru_cache(maxsize=1)
def versions() -> str:
    """The sentence of the version stamp (read without importing torch)."""
    return (
        f"Examples on this page were run with gptnotes {runner.gptnotes_version()}, "
        f"torch {runner.torch_version()} and Python {platform.python_version()}."
    )


def fence_problems(page_fences: list[fences.Fence]) -> list[str]:
    """The fences that break the site's rules: options in the brace form, a reason for notest."""
    out = []
    for f in page_fences:
        if f.is_python and f.info and not f.info.startswith("{") and (f.flags or f.attrs):
            out.append(f"{f.where}: fence options need the brace form, e.g. {{.python continuation}}; "
                       f"'{f.info}' renders as broken text in Material")
        if f.is_python and "notest" in f.flags and not f.notest_reason:
            out.append(f"{f.where}: a notest fence needs '<!-- notest: reason -->' on the line above it")
    return out


def page_chains(markdown: str, path: str) -> list[list[fences.Fence]]:
    """The page's chains, after the checks of its fences; raises :class:`SnippetError`."""
    page_fences = fences.parse_text(markdown, path)
    bad = fence_problems(page_fences)
    if bad:
        raise SnippetError("\n".join(bad))
    try:
        return fences.chains(page_fences)
    except ValueError as err:
        raise SnippetError(str(err)) from None


def output_block(indent: str, text: str) -> list[str]:
    """The lines of the fenced block that shows ``text`` under a snippet."""
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    body = [f"{indent}{line}" if line else "" for line in text.splitlines()]
    return ["", f'{indent}{ticks}{{.text .gn-output title="Output"}}', *body, f"{indent}{ticks}", ""]


def insert_outputs(markdown: str, path: str) -> tuple[str, int]:
    """``markdown`` with each running fence's output under it, and the number of chains."""
    chains = page_chains(markdown, path)
    insert_after: dict[int, tuple[str, str]] = {}
    for chain in chains:
        printed = runner.cached(chain)
        if printed is None:
            try:
                printed, _ = runner.run_chain(chain)
            except runner.FenceError as err:
                raise SnippetError(str(err)) from None
        for fence, out in zip(chain, printed):
            if out:
                insert_after[fence.end_line] = (fence.indent, out)
    if not insert_after:
        return markdown, len(chains)
    lines = markdown.splitlines()
    for end_line in sorted(insert_after, reverse=True):
        indent, out = insert_after[end_line]
        lines[end_line:end_line] = output_block(indent, out)
    return "\n".join(lines) + "\n", len(chains)


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@lru_cache(maxsize=8)
def _pages(stamp: tuple) -> dict[str, str]:
    out = {}
    for p in sorted(DOCS.rglob("*.md")):
        out.setdefault(_normal(p.read_text(encoding="utf-8-sig")), p.relative_to(ROOT).as_posix())
    return out


def page_path(markdown: str) -> str:
    """Which file of docs/ this Markdown is (``docs/concepts/softmax.md``), for messages that
    say where; ``<page>`` when none is (Python-Markdown does not say which file it converts)."""
    files = sorted(DOCS.rglob("*.md"))
    stamp = tuple((p.as_posix(), p.stat().st_mtime_ns) for p in files)
    return _pages(stamp).get(_normal(markdown), "<page>")


def shows_results(markdown: str) -> bool:
    """Whether a page runs a program, shows a figure or includes a result table."""
    return (any(f.runs for f in fences.parse_text(markdown)) or bool(FIGURE_REF.search(markdown))
            or bool(TABLE_REF.search(markdown)))


#: A tree processor that only mkdocstrings' inner Markdown instance (for docstrings) has.
_DOCSTRINGS = "mkdocstrings_headings_list"


def _is_docstring_renderer(md) -> bool:
    """mkdocstrings' inner Markdown instance, which renders docstrings."""
    return _DOCSTRINGS in md.treeprocessors


class _Outputs(Preprocessor):
    def __init__(self, md, ext: GptNotesExtension):
        super().__init__(md)
        self.ext = ext

    def run(self, lines: list[str]) -> list[str]:
        self.ext.stamp = False
        if _is_docstring_renderer(self.md):
            return lines
        text = "\n".join(lines)
        if not text.strip():
            return lines
        path = page_path(text)
        new, _ = insert_outputs(text, path)
        self.ext.stamp = shows_results(text)
        return new.split("\n")


class _Stamp(Treeprocessor):
    def __init__(self, md, ext: GptNotesExtension):
        super().__init__(md)
        self.ext = ext

    def run(self, root):
        if self.ext.stamp:
            stamp = ElementTree.SubElement(root, "p", {"class": "gn-stamp", "data-gn-stamp": ""})
            stamp.text = versions()


class GptNotesExtension(Extension):
    """Snippet outputs under the snippets, and the version stamp (see the module's doc)."""

    def __init__(self, **kwargs):
        self.stamp = False
        super().__init__(**kwargs)

    def extendMarkdown(self, md):  # noqa: N802 - Python-Markdown's name
        md.registerExtension(self)
        # Before pymdownx.snippets (32) and whitespace normalisation (30): the page as written.
        md.preprocessors.register(_Outputs(md, self), "gptnotes_outputs", 40)
        md.treeprocessors.register(_Stamp(md, self), "gptnotes_stamp", 1)

    def reset(self):
        self.stamp = False


def makeExtension(**kwargs):  # noqa: N802 - Python-Markdown's name
    return GptNotesExtension(**kwargs)
