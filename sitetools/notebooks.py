"""Every concept page as a Jupyter notebook, made from the page by the build.

A page becomes a notebook of the same lesson in the same order:

- the first cell installs gptnotes from the site (:func:`install_source`): the wheel the
  site's own programs ran with, at ``<site_url>wheels/gptnotes-<version>-py3-none-any.whl``;
- the prose becomes Markdown cells, with Material's own syntax made readable anywhere:
  an always-open box (``!!! abstract "On this page"``) becomes a blockquote under its title
  in bold, a collapsed box (``??? deeper "Title"``, ``??? misconception "Title"``) and a
  content tab (``=== "Title"``) a heading one level below the section it is in, with its
  body unindented; KaTeX's ``\\(..\\)`` and ``\\[..\\]`` become ``$..$`` and ``$$..$$``;
  links to other pages, anchors of this page and API names (``[text][gptnotes.data.get_batch]``)
  point at the hosted site; figures at their hosted (light) SVG, alt text kept; a
  ``--8<--`` line the file it includes (a result table; the page's install box and notebook
  links are left out);
- each Python program that runs becomes a code cell, in page order, so a chain of
  ``{.python continuation}`` fences is a run of consecutive code cells sharing the kernel,
  with the output the build shows under it (from :mod:`sitetools.runner`, cached) as a
  stdout stream; a ``notest`` program stays a Python block in the prose.

The notebooks are plain nbformat 4.5 JSON (the tests validate them with nbformat and run
them with nbclient), written to ``notebooks/<page path>.ipynb`` in the built site. The pre-build
(:mod:`sitetools.prebuild`) calls :func:`build_all` (into docs/notebooks/) and
:func:`links_markdown` (the line each page includes under its title);
``python -m sitetools.notebooks OUTDIR`` writes the same files anywhere (it reads ``site_url`` from mkdocs.yml, or
``--site-url``).

"Open in Colab" needs the notebooks on GitHub: the Pages workflow pushes the built site's
``notebooks/`` folder to the branch :data:`BRANCH`, so the Colab address of a page is
``https://colab.research.google.com/github/<owner>/<repo>/blob/notebooks/<page path>.ipynb``
(:func:`colab_url`), known once ``repo_url`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sitetools import fences, generated, runner  # noqa: E402

FOLDER = "notebooks"  # in the built site, and the branch's root mirrors it
BRANCH = "notebooks"  # the branch the Pages workflow publishes the notebooks to
COLAB = "https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{path}"

_CONTAINER = re.compile(r'^(?P<indent> *)(?P<mark>!!!|\?\?\?\+?|===\+?)[ \t]+(?P<rest>.*?)\s*$')
_BOX = re.compile(r'^(?P<kind>[\w-]+)(?:[ \t]+[\w-]+)*(?:[ \t]+"(?P<title>[^"]*)")?$')
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+\S")
_SNIPPET = re.compile(r'^(?P<indent>[ \t]*)--8<--[ \t]+"(?P<spec>[^"]+)"[ \t]*$')
_TABLE = re.compile(r"^(?P<indent>[ \t]*)<!-- gn-table: (?P<name>[^\s]+) -->[ \t]*$")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ANCHOR = re.compile(r'^[ \t]*<div class="gn-anchor" id="[^"]*" markdown></div>[ \t]*$', re.M)  # box anchors
_CODE = re.compile(r"(?P<ticks>`+)(?P<code>.+?)(?P=ticks)", re.S)
_FENCED = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[^\n]*\n.*?^(?P=indent)(?P=fence)[ \t]*$", re.S | re.M)
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<target>[^)\s]+)\)(?:\{[^}\n]*\})?")
_AUTOREF = re.compile(r"\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\[(?P<ident>[A-Za-z_][\w.]*)?\]")
_API_DIRECTIVE = re.compile(r"^:::[ \t]+(?P<ident>[\w.]+)", re.M)


# ----------------------------------------------------------------------------------------
# Which pages, where their notebooks go, and the links to them
# ----------------------------------------------------------------------------------------

def is_notebook_page(src_uri: str) -> bool:
    """A concept page (``concepts/**``) or GPT in one page: the pages that teach with programs."""
    return src_uri == "gpt-in-one-page.md" or (src_uri.startswith("concepts/") and src_uri.endswith(".md"))


def pages(docs_dir: str | Path) -> list[str]:
    """The documentation files (relative to ``docs_dir``) that get a notebook, sorted."""
    docs = Path(docs_dir)
    found = [p.relative_to(docs).as_posix() for p in docs.rglob("*.md")]
    return sorted(p for p in found if is_notebook_page(p))


def notebook_path(src_uri: str) -> str:
    """Where the notebook of a page lies in the built site: ``concepts/softmax.md`` ->
    ``notebooks/concepts/softmax.ipynb``."""
    return f"{FOLDER}/{PurePosixPath(src_uri).with_suffix('.ipynb').as_posix()}"


def page_url(src_uri: str) -> str:
    """The page's address from the site's root (MkDocs' directory URLs)."""
    p = PurePosixPath(src_uri)
    if p.stem in ("index", "README"):
        parent = p.parent.as_posix()
        return "" if parent == "." else parent + "/"
    return p.with_suffix("").as_posix() + "/"


def wheel_url(site_url: str, version: str) -> str:
    """The address of the wheel the site publishes (one place for it: :mod:`sitetools.wheel`)."""
    from sitetools import wheel

    return wheel.wheel_url(_site(site_url), version)


def github_repository(repo_url: str | None) -> tuple[str, str] | None:
    """``(owner, repo)`` of a GitHub ``repo_url``; None for no URL or another host."""
    m = re.match(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$", repo_url or "")
    return (m["owner"], m["repo"]) if m else None


def colab_url(repo_url: str | None, src_uri: str, branch: str = BRANCH) -> str | None:
    """The "Open in Colab" address of a page's notebook, or None where the site does not
    know its GitHub repository."""
    repo = github_repository(repo_url)
    if repo is None:
        return None
    path = notebook_path(src_uri)[len(FOLDER) + 1:]  # the branch's root is the site's notebooks/
    return COLAB.format(owner=repo[0], repo=repo[1], branch=branch, path=path)


def links_markdown(src_uri: str, repo_url: str | None = None) -> str:
    """The line of links that the build puts under a page's title: "Download notebook"
    (relative to the page, so MkDocs checks it like any link) and, when the site knows its
    GitHub repository, "Open in Colab"."""
    here = posixpath.dirname(src_uri) or "."
    target = posixpath.relpath(notebook_path(src_uri), here)
    name = PurePosixPath(target).name
    links = [f'[Download notebook]({target}){{ .md-button .gn-notebook download="{name}" }}']
    colab = colab_url(repo_url, src_uri)
    if colab:
        links.append(f"[Open in Colab]({colab}){{ .md-button .gn-notebook }}")
    return " ".join(links)


def add_links(markdown: str, src_uri: str, repo_url: str | None = None) -> str:
    """``markdown`` with :func:`links_markdown` as a paragraph right under its first ``#`` title."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            lines[i + 1:i + 1] = ["", links_markdown(src_uri, repo_url)]
            return "\n".join(lines) + "\n"
    raise ValueError(f"{src_uri}: no '# Title' line to put the notebook links under")


# ----------------------------------------------------------------------------------------
# The first cell
# ----------------------------------------------------------------------------------------

def install_source(site_url: str, version: str, title: str = "") -> str:
    """The code of a notebook's first cell: install gptnotes from the site."""
    about = f"GPT Notes: {title}. " if title else "GPT Notes. "
    return "\n".join([
        f"# {about}Run this cell first: it installs gptnotes, the package",
        "# every program below imports, from the site (the wheel its pages were run with).",
        "# pip's normal resolution keeps what is installed when it satisfies gptnotes'",
        "# requirements (torch>=2.4, numpy>=1.24, tqdm>=4.60): on Colab, where torch, numpy",
        "# and tqdm are already there, it downloads only the small gptnotes wheel; where",
        "# something is missing, it installs that too. No --upgrade: that would replace",
        "# Colab's torch. Without any torch, add",
        "# --extra-index-url https://download.pytorch.org/whl/cpu for the small CPU build.",
        f"%pip install -q {wheel_url(site_url, version)}",
    ])


# ----------------------------------------------------------------------------------------
# Markdown of the site -> Markdown of a notebook
# ----------------------------------------------------------------------------------------

def _site(site_url: str) -> str:
    return site_url if site_url.endswith("/") else site_url + "/"


def api_pages(docs_dir: str | Path) -> dict[str, str]:
    """The identifier each API page documents (``::: gptnotes.data``) -> that page's URL."""
    out = {}
    for p in sorted((Path(docs_dir) / "api").rglob("*.md")):  # api/bitnet/quant.md too
        for m in _API_DIRECTIVE.finditer(p.read_text(encoding="utf-8")):
            out[m["ident"]] = page_url(p.relative_to(docs_dir).as_posix())
    return out


class _Links:
    """Rewrites the links of one page's prose to the hosted site."""

    def __init__(self, src_uri: str, site_url: str, api: dict[str, str]):
        self.src_uri, self.site, self.api = src_uri, _site(site_url), api

    def target(self, target: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            return target
        path, _, anchor = target.partition("#")
        if not path:
            doc = self.src_uri
        else:
            doc = posixpath.normpath(posixpath.join(posixpath.dirname(self.src_uri), path))
        url = self.site + (page_url(doc) if doc.endswith(".md") else doc)
        return url + (f"#{anchor}" if anchor else "")

    def api_url(self, ident: str) -> str | None:
        best = max((k for k in self.api if ident == k or ident.startswith(k + ".")), key=len, default=None)
        return None if best is None else f"{self.site}{self.api[best]}#{ident}"

    def __call__(self, text: str) -> str:
        def link(m: re.Match) -> str:
            target = m["target"]
            if m["bang"] and target.endswith("#only-dark"):
                return ""  # a figure's dark twin: the notebook shows the light one
            if m["bang"] and target.endswith("#only-light"):
                target = target[: -len("#only-light")]
            return f"{m['bang']}[{m['text']}]({self.target(target)})"

        def autoref(m: re.Match) -> str:
            ident = m["ident"] or m["text"].strip("`")
            url = self.api_url(ident)
            return m[0] if url is None else f"[{m['text']}]({url})"

        text = _LINK.sub(link, text)
        return _AUTOREF.sub(autoref, text)


def _maths(text: str) -> str:
    text = re.sub(r"\\\((.+?)\\\)", lambda m: f"${m[1].strip()}$", text, flags=re.S)
    return re.sub(r"\\\[(.+?)\\\]", lambda m: f"$${m[1].strip()}$$", text, flags=re.S)


def prose(text: str, links: _Links) -> str:
    """Material's Markdown -> notebook Markdown, leaving code (fenced or inline) alone."""
    kept: list[str] = []

    def keep(m: re.Match) -> str:
        kept.append(m[0])
        return f"\0{len(kept) - 1}\0"

    text = _FENCED.sub(keep, text)
    text = _COMMENT.sub("", text)
    text = _ANCHOR.sub("", text)
    text = _CODE.sub(keep, text)
    text = _maths(links(text))
    text = re.sub(r"\0(\d+)\0", lambda m: kept[int(m[1])], text)
    text = re.sub(r"\0(\d+)\0", lambda m: kept[int(m[1])], text)  # code spans inside links
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def expand(markdown: str, src_uri: str) -> str:
    """Put in the tables (``<!-- gn-table: NAME -->``) and the included files (``--8<--``)."""
    out: list[str] = []
    for line in markdown.splitlines():
        m = _TABLE.match(line)
        if m:
            from sitetools import figures

            figures.discover()
            if m["name"] not in figures.TABLES:
                raise ValueError(f"{src_uri}: no table named {m['name']!r} is registered in sitetools/figures")
            body = figures.render_table(m["name"]).splitlines()
            out += [m["indent"] + b if b else b for b in body]
            continue
        m = _SNIPPET.match(line)
        if m and m["spec"].startswith(generated.NOT_IN_NOTEBOOKS):
            continue  # the page's install box and notebook links: not the notebook's
        if m:
            name, *span = m["spec"].split(":")
            body = (ROOT / name).read_text(encoding="utf-8").splitlines()
            if span:
                start, end = (int(s) if s else None for s in (span + [""])[:2])
                body = body[(start or 1) - 1:end]
            out += [m["indent"] + b if b else b for b in body]
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _box_title(mark: str, rest: str) -> str:
    if mark.startswith("==="):
        return rest.strip().strip('"')
    m = _BOX.match(rest.strip())
    if not m:
        return rest.strip()
    return m["title"] if m["title"] is not None else m["kind"].replace("-", " ").capitalize()


def _runs_inside(lines: list[str], start: int, indent: int, running: set[int]) -> bool:
    """Whether the container whose header is line ``start`` (0-based) holds a running fence."""
    for j in range(start + 1, len(lines)):
        line = lines[j]
        if line.strip() and len(line) - len(line.lstrip(" ")) <= indent:
            return False
        if j in running:
            return True
    return False


def cells(markdown: str, src_uri: str, outputs: dict[int, str], links: _Links) -> list[dict]:
    """The cells of a page (without the install cell).

    ``outputs`` maps the 0-based line of each running fence's opening ``` to what it prints.
    """
    page_fences = fences.parse_text(markdown, src_uri)
    by_line = {f.line - 1: f for f in page_fences}
    running = {f.line - 1 for f in page_fences if f.runs}
    lines = markdown.splitlines()
    out: list[dict] = []
    buf: list[str] = []
    stack: list[tuple[int, bool]] = []  # (content indent, a blockquote?) of each open container
    section = 1  # level of the last heading

    def flush():
        text = prose("\n".join(buf), links)
        if text.strip():
            out.append(_markdown_cell(text))
        buf.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if stripped:
            while stack and indent < stack[-1][0]:
                if stack.pop()[1] and buf and buf[-1].strip() == ">":
                    buf.pop()  # no empty quoted line at the end of a quote
                buf.append("")
        removed = stack[-1][0] if stack else 0
        quote = "> " * sum(q for _, q in stack)
        if i in by_line:
            f = by_line[i]
            if f.runs:
                flush()
                out.append(_code_cell(f.code.rstrip("\n"), outputs.get(i, "")))
            else:
                lang = f.lang or ""
                body = f.code.rstrip("\n").splitlines()
                buf += [quote + "```" + lang, *(quote + b for b in body), quote + "```"]
            i = f.end_line
            continue
        m = _CONTAINER.match(line)
        if m and stripped:
            title = _box_title(m["mark"], m["rest"])
            blockquote = m["mark"] == "!!!" and not _runs_inside(lines, i, indent, running)
            if blockquote:
                buf += ["", f"{quote}> **{title}**", f"{quote}>"] if title else [""]
            else:
                level = min(6, section + 1 + len(stack))
                buf += ["", f"{'#' * level} {title}", ""]
            stack.append((indent + 4, blockquote))
            i += 1
            continue
        text = line[removed:] if line[:removed].strip() == "" else stripped
        h = _HEADING.match(text)
        if h and not stack:
            section = len(h["hashes"])
        if text or not (buf and quote and buf[-1] == quote.rstrip()):  # one blank line at a time
            buf.append(quote + text if text else quote.rstrip())
        i += 1
    flush()
    return out


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code_cell(code: str, output: str) -> dict:
    outputs = [{"output_type": "stream", "name": "stdout", "text": output + "\n"}] if output else []
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": outputs, "source": code}


def page_title(markdown: str, fallback: str) -> str:
    m = re.search(r"^#[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", markdown, re.M)
    return m["title"] if m else fallback


def chain_outputs(markdown: str, src_uri: str) -> dict[int, str]:
    """What each running fence of the page prints (0-based line of its opening ``` -> output),
    from the same runner and cache as the build."""
    out: dict[int, str] = {}
    for chain in fences.chains(fences.parse_text(markdown, src_uri)):
        printed, _ = runner.run_chain(chain)
        for f, text in zip(chain, printed):
            out[f.line - 1] = text
    return out


def notebook(markdown: str, src_uri: str, *, site_url: str, version: str, api: dict[str, str]) -> dict:
    """The notebook (nbformat 4.5, as a dict) of one page's Markdown source."""
    markdown = expand(markdown, src_uri)
    where = f"docs/{src_uri}"
    links = _Links(src_uri, site_url, api)
    title = page_title(markdown, src_uri)
    body = cells(markdown, where, chain_outputs(markdown, where), links)
    page = _site(site_url) + page_url(src_uri)
    note = (f"*This notebook is the page [{title}]({page}) of GPT Notes. Each program prints what "
            "the page shows under it; the outputs saved here are the page's.*")
    if body and body[0]["cell_type"] == "markdown" and body[0]["source"].startswith("# "):
        first, _, rest = body[0]["source"].partition("\n")
        body[0]["source"] = f"{first}\n\n{note}\n{rest}".rstrip("\n")  # right under the title
    else:
        body.insert(0, _markdown_cell(note))
    all_cells = [_code_cell(install_source(site_url, version, title), ""), *body]
    for n, cell in enumerate(all_cells):
        cell["id"] = f"{cell['cell_type']}-{n}"
    return {
        "cells": all_cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "gptnotes": {"page": where, "url": page, "version": version},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build_all(docs_dir: str | Path, site_url: str, version: str | None = None) -> dict[str, str]:
    """Every notebook of the site: its path in the built site -> its JSON text."""
    if version is None:
        import gptnotes

        version = gptnotes.__version__
    api = api_pages(docs_dir)
    out = {}
    for src_uri in pages(docs_dir):
        text = (Path(docs_dir) / src_uri).read_text(encoding="utf-8")
        out[notebook_path(src_uri)] = dumps(notebook(text, src_uri, site_url=site_url, version=version, api=api))
    return out


# ----------------------------------------------------------------------------------------
# python -m sitetools.notebooks
# ----------------------------------------------------------------------------------------

def read_config(path: str | Path = ROOT / "mkdocs.yml") -> dict:
    """mkdocs.yml read without MkDocs: ``!ENV [NAME, default]`` from the environment, other
    tags (Python names) as None."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def env(loader, node):
        items = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else [loader.construct_scalar(node)]
        *names, default = items if len(items) > 1 else (*items, None)
        return next((os.environ[n] for n in names if n in os.environ), default)

    Loader.add_constructor("!ENV", env)
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=Loader)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitetools.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path, help="where to write notebooks/<page>.ipynb (e.g. the built site)")
    parser.add_argument("--site-url", help="the site's address (default: site_url of mkdocs.yml)")
    parser.add_argument("--config", type=Path, default=ROOT / "mkdocs.yml")
    args = parser.parse_args(argv)
    config = read_config(args.config)
    site_url = args.site_url or config.get("site_url") or "http://127.0.0.1:8000/"
    docs_dir = args.config.parent / config.get("docs_dir", "docs")
    for rel, text in build_all(docs_dir, site_url).items():
        dest = args.outdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        print(dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
