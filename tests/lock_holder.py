"""Another process that holds a checkpoint's lock, for the tests of concurrent runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def lock_held_elsewhere(path: str | Path) -> Iterator[None]:
    """Hold ``checkpoint_lock(path)`` in a child process while the block runs."""
    code = ("import sys\nfrom gptnotes.checkpoint import checkpoint_lock\n"
            f"with checkpoint_lock({str(path)!r}):\n    print('held', flush=True)\n    sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate("", timeout=60)
