"""Training steps per second of the GPT with per-head attention against the fused attention.

Plain script, not run by the tests:

    python benchmarks/train_steps.py [--threads N] [--steps 30] [--rounds 3] [--lecture]

For each configuration it builds a ``GPTLanguageModel`` with the per-head attention (the
notes' parameter names) and its ``to_fused()`` copy, checks that both give the same loss, and
times full training steps (batch, forward, backward, AdamW step) of each on random token ids,
interleaved round by round, best round kept. Configurations:

* ``notes``   vocab 65, block 8,  n_embd 64, 4 heads, 4 layers, batch 32 (the notes' listing)
* ``bench``   vocab 65, block 32, n_embd 64, 4 heads, 4 layers, batch 16
* ``lecture`` vocab 65, block 256, n_embd 384, 6 heads, 6 layers, batch 64, only with --lecture
  (the final size of the lecture; seconds per step on a CPU)

Ratios above 1 mean the fused model trains faster.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from gptnotes import GPTLanguageModel, get_batch

CONFIGS = {
    "notes": dict(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4, batch=32),
    "bench": dict(vocab_size=65, block_size=32, n_embd=64, n_head=4, n_layer=4, batch=16),
    "lecture": dict(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, batch=64),
}


def make_step(model, data, block_size, batch, dev, sync):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)

    def step():
        x, y = get_batch(data, block_size, batch, generator=g)
        _, loss = model(x.to(dev), y.to(dev))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--steps", type=int, default=30, help="steps per round and model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lecture", action="store_true", help="also the lecture's final size (slow on CPU)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    data = torch.randint(65, (100_000,), generator=torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, {platform.machine()}, device {dev}, {torch.get_num_threads()} threads; "
          f"best of {args.rounds} rounds of {args.steps} steps")
    print(f"{'config':>8} {'params':>9} | {'ms/step heads':>13} {'ms/step fused':>13} | "
          f"{'steps/s heads':>13} {'steps/s fused':>13} | {'ratio':>5}")
    for name, cfg in CONFIGS.items():
        if name == "lecture" and not args.lecture:
            continue
        cfg = dict(cfg)
        batch = cfg.pop("batch")
        torch.manual_seed(0)
        heads = GPTLanguageModel(**cfg).to(dev)
        fused = heads.to_fused()
        x, y = get_batch(data, cfg["block_size"], batch, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            diff = abs(heads(x.to(dev), y.to(dev))[1].item() - fused(x.to(dev), y.to(dev))[1].item())
        assert diff < 1e-4, f"losses differ by {diff}"
        steps = {"heads": make_step(heads, data, cfg["block_size"], batch, dev, sync),
                 "fused": make_step(fused, data, cfg["block_size"], batch, dev, sync)}
        n = args.steps if name != "lecture" else max(2, args.steps // 10)
        for fn in steps.values():  # warm-up
            fn()
            fn()
        best = {k: float("inf") for k in steps}
        for _ in range(args.rounds):
            for k, fn in steps.items():
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                best[k] = min(best[k], (time.perf_counter() - t0) / n * 1e3)
        n_params = sum(p.numel() for p in heads.parameters())
        print(f"{name:>8} {n_params:>9} | {best['heads']:>13.2f} {best['fused']:>13.2f} | "
              f"{1e3 / best['heads']:>13.1f} {1e3 / best['fused']:>13.1f} | {best['heads'] / best['fused']:>5.2f}")


if __name__ == "__main__":
    main()
