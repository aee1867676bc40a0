"""Every concept page is also a notebook (sitetools/notebooks.py): the tests of those notebooks.

- How a page becomes a notebook, on small made-up pages: boxes, tabs, maths, links, figures,
  fences that do not run, continuation chains; the links under a page's title, "Open in Colab"
  for a made-up GitHub repository; the first cell's text, and a dry run of its pip command in
  an environment that has torch but not gptnotes (what Colab is), which installs gptnotes only.
- The notebooks of the built site: one per concept page, valid per nbformat, the page's
  programs in order with the outputs the page shows, the same files ``python -m
  sitetools.notebooks`` writes, and linked from their pages.
- Each notebook run top to bottom with nbclient, in a kernel of the copy-paste test's
  environment (the wheel and its runtime dependencies only, plus ipykernel), its first cell
  left out (the wheel is already installed there): every code cell prints what the page shows
  under its program, and nothing else (no stderr, no displayed value). One test per notebook,
  so pytest-xdist runs them side by side.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from sitetools import fences, notebooks, runner
from tests.site_files import ROOT
from tests.test_copy_paste import MODE as COPY_PASTE_MODE
from tests.test_copy_paste import _reader_env, reader_python  # noqa: F401 - a fixture, shared

DOCS = ROOT / "docs"
PAGES = notebooks.pages(DOCS)
TIMEOUT = 300  # seconds per cell, as for a copy-paste chain
SITE = "https://example.org/gpt-notes/"


def _config() -> dict:
    """mkdocs.yml as the build read it (the same environment: SITE_URL, REPO_URL)."""
    return notebooks.read_config(ROOT / "mkdocs.yml")


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _printed(cell: dict) -> str:
    return runner.normalise("".join(o["text"] for o in cell["outputs"] if o.get("name") == "stdout"))


# ----------------------------------------------------------------------------------------
# From a page to a notebook (made-up pages; no build)
# ----------------------------------------------------------------------------------------

PAGE = '''# A made-up page

!!! abstract "On this page"

    What \\(x^2\\) is, and [a link](linear.md#the-maths) to another page.

The first program, with its maths \\(B, T, C\\) and `code \\(kept\\)`:

```{.python}
x = 3
print("x =", x)
```

It goes on:

```{.python continuation}
print("x squared =", x * x)
```

![A plot of x squared](../figures/softmax-temperature.svg){ .gn-wide }

See [`get_batch`][gptnotes.data.get_batch] and [the top](#a-made-up-page).

## Going deeper

??? deeper "A box with two tabs"

    Before the tabs, \\[a = b\\].

    === "First"

        ```{.python}
        print("first tab")
        ```

    === "Second"

        <!-- notest: shown, never run -->
        ```{.python notest}
        raise SystemExit("never runs")
        ```

After the box.
'''


@pytest.fixture(scope="module")
def made_up() -> dict:
    return notebooks.notebook(PAGE, "concepts/made-up.md", site_url=SITE, version="9.9.9",
                              api={"gptnotes.data": "api/data/"})


def test_a_page_becomes_a_valid_notebook_of_its_prose_and_programs_in_order(made_up):
    nbformat.validate(nbformat.from_dict(made_up))
    kinds = [c["cell_type"] for c in made_up["cells"]]
    assert kinds == ["code", "markdown", "code", "markdown", "code", "markdown", "code", "markdown"]
    assert made_up["cells"][1]["source"].startswith(
        f"# A made-up page\n\n*This notebook is the page [A made-up page]({SITE}concepts/made-up/) of GPT Notes.")
    code = [c["source"] for c in _code_cells(made_up)][1:]
    assert code == ['x = 3\nprint("x =", x)', 'print("x squared =", x * x)', 'print("first tab")']
    assert [_printed(c) for c in _code_cells(made_up)] == ["", "x = 3", "x squared = 9", "first tab"]
    assert len({c["id"] for c in made_up["cells"]}) == len(made_up["cells"])
    assert made_up["metadata"]["gptnotes"] == {"page": "docs/concepts/made-up.md", "version": "9.9.9",
                                               "url": SITE + "concepts/made-up/"}


def test_material_syntax_becomes_plain_markdown(made_up):
    text = "\n\n".join(c["source"] for c in made_up["cells"] if c["cell_type"] == "markdown")
    # an always-open box: a blockquote under its title; a collapsed box and tabs: headings
    assert "> **On this page**\n>\n> What $x^2$ is, and [a link](" + SITE + "concepts/linear/#the-maths)" in text
    assert "## Going deeper\n\n### A box with two tabs\n\nBefore the tabs, $$a = b$$." in text
    assert "#### First" in text and "#### Second" in text
    # maths in $..$, code spans untouched; links, API names and figures to the hosted site
    assert "its maths $B, T, C$ and `code \\(kept\\)`" in text
    assert f"![A plot of x squared]({SITE}figures/softmax-temperature.svg)\n" in text
    assert f"[`get_batch`]({SITE}api/data/#gptnotes.data.get_batch)" in text
    assert f"[the top]({SITE}concepts/made-up/#a-made-up-page)" in text
    # a program that does not run is shown, not run; comments and Material's markers are gone
    assert '```python\nraise SystemExit("never runs")\n```' in text
    for gone in ("!!!", "???", "===", "<!--", "{.python", "{ .gn-wide }", "    print", "\\(x", "\\[a"):
        assert gone not in text, gone
    assert text.rstrip().endswith("After the box.")


def test_the_first_cell_installs_the_sites_wheel_and_nothing_that_is_there():
    source = notebooks.install_source(SITE, "1.2.3", "Softmax")
    *comments, command = source.splitlines()
    assert command == f"%pip install -q {SITE}wheels/gptnotes-1.2.3-py3-none-any.whl"
    assert all(line.startswith("# ") for line in comments) and "Colab" in source
    assert notebooks.wheel_url(SITE.rstrip("/"), "1.2.3") == f"{SITE}wheels/gptnotes-1.2.3-py3-none-any.whl"


def test_the_first_cells_pip_command_on_colab_installs_only_gptnotes(reader_python, tmp_path):
    """A dry run of the first cell's command in a "Colab": torch, NumPy and tqdm installed,
    gptnotes not (the reader's environment without gptnotes), no package index: pip would
    install the gptnotes wheel and nothing else, keeping the installed torch."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("gptnotes-*.whl")
    site = next((reader_python.parent.parent / "lib").glob("python3*/site-packages"))
    colab_site = tmp_path / "colab-site"
    colab_site.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith("gptnotes"):
            (colab_site / entry.name).symlink_to(entry)
    colab = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(colab)], check=True)
    (next((colab / "lib").glob("python3*/site-packages")) / "colab.pth").write_text(str(colab_site) + "\n")
    command = notebooks.install_source(SITE, "1.2.3").splitlines()[-1]
    args = command.split()[2:]  # after "%pip install"
    args = [str(wheel) if a.startswith(SITE) else a for a in args]
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(colab / "bin" / "python"), "install", "--dry-run",
         "--no-index", "--report", str(report), *args],
        capture_output=True, text=True, env={**os.environ, "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    installs = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert installs == ["gptnotes"]


def test_links_under_the_title_download_and_open_in_colab_for_a_made_up_repository():
    repo = "https://github.com/someone/gpt-notes-fork"
    assert notebooks.links_markdown("concepts/bitnet/bitlinear.md", repo) == (
        '[Download notebook](../../notebooks/concepts/bitnet/bitlinear.ipynb)'
        '{ .md-button .gn-notebook download="bitlinear.ipynb" } '
        '[Open in Colab](https://colab.research.google.com/github/someone/gpt-notes-fork/blob/'
        'notebooks/concepts/bitnet/bitlinear.ipynb){ .md-button .gn-notebook }'
    )
    assert notebooks.colab_url(repo + ".git/", "gpt-in-one-page.md") == (
        "https://colab.research.google.com/github/someone/gpt-notes-fork/blob/notebooks/gpt-in-one-page.ipynb")
    for unknown in (None, "", "https://gitlab.com/someone/gpt-notes"):  # Colab opens GitHub only
        assert "Colab" not in notebooks.links_markdown("concepts/softmax.md", unknown)
    page = notebooks.add_links("# Softmax\n\nText.\n", "concepts/softmax.md", repo)
    assert page.startswith("# Softmax\n\n[Download notebook](../notebooks/concepts/softmax.ipynb)")
    assert "[Open in Colab](https://colab.research.google.com/github/someone/gpt-notes-fork/blob/notebooks/concepts/softmax.ipynb)" in page
    assert page.endswith("\n\nText.\n")


def test_the_repository_link_makes_no_request_to_github(tmp_path):
    """With a repo_url, Material's header links the repository and its script fetches the
    repository's facts from api.github.com; the override keeps the link, without the fetch."""
    import jinja2
    import material

    templates = Path(material.__file__).parent / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(ROOT / "overrides"), str(templates)]))
    config = {"repo_url": "https://github.com/someone/gpt-notes-fork", "repo_name": "someone/gpt-notes-fork",
              "theme": {"icon": {}}}
    html = env.get_template("partials/source.html").render(config=config, lang={"t": lambda key: key})
    assert '<a href="https://github.com/someone/gpt-notes-fork"' in html and "someone/gpt-notes-fork" in html
    assert "data-md-component" not in html and "<svg" in html


def test_repo_url_comes_from_the_pages_workflow(monkeypatch):
    monkeypatch.delenv("REPO_URL", raising=False)
    assert _config()["repo_url"] is None  # the tests' build: no repository, no Colab
    monkeypatch.setenv("REPO_URL", "https://github.com/someone/gpt-notes-fork")
    assert _config()["repo_url"] == "https://github.com/someone/gpt-notes-fork"
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    build = workflow["jobs"]["build"]
    env = {**build.get("env", {}), **next(s for s in build["steps"] if s.get("run") == "make test").get("env", {})}
    assert env["REPO_URL"] == "${{ github.server_url }}/${{ github.repository }}"
    publish = workflow["jobs"]["notebooks"]
    assert publish["needs"] == "build" and publish["permissions"] == {"contents": "write"}
    push = "\n".join(s.get("run", "") for s in publish["steps"])
    assert f"HEAD:{notebooks.BRANCH}" in push


# ----------------------------------------------------------------------------------------
# The notebooks of the built site
# ----------------------------------------------------------------------------------------

@pytest.mark.site
def test_every_concept_page_and_gpt_in_one_page_has_a_notebook(built_site: Path):
    assert "gpt-in-one-page.md" in PAGES and "concepts/bitnet/bitlinear.md" in PAGES
    assert len(PAGES) == len(list((DOCS / "concepts").rglob("*.md"))) + 1
    made = sorted(p.relative_to(built_site).as_posix() for p in (built_site / "notebooks").rglob("*"))
    made = [p for p in made if p.endswith(".ipynb")]
    assert made == sorted(notebooks.notebook_path(p) for p in PAGES)


@pytest.mark.site
def test_the_command_writes_the_notebooks_the_build_made(built_site: Path, tmp_path: Path):
    subprocess.run([sys.executable, "-m", "sitetools.notebooks", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    for page in PAGES:
        rel = notebooks.notebook_path(page)
        assert (tmp_path / rel).read_bytes() == (built_site / rel).read_bytes(), rel


@pytest.mark.site
@pytest.mark.parametrize("page", PAGES)
def test_the_sites_notebook_holds_the_pages_programs_and_outputs(page: str, built_site: Path):
    nb = nbformat.read(built_site / notebooks.notebook_path(page), as_version=4)
    nbformat.validate(nb)
    config = _config()
    import gptnotes

    title = notebooks.page_title((DOCS / page).read_text(encoding="utf-8"), page)
    install, *code = _code_cells(nb)
    assert install["source"] == notebooks.install_source(config["site_url"], gptnotes.__version__, title)
    text = notebooks.expand((DOCS / page).read_text(encoding="utf-8"), page)
    page_chains = fences.chains(fences.parse_text(text, f"docs/{page}"))
    page_fences = [f for chain in page_chains for f in chain]
    assert [c["source"] for c in code] == [f.code.rstrip("\n") for f in page_fences]
    shown = [out for chain in page_chains for out in runner.run_chain(chain)[0]]
    assert [_printed(c) for c in code] == shown
    html = (built_site / notebooks.page_url(page) / "index.html").read_text(encoding="utf-8")
    name = Path(notebooks.notebook_path(page)).name
    assert re.search(rf'<a class="md-button gn-notebook" download="{re.escape(name)}" href="[./]*'
                     rf'{re.escape(notebooks.notebook_path(page))}">Download notebook</a>', html)
    colab = notebooks.colab_url(config.get("repo_url"), page)
    assert ("Open in Colab" in html) == (colab is not None)
    if colab:
        assert f'href="{colab}"' in html


# ----------------------------------------------------------------------------------------
# Each notebook, run top to bottom in the reader's environment
# ----------------------------------------------------------------------------------------

class KernelLauncher:
    """tests/reader_launcher.py ``--kernels``, in the reader's environment: it forks a kernel
    (torch and ipykernel imported, nothing else) for each tests/reader_kernel.py that asks."""

    def __init__(self, python: Path):
        self.folder = Path(tempfile.mkdtemp(prefix="gn-kernels-"))  # a Unix socket's path is short
        self.socket = self.folder / "socket"
        self.stderr = self.folder / "stderr.txt"
        with open(self.stderr, "w") as stderr:
            self.proc = subprocess.Popen([str(python), "-I", str(ROOT / "tests" / "reader_launcher.py"), "--kernels",
                                          str(self.socket)], cwd=self.folder, env=_reader_env(self.folder),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        ready = self.proc.stdout.readline()
        assert ready and json.loads(ready).get("ready"), f"the kernel launcher did not start: {self.stderr.read_text()}"

    def argv(self, python: Path) -> list[str]:
        """A kernel spec's command: the standard library's python, ~20 ms to start."""
        return [str(python), "-I", "-S", str(ROOT / "tests" / "reader_kernel.py"), str(self.socket),
                "-f", "{connection_file}"]

    def close(self) -> None:
        self.proc.stdin.close()  # its end
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def kernel_launcher(reader_python: Path):
    if COPY_PASTE_MODE == "fresh":
        yield None
        return
    launcher = KernelLauncher(reader_python)
    yield launcher
    launcher.close()


def _run(nb, python: Path, work: Path, launcher: KernelLauncher | None):
    """Run ``nb`` top to bottom in a kernel of the reader's environment (``python``), in an
    empty directory, with the reader's environment variables: a kernel forked by
    ``launcher``, or (None: ``GPTNOTES_COPY_PASTE=fresh``) a brand-new ``ipykernel_launcher``."""
    from nbclient import NotebookClient

    home = work / "home"
    home.mkdir(parents=True)
    client = NotebookClient(nb, kernel_name="reader", kernel_manager_class=_reader_kernel(python, work, launcher),
                            timeout=TIMEOUT, allow_errors=False, resources={"metadata": {"path": str(home)}})
    client.execute(env=_reader_env(home))
    return nb


def _reader_kernel(python: Path, work: Path, launcher: KernelLauncher | None):
    """A kernel manager class whose only kernel, "reader", is one of the reader's environment."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from traitlets import default

    kernels = work / "kernels"
    (kernels / "reader").mkdir(parents=True)
    argv = (launcher.argv(python) if launcher is not None
            else [str(python), "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    (kernels / "reader" / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "gptnotes reader", "language": "python",
    }))

    class ReaderKernel(KernelManager):  # nbclient starts it, and shuts it down at the end
        @default("kernel_spec_manager")
        def _only_the_reader(self):
            return KernelSpecManager(kernel_dirs=[str(kernels)])

    return ReaderKernel


@pytest.mark.site
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_the_notebook_runs_top_to_bottom_and_prints_what_the_page_shows(page: str, built_site: Path,
                                                                         reader_python: Path, kernel_launcher,
                                                                         tmp_path: Path):
    nb = nbformat.read(built_site / notebooks.notebook_path(page), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and first.source.splitlines()[-1].startswith("%pip install -q ")
    del nb.cells[0]  # the wheel is installed in the reader's environment already
    want = [_printed(c) for c in _code_cells(nb)]
    _run(nb, reader_python, tmp_path, kernel_launcher)
    for n, cell in enumerate(_code_cells(nb)):
        where = f"{page}, code cell {n + 1}:\n{cell.source[:300]}"
        other = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stdout")]
        assert not other, f"{where}\nprints more than the page shows: {other}"
        assert _printed(cell) == want[n], f"{where}\nthe notebook prints\n{_printed(cell)}\nbut the page shows\n{want[n]}"


def _probe(cells: list[str]):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def test_a_forked_kernel_is_a_new_kernel_of_the_readers_environment(reader_python: Path, kernel_launcher,
                                                                     tmp_path: Path):
    """Like a new kernel: nothing of ours loaded, an empty namespace, the working directory and
    environment the kernel manager gave, its own random seeds; cells' output comes back."""
    if kernel_launcher is None:
        pytest.skip("GPTNOTES_COPY_PASTE=fresh: every kernel is new")  # chosen by hand, never by CI
    cells = [("import os, sys\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gptnotes', 'sitetools', 'pytest')))\n"
              "print('torch' in dir(), 'json' in dir(), __name__)\n"
              "print(os.getcwd() == os.environ['HOME'], os.environ['PATH'], 'VIRTUAL_ENV' in os.environ)"),
             "import torch, random\nprint(torch.initial_seed(), random.random())",
             "import gptnotes\nprint(gptnotes.__file__.startswith(sys.prefix))"]
    runs = [_run(_probe(cells), reader_python, tmp_path / str(n), kernel_launcher) for n in range(2)]
    for nb in runs:
        checks, _, ours = (_printed(c).splitlines() for c in _code_cells(nb))
        assert checks[:2] == ["[]", "False False __main__"], checks
        assert checks[2] == f"True {_reader_env(tmp_path)['PATH']} False", checks  # the reader's variables
        assert ours == ["True"]  # the wheel in the reader's environment
    seeds = [_printed(_code_cells(nb)[1]) for nb in runs]
    assert seeds[0] != seeds[1], seeds


def test_a_forked_kernel_ends_with_its_notebook_obeys_interrupts_and_dies_with_its_stand_in(
        reader_python: Path, kernel_launcher, tmp_path: Path):
    """The kernel manager starts tests/reader_kernel.py, which stands for the forked kernel:
    the kernel ends when the notebook's client shuts it down; an interrupt (SIGINT, passed
    on) stops a running cell; a kill (SIGKILL, which cannot be passed on) kills it too."""
    import time

    if kernel_launcher is None:
        pytest.skip("GPTNOTES_COPY_PASTE=fresh: every kernel is new")  # chosen by hand, never by CI

    def gone(pid: int) -> bool:
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False

    nb = _run(_probe(["import os\nprint(os.getpid())"]), reader_python, tmp_path / "ended", kernel_launcher)
    assert gone(int(_printed(_code_cells(nb)[0])))

    km = _reader_kernel(reader_python, tmp_path, kernel_launcher)(kernel_name="reader")
    km.start_kernel(env=_reader_env(tmp_path))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        printed: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])

        kc.execute_interactive("import os\nprint(os.getpid())", timeout=60, output_hook=hook)
        kernel = int(printed[0])
        assert kernel != km.provisioner.process.pid  # forked by the launcher

        kc.execute("import time\nprint('waiting', flush=True)\ntime.sleep(120)")
        while "waiting" not in "".join(printed):
            msg = kc.get_iopub_msg(timeout=60)
            hook(msg)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["msg_type"] != "execute_reply":
            reply = kc.get_shell_msg(timeout=60)
        assert (reply["content"]["status"], reply["content"].get("ename")) == ("error", "KeyboardInterrupt")

        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # what the manager does to kill
        assert gone(kernel), f"the forked kernel {kernel} outlived its killed stand-in"
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
