"""The gptnotes wheel that the site hands out, built from exactly the code its pages ran with.

The site's pre-build (``python -m sitetools.prebuild``, or ``python -m sitetools.wheel`` on its own)
builds the wheel of this repository, checks that every file of the package in it is, byte
for byte, the file of the ``gptnotes`` package that the build imported (the code that ran
the snippets and printed the outputs under them), and puts it at a stable address of the
built site, :func:`site_path`: ``wheels/gptnotes-<version>-py3-none-any.whl``. The home page
and chapter 0 show the one line that installs it from there (:func:`install_box`, written to
``generated/install.md``, which they include).

One wheel per state of the sources (hatchling builds it byte for byte the same every time):
it is cached under ``$GPTNOTES_CACHE/wheel`` (default ``.cache/wheel``), shared by the
build and the tests (the copy-paste environment installs the same file).

``python -m sitetools.wheel --site-dir DIR [--site-url URL]`` builds and checks it, copies it
to ``DIR/wheels/`` and prints the line that installs it.

:func:`fresh_venv` and :data:`SMOKE` are the test side: a new virtual environment, and a
program a reader might run first; ``scripts/release-check`` and the tests use them. Only the
standard library here: the release job imports this module with nothing else installed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "gptnotes"
SITE_DIR = "wheels"  # the folder of the built site that holds the wheel
# What the wheel is made of: the package's sources and the files its metadata reads.
SOURCES = ("src", "pyproject.toml", "README.md", "LICENSE")
CACHE = Path(os.environ.get("GPTNOTES_CACHE", ROOT / ".cache")) / "wheel"
INSTALL_MARKER = re.compile(r"^(?P<indent>[ \t]*)<!-- gn-install -->[ \t]*$", re.MULTILINE)
# Longest line of a command in the install box (the site's limit for code lines): a longer
# one is broken with a backslash so that no code block scrolls sideways.
LINE = 80


class WheelError(RuntimeError):
    """The wheel could not be built, or is not the code the pages ran with."""


def file_name(version: str) -> str:
    """``gptnotes-<version>-py3-none-any.whl``: the wheel's file name (pure Python, any platform)."""
    return f"{PACKAGE}-{version}-py3-none-any.whl"


def site_path(version: str) -> str:
    """Where the wheel lies in the built site, from its root: ``wheels/<file_name>``."""
    return f"{SITE_DIR}/{file_name(version)}"


def wheel_url(site_url: str, version: str) -> str:
    """The wheel's address on a site published at ``site_url``."""
    if not site_url:
        raise WheelError("the install line needs the site's address: set site_url in mkdocs.yml")
    return site_url.rstrip("/") + "/" + site_path(version)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise WheelError(f"{' '.join(map(str, cmd))} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


# --------------------------------------------------------------------------------------
# Building it
# --------------------------------------------------------------------------------------

def source_digest(root: Path = ROOT) -> str:
    """A digest of everything the wheel is built from (names and contents)."""
    h = hashlib.sha256()
    for name in SOURCES:
        base = root / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes() if f.is_file() else b"(missing)")
    return h.hexdigest()


def build(out_dir: str | Path, root: Path = ROOT, python: str = sys.executable) -> Path:
    """Build the wheel of ``root`` into ``out_dir`` with ``python``'s hatchling (no download)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob(f"{PACKAGE}-*.whl"))
    _run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(out_dir), str(root)])
    made = sorted(set(out_dir.glob(f"{PACKAGE}-*.whl")) - before) or sorted(out_dir.glob(f"{PACKAGE}-*.whl"))
    if len(made) != 1:
        raise WheelError(f"expected one gptnotes wheel in {out_dir}, found {[p.name for p in made]}")
    return made[0]


def cached() -> Path:
    """The wheel of the current sources, built once per state of them (shared by processes)."""
    key = source_digest()
    folder = CACHE / key[:32]
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the site build and the test workers share it
        found = sorted(folder.glob(f"{PACKAGE}-*.whl")) if folder.is_dir() else []
        if len(found) == 1:
            return found[0]
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            wheel = build(tmp)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            target = folder / wheel.name
            shutil.copyfile(wheel, target)
        for old in CACHE.iterdir():  # keep the wheel of the current sources only
            if old.is_dir() and old != folder:
                shutil.rmtree(old, ignore_errors=True)
        return target


# --------------------------------------------------------------------------------------
# Checking it is the code the pages ran with
# --------------------------------------------------------------------------------------

def wheel_version(wheel: str | Path) -> str:
    """The version in a wheel's file name (``gptnotes-0.1.0-py3-none-any.whl`` -> ``0.1.0``)."""
    m = re.fullmatch(rf"{PACKAGE}-(?P<version>[^-]+)-py3-none-any\.whl", Path(wheel).name)
    if not m:
        raise WheelError(f"{Path(wheel).name} is not a pure-Python gptnotes wheel")
    return m["version"]


def wheel_files(wheel: str | Path) -> dict[str, bytes]:
    """The package's files in ``wheel``, by path inside the package (``data.py``, ``corpus/...``)."""
    with zipfile.ZipFile(wheel) as zf:
        return {n[len(PACKAGE) + 1:]: zf.read(n) for n in zf.namelist()
                if n.startswith(PACKAGE + "/") and not n.endswith("/")}


def package_files(package_dir: str | Path) -> dict[str, bytes]:
    """The files of an imported package's folder, as :func:`wheel_files` names them."""
    package_dir = Path(package_dir)
    return {p.relative_to(package_dir).as_posix(): p.read_bytes() for p in sorted(package_dir.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


def check_matches(wheel: str | Path, package_dir: str | Path, version: str) -> None:
    """Raise :class:`WheelError` unless ``wheel`` holds exactly the files of ``package_dir``
    (the package the pages ran with) and carries its ``__version__``."""
    problems = []
    if wheel_version(wheel) != version:
        problems.append(f"the wheel is version {wheel_version(wheel)} but the pages ran with gptnotes "
                        f"{version} (pyproject.toml and gptnotes.__version__ must agree)")
    shipped, ran = wheel_files(wheel), package_files(package_dir)
    for name in sorted(set(shipped) | set(ran)):
        if name not in shipped:
            problems.append(f"{name}: the pages ran with it, the wheel lacks it")
        elif name not in ran:
            problems.append(f"{name}: in the wheel, not in the package the pages ran with")
        elif shipped[name] != ran[name]:
            problems.append(f"{name}: differs between the wheel and the package the pages ran with")
    if problems:
        raise WheelError(
            f"the wheel {Path(wheel).name} is not the code the pages ran with ({package_dir}):\n  "
            + "\n  ".join(problems))


def for_site() -> tuple[str, Path]:
    """The wheel to publish, checked against the imported gptnotes: (its site path, the file)."""
    import gptnotes

    wheel = cached()
    check_matches(wheel, Path(gptnotes.__file__).resolve().parent, gptnotes.__version__)
    return site_path(gptnotes.__version__), wheel


# --------------------------------------------------------------------------------------
# The install box
# --------------------------------------------------------------------------------------

def _command(line: str, indent: str) -> str:
    """A shell command, broken after its first two words when longer than :data:`LINE`."""
    if len(line) <= LINE:
        return indent + line
    head, tail = line.rsplit(" ", 1)
    return f"{indent}{head} \\\n{indent}  {tail}"


def install_line(site_url: str, version: str) -> str:
    """``pip install <site_url>wheels/gptnotes-<version>-py3-none-any.whl``."""
    return f"pip install {wheel_url(site_url, version)}"


def install_box(site_url: str, version: str, on_pypi: bool = False, indent: str = "") -> str:
    """The "Install" box (Markdown): the line that installs the wheel from this site, ``pip
    install gptnotes`` beside it once the package is on PyPI (``on_pypi``), and the clone."""
    i, j = indent, indent + "    "
    lines = [
        f'{i}!!! info "Install"',
        "",
        f"{j}Every program on this site imports the package `gptnotes`. Install it from this",
        f"{j}site: the wheel of gptnotes {version}, built from exactly the code that ran the programs",
        f"{j}here.",
        "",
        f"{j}```bash",
        _command(install_line(site_url, version), j),
        f"{j}```",
        "",
    ]
    if on_pypi:
        lines += [f"{j}Or from PyPI:", "", f"{j}```bash", f"{j}pip install gptnotes", f"{j}```", ""]
    lines += [
        f"{j}Or, in a clone of the repository, from its folder:",
        "",
        f"{j}```bash",
        f"{j}pip install .",
        f"{j}```",
        "",
        f"{j}PyTorch comes with it. To get its CPU build rather than the much larger CUDA one",
        f"{j}on Linux, add `--extra-index-url https://download.pytorch.org/whl/cpu`.",
    ]
    return "\n".join(line.rstrip() if line.strip() else "" for line in lines)


def place_install_box(markdown: str, site_url: str, version: str, on_pypi: bool = False) -> tuple[str, int]:
    """Replace each ``<!-- gn-install -->`` line with :func:`install_box`; returns (text, count)."""
    return INSTALL_MARKER.subn(lambda m: install_box(site_url, version, on_pypi, m["indent"]), markdown)


# --------------------------------------------------------------------------------------
# Trying it as a reader: a fresh virtual environment and a first program
# --------------------------------------------------------------------------------------

# A reader's first program: the package, its data file and its command are all there.
SMOKE = """\
import os, sys
import torch
import gptnotes
from gptnotes import GPTLanguageModel, CharTokenizer, count_parameters, load_corpus

model = GPTLanguageModel(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4)
assert count_parameters(model) == 208_193, count_parameters(model)
tok = CharTokenizer(load_corpus())              # the text that ships in the wheel
assert tok.decode(tok.encode("The sea")) == "The sea"
idx = torch.zeros((1, 1), dtype=torch.long)
out = model.generate(idx, max_new_tokens=5, generator=torch.Generator().manual_seed(0))
assert out.shape == (1, 6)
print("gptnotes", gptnotes.__version__)
print("file", os.path.realpath(gptnotes.__file__))
print("command", os.path.isfile(os.path.join(os.path.dirname(sys.executable), "gptnotes")))
"""

# Never linked from the environment that lends its dependencies: the package itself (the new
# environment gets it from the wheel under test only), and pip (the caller's installs).
_NOT_LENT = re.compile(rf"^(?:{PACKAGE}\b.*|_?_?editable_?_?.*{PACKAGE}.*|pip|pip-.*|__pycache__)$", re.IGNORECASE)


def purelib(python: str | Path) -> Path:
    """The site-packages folder of an environment, given its python."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(_run([str(python), "-I", "-c", code]).stdout.strip())


def fresh_venv(path: str | Path, deps_from: str | Path | None = None) -> Path:
    """A new virtual environment at ``path``; returns its python.

    With ``deps_from`` (another environment's python), the new one is made without pip and
    lent that environment's installed distributions (symbolic links in its site-packages,
    the package under test and pip excepted): installing the wheel there then needs no
    download and takes a second, and the wheel's own files are still the only gptnotes in
    it. Install into it with :func:`pip_install` (the caller's pip, ``--python``).
    """
    path = Path(path)
    if deps_from is None:
        _run([sys.executable, "-m", "venv", str(path)])
        return path / "bin" / "python"
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    source, target = purelib(deps_from), purelib(python)
    for entry in sorted(source.iterdir()):
        if not _NOT_LENT.match(entry.name):
            (target / entry.name).symlink_to(entry)
    return python


def pip_install(python: str | Path, *args: str) -> subprocess.CompletedProcess:
    """``pip install ARGS`` into the environment of ``python`` (its own pip, or ours)."""
    own = Path(python).parent / "pip"
    base = [str(python), "-m", "pip"] if own.exists() else [sys.executable, "-m", "pip", "--python", str(python)]
    return _run([*base, "install", "--disable-pip-version-check", *args])


def run_smoke(python: str | Path, workdir: str | Path) -> dict[str, str]:
    """Run :data:`SMOKE` with ``python`` in an isolated interpreter in ``workdir``; what it printed."""
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = _run([str(python), "-I", "-c", SMOKE], cwd=workdir, env=env)
    if proc.stderr:
        raise WheelError(f"the first program writes to stderr:\n{proc.stderr}")
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


# --------------------------------------------------------------------------------------
# python -m sitetools.wheel
# --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitetools.wheel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site-dir", type=Path, help="copy the wheel to SITE_DIR/wheels/ (a built site, or a pre-build folder)")
    parser.add_argument("--site-url", help="print the line that installs it from a site published there")
    args = parser.parse_args(argv)
    try:
        path, wheel = for_site()
    except WheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"built and checked: {wheel}")
    if args.site_dir:
        target = args.site_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, target)
        print(f"copied to: {target}")
    if args.site_url:
        print(install_line(args.site_url, wheel_version(wheel)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
