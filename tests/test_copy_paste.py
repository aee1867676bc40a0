"""Every snippet of the site runs as a reader would run it, and prints what the page shows.

The reader's situation: a fresh virtual environment with the gptnotes wheel and its runtime
dependencies only (no pytest, no mkdocs, no matplotlib), a new interpreter, an empty working
directory, no conftest, no fixture, no earlier fence. Each chain (a fence and its
``continuation`` fences) is written to a script and run that way. It must exit cleanly,
write nothing to stderr (no warning, no progress bar), and print, fence by fence, exactly
the output that the build shows under the snippets on the site.

Each chain runs in a new process of that environment. By default the process is forked from
a launcher that has imported torch and nothing else (tests/reader_launcher.py explains why
and what that changes: nothing a snippet can rely on); ``GPTNOTES_COPY_PASTE=fresh`` starts
a brand-new interpreter per chain instead (about 2 s more per chain).

The environment is cached in ``.cache/copy-paste-venv`` and rebuilt when the runtime
requirements or the constraints change; the wheel (``sitetools.wheel.cached()``, the file the
site's build publishes) is rebuilt and reinstalled whenever the package changes. It also holds
ipykernel (:data:`KERNEL`, pinned like the rest), the kernel that tests/test_notebooks.py runs
the site's notebooks in; no snippet imports it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from sitetools import fences, runner, wheel
from tests.site_files import ROOT, markdown_files, rel

VENV = Path(os.environ.get("GPTNOTES_CACHE", ROOT / ".cache")) / "copy-paste-venv"
# The versions to install with the wheel: the set-up's pins, or (in CI) those of the job.
CONSTRAINTS = (ROOT / os.environ.get("GPTNOTES_CONSTRAINTS", "constraints.txt")).resolve()
BOUNDARY = "@@gptnotes-fence-boundary@@"
# Packages a reader does not have: if any is importable, the environment is not a reader's.
NOT_RUNTIME = ["pytest", "mkdocs", "matplotlib", "hypothesis", "sitetools", "playwright"]
# What the environment holds besides the wheel's runtime dependencies: a Jupyter kernel, for
# the notebook tests (a reader opening a notebook has one).
KERNEL = ["ipykernel"]


def _all_chains() -> list[list[fences.Fence]]:
    out = []
    for p in markdown_files():
        out += fences.chains(fences.parse_text(p.read_text(encoding="utf-8"), rel(p)))
    return out


CHAINS = _all_chains()


def _env_key() -> str:
    """What the environment depends on: the runtime requirements, their pins, the Python."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    h = hashlib.sha256(json.dumps([sorted(deps), KERNEL]).encode())
    h.update(CONSTRAINTS.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def reader_python() -> Path:
    """The python of a fresh venv holding only the gptnotes wheel and its runtime dependencies."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    env_key = _env_key()
    pkg_key = wheel.source_digest()
    with open(VENV.parent / "copy-paste-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers share one environment
        env_stamp, pkg_stamp = VENV / ".env-key", VENV / ".pkg-key"
        if not python.exists() or not env_stamp.exists() or env_stamp.read_text() != env_key:
            _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
            pkg_stamp.unlink(missing_ok=True)
            fresh = True
        else:
            fresh = False
        if not pkg_stamp.exists() or pkg_stamp.read_text() != pkg_key:
            built = wheel.cached()  # the very file the site's build publishes
            if fresh:  # the wheel with its runtime dependencies, pinned like the set-up
                _run([str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), str(built), *KERNEL])
            else:
                _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(built)])
            _run([str(python), "-m", "pip", "check"])
            env_stamp.write_text(env_key)
            pkg_stamp.write_text(pkg_key)
    return python


MODE = os.environ.get("GPTNOTES_COPY_PASTE", "fork")
TIMEOUT = 300


def _reader_env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # one thread per xdist worker


class Lines:
    """The lines a process writes to a pipe, read by a thread: ``get`` waits for the next one.

    Waiting with ``select`` on the pipe and then calling ``readline`` on its buffered text
    stream loses lines: when two replies arrive together (a snippet that ends within
    microseconds of starting, on a busy machine), ``readline`` pulls both into the stream's
    buffer and returns one, and ``select`` then waits on an empty pipe for the other, which
    is already read. A thread that only reads, and a queue, cannot miss a line.
    """

    def __init__(self, stream):
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)  # end of the stream: the process closed it or died

    def get(self, timeout: float) -> str | None:
        """The next line, or None at the end of the stream; TimeoutError after ``timeout`` s."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line from the process in {timeout} s") from None

    def wait_for_end(self, timeout: float) -> None:
        """Wait until the reading thread has seen the end of the stream (then it may be closed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not end in {timeout} s"


class Launcher:
    """Talks to tests/reader_launcher.py running in the reader's environment."""

    def __init__(self, python: Path, workdir: Path):
        self.stderr_path = workdir / "launcher-stderr.txt"
        self.requests = 0  # numbers the requests; the launcher echoes the number in its replies
        with open(self.stderr_path, "w") as stderr:  # the child keeps its own copy of the file
            self.proc = subprocess.Popen(
                [str(python), "-I", str(ROOT / "tests" / "reader_launcher.py")],
                cwd=workdir, env=_reader_env(workdir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, text=True, bufsize=1,
            )
        self.replies = Lines(self.proc.stdout)
        ready = self._reply(TIMEOUT)
        assert ready.get("ready"), f"the reader launcher did not start: {self.stderr_path.read_text()}"
        self.startup_stderr = self.stderr_path.read_text()

    def _reply(self, timeout: float) -> dict:
        line = self.replies.get(timeout)
        if line is None:
            raise RuntimeError(f"the reader launcher died: {self.stderr_path.read_text()}")
        return json.loads(line)

    def _reply_to(self, ident: int, key: str, timeout: float) -> int:
        """The value of ``key`` in the reply to request ``ident``, skipping replies to earlier ones."""
        while True:
            reply = self._reply(timeout)
            if reply.get("id") == ident and key in reply:
                return reply[key]

    def run(self, script: Path, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
        out, err = cwd / "stdout.txt", cwd / "stderr.txt"
        self.requests += 1
        ident = self.requests
        request = {"id": ident, "script": str(script), "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        pid = self._reply_to(ident, "pid", TIMEOUT)
        try:
            code = self._reply_to(ident, "returncode", TIMEOUT)
        except TimeoutError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended as the time ran out; its reply is on the way
            code = self._reply_to(ident, "returncode", TIMEOUT)
        return code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.replies.wait_for_end(30)
        self.proc.stdout.close()


@pytest.fixture(scope="session")
def launcher(reader_python: Path, tmp_path_factory):
    if MODE == "fresh":
        yield None
        return
    launch = Launcher(reader_python, tmp_path_factory.mktemp("launcher"))
    yield launch
    launch.close()


def test_the_reader_launcher_imports_torch_silently_and_nothing_of_ours(launcher, reader_python: Path, tmp_path: Path):
    if MODE == "fresh":
        pytest.skip("GPTNOTES_COPY_PASTE=fresh: no launcher")  # the mode is chosen by hand, never by CI
    assert launcher.startup_stderr == "", f"importing torch in the reader's environment prints:\n{launcher.startup_stderr}"
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gptnotes', 'sitetools', 'pytest', 'hypothesis')))\n"
        "print('torch' in globals(), __name__)\n"
    )
    code, out, err = launcher.run(probe, tmp_path, _reader_env(tmp_path))
    assert (code, err) == (0, "")
    assert out.splitlines() == ["[]", "False __main__"]


def test_replies_that_arrive_together_are_all_read():
    """Two lines written at once (a fast snippet's pid and exit status) both reach the test."""
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdout.write('pid\\nreturncode\\n'); sys.stdout.flush(); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    try:
        lines = Lines(writer.stdout)
        assert lines.get(10) == "pid\n"
        assert lines.get(10) == "returncode\n"  # already in the stream's buffer: no wait on the pipe
        with pytest.raises(TimeoutError):
            lines.get(0.2)  # nothing more was written
    finally:
        writer.kill()
        writer.wait()
    assert lines.get(10) is None  # the end of the stream is reported, not waited on
    lines.wait_for_end(10)
    writer.stdout.close()


def test_reader_environment_has_only_runtime_dependencies(reader_python: Path):
    code = "import importlib.util as u, sys; print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = _run([str(reader_python), "-I", "-c", code, *NOT_RUNTIME]).stdout.strip()
    assert found == "", f"the reader's environment must not have {found}"
    where = _run([str(reader_python), "-I", "-c", "import gptnotes; print(gptnotes.__file__)"], cwd=tempfile.gettempdir()).stdout
    assert str(VENV) in where and str(ROOT / "src") not in where, where


def _script(chain: list[fences.Fence]) -> str:
    parts = []
    for f in chain:
        parts.append(f.code.rstrip("\n"))
        parts.append(f"print({BOUNDARY!r}, flush=True)")
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("chain", CHAINS, ids=[c[0].where for c in CHAINS])
def test_snippet_runs_in_a_new_process_and_prints_what_the_page_shows(chain, reader_python: Path, launcher, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "snippet.py"
    script.write_text(_script(chain), encoding="utf-8")
    env = _reader_env(work)
    if launcher is None:
        proc = subprocess.run([str(reader_python), "-I", str(script)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        code, stdout, stderr = launcher.run(script, work, env)
    where = chain[0].where + (f" (+{len(chain) - 1} continuation fences)" if len(chain) > 1 else "")
    assert code == 0, f"{where} fails in the reader's environment (exit {code}):\n{stderr}"
    assert stderr == "", f"{where} writes to stderr in the reader's environment:\n{stderr}"
    printed = [runner.normalise(part) for part in stdout.split(BOUNDARY + "\n")[: len(chain)]]
    shown, _ = runner.run_chain(chain)  # what the build puts on the page
    for fence, got, want in zip(chain, printed, shown):
        assert got == want, f"{fence.where}: a fresh interpreter prints\n{got}\nbut the page shows\n{want}"
