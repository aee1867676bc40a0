"""A launcher of reader processes: one per snippet chain, each a new process.

Run as ``python -I reader_launcher.py`` with the python of the reader's environment (the
copy-paste venv: the gptnotes wheel and its runtime dependencies only). It imports torch,
and nothing else of the reader's code, once; then, for each request read on stdin, it forks
a child that runs one script as ``__main__`` in its own working directory, with its own
environment, stdout and stderr files and freshly random seeds, and reports the child's
exit status on stdout.

Why: starting a new interpreter costs 1.5 to 3 s of importing torch on a 2-core machine,
which for a site of a few hundred snippet chains is most of the test suite's time. A child
forked from an interpreter that has done only ``import torch`` starts in milliseconds and
differs from a new interpreter only in that ``torch`` is already in ``sys.modules``: the
script's namespace is empty (a snippet that forgets ``import torch`` still fails), no
gptnotes module, conftest, fixture or earlier snippet has run in it, and the random seeds
are drawn afresh as at start-up. Warnings printed while importing torch are reported
before the first request. ``GPTNOTES_COPY_PASTE=fresh`` makes the test start a new
interpreter per chain instead.

This file is not part of the package and imports nothing but the standard library and torch.
"""

import json
import os
import random
import sys
import traceback


def _child(request):
    os.chdir(request["cwd"])
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(os.devnull)  # the launcher's stdin holds requests, not the snippet's input
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["script"]]
    # A new interpreter draws its seeds at random; so does each child.
    import torch

    torch.seed()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    import runpy

    code = 0
    try:
        runpy.run_path(request["script"], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported like an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main():
    import torch  # noqa: F401 - the one module loaded before the snippets

    reply = sys.stdout
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        ident = request.get("id")  # echoed, so that the test never takes a late reply for its own
        print(json.dumps({"id": ident, "pid": pid}), file=reply, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"id": ident, "returncode": os.waitstatus_to_exitcode(status)}), file=reply, flush=True)


if __name__ == "__main__":
    main()
