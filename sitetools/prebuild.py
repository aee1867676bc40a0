"""``python -m sitetools.prebuild``: everything the site shows that a program makes, before the build.

The site's build tool (MkDocs, ProperDocs or Zensical: they read the same mkdocs.yml) then
only converts Markdown and copies files; no hook, no plugin of ours runs inside it. This
command, run by ``make docs``, ``make build``, ``make test`` and the Pages workflow:

1. checks every page of docs/ and refuses, all at once and saying where: a fence whose
   options are not in the brace form or a ``notest`` fence without its reason; a
   continuation with nothing before it; a misconception box that is open, out of its
   section, or without its anchor line (``<div class="gn-anchor" id="misconception-..."
   markdown></div>`` right above it: the anchors are written in the pages, so that every
   tool finds them); a figure that is not written as its light and dark twins, has no alt
   text or is not registered in sitetools/figures; a result table that is not registered;
   a concept page without its notebook links under its title;
2. runs, in a pool of ``os.cpu_count()`` processes, every snippet chain whose output is not
   cached yet (:mod:`sitetools.runner`: each chain isolated, ``__main__``, warnings as
   errors), draws every figure not drawn yet (:mod:`sitetools.figures`), makes the tables
   and builds the gptnotes wheel (:mod:`sitetools.wheel`);
3. writes what the pages include (:mod:`sitetools.generated`: the tables, the "Install"
   box, the list of common misconceptions, each concept page's notebook links) and the
   assets they link (docs/figures/, docs/notebooks/, docs/wheels/), all git-ignored; a file
   is rewritten only when its content changes.

The build's Markdown extension (:mod:`sitetools.outputs`) then reads the snippet outputs
from the cache. ``site_url``, ``repo_url`` and ``extra.on_pypi`` come from mkdocs.yml
(with the ``SITE_URL`` and ``REPO_URL`` of the environment, as the build reads them).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sitetools import figures, generated, misconceptions, notebooks, outputs, runner, wheel  # noqa: E402
from sitetools.fences import Fence  # noqa: E402

#: An image of a figure: ``![alt](../figures/NAME.svg#only-light){...}`` (or its dark twin).
FIGURE = re.compile(
    r"!\[(?P<alt>[^\]]*)\]\((?P<dir>[^)\s#]*?figures/)(?P<name>[a-z0-9][a-z0-9-]*?)(?P<dark>-dark)?\.svg"
    r"(?P<frag>#[\w-]+)?\)(?P<attrs>\{[^}\n]*\})?"
)
FIGURE_ATTRS = "{.gn-figure loading=lazy}"
TABLE_INCLUDE = re.compile(r'^[ \t]*--8<--[ \t]+"' + generated.FOLDER + r'/tables/(?P<name>[^"]+)\.md"[ \t]*$', re.M)
OLD_MARKER = re.compile(r"^[ \t]*<!-- gn-(?P<kind>table|install)\b.*?-->[ \t]*$", re.M)


class PrebuildError(RuntimeError):
    """The pages break the site's rules, a snippet failed or a figure is illegible."""


def twins(alt: str, folder: str, name: str) -> str:
    """How a page shows figure ``name``: its light SVG in the light palette, its dark twin in the dark one."""
    return (f"![{alt}]({folder}{name}.svg#only-light){FIGURE_ATTRS}"
            f"![{alt}]({folder}{name}-dark.svg#only-dark){FIGURE_ATTRS}")


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def figure_problems(text: str, where: str) -> list[str]:
    """Figures not written as registered, alt-texted light and dark twins."""
    out = []
    found = list(FIGURE.finditer(text))
    i = 0
    while i < len(found):
        m = found[i]
        at = f"{where}:{_line(text, m.start())}"
        nxt = found[i + 1] if i + 1 < len(found) else None
        if nxt is not None and nxt.start() == m.end() and nxt["name"] == m["name"] and nxt["dark"]:
            i += 1  # its dark twin: one report for the pair
        if m["name"] not in figures.FIGURES:
            out.append(f"{at}: no figure named {m['name']!r} is registered in sitetools/figures")
        elif not m["alt"].strip():
            out.append(f"{at}: the figure {m['name']!r} needs alt text: ![what it shows](...)")
        else:
            expected = twins(m["alt"], m["dir"], m["name"])
            end = found[i].end() if found[i] is not m else m.end()
            if text[m.start():end] != expected:
                out.append(f"{at}: write the figure {m['name']!r} as its light and dark twins, on one line:\n"
                           f"    {expected}")
        i += 1
    return out


def notebook_links_problem(text: str, rel: str, where: str) -> str | None:
    """A concept page shows its notebook links right under its title (an included line)."""
    if not notebooks.is_notebook_page(rel):
        return None
    lines = text.splitlines()
    title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    want = generated.include(generated.notebook_links(rel))
    after = next((line for line in lines[title + 1:] if line.strip()), None) if title is not None else None
    if after != want:
        return f"{where}: put the notebook links right under the page's title, as the line\n    {want}"
    return None


@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    chains: list[list[Fence]] = field(default_factory=list)


def check_pages(pages: dict[str, str]) -> Checked:
    """Check every page (``docs``-relative path -> Markdown) and gather its snippet chains."""
    figures.discover()
    out = Checked()
    for rel, text in pages.items():
        where = f"docs/{rel}"
        try:
            out.chains += outputs.page_chains(text, where)
        except outputs.SnippetError as err:
            out.problems += str(err).splitlines()
        out.problems += misconceptions.problems(text, where) + misconceptions.anchor_problems(text, where)
        out.problems += figure_problems(text, where)
        for m in TABLE_INCLUDE.finditer(text):
            if m["name"] not in figures.TABLES:
                out.problems.append(f"{where}:{_line(text, m.start())}: no table named {m['name']!r} "
                                    "is registered in sitetools/figures")
        for m in OLD_MARKER.finditer(text):
            rel_file = generated.INSTALL if m["kind"] == "install" else generated.table("NAME")
            out.problems.append(f"{where}:{_line(text, m.start())}: the build no longer replaces "
                                f"'{m[0].strip()}': include the file instead, {generated.include(rel_file)}")
        problem = notebook_links_problem(text, rel, where)
        if problem:
            out.problems.append(problem)
    return out


# ----------------------------------------------------------------------------------------
# The work of the process pool
# ----------------------------------------------------------------------------------------

def _init_worker(fence_cache: str, figure_cache: str) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core
    runner.CACHE_DIR, figures.CACHE_DIR = Path(fence_cache), Path(figure_cache)  # as in the parent


def _context():
    """fork where it is safe and quick (Linux, Python < 3.12, which does not warn about
    forking a process with threads); else a fork server that has imported this module."""
    if sys.platform.startswith("linux"):
        if sys.version_info < (3, 12):
            return multiprocessing.get_context("fork")
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _work(task: tuple) -> tuple[str, float]:
    """Run one task in a worker; returns (what, seconds)."""
    t0 = time.perf_counter()
    kind = task[0]
    if kind == "chain":
        runner.run_chain(task[1])
        what = task[1][0].where
    elif kind == "figure":
        figures.discover()
        theme = next(t for t in figures.THEMES if t.name == task[2])
        figures.render(task[1], theme)
        what = f"figure {task[1]} ({task[2]})"
    elif kind == "table":
        figures.discover()
        figures.render_table(task[1])
        what = f"table {task[1]}"
    else:
        wheel.cached()
        what = "the gptnotes wheel"
    return what, time.perf_counter() - t0


def _figure_cached(name: str, theme) -> bool:
    spec = figures.FIGURES[name]
    return (figures.CACHE_DIR / f"{figures._cache_key(spec, str(theme))}.svg").is_file()


def _table_cached(name: str) -> bool:
    spec = figures.TABLES[name]
    return (figures.CACHE_DIR / f"{figures._cache_key(spec, 'markdown')}.md").is_file()


def tasks(chains: list[list[Fence]]) -> list[tuple]:
    """What is not cached yet: the wheel, the figures and tables, then the chains."""
    todo: list[tuple] = []
    if not _wheel_cached():
        todo.append(("wheel",))
    todo += [("figure", n, t.name) for n in sorted(figures.FIGURES) for t in figures.THEMES if not _figure_cached(n, t)]
    todo += [("table", n) for n in sorted(figures.TABLES) if not _table_cached(n)]
    todo += [("chain", c) for c in chains if runner.cached(c) is None]
    return todo


def _wheel_cached() -> bool:
    folder = wheel.CACHE / wheel.source_digest()[:32]  # as wheel.cached() keeps it
    return len(list(folder.glob(f"{wheel.PACKAGE}-*.whl"))) == 1 if folder.is_dir() else False


def run_pool(todo: list[tuple], jobs: int, log) -> tuple[list[str], float]:
    """Run ``todo`` in ``jobs`` processes; returns (failures, CPU seconds of the tasks)."""
    failures: list[str] = []
    busy = 0.0
    if not todo:
        return failures, busy
    if jobs <= 1:
        for task in todo:
            try:
                busy += _work(task)[1]
            except Exception as err:  # noqa: BLE001 - reported with the others
                failures.append(str(err))
        return failures, busy
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_init_worker,
                             initargs=(str(runner.CACHE_DIR), str(figures.CACHE_DIR))) as pool:
        futures = {pool.submit(_work, task): task for task in todo}
        for future in as_completed(futures):
            try:
                what, seconds = future.result()
            except Exception as err:  # noqa: BLE001 - reported with the others
                failures.append(str(err))
                continue
            busy += seconds
            if seconds > 5:
                log(f"prebuild: {what} took {seconds:.1f} s")
    return failures, busy


# ----------------------------------------------------------------------------------------
# Writing what the pages include and link
# ----------------------------------------------------------------------------------------

def write_if_changed(path: Path, data: bytes | str) -> bool:
    data = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def sync_folder(folder: Path, files: dict[str, bytes | str]) -> int:
    """Make ``folder`` hold exactly ``files`` (relative path -> content); returns how many changed."""
    changed = sum(write_if_changed(folder / rel, data) for rel, data in files.items())
    if folder.is_dir():
        for p in sorted(folder.rglob("*"), reverse=True):
            rel = p.relative_to(folder).as_posix()
            if p.is_file() and rel not in files:
                p.unlink()
                changed += 1
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    return changed


def nav_order(nav) -> list[str]:
    """The Markdown files of the navigation, in order (the generated list left out)."""
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

    walk(nav or [])
    return [p for p in order if p.endswith(".md") and p != misconceptions.PAGE]


def write_outputs(docs: Path, config: dict) -> int:
    """Write the included Markdown and the assets; returns how many files changed."""
    import gptnotes

    site_url = config.get("site_url") or "http://127.0.0.1:8000/"
    extra = config.get("extra") or {}
    try:
        site_path, built = wheel.for_site()  # first: the pages must have run this very code
    except wheel.WheelError as err:
        raise PrebuildError(str(err)) from None
    included: dict[str, bytes | str] = {}
    for name in sorted(figures.TABLES):
        included[generated.table(name)[len(generated.FOLDER) + 1:]] = figures.render_table(name) + "\n"
    try:
        included[generated.INSTALL[len(generated.FOLDER) + 1:]] = wheel.install_box(
            site_url, gptnotes.__version__, on_pypi=bool(extra.get("on_pypi", False))) + "\n"
    except wheel.WheelError as err:
        raise PrebuildError(f"the install box: {err}") from None
    for rel in notebooks.pages(docs):
        included[generated.notebook_links(rel)[len(generated.FOLDER) + 1:]] = (
            notebooks.links_markdown(rel, config.get("repo_url")) + "\n")
    included[generated.MISCONCEPTIONS[len(generated.FOLDER) + 1:]] = misconceptions.render_page(
        docs, nav_order(config.get("nav")))
    changed = sync_folder(generated.DIR, included)

    try:
        drawn = figures.render_all()
    except figures.IllegibleFigure as err:
        raise PrebuildError(str(err)) from None
    changed += sync_folder(docs / "figures", drawn)
    changed += sync_folder(docs / wheel.SITE_DIR, {Path(site_path).name: built.read_bytes()})
    try:
        made = notebooks.build_all(docs, site_url)
    except (runner.FenceError, ValueError) as err:
        raise PrebuildError(f"notebooks: {err}") from None
    prefix = notebooks.FOLDER + "/"
    changed += sync_folder(docs / notebooks.FOLDER, {k[len(prefix):]: v for k, v in made.items()})
    return changed


def prebuild(jobs: int | None = None, config_path: Path = ROOT / "mkdocs.yml", log=print) -> dict:
    """Check the pages, fill the caches in parallel, write the generated files; a summary."""
    t0, cpu0 = time.perf_counter(), _cpu()
    config = notebooks.read_config(config_path)
    docs = config_path.parent / config.get("docs_dir", "docs")
    pages = {p.relative_to(docs).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted(docs.rglob("*.md"))}
    checked = check_pages(pages)
    if checked.problems:
        raise PrebuildError("\n".join(checked.problems))
    todo = tasks(checked.chains)
    jobs = jobs or os.cpu_count() or 1
    failures, busy = run_pool(todo, min(jobs, max(1, len(todo))), log)
    if failures:
        raise PrebuildError("\n\n".join(failures))
    changed = write_outputs(docs, config)
    summary = {
        "chains": len(checked.chains), "ran": sum(t[0] == "chain" for t in todo),
        "figures drawn": sum(t[0] == "figure" for t in todo), "jobs": jobs,
        "task seconds": round(busy, 1), "files changed": changed,
        "wall seconds": round(time.perf_counter() - t0, 1), "cpu seconds": round(_cpu() - cpu0, 1),
    }
    log("prebuild: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return summary


def _cpu() -> float:
    """CPU seconds of this process and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitetools.prebuild", description=__doc__.split("\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=None, help="processes (default: os.cpu_count())")
    parser.add_argument("--config", type=Path, default=ROOT / "mkdocs.yml")
    args = parser.parse_args(argv)
    try:
        prebuild(args.jobs, args.config.resolve())
    except PrebuildError as err:
        print(f"prebuild failed:\n{err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
