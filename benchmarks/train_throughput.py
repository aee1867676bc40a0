"""Training throughput of the GPT on this machine, as a fraction of the machine's own limit.

Plain script, not run by the tests:

    python benchmarks/train_throughput.py                  # print the tables
    python benchmarks/train_throughput.py --write-results  # also write benchmarks/results/train_throughput.md

In one run it measures

* the limit: the float32 matrix multiply ``(2048 x 2048) @ (2048 x 2048)``, ``2 * 2048**3``
  floating-point operations, in GFLOP/s (billions per second) with the threads PyTorch uses,
  sustained over 16 products (about a second) per round: a single product can run at a
  higher clock than a processor keeps up while it trains;
* training tokens per second of ``GPTLanguageModel`` at two sizes, each trained from the same
  weights along a ladder of changes added one at a time (the ablation). The first rung is the
  per-head path as the lecture's script trains it; the fourth is the fast path, what
  ``gptnotes train --attention fused`` runs; the fifth adds ``--compile``:

  1. ``per-head``: one ``Head`` module per head, ``torch.optim.AdamW`` as the lecture uses it;
  2. ``+ fused attention``: one matrix for Q, K, V of all heads, ``scaled_dot_product_attention``;
  3. ``+ fused AdamW``: :func:`gptnotes.make_optimizer` (what :func:`gptnotes.train` uses);
  4. ``+ memory kept``: glibc keeps freed memory for the next step instead of returning it to
     the kernel (what :func:`gptnotes.train` does around its loop);
  5. ``+ torch.compile``: the forward pass (and so its backward) runs inside :func:`gptnotes.compiled`.

A training step is exactly a step of :func:`gptnotes.train` (its ``_train_step``): draw the
batch of ``(seed, step)`` with ``get_batch``, forward with the loss, ``zero_grad``, backward,
optimizer step, ``loss.item()``.

The FLOP count per trained token (forward and backward) is

    6 * N + 6 * L * T * C

with N the non-embedding parameters (blocks, final layer norm, lm_head), L the layers, T the
context, C the width: 6 * N for the matrix products with the weights (2 per weight forward, 4
backward) and 12 * L * T * C for the attention scores and the weighted sum, halved because
the causal mask leaves half of the T x T scores. Achieved GFLOP/s = tokens/s * FLOPs per
token; the fraction of the measured matmul limit says how much of the machine the training
uses. Element-wise work (layer norms, ReLU, softmax, AdamW) is not counted: it is the
overhead.

Other programs on the machine distort timings. All candidates (the matmul included) are
interleaved round by round and the best round of each is kept, and the load average is
reported with the numbers; run it on a quiet machine for numbers to publish. The first steps
of every candidate are a warm-up outside the measured rounds; for ``torch.compile`` they
include the compilation, whose time is reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

from gptnotes import GPTLanguageModel, compiled, make_optimizer
from gptnotes.speed import keep_freed_memory
from gptnotes.training import _train_step

from _machine import cpu_name  # benchmarks/_machine.py, beside this script

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.md"

CONFIGS = {
    # the site's small model with a longer context: per-operation overhead dominates
    "small": dict(vocab_size=65, block_size=32, n_embd=64, n_head=4, n_layer=4, batch=16),
    # the lecture's final model, 10.8 M parameters: matrix products dominate
    "lecture": dict(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, batch=64),
}
RUNGS = ["per-head", "+ fused attention", "+ fused AdamW", "+ memory kept", "+ torch.compile"]
FAST = RUNGS[3]  # what `gptnotes train --attention fused` runs; the last rung adds --compile
PEAK_N = 2048
PEAK_REPS = 16  # products per round: about a second, so the limit is a sustained rate, not a burst



def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def flops_per_token(model: GPTLanguageModel) -> int:
    """6 N + 6 L T C: N the non-embedding parameters, attention at half of 12 L T C (causal)."""
    cfg = model.config
    n_total = sum(p.numel() for p in model.parameters())
    n_embedding = model.token_embedding_table.weight.numel() + model.position_embedding_table.weight.numel()
    n = n_total - n_embedding
    return 6 * n + 6 * cfg.n_layer * cfg.block_size * cfg.n_embd


def matmul_candidate():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(PEAK_N, PEAK_N, generator=g)
    b = torch.randn(PEAK_N, PEAK_N, generator=g)
    return lambda: torch.mm(a, b)


class Rung:
    """One rung of the ladder: a model, an optimizer, and whether the model is compiled."""

    def __init__(self, name: str, model: GPTLanguageModel, optimizer, data, block_size: int, batch: int,
                 compile_: bool, keep: bool = False):
        self.name, self.model, self.optimizer = name, model, optimizer
        self.keep = keep
        self.data, self.block_size, self.batch = data, block_size, batch
        self.steps_done = 0
        self.compile = compile_
        self.status = None
        self._ctx = None
        self.warmup_s = 0.0

    def __enter__(self):
        if self.compile:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                self._ctx = compiled(self.model)
                self.status = self._ctx.__enter__()
            for w in caught:
                print(f"  note: {w.message}", file=sys.stderr)
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)

    def steps(self, n: int) -> list[float]:
        """``n`` steps; with ``keep``, inside the memory setting that train() uses (then undone)."""
        with keep_freed_memory() if self.keep else contextlib.nullcontext():
            return [self.step() for _ in range(n)]

    def timed_steps(self, n: int) -> float:
        """Seconds per step over ``n`` steps. With ``keep``, one untimed step first fills the
        kept memory, as the earlier steps of a run do inside :func:`gptnotes.train`."""
        with keep_freed_memory() if self.keep else contextlib.nullcontext():
            if self.keep:
                self.step()
            t0 = time.perf_counter()
            for _ in range(n):
                self.step()
            return (time.perf_counter() - t0) / n

    def step(self) -> float:
        self.steps_done += 1
        return _train_step(self.model, self.optimizer, self.data, self.block_size, self.batch,
                           seed=0, step=self.steps_done, device=torch.device("cpu"))


def build_rungs(cfg: dict, data: torch.Tensor, use_compile: bool, only: str | None = None) -> list[Rung]:
    """The rungs of the ladder, every model starting from the same weights (``only``: just that one)."""
    cfg = dict(cfg)
    batch = cfg.pop("batch")
    torch.manual_seed(0)
    heads = GPTLanguageModel(**cfg)
    names = [n for n in RUNGS if use_compile or n != RUNGS[4]]
    rungs = []
    for name in names:
        if only is not None and name != only:
            continue
        model = heads if name == RUNGS[0] else heads.to_fused()
        if name in RUNGS[:2]:  # the lecture's optimizer: a loop over the parameters
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        else:
            optimizer = make_optimizer(model, lr=1e-3)
        rungs.append(Rung(name, model, optimizer, data, cfg["block_size"], batch, name == RUNGS[4], keep=name in RUNGS[3:]))
    return rungs


def measure(name: str, cfg: dict, data: torch.Tensor, rounds: int, steps: int, use_compile: bool) -> dict:
    """Interleave the matmul and every rung, ``rounds`` times; keep the best of each."""
    rungs = build_rungs(cfg, data, use_compile)
    mm = matmul_candidate()
    for r in rungs:
        r.__enter__()
    try:
        losses = {}
        for r in rungs:  # warm-up: first steps (and compilation) outside the measured rounds
            t0 = time.perf_counter()
            losses[r.name] = r.steps(2)
            r.warmup_s = time.perf_counter() - t0
            print(f"  {name:>7} {r.name:<18} warm-up {r.warmup_s:6.1f} s, losses {losses[r.name]}", file=sys.stderr, flush=True)
        first = losses[RUNGS[0]]
        for r in rungs:  # the same weights and batches: the same losses along the ladder
            assert abs(losses[r.name][0] - first[0]) < 1e-4, (r.name, losses[r.name], first)
        mm()
        best_mm = float("inf")
        best = {r.name: float("inf") for r in rungs}
        candidates = [None, *rungs]  # None: the matmul
        for i in range(rounds):
            k = i % len(candidates)  # a different candidate goes first in every round
            for r in candidates[k:] + candidates[:k]:
                if r is None:  # sustained, about a second, like the training steps
                    t0 = time.perf_counter()
                    for _ in range(PEAK_REPS):
                        mm()
                    best_mm = min(best_mm, (time.perf_counter() - t0) / PEAK_REPS)
                    continue
                best[r.name] = min(best[r.name], r.timed_steps(steps))
            print(f"  {name:>7} round {i + 1}/{rounds}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in best.items())
                  + f", load {load_average()}", file=sys.stderr, flush=True)
    finally:
        for r in reversed(rungs):
            r.__exit__(None, None, None)
    model = rungs[0].model
    fpt = flops_per_token(model)
    tokens = cfg["block_size"] * cfg["batch"]
    peak = 2 * PEAK_N**3 / best_mm / 1e9
    rows = []
    for r in rungs:
        tps = tokens / best[r.name]
        gflops = tps * fpt / 1e9
        rows.append(dict(rung=r.name, ms=best[r.name] * 1e3, tps=tps, gflops=gflops, frac=gflops / peak,
                         speedup=best[RUNGS[0]] / best[r.name], warmup=r.warmup_s,
                         compiled=None if r.status is None else r.status.active))
    n_params = sum(p.numel() for p in model.parameters())
    return dict(name=name, cfg=cfg, rows=rows, peak=peak, fpt=fpt, tokens=tokens, params=n_params)


def profile_table(cfg: dict, data: torch.Tensor, rung_name: str, use_compile: bool, row_limit: int = 10) -> str:
    """torch.profiler's top operations by self CPU time over one training step."""
    from torch.profiler import ProfilerActivity, profile

    (r,) = build_rungs(cfg, data, use_compile, only=rung_name)
    with r:
        r.steps(2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            r.steps(1)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit, max_name_column_width=48)
    return "\n".join(line.rstrip() for line in table.strip().splitlines())


def markdown(results: list[dict], info: dict, profiles: dict) -> str:
    out = [
        "<!-- Written by `python benchmarks/train_throughput.py --write-results`; do not edit by hand. -->",
        "",
        f"Measured on {info['date']} on **{info['cpu']}**, {info['cores']} cores "
        f"({info['threads']} PyTorch threads), torch {info['torch']}, Python {info['python']}; "
        f"load average (1, 5, 15 min) {info['load_before']} before and {info['load_after']} after. "
        f"Best of {info['rounds']} interleaved rounds.",
        "",
        f"**Limit (float32 matmul {PEAK_N}³, {PEAK_REPS} in a row):** "
        + ", ".join(f"{r['peak']:.0f} GFLOP/s (during the {r['name']} rounds)" for r in results),
        "",
        "The fast path is what `gptnotes train --attention fused` runs (rungs 1 to 4 of the ablation); "
        "`--compile` adds the last rung.",
        "",
        "| configuration | path | tokens/s | GFLOP/s | % of the matmul limit |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        rows = {row["rung"]: row for row in r["rows"]}
        paths = [("per-head", RUNGS[0]), ("fast", FAST), ("fast + torch.compile", RUNGS[4])]
        for label, rung in paths:
            if rung in rows:
                row = rows[rung]
                out.append(f"| {r['name']} | {label} | {row['tps']:,.0f} | {row['gflops']:.1f} | {100 * row['frac']:.1f} % |")
    out += ["", "**Ablation** (each change added to the ones above it):", ""]
    for r in results:
        c = r["cfg"]
        out += [
            f"*{r['name']}*: vocab {c['vocab_size']}, n_embd {c['n_embd']}, {c['n_head']} heads, {c['n_layer']} layers, "
            f"block {c['block_size']}, batch {c['batch']}; {r['params']:,} parameters; "
            f"{r['fpt'] / 1e6:.2f} MFLOP per token, {r['tokens']:,} tokens per step.",
            "",
            "| change | ms/step | tokens/s | GFLOP/s | % of limit | speed-up | warm-up (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in r["rows"]:
            note = "" if row["compiled"] is not False else " (fell back to eager)"
            out.append(f"| {row['rung']}{note} | {row['ms']:.1f} | {row['tps']:,.0f} | {row['gflops']:.1f} | "
                       f"{100 * row['frac']:.1f} % | {row['speedup']:.2f}x | {row['warmup']:.1f} |")
        out.append("")
    out.append("The warm-up is the first two steps, outside the measured rounds; for `+ torch.compile` it includes "
               "compiling the model (less when Inductor's cache in the temporary folder already holds the kernels).")
    for title, table in profiles.items():
        out += ["", f"**Where the time goes: {title}** (torch.profiler, one step, top operations by self CPU time)", "",
                "```text", table, "```"]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-results", action="store_true", help=f"write {RESULTS.relative_to(RESULTS.parents[2])}")
    ap.add_argument("--configs", default="small,lecture", help="comma-separated: small, lecture")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds (best kept)")
    ap.add_argument("--small-steps", type=int, default=20, help="steps per round, small configuration")
    ap.add_argument("--lecture-steps", type=int, default=1, help="steps per round, lecture configuration")
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rung")
    ap.add_argument("--no-profile", action="store_true", help="leave out the profiles")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"--configs: unknown configuration {n!r}; choose from {', '.join(CONFIGS)}")
    info = dict(
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})", cores=os.cpu_count(),
        threads=torch.get_num_threads(), torch=torch.__version__, python=platform.python_version(),
        load_before=load_average(), rounds=args.rounds,
    )
    print(f"{info['cpu']}, {info['cores']} cores, {info['threads']} threads, torch {info['torch']}; "
          f"load average {info['load_before']}", file=sys.stderr)
    data = torch.randint(65, (200_000,), generator=torch.Generator().manual_seed(0))
    results = []
    for n in names:
        steps = args.small_steps if n == "small" else args.lecture_steps
        results.append(measure(n, CONFIGS[n], data, args.rounds, steps, not args.no_compile))
    info["load_after"] = load_average()
    profiles = {}
    if not args.no_profile:
        for n in names:
            for rung in (RUNGS[0], FAST):
                print(f"  profiling {n} {rung}", file=sys.stderr, flush=True)
                profiles[f"{n}, {rung}"] = profile_table(CONFIGS[n], data, rung, not args.no_compile)
    text = markdown(results, info, profiles)
    print(text)
    if args.write_results:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
