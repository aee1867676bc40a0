"""Speed and memory of BitLinear's integer inference path against a float32 linear layer.

Plain script, not run by the tests:

    python benchmarks/bitnet_speed.py [--threads N] [--min-time SECONDS] [--write PATH]

``--write benchmarks/results/bitnet_speed.md`` also writes the speed table as Markdown, stamped
with the date, the CPU, the number of threads and the torch version; the BitNet page of the
site includes that file as it is (nothing in it is typed by hand).

For each layer size (C_in -> C_out) and number of tokens N (= B*T), it times, side by side
in one run (candidates interleaved round by round; the best round of each is kept, since
on a shared machine the minimum is the least disturbed measurement):

* ``fp32``      F.linear(x, W) in float32: the baseline;
* ``int path``  BitLinearInference(x): RMSNorm + per-token int8 quantisation + int8 x int8
                -> int32 matmul (torch._int_mm) + rescale, everything BitLinear does at inference;
* ``int mm``    only the int8 matmul (torch._int_mm) of already-quantised operands;
* ``int32 mm``  the portable fallback: widen to int32 and torch.matmul (no BLAS kernel);
* ``sim``       BitLinear's float forward in eval mode (fake quantisation, float matmul);

and prints the times with their ratio to ``fp32`` (above 1 = slower than float32). Then it
prints the bytes one weight matrix takes in fp32, fp16, int8, 2-bit and 1.6-bit packing,
measured from the packed tensors.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gptnotes.bitnet import BitLinear, activation_quant, int8_matmul, weight_memory_report
from gptnotes.bitnet.inference import _int8_matmul_int32

from _machine import cpu_name  # benchmarks/_machine.py, beside this script

SIZES = [(256, 256), (1024, 1024), (1024, 4096), (4096, 4096)]
TOKENS = [1, 64, 512]


def best_us(fns: dict, rounds: int, min_time: float) -> dict:
    """Time each function in turn, ``rounds`` times; return the best microseconds per call."""
    loops = {}
    for name, fn in fns.items():  # warm up, and pick a loop count worth about min_time / rounds
        fn()
        start = time.perf_counter()
        fn()
        loops[name] = max(1, int(min_time / rounds / max(time.perf_counter() - start, 1e-7)))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / loops[name] * 1e6)
    return best



def markdown_table(rows: list[dict], threads: int) -> str:
    """The speed table as Markdown, with the machine and the date it was measured on."""
    stamp = (
        f"Measured {datetime.date.today().isoformat()} on {cpu_name()} ({threads} thread"
        f"{'s' if threads != 1 else ''}, CPU capability {torch.backends.cpu.get_cpu_capability()}), "
        f"torch {torch.__version__}, by `benchmarks/bitnet_speed.py`. Each number is the time of one "
        "call divided by the time of `F.linear` in float32 on the same input, measured side by side "
        "(best of several rounds): below 1 is faster than float32, above 1 slower. Integer path: "
        "the whole inference layer (RMSNorm, int8 activations, int8 x int8 -> int32 product, "
        "rescale). int8 matmul only: the product of already quantised operands. int32 fallback: "
        "the same product by widening to int32 (no fast kernel; not run for the largest sizes). "
        "Training forward: BitLinear's float forward in eval mode (fake quantisation)."
    )
    lines = [
        stamp,
        "",
        "| C_in → C_out | tokens N | float32 `F.linear` | integer path | int8 matmul only "
        "| int32 fallback | training forward |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        i32 = f"{r['i32'] / r['fp']:.2f}×" if "i32" in r else "not run"
        lines.append(
            f"| {r['c_in']}→{r['c_out']} | {r['n']} | {r['fp']:.1f} µs | {r['int'] / r['fp']:.2f}× "
            f"| {r['mm'] / r['fp']:.2f}× | {i32} | {r['sim'] / r['fp']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per candidate and size")
    parser.add_argument("--write", type=Path, default=None, help="also write the speed table as Markdown here")
    args = parser.parse_args()
    rows: list[dict] = []
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}\n")
    head = f"{'C_in->C_out':>12} {'N':>4} | {'fp32 us':>9} | {'int path':>9} {'x':>6} | {'int mm':>9} {'x':>6} | {'int32 mm':>10} {'x':>6} | {'sim':>9} {'x':>6}"
    print(head)
    print("-" * len(head))
    with torch.inference_mode():
        for c_in, c_out in SIZES:
            layer = BitLinear(c_in, c_out).eval()
            frozen = layer.quantize()
            w = layer.weight.detach().clone()
            for n in TOKENS:
                x = torch.randn(n, c_in)
                codes, _ = activation_quant(frozen.norm(x))
                wt = frozen.ternary.t()
                fns = {
                    "fp": lambda: F.linear(x, w),
                    "int": lambda: frozen(x),
                    "mm": lambda: int8_matmul(codes, wt),
                    "sim": lambda: layer(x),
                }
                if c_in * c_out * n <= 1024 * 4096 * 64:  # the fallback takes seconds beyond this
                    fns["i32"] = lambda: _int8_matmul_int32(codes, wt)
                t = best_us(fns, args.rounds, args.min_time)
                rows.append({"c_in": c_in, "c_out": c_out, "n": n, **t})
                t_fp, t_int, t_mm, t_sim = t["fp"], t["int"], t["mm"], t["sim"]
                if "i32" in t:
                    s32 = f"{t['i32']:10.1f} {t['i32'] / t_fp:6.2f}"
                else:
                    s32 = f"{'skipped':>10} {'':>6}"
                print(
                    f"{f'{c_in}->{c_out}':>12} {n:>4} | {t_fp:9.1f} | {t_int:9.1f} {t_int / t_fp:6.2f} | "
                    f"{t_mm:9.1f} {t_mm / t_fp:6.2f} | {s32} | {t_sim:9.1f} {t_sim / t_fp:6.2f}"
                )

    print("\nMemory of one weight matrix (bytes, measured from the tensors; ternary formats include the 4-byte scale)")
    keys = ["fp32", "fp16", "int8", "2-bit", "1.6-bit"]
    print(f"{'C_in->C_out':>12} | " + " | ".join(f"{k:>10}" for k in keys) + " | fp32 / 1.6-bit | bits per weight (1.6-bit)")
    for c_in, c_out in SIZES:
        report = weight_memory_report(torch.empty(c_out, c_in).uniform_(-1, 1))
        bits = (report["1.6-bit"] - 4) * 8 / (c_in * c_out)
        print(
            f"{f'{c_in}->{c_out}':>12} | " + " | ".join(f"{report[k]:>10}" for k in keys)
            + f" | {report['fp32'] / report['1.6-bit']:14.2f} | {bits:.4f}"
        )


    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(markdown_table(rows, torch.get_num_threads()), encoding="utf-8")
        print(f"\nwrote {args.write}")


if __name__ == "__main__":
    main()
