"""Run a chain of Python fences the way a reader would, and record what each fence prints.

The build shows these outputs under the snippets; the copy-paste test checks that a fresh
interpreter with only the installed wheel prints exactly the same.

Each chain runs in isolation, as if in a fresh interpreter: a new ``__main__`` namespace, an
empty temporary working directory, torch's global random generator freshly and randomly
seeded (as at start-up: a snippet that forgets to seed prints something different on every
run, which the copy-paste test catches), default print options, and warnings turned into errors. Outputs are cached on disk,
keyed by the code of the chain, the source of the package, and the torch and Python versions,
so that ``mkdocs serve`` does not re-run unchanged snippets; ``python -m sitetools.prebuild``
fills the cache by running the chains of every page in parallel processes.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from functools import lru_cache
from pathlib import Path

from sitetools.fences import Fence

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("GPTNOTES_CACHE", ROOT / ".cache")) / "fence-outputs"


class FenceError(RuntimeError):
    """A fence raised: the message gives the page, the line, and the traceback."""


def package_dir() -> Path:
    """The folder of the gptnotes package that ``import gptnotes`` finds (without importing it)."""
    spec = importlib.util.find_spec("gptnotes")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError("gptnotes is not importable: install it (pip install -e .) or set PYTHONPATH=src")
    return Path(spec.origin).resolve().parent


def torch_version() -> str:
    """torch's version, without importing torch (seconds of CPU) when it is not imported yet."""
    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    return importlib.metadata.version("torch")


def gptnotes_version() -> str:
    """gptnotes' ``__version__``, read from its source when it is not imported yet."""
    if "gptnotes" in sys.modules:
        return sys.modules["gptnotes"].__version__
    m = re.search(r'^__version__ = "([^"]+)"$', (package_dir() / "__init__.py").read_text(encoding="utf-8"), re.M)
    if m is None:
        import gptnotes

        return gptnotes.__version__
    return m[1]


@lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """Hash of every file of the installed gptnotes package, and of the versions involved.

    Neither gptnotes nor torch is imported: a build whose outputs are all cached never pays
    for importing torch."""
    h = hashlib.sha256()
    pkg = package_dir()
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(pkg)).encode())
            h.update(p.read_bytes())
    h.update(torch_version().encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def chain_key(chain: list[Fence]) -> str:
    h = hashlib.sha256(package_fingerprint().encode())
    for f in chain:
        h.update(b"\0fence\0" + f.code.encode())
    return h.hexdigest()


def normalise(output: str) -> str:
    """Outputs are compared and shown without trailing spaces or trailing blank lines."""
    return "\n".join(line.rstrip() for line in output.rstrip().splitlines())


def _reset_global_state() -> None:
    import torch

    torch.seed()  # a fresh interpreter starts from a random seed
    torch.set_printoptions(profile="default")
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)


def _execute(chain: list[Fence]) -> list[str]:
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    outputs: list[str] = []
    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="gptnotes-fence-") as tmp:
        os.chdir(tmp)
        try:
            _reset_global_state()
            for fence in chain:
                buf, err = io.StringIO(), io.StringIO()
                code = compile(fence.code, f"{fence.path} (fence at line {fence.line})", "exec")
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                            exec(code, namespace)
                except BaseException as exc:  # noqa: BLE001 - reported with its traceback
                    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    raise FenceError(
                        f"the Python fence at {fence.where} failed "
                        f"(chain starting at {chain[0].where}):\n{tb}"
                    ) from None
                outputs.append(normalise(buf.getvalue()))
        finally:
            os.chdir(old_cwd)
    return outputs


def cache_path(chain: list[Fence]) -> Path:
    """Where the outputs of ``chain`` are cached."""
    return CACHE_DIR / f"{chain_key(chain)}.json"


def cached(chain: list[Fence]) -> list[str] | None:
    """The cached outputs of ``chain`` (one per fence), or None if it has not run yet."""
    path = cache_path(chain)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    outputs = data.get("outputs") if isinstance(data, dict) else None
    return outputs if isinstance(outputs, list) and len(outputs) == len(chain) else None


def run_chain(chain: list[Fence], use_cache: bool = True) -> tuple[list[str], float | None]:
    """Return the normalised stdout of each fence of ``chain`` and the seconds it took.

    The seconds are ``None`` when the outputs came from the cache.
    """
    path = cache_path(chain)
    if use_cache:
        outputs = cached(chain)
        if outputs is not None:
            return outputs, None
    t0 = time.perf_counter()
    outputs = _execute(chain)
    seconds = time.perf_counter() - t0
    if use_cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"where": chain[0].where, "outputs": outputs, "seconds": seconds}), encoding="utf-8")
        os.replace(tmp, path)
    return outputs, seconds
