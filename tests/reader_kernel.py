"""A Jupyter kernel of the reader's environment, forked by tests/reader_launcher.py.

The kernel spec that tests/test_notebooks.py writes starts this script (``python -I -S
reader_kernel.py SOCKET -f CONNECTION_FILE``) where a spec would start ``python -m
ipykernel_launcher -f CONNECTION_FILE``. It asks the launcher listening on SOCKET (``python
-I reader_launcher.py --kernels SOCKET``, which has imported torch and ipykernel and nothing
else) for a kernel: the launcher forks one that runs ``ipykernel_launcher``'s own start with
these arguments, in this process's working directory and environment. This process then
stands for the kernel towards the kernel manager: it passes on the signals the manager sends
(an interrupt, a termination) and exits with the kernel's exit status. If it is killed
(SIGKILL cannot be passed on), the launcher sees the connection close and kills the kernel.

Why: a new kernel spends 2 to 3 s of CPU importing ipykernel and then torch; a forked one
starts in milliseconds and differs from a new one only in what ``sys.modules`` holds before
the first cell (see reader_launcher.py). Standard library only: ``-S`` starts it in ~20 ms.
"""

import json
import os
import signal
import socket
import sys


def main() -> int:
    path, *argv = sys.argv[1:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}) + "\n"
    # The kernel writes where a kernel started here would: this process's stdin, stdout, stderr.
    socket.send_fds(conn, [request.encode()], [0, 1, 2])
    stream = conn.makefile("r", encoding="utf-8")
    kernel = json.loads(stream.readline())["pid"]

    def forward(signum, frame):
        try:
            os.kill(kernel, signum)
        except ProcessLookupError:
            pass  # it has just ended: its status is on the way

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    line = stream.readline()  # the kernel's exit status (an empty line: the launcher died)
    if not line:
        return 1
    code = json.loads(line)["returncode"]
    return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
