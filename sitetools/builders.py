"""Build the same sources with MkDocs, ProperDocs or Zensical, and compare what they made.

All three read mkdocs.yml and run the same Python-Markdown extensions; what the site adds
comes from ``python -m sitetools.prebuild`` (run it first) and from the extension
:mod:`sitetools.outputs`, never from a tool's hooks or plugins. So the builds should show
the same pages with the same text: the same snippet outputs, figures, tables, version
stamps, anchors and notebook links. :func:`compare` says where two builds differ.

``python -m sitetools.builders TOOL OUTDIR`` builds with one tool (strict). Zensical keeps
its build inside the project (it refuses a ``site_dir`` outside the folder of its config
file): give it an OUTDIR under the repository, e.g. ``.cache/site-zensical``.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("mkdocs", "properdocs", "zensical")


def environment() -> dict[str, str]:
    """The build's environment: sitetools importable (the Markdown extension), no banner."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def zensical_config(out: Path) -> Path:
    """A copy of mkdocs.yml that names ``out`` as the site's folder (Zensical has no option
    for it), written beside mkdocs.yml since Zensical's project root is its config's folder."""
    out = Path(out).resolve()
    try:
        rel = out.relative_to(ROOT)
    except ValueError:
        raise ValueError(f"Zensical builds inside the project only: {out} is not under {ROOT}") from None
    config = ROOT / f".zensical-{out.name}.yml"
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config.write_text(f"# Made by sitetools.builders from mkdocs.yml\nsite_dir: {rel.as_posix()}\n{text}",
                      encoding="utf-8")
    return config


def command(tool: str, out: Path) -> list[str]:
    """The strict build command of ``tool`` into ``out``."""
    py = sys.executable
    if tool == "mkdocs":
        return [py, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    if tool == "properdocs":
        return [py, "-m", "properdocs", "build", "--strict", "-f", "mkdocs.yml", "--site-dir", str(out)]
    if tool == "zensical":
        return [py, "-m", "zensical", "build", "--strict", "-f", str(zensical_config(out))]
    raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")


def start(tool: str, out: Path) -> subprocess.Popen:
    """Start the build of ``tool`` into ``out`` (its output captured, as text)."""
    return subprocess.Popen(command(tool, Path(out)), cwd=ROOT, env=environment(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def finish(tool: str, out: Path, proc: subprocess.Popen) -> str | None:
    """Wait for a build; None when it succeeded, else what it printed."""
    printed, _ = proc.communicate()
    (ROOT / f".zensical-{Path(out).resolve().name}.yml").unlink(missing_ok=True)
    if proc.returncode != 0 or not (Path(out) / "index.html").is_file():
        return f"{tool} build failed (exit {proc.returncode}):\n{_ANSI.sub('', printed)[-6000:]}"
    return None


# ----------------------------------------------------------------------------------------
# Comparing two builds
# ----------------------------------------------------------------------------------------

def pages(site: Path) -> list[str]:
    """The pages of a build: every ``index.html`` (the 404 page aside)."""
    return sorted(p.relative_to(site).as_posix() for p in Path(site).rglob("index.html"))


def article(page_html: str) -> str:
    """The HTML of a page's article (its content, without the theme around it)."""
    m = re.search(r"<article\b[^>]*>(.*)</article>", page_html, re.S)
    return m.group(1) if m else page_html


def article_text(page_html: str) -> str:
    """The words of a page's article."""
    text = article(page_html)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"\s+", " ", text).strip()


#: What the site's own machinery and its extensions put in a page's article, counted.
FEATURES = {
    "snippet outputs": re.compile(r'class="[^"]*\bgn-output\b'),
    "version stamp": re.compile(r"\bdata-gn-stamp\b"),
    "figures (light and dark)": re.compile(r'<img\b[^>]*figures/[^"]*\.svg#only-(?:light|dark)'),
    "misconception anchors": re.compile(r'class="gn-anchor" id="misconception-'),
    "notebook links": re.compile(r'class="[^"]*\bgn-notebook\b'),
    "tables": re.compile(r"<table\b"),
    "figures open in a lightbox": re.compile(r'class="glightbox"'),
    "heading permalinks": re.compile(r'class="headerlink"'),
    "API objects (mkdocstrings)": re.compile(r'class="doc doc-object\b'),
    "maths": re.compile(r'class="[^"]*\b(?:arithmatex|katex)\b'),
    "inline SVG (diagrams, icons)": re.compile(r"<svg\b"),
    "images": re.compile(r"<img\b"),
    "links": re.compile(r"<a\b[^>]*\bhref="),
}


def features(page_html: str) -> Counter:
    content = article(page_html)
    return Counter({name: len(p.findall(content)) for name, p in FEATURES.items()})


def files(site: Path, folder: str) -> dict[str, bytes]:
    base = Path(site) / folder
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def compare(reference: Path, other: Path) -> list[str]:
    """Where ``other`` differs from ``reference``: pages, words, features, generated files."""
    out = []
    ref_pages, other_pages = set(pages(reference)), set(pages(other))
    out += [f"page missing: {p}" for p in sorted(ref_pages - other_pages)]
    out += [f"page added: {p}" for p in sorted(other_pages - ref_pages)]
    for page in sorted(ref_pages & other_pages):
        a = (Path(reference) / page).read_text(encoding="utf-8")
        b = (Path(other) / page).read_text(encoding="utf-8")
        title_a, title_b = (re.search(r"<title>(.*?)</title>", h, re.S) for h in (a, b))
        if (title_a and title_a[1].strip()) != (title_b and title_b[1].strip()):
            out.append(f"{page}: title {title_a and title_a[1]!r} -> {title_b and title_b[1]!r}")
        fa, fb = features(a), features(b)
        for name in FEATURES:
            if fa[name] != fb[name]:
                out.append(f"{page}: {name}: {fa[name]} -> {fb[name]}")
        if article_text(a) != article_text(b):
            ta, tb = article_text(a), article_text(b)
            i = next((k for k, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
            out.append(f"{page}: text differs at ...{ta[max(0, i - 40):i + 40]!r} -> ...{tb[max(0, i - 40):i + 40]!r}")
    for folder in ("figures", "notebooks", "wheels"):
        fa, fb = files(reference, folder), files(other, folder)
        if fa != fb:
            changed = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
            out.append(f"{folder}/: {len(changed)} files differ, e.g. {changed[:3]}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in TOOLS:
        print(f"usage: python -m sitetools.builders {{{','.join(TOOLS)}}} OUTDIR", file=sys.stderr)
        return 2
    failed = finish(args[0], Path(args[1]), start(args[0], Path(args[1])))
    if failed:
        print(failed, file=sys.stderr)
        return 1
    print(f"{args[0]}: built {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
