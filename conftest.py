"""Shared test configuration.

Teaches pytest-markdown-docs to see fences nested in Material's containers. Its default
markdown-it parser reads CommonMark, where the indented body of an admonition
(``!!! note``), a collapsible block (``??? note``) or a content tab (``=== "Tab"``) is an
indented code block, so the fences inside would never run. The parser below removes the
container lines and their indentation before markdown-it sees the text, keeping every line
in place so that failures point at the right line of the page.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

# pytest-xdist runs a worker process per core, and one more (pytest_xdist_auto_num_workers):
# each should use one thread. With torch's default of one thread per core, the workers fight over them and the tiny
# models of the tests run many times slower. Subprocesses (the site build, the copy-paste
# snippets) inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_CONTAINER = re.compile(r'^(?P<indent> *)(?:(?:!!!|\?\?\?\+?)[ \t]+\S|===\+?[ \t]+")')


def unwrap_containers(text: str) -> str:
    """Replace container headers by blank lines and dedent their bodies, in place."""
    out: list[str] = []
    stack: list[int] = []  # content indentation of each open container
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if stripped:
            while stack and indent < stack[-1]:
                stack.pop()
        removed = stack[-1] if stack else 0
        m = _CONTAINER.match(line)
        if m and stripped:
            stack.append(indent + 4)
            out.append("")
            continue
        out.append(line[removed:] if line[:removed].strip() == "" else line.lstrip(" "))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def pytest_configure(config):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Run each snippet of a page in an empty directory, as a reader would (and as the build
    and the copy-paste test do): files it writes land there, not in the repository."""
    if item.path.suffix != ".md":
        yield
        return
    import tempfile

    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="gptnotes-snippet-") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)


@pytest.hookimpl
def pytest_markdown_docs_markdown_it():
    from markdown_it import MarkdownIt

    class ContainerAwareMarkdownIt(MarkdownIt):
        def parse(self, src, env=None):  # type: ignore[override]
            return super().parse(unwrap_containers(src), env)

    return ContainerAwareMarkdownIt("commonmark")


# --------------------------------------------------------------------------------------
# The built site, shared by the tests that inspect it (tests/test_site.py, the browser
# tests). Built once per test session, strictly, as `make build` does: the pre-build
# (python -m sitetools.prebuild), then `mkdocs build --strict`. The same sources built with
# ProperDocs and with Zensical (tests/test_builders.py) are built once per session too,
# only by the worker that first needs them, both at once.
# --------------------------------------------------------------------------------------

def _run_id() -> str | None:
    return os.environ.get("PYTEST_XDIST_TESTRUNUID")


def _once(name: str, make) -> None:
    """Run ``make()`` once per test run, even when pytest-xdist runs several workers: the
    first worker to get here runs it under a file lock, the others wait and reuse. Its
    failure is replayed to every worker that asks."""
    import fcntl

    state = ROOT / ".cache"
    state.mkdir(exist_ok=True)
    run_id = _run_id() or f"pid{os.getpid()}"
    with open(state / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = state / f"{name}.done"
        if done.is_file():
            run, _, failure = done.read_text(encoding="utf-8").partition("\n")
            if run == run_id:
                if failure:
                    pytest.fail(failure, pytrace=False)
                return
        failure = make() or ""
        done.write_text(f"{run_id}\n{failure}", encoding="utf-8")
        if failure:
            pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def prebuilt() -> None:
    """``python -m sitetools.prebuild`` has run in this test run (once)."""
    import subprocess

    from sitetools import builders

    def make():
        proc = subprocess.run([sys.executable, "-m", "sitetools.prebuild"], cwd=ROOT, env=builders.environment(),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return f"python -m sitetools.prebuild failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        return None

    _once("prebuild", make)


@pytest.fixture(scope="session")
def built_site(prebuilt, tmp_path_factory) -> Path:
    """The site, built once per test run even when pytest-xdist runs several workers.

    Workers of one run share ``.cache/site-<run id>`` under a file lock: the first builds,
    the others wait and reuse. GPTNOTES_SITE_DIR keeps the build in a chosen directory
    (the Pages workflow deploys exactly that build; the end of the run checks that no test
    changed it).
    """
    import fcntl
    import shutil

    from sitetools import builders

    run_id = _run_id()
    if os.environ.get("GPTNOTES_SITE_DIR"):
        out = Path(os.environ["GPTNOTES_SITE_DIR"]).resolve()
    elif run_id:
        out = ROOT / ".cache" / f"site-{run_id}"
    else:
        out = tmp_path_factory.mktemp("site")
    out.parent.mkdir(parents=True, exist_ok=True)
    # The lock and the "built by this run" mark stay out of the site: the Pages workflow
    # deploys the directory exactly as the build left it.
    state = ROOT / ".cache"
    state.mkdir(exist_ok=True)
    with open(state / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = state / f"{out.name}.built"
        stamp = f"{run_id} {out}"
        if run_id and done.is_file() and done.read_text().split("\n")[0] == stamp and out.is_dir():
            return out  # another worker of this run built it
        if run_id:  # forget the builds of earlier runs
            for old in state.glob("site-*"):
                if old.name.startswith(out.name):
                    continue
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)  # the lock and mark of an earlier run
        failed = builders.finish("mkdocs", out, builders.start("mkdocs", out))
        if failed:
            pytest.fail(failed, pytrace=False)
        done.write_text(f"{stamp}\n{site_digest(out)}")
    return out


@pytest.fixture(scope="session")
def other_builds(prebuilt) -> dict[str, Path]:
    """The same sources built with ProperDocs and with Zensical, both strict, both at once;
    once per test run (Zensical builds inside the project: under .cache/)."""
    import shutil

    from sitetools import builders

    name = f"site-{_run_id() or 'local'}"
    outs = {tool: ROOT / ".cache" / f"{name}-{tool}" for tool in ("properdocs", "zensical")}

    def make():
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
        running = {tool: builders.start(tool, out) for tool, out in outs.items()}
        failures = [builders.finish(tool, outs[tool], proc) for tool, proc in running.items()]
        return "\n\n".join(f for f in failures if f) or None

    _once(f"{name}-others", make)
    return outs


def site_digest(site: Path) -> str:
    """A digest of every file of a built site (names and contents)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in site.rglob("*") if p.is_file()):
        h.update(f.relative_to(site).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


_SESSION_START = [0.0]


def pytest_sessionstart(session):
    import time

    _SESSION_START[0] = time.time()


def pytest_sessionfinish(session, exitstatus):
    """With GPTNOTES_SITE_DIR (the Pages workflow deploys that directory), prove that the
    tests left the build exactly as it was made: what is deployed is what was tested."""
    import os

    if hasattr(session.config, "workerinput") or not os.environ.get("GPTNOTES_SITE_DIR"):
        return
    out = Path(os.environ["GPTNOTES_SITE_DIR"]).resolve()
    mark = ROOT / ".cache" / f"{out.name}.built"
    if not mark.is_file() or mark.stat().st_mtime < _SESSION_START[0]:
        return  # this run did not build the site
    lines = mark.read_text().splitlines()
    if len(lines) == 2 and out.is_dir() and site_digest(out) != lines[1]:
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(
            f"ERROR: the tests modified the built site in {out}; it is no longer what they checked", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------------------
# Time per part of the suite, printed at the end of every run (summed over the workers, so
# with `-n 2` the parts add up to about twice the wall time).
# --------------------------------------------------------------------------------------

def _part(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.endswith(".md"):
        return "snippets (pytest-markdown-docs)"
    if path.startswith("src/"):
        return "doctests"
    if "test_notebooks" in path:
        return "notebooks (built, checked, run in the reader's environment)"
    if "test_copy_paste" in path:
        return "copy-paste (reader's environment)"
    if "test_browser" in path:
        return "browser"
    if "test_wheel" in path:
        return "wheel from the site, release dry run"
    if "test_linkcheck" in path:
        return "site build and checks"
    if "test_site" in path or "test_fences" in path or "test_builders" in path:
        return "site build and checks"
    return "unit tests"


# The longest parts first, so that the workers end together: with `--dist worksteal` (the
# test command's), a worker that runs out of tests takes half of what another has left, and
# what is left at the end is then short tests, not a notebook or a browser page.
_LONGEST_FIRST = ["browser", "notebooks (built, checked, run in the reader's environment)",
                  "copy-paste (reader's environment)"]


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores. A worker that drives Chromium or a kernel
    waits on them between steps; the extra worker keeps the cores busy meanwhile. (Each
    worker uses one thread for torch: OMP_NUM_THREADS above.)"""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(session, config, items):
    rank = {part: n for n, part in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_part(item.nodeid), len(rank)))  # stable: file order kept within a part


def _builders_summary(terminalreporter) -> None:
    """What tests/test_builders.py found: ProperDocs' and Zensical's builds against MkDocs'."""
    folder = ROOT / "test-artifacts" / "builders"
    found = [p for p in sorted(folder.glob("*.txt")) if p.stat().st_mtime >= _SESSION_START[0]] if folder.is_dir() else []
    if not found:
        return
    text = "".join(p.read_text(encoding="utf-8") for p in found)
    (folder.parent / "builders.txt").write_text(text, encoding="utf-8")
    terminalreporter.write_sep("-", "the same sources built with other tools (test-artifacts/builders.txt)")
    terminalreporter.write(text)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not hasattr(config, "workerinput"):
        _builders_summary(terminalreporter)
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            nodeid = getattr(rep, "nodeid", None)
            duration = getattr(rep, "duration", None)
            if not nodeid or duration is None:
                continue
            part = _part(nodeid)
            totals[part] = totals.get(part, 0.0) + duration
            if getattr(rep, "when", None) == "call":
                counts[part] = counts.get(part, 0) + 1
    if not totals:
        return
    terminalreporter.section("time per part (seconds, summed over workers)")
    for part in sorted(totals, key=totals.get, reverse=True):
        terminalreporter.write_line(f"{totals[part]:8.1f}  {part} ({counts.get(part, 0)} tests)")
