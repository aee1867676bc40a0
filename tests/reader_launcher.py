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

``--kernels SOCKET``: the same for Jupyter kernels. It imports torch and ipykernel, listens
on the Unix socket SOCKET, and for each connection (from tests/reader_kernel.py, which a
kernel spec starts) forks a kernel that runs as ``python -m ipykernel_launcher`` would, in
the requester's working directory and environment, writing to the requester's standard
streams. (A new kernel spends 2 to 3 s of CPU importing ipykernel and then torch.)

This file is not part of the package and imports nothing but the standard library, torch
and, with ``--kernels``, ipykernel.
"""

import json
import os
import random
import signal
import socket
import sys
import threading
import traceback


def _as_new_process(cwd, env):
    """What a new process has that a forked one must be given: its working directory, its
    environment, and random seeds drawn afresh (a new interpreter draws them at random)."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    import torch

    torch.seed()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _child(request):
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(os.devnull)  # the launcher's stdin holds requests, not the snippet's input
    os.dup2(out, 1)
    os.dup2(err, 2)
    _as_new_process(request["cwd"], request["env"])
    sys.argv = [request["script"]]
    import runpy

    _exit_as_python_would(lambda: runpy.run_path(request["script"], run_name="__main__"))


def _exit_as_python_would(run):
    """Run ``run()`` as a process's main program; end the process as Python ends one (the
    status of SystemExit, or 1 and the traceback on stderr), without the launcher's exit
    handlers."""
    code = 0
    try:
        run()
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


def _receive(conn):
    """A kernel request: its JSON line and the requester's stdin, stdout and stderr."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            raise EOFError("the requester left before its request was complete")
        data += more
    return json.loads(data), fds


def _kernel(request, fds):
    """Become the kernel: ``python -m ipykernel_launcher ARGV`` from here on."""
    for fd, std in zip(fds, (0, 1, 2)):
        os.dup2(fd, std)
        os.close(fd)
    _as_new_process(request["cwd"], request["env"])
    sys.argv = ["ipykernel_launcher", *request["argv"]]
    from ipykernel import kernelapp

    _exit_as_python_would(kernelapp.launch_new_instance)


def _watch(conn, listener):
    """In a forked process: fork the kernel, tell the requester its pid and, at its end, its
    exit status; kill it if the requester goes away first (a kernel manager's SIGKILL)."""
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request, fds = _receive(conn)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _kernel(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall((json.dumps({"pid": pid}) + "\n").encode())

    ended = threading.Lock()  # held once the kernel has ended: never kill a pid reaped (reusable)

    def requester_gone():
        while conn.recv(4096):
            pass
        if ended.acquire(blocking=False):  # not reaped yet: ours, a zombie at worst
            os.kill(pid, signal.SIGKILL)
            ended.release()

    threading.Thread(target=requester_gone, daemon=True).start()
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it has ended; not reaped yet
    ended.acquire()
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall((json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n").encode())
    except OSError:
        pass  # the requester is gone
    os._exit(0)


def serve_kernels(path):
    import ipykernel.kernelapp  # noqa: F401 - loaded once, like torch, before any kernel
    import torch  # noqa: F401

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the watchers end on their own, unwaited
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    # No thread here (a fork copies none): one loop waits for a requester, or for the end of
    # our stdin, which the test closes when its session ends.
    import selectors

    waiting = selectors.DefaultSelector()
    waiting.register(listener, selectors.EVENT_READ)
    waiting.register(0, selectors.EVENT_READ)
    while True:
        for key, _ in waiting.select():
            if key.fileobj == 0:
                if not os.read(0, 4096):
                    return
                continue
            conn, _ = listener.accept()
            if os.fork() == 0:
                _watch(conn, listener)
            conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--kernels"]:
        serve_kernels(sys.argv[2])
    else:
        main()
