"""MkDocs hooks of the GPT Notes site (see ``hooks:`` in mkdocs.yml).

- Runs every Python fence of every page (through :mod:`sitetools.runner`, cached) and shows
  what it printed right under it: no output on the site is typed by hand.
- Renders the figures of :mod:`sitetools.figures` into ``figures/`` (light and dark), and
  puts its tables into the pages that name them (``<!-- gn-table: NAME -->``).
- Generates ``misconceptions.md`` from the pages' ``??? misconception`` boxes and gives
  each one an anchor.
- Stamps each page with the versions its examples ran with, and loads Mermaid only on
  pages that have a diagram.
- Makes the line ids of code blocks unique on each page (:mod:`sitetools.htmlfix`).
- Puts the gptnotes wheel, built from exactly the code the pages ran with, at
  ``wheels/gptnotes-<version>-py3-none-any.whl``, and replaces each ``<!-- gn-install -->``
  line with the box that installs it from the site (:mod:`sitetools.wheel`).
- Makes a notebook of every concept page (:mod:`sitetools.notebooks`) into ``notebooks/``
  and links it under the page's title ("Download notebook", and "Open in Colab" once
  ``repo_url`` names the GitHub repository).
"""

from __future__ import annotations

import logging
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

from sitetools import fences, figures, htmlfix, misconceptions, notebooks, runner, wheel  # noqa: E402

log = logging.getLogger("mkdocs.hooks.gptnotes")

_FIGURE_REF = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<path>[^)\s]*?figures/(?P<name>[a-z0-9][a-z0-9-]*)\.svg)\)(?P<attrs>\{[^}]*\})?")
_GENERATED = misconceptions.PAGE
GENERATED_PAGES = (_GENERATED,)  # pages made by the build, with no file under docs/


def _versions() -> str:
    import torch

    import gptnotes

    return (
        f"Examples on this page were run with gptnotes {gptnotes.__version__}, "
        f"torch {torch.__version__} and Python {platform.python_version()}."
    )


def on_config(config):
    config.extra["gn_versions"] = _versions()
    figures.discover()
    return config


def _nav_order(config) -> list[str]:
    order: list[str] = []

    def walk(items):
        for item in items:
            if isinstance(item, dict):
                for value in item.values():
                    walk([value] if isinstance(value, str) else value)
            elif isinstance(item, str):
                order.append(item)
            elif isinstance(item, list):
                walk(item)

    walk(config.nav or [])
    return [p for p in order if p.endswith(".md") and p != _GENERATED]


def on_files(files: Files, config) -> Files:
    t0 = time.perf_counter()
    try:
        rendered = figures.render_all()
    except figures.IllegibleFigure as err:  # too small to read: the build stops and says why
        raise PluginError(f"gptnotes: {err}") from err
    for name, data in rendered.items():
        files.append(File.generated(config, f"figures/{name}", content=data))
    try:
        made = notebooks.build_all(config.docs_dir, config.site_url or "http://127.0.0.1:8000/")
    except (runner.FenceError, ValueError) as err:
        raise PluginError(f"gptnotes: notebooks: {err}") from None
    for path, text in made.items():
        files.append(File.generated(config, path, content=text))
    order = _nav_order(config)
    files.append(File.generated(config, _GENERATED, content=misconceptions.render_page(config.docs_dir, order)))
    log.info("gptnotes: %d figure files and %d notebooks in %.1f s",
             len(figures.FIGURES) * len(figures.THEMES), len(made), time.perf_counter() - t0)
    files.append(_wheel_file(config))
    return files


def _wheel_file(config) -> File:
    """The wheel of exactly the code the pages run with, at its stable address in the site."""
    t0 = time.perf_counter()
    try:
        path, built = wheel.for_site()
    except wheel.WheelError as err:
        raise PluginError(f"gptnotes: {err}") from None
    log.info("gptnotes: %s in %.1f s", path, time.perf_counter() - t0)
    return File.generated(config, path, abs_src_path=str(built))


def _install_box(markdown: str, path: str, config) -> str:
    """Replace each ``<!-- gn-install -->`` line with the box that installs the site's wheel."""
    import gptnotes

    try:
        markdown, _ = wheel.place_install_box(markdown, config.site_url or "", gptnotes.__version__,
                                              on_pypi=bool(config.extra.get("on_pypi", False)))
    except wheel.WheelError as err:
        raise PluginError(f"{path}: {err}") from None
    return markdown


def _check_fences(page_fences: list[fences.Fence]) -> None:
    for f in page_fences:
        if f.is_python and f.info and not f.info.startswith("{") and (f.flags or f.attrs):
            raise PluginError(
                f"{f.where}: fence options need the brace form, e.g. {{.python continuation}}; "
                f"'{f.info}' renders as broken text in Material"
            )
        if f.is_python and "notest" in f.flags and not f.notest_reason:
            raise PluginError(f"{f.where}: a notest fence needs '<!-- notest: reason -->' on the line above it")


def _output_block(indent: str, text: str) -> list[str]:
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    body = [f"{indent}{line}" if line else "" for line in text.splitlines()]
    return ["", f'{indent}{ticks}{{.text .gn-output title="Output"}}', *body, f"{indent}{ticks}", ""]


def _run_fences(markdown: str, path: str) -> tuple[str, int]:
    page_fences = fences.parse_text(markdown, path)
    _check_fences(page_fences)
    try:
        page_chains = fences.chains(page_fences)
    except ValueError as err:
        raise PluginError(str(err)) from None
    insert_after: dict[int, tuple[str, str]] = {}
    ran = 0
    for chain in page_chains:
        try:
            outputs, seconds = runner.run_chain(chain)
        except runner.FenceError as err:
            raise PluginError(str(err)) from None
        if seconds is not None:
            ran += 1
            if seconds > 5:
                log.info("gptnotes: slow snippet chain at %s took %.1f s", chain[0].where, seconds)
        for fence, out in zip(chain, outputs):
            if out:
                insert_after[fence.end_line] = (fence.indent, out)
    if not insert_after:
        return markdown, ran
    lines = markdown.splitlines()
    for end_line in sorted(insert_after, reverse=True):
        indent, out = insert_after[end_line]
        lines[end_line:end_line] = _output_block(indent, out)
    return "\n".join(lines) + "\n", ran


def _check_registered(registry: dict, kind: str, name: str, path: str) -> None:
    if name not in registry:
        raise PluginError(f"{path}: no {kind} named {name!r} is registered in sitetools/figures")


def _figures(markdown: str, path: str) -> tuple[str, bool]:
    """Show each figure's light SVG in the light palette and its dark twin in the dark one."""

    def pair(m: re.Match) -> str:
        _check_registered(figures.FIGURES, "figure", m["name"], path)
        if not m["alt"].strip():
            raise PluginError(f"{path}: the figure {m['name']!r} needs alt text: ![what it shows](...)")
        dark = m["path"][: -len(".svg")] + "-dark.svg"
        return (
            f'![{m["alt"]}]({m["path"]}#only-light){{.gn-figure loading=lazy}}'
            f'![{m["alt"]}]({dark}#only-dark){{.gn-figure loading=lazy}}'
        )

    markdown, count = _FIGURE_REF.subn(pair, markdown)
    return markdown, count > 0


_TABLE_REF = re.compile(r"^(?P<indent>[ \t]*)<!-- gn-table: (?P<name>[^\s]+) -->[ \t]*$", re.MULTILINE)


def _tables(markdown: str, path: str) -> tuple[str, bool]:
    """Replace each ``<!-- gn-table: NAME -->`` line with the Markdown of that registered table."""

    def insert(m: re.Match) -> str:
        _check_registered(figures.TABLES, "table", m["name"], path)
        return "\n".join(m["indent"] + line if line else line for line in figures.render_table(m["name"]).splitlines())

    markdown, count = _TABLE_REF.subn(insert, markdown)
    return markdown, count > 0


def _misconception_anchors(markdown: str, path: str) -> str:
    bad = misconceptions.problems(markdown, path)
    if bad:
        raise PluginError("\n".join(bad))
    found = misconceptions.find(markdown)
    if not found:
        return markdown
    lines = markdown.splitlines()
    for c in reversed(found):
        lines[c.line:c.line] = [f'{c.indent}<div class="gn-anchor" id="{c.anchor}" markdown></div>', ""]
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page, config, files):
    path = f"{Path(config.docs_dir).name}/{page.file.src_uri}"
    page.meta["gn_mermaid"] = any(f.lang == "mermaid" for f in fences.parse_text(markdown, path))
    markdown, ran = _run_fences(markdown, path)
    markdown = _install_box(markdown, path, config)
    markdown, has_figures = _figures(markdown, path)
    markdown, has_tables = _tables(markdown, path)
    markdown = _misconception_anchors(markdown, path)
    if notebooks.is_notebook_page(page.file.src_uri):
        markdown = notebooks.add_links(markdown, page.file.src_uri, config.repo_url)
    if any(f.runs for f in fences.parse_text(markdown, path)) or has_figures or has_tables:
        page.meta["gn_stamp"] = config.extra["gn_versions"]
    if ran:
        log.info("gptnotes: %s: ran %d snippet chain(s)", path, ran)
    return markdown


def on_page_content(html: str, page, config, files):
    return htmlfix.unique_code_line_ids(html)
