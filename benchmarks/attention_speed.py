"""Speed of the per-head attention (teaching path) against the fused one (fast path).

Plain script, not run by the tests:

    python benchmarks/attention_speed.py [--threads N] [--batch 16] [--rounds 5] [--min-time 0.2]

For each sequence length T it builds a ``MultiHeadAttention`` (one ``Head`` module per head,
an explicit softmax over a masked ``(T, T)`` score matrix per head) and the
``CausalSelfAttention`` holding the same weights (one matrix product for Q, K, V of all heads
and ``F.scaled_dot_product_attention(is_causal=True)``), checks that they agree, and times
forward and forward+backward of both, side by side in one run: the candidates are interleaved
round by round and the best round of each is kept (on a shared machine the minimum is the
least disturbed measurement). Ratios above 1 mean the fused layer is faster.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from gptnotes import CausalSelfAttention, MultiHeadAttention

T_VALUES = [8, 32, 128, 256]


def best_ms(fns: dict, rounds: int, min_time: float) -> dict:
    """Time each function in turn, ``rounds`` times; return the best milliseconds per call."""
    loops = {}
    for name, fn in fns.items():  # warm up and choose a loop count per function
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-6)
        loops[name] = max(1, int(min_time / one))
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / loops[name] * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per round and candidate")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    C, nh = args.n_embd, args.n_head
    hs = C // nh
    print(f"torch {torch.__version__}, {platform.machine()}, device {dev}, {torch.get_num_threads()} threads; "
          f"B={args.batch}, C={C}, {nh} heads of {hs}; best of {args.rounds} rounds, ms per call")
    print(f"{'T':>5} | {'fwd heads':>10} {'fwd fused':>10} {'ratio':>6} | {'f+b heads':>10} {'f+b fused':>10} {'ratio':>6}")
    for T in T_VALUES:
        torch.manual_seed(0)
        mha = MultiHeadAttention(C, nh, hs, block_size=T).to(dev)
        fused = CausalSelfAttention.from_multi_head(mha)
        x = torch.randn(args.batch, T, C, device=dev)
        with torch.no_grad():
            err = (mha(x) - fused(x)).abs().max().item()
        assert err < 1e-4, f"the two paths disagree by {err}"
        xg = x.clone().requires_grad_()

        def fwd(m):
            def run():
                with torch.no_grad():
                    m(x)
                sync()
            return run

        def fwd_bwd(m):
            def run():
                m.zero_grad(set_to_none=True)
                m(xg).sum().backward()
                sync()
            return run

        t = best_ms({"fh": fwd(mha), "ff": fwd(fused), "bh": fwd_bwd(mha), "bf": fwd_bwd(fused)}, args.rounds, args.min_time)
        print(f"{T:>5} | {t['fh']:>10.3f} {t['ff']:>10.3f} {t['fh'] / t['ff']:>6.2f} | "
              f"{t['bh']:>10.3f} {t['bf']:>10.3f} {t['bh'] / t['bf']:>6.2f}")


if __name__ == "__main__":
    main()
