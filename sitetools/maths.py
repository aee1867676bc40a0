"""Maths typeset at build time: a Python-Markdown extension that runs KaTeX inside Python.

``pymdownx.arithmatex`` (``generic: true``) finds the formulas of a page, ``\\(...\\)`` inline
and ``$$...$$`` / ``\\[...\\]`` / ``\\begin{env}...\\end{env}`` as blocks, and wraps each in a
``span.arithmatex`` or ``div.arithmatex``. This extension, listed after it in
``markdown_extensions``, replaces the TeX in each wrapper by the HTML of KaTeX's own
``katex.renderToString`` (``displayMode`` for blocks), run in V8 by mini-racer: the page
needs KaTeX's stylesheet and fonts, and no script. The same extension runs on the API pages'
docstrings (mkdocstrings renders them with the site's ``markdown_extensions``) and in any
builder that reads ``mkdocs.yml``'s Python-Markdown extensions (MkDocs, ProperDocs,
Zensical).

A formula KaTeX cannot parse stops the build: :class:`MathsError` names the formula and what
KaTeX says; the builder names the page (MkDocs: "Error reading page '...'").

Speed: one V8 context per process, started at the first formula not in the cache; each
formula's HTML is cached by content (TeX, mode and KaTeX's version) in memory and on disk
under ``$GPTNOTES_CACHE/katex`` (default ``.cache/katex``), so a warm build never starts V8.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import xml.etree.ElementTree as etree
from pathlib import Path

from markdown import Extension
from markdown.treeprocessors import Treeprocessor

ROOT = Path(__file__).resolve().parent.parent
#: KaTeX's script, the same release as the stylesheet and fonts under docs/assets/vendor/katex
#: (scripts/vendor-assets.sh writes both). It runs here, at build time, and is not in the site.
KATEX_JS = Path(__file__).resolve().parent / "vendor" / "katex.min.js"
CACHE_DIR = Path(os.environ.get("GPTNOTES_CACHE", ROOT / ".cache")) / "katex"

_lock = threading.Lock()
_context = None          # the process's V8 context with KaTeX loaded (created on first need)
_version: str | None = None
_memory: dict[str, str] = {}


class MathsError(ValueError):
    """A formula KaTeX rejects: the message names the formula, KaTeX's reason and where."""


def katex_version() -> str:
    """KaTeX's version, read from its script without starting V8 (part of every cache key)."""
    global _version
    if _version is None:
        head = KATEX_JS.read_text(encoding="utf-8")
        marker = 'version:"'
        start = head.rfind(marker)
        if start < 0:
            raise RuntimeError(f"no KaTeX version found in {KATEX_JS}")
        start += len(marker)
        _version = head[start:head.index('"', start)]
    return _version


def _v8():
    global _context
    if _context is None:
        from py_mini_racer import MiniRacer

        ctx = MiniRacer()
        ctx.eval(KATEX_JS.read_text(encoding="utf-8"))
        _context = ctx
    return _context


def _key(tex: str, display: bool) -> str:
    data = json.dumps([katex_version(), bool(display), tex])
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def render(tex: str, display: bool = False, where: str = "") -> str:
    """KaTeX's HTML for the formula ``tex``, as ``katex.renderToString`` gives it.

    ``display``: a block formula (``displayMode``); ``where``: the page or docstring, for the
    message of the :class:`MathsError` raised when KaTeX rejects the formula.
    """
    if not isinstance(tex, str):
        raise TypeError(f"tex must be a str, got {type(tex).__name__}")
    key = _key(tex, display)
    html = _memory.get(key)
    if html is not None:
        return html
    path = CACHE_DIR / key[:2] / f"{key}.html"
    try:
        html = path.read_text(encoding="utf-8")
    except OSError:
        html = None
    if html is None:
        from py_mini_racer import JSEvalException

        options = {"displayMode": bool(display), "throwOnError": True, "output": "htmlAndMathml"}
        with _lock:
            try:
                html = _v8().call("katex.renderToString", tex, options)
            except JSEvalException as exc:
                reason = str(exc).strip().splitlines()[0]
                reason = reason.split("ParseError: ", 1)[-1]
                kind = "block" if display else "inline"
                place = f" in {where}" if where else ""
                raise MathsError(f"KaTeX cannot typeset the {kind} formula{place}: "
                                 f"{reason}\n  formula: {tex!r}") from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(html, encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs speed
    _memory[key] = html
    return html


def _unwrap(text: str, wraps: tuple[tuple[str, str], ...]) -> str:
    for left, right in wraps:
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            return text[len(left):len(text) - len(right)]
    raise MathsError(f"an arithmatex element without its delimiters: {text[:80]!r}")


def _unescape(text: str) -> str:
    # arithmatex escapes the TeX of a block (and only of a block) before it stores it.
    return (text.replace("&quot;", '"').replace("&gt;", ">").replace("&lt;", "<")
            .replace("&amp;", "&"))


class _KatexTreeprocessor(Treeprocessor):
    """Replace the TeX in each arithmatex wrapper by KaTeX's HTML (kept in the HTML stash)."""

    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            if el.tag not in ("span", "div") or el.get("class") != "arithmatex" or len(el):
                continue
            text = el.text or ""
            if el.tag == "div":
                tex = _unescape(_unwrap(text, (("\\[", "\\]"),)))
            else:
                tex = _unwrap(text, (("\\(", "\\)"),))
            html = render(tex.strip(), display=el.tag == "div")
            el.text = self.md.htmlStash.store(html)


class MathsExtension(Extension):
    """Typeset arithmatex's formulas with KaTeX during the build (see the module's docstring)."""

    def extendMarkdown(self, md) -> None:
        md.registerExtension(self)
        # After the inline patterns (priority 20) have made the inline wrappers.
        md.treeprocessors.register(_KatexTreeprocessor(md), "gn-katex", 19)


def makeExtension(**kwargs) -> MathsExtension:
    return MathsExtension(**kwargs)
