"""What the input checks cost: the package before "checks at the edges" against the working tree.

Plain script, not run by the tests:

    python benchmarks/checks_cost.py [--rounds 6] [--min-time 0.3] [--base 39c3403]

It times two things, on one thread:

* ``bitlinear``: forward and backward of ``BitLinear(256, 256)`` on a ``(32, 8, 256)`` input;
* ``gpt step``: one training step of the site's small model,
  ``GPTLanguageModel(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4)``, on a
  batch of 32 windows: forward with the loss, ``zero_grad``, backward, AdamW step.

for three candidates:

* ``before``: the package at commit ``--base`` (extracted with ``git archive`` into a
  temporary folder), where every layer re-checked its input and some forwards scanned their
  data for NaN and infinity;
* ``now``: the package of this working tree;
* ``now, no checks``: the same, with every check function of the package (``check_*`` and
  ``_check_*`` in every module) replaced by one that returns its first argument: what the
  checks that remain cost.

``before`` and ``now`` cannot share a process (two packages of one name), so the script runs
child processes, alternating ``before`` and ``now`` ``--rounds`` times; the ``now`` child
alternates checks on and off inside itself. Each child reports the best time per call of
each measurement (the least disturbed on a shared machine); the script keeps the best over all
children and prints ratios. It needs ``git`` and the repository's history. On a busy machine
the ratios move by several per cent from run to run: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# The child: times the measurements with the gptnotes it finds on its path
# ---------------------------------------------------------------------------------------


def _calls_for(fn, min_time: float) -> int:
    """How many calls of ``fn`` take about ``min_time`` seconds."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time / 4:
            return max(1, int(n * min_time / elapsed))
        n *= 2


def _seconds_per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _measurements():
    import torch

    from gptnotes import BitLinear, GPTLanguageModel, get_batch, make_optimizer

    torch.manual_seed(0)
    layer = BitLinear(256, 256)
    x = torch.randn(32, 8, 256, requires_grad=True)

    def bitlinear():
        layer(x).sum().backward()

    model = GPTLanguageModel(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4)
    optimizer = make_optimizer(model, lr=1e-3)
    data = torch.randint(65, (10_000,), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)

    def gpt_step():
        xb, yb = get_batch(data, 8, 32, generator=g)
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return {"bitlinear": bitlinear, "gpt step": gpt_step}


def _check_functions():
    """``(module, name, function)`` of every check function of the imported package."""
    import types

    found = []
    for name, module in list(sys.modules.items()):
        if not (name == "gptnotes" or name.startswith("gptnotes.")) or module is None:
            continue
        for attr, fn in list(vars(module).items()):
            if attr.startswith(("check_", "_check_")) and isinstance(fn, types.FunctionType):
                found.append((module, attr, fn))
    return found


def _no_check(value, *args, **kwargs):
    return value


def child(mode: str, min_time: float, reps: int = 6) -> None:
    """Print ``{measurement: best seconds per call}``: ``reps`` timed runs of each candidate,
    the candidates of the working tree (checks on, checks off) alternating run by run."""
    import torch

    torch.set_num_threads(1)
    fns = _measurements()
    checks = _check_functions() if mode == "now" else []

    def checks_off():
        for module, attr, _ in checks:
            setattr(module, attr, _no_check)

    def checks_on():
        for module, attr, real in checks:
            setattr(module, attr, real)

    variants = [("", checks_on)] + ([(" (no checks)", checks_off)] if mode == "now" else [])
    results = {}
    for key, fn in fns.items():
        n = _calls_for(fn, min_time)
        for _ in range(reps):
            for suffix, switch in variants:
                switch()
                try:
                    fn()  # one call after the switch, untimed
                    s = _seconds_per_call(fn, n)
                finally:
                    checks_on()
                results[key + suffix] = min(results.get(key + suffix, float("inf")), s)
    print(json.dumps(results))


# ---------------------------------------------------------------------------------------
# The parent: extracts the old package, alternates the children, prints ratios
# ---------------------------------------------------------------------------------------


def _extract(base: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", base, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run_child(mode: str, src: Path, min_time: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--min-time", str(min_time)],
        env=env, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir(),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="children of each kind, alternating")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per timed run")
    parser.add_argument("--base", default="39c3403", help="the commit to compare with")
    parser.add_argument("--child", choices=["before", "now"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.min_time)
        return
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_src = _extract(args.base, Path(tmp))
        for i in range(args.rounds):
            order = [("before", old_src), ("now", ROOT / "src")]
            for mode, src in order if i % 2 == 0 else order[::-1]:
                for key, seconds in _run_child(mode, src, args.min_time).items():
                    name = key if mode == "now" else f"{key} (before)"
                    best[name] = min(best.get(name, float("inf")), seconds)
            print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    import torch

    print(f"torch {torch.__version__}, one thread, best of {args.rounds} alternating children each way")
    print()
    print("| measurement | before (ms) | now (ms) | now / before | now, no checks (ms) | cost of the checks |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key in ("bitlinear", "gpt step"):
        before, now, off = best[f"{key} (before)"], best[key], best[f"{key} (no checks)"]
        print(f"| {key} | {before * 1e3:.3f} | {now * 1e3:.3f} | {now / before:.3f} | {off * 1e3:.3f} "
              f"| {100 * (now / off - 1):+.1f} % |")
    print()
    print("now / before below 1: faster than before. Cost of the checks: how much longer a call takes")
    print("with the checks that remain than with every check function replaced by a no-op.")


if __name__ == "__main__":
    main()
