"""Figures of the BitNet b1.58 pages.

Two cheap figures (entropy of a ternary weight, zeros made by a fixed threshold), and two
figures and a table that draw one training run, the experiment
``sitetools.experiments.bitnet_vs_float``: the small GPT of the site trained twice from the
same initial weights, once with full-precision linear layers and once with BitLinear in every
block. The run takes some seconds (a few tens on a busy machine), happens once per build
process (the experiment memoises it) and, like every figure, is cached on disk until the
package, this module or the experiment's module changes.
"""

from __future__ import annotations

import math

from sitetools.experiments import bitnet_vs_float
from sitetools.figures import Theme, figure, table

#: The experiment's source is part of the render cache's key: a change to it re-renders the
#: figures and the table that show its run (sitetools/figures/__init__.py, _cache_key).
INPUTS = (bitnet_vs_float.__file__,)


def _smooth(values: list[float], k: int = 15) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


@figure("bitnet-gpt-loss")
def gpt_loss(theme: Theme):
    import matplotlib.pyplot as plt

    run = bitnet_vs_float.site_run()
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    labels = {"fp": "full precision (float32 weights)", "bit": "BitNet b1.58 (BitLinear in every block)"}
    for k, key in enumerate(("fp", "bit")):
        h = run["histories"][key]
        color = theme.cycle(k)
        ax.plot(h.steps, _smooth(h.losses), color=color, linewidth=1.0, alpha=0.55)
        val = [e["val"] for e in h.eval_losses]
        ax.plot(h.eval_steps, val, color=color, linewidth=2.0, marker="o", markersize=4, label=f"{labels[key]}: validation")
    ax.plot([], [], color=theme.muted, linewidth=1.0, alpha=0.7, label="thin lines: training batches (moving average of 15)")
    ptq = run["results"]["ptq"]["val"]
    last = run["histories"]["fp"].eval_steps[-1]
    ax.plot([last], [ptq], marker="X", markersize=9, linestyle="none", color=theme.cycle(2),
            label="full-precision model, weights ternarised after training")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title("The small GPT trained twice\nfrom the same start, on the same batches")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17))  # below the axes: the curves fill them
    return fig


@table("bitnet-gpt-results")
def gpt_results() -> str:
    run = bitnet_vs_float.site_run()
    settings = bitnet_vs_float.SETTINGS
    res = run["results"]
    rows = [
        ("Full precision", res["fp"]),
        ("BitNet b1.58, trained with BitLinear", res["bit"]),
        ("BitNet b1.58, integer inference path", res["int"]),
        ("Full precision, ternarised after training", res["ptq"]),
    ]
    base = res["fp"]["val"]
    lines = ["| model | train loss | val loss | val gap |", "| --- | ---: | ---: | ---: |"]
    for i, (name, r) in enumerate(rows):
        gap = "—" if i == 0 else f"{r['val'] - base:+.3f}"
        lines.append(f"| {name} | {r['train']:.3f} | {r['val']:.3f} | {gap} |")
    same = "the same logits, bit for bit" if run["same_logits"] else "**different** logits"
    lines += [
        "",
        f"Same initial weights, same batches: {settings['steps']} steps of batch {settings['batch_size']}. "
        f"Each loss is the mean over the same {settings['final_batches']} batches of {settings['final_batch_size']} "
        "sequences per split; the val gap is the val loss minus that of full precision. "
        f"Integer inference path against BitNet in eval mode: {same}.",
    ]
    return "\n".join(lines)


@figure("bitnet-ternary-histogram")
def ternary_histogram(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import tensor_entropy_bits

    run = bitnet_vs_float.site_run()
    w = run["master"].flatten()
    t = run["ternary"].flatten()
    gamma = run["gamma"]
    # Stacked, not side by side: the column is too narrow for two panels with legible text.
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(6.2, 6.2), gridspec_kw={"height_ratios": [2.0, 1]})
    lim = float(w.abs().max())
    bins = torch.linspace(-lim, lim, 81)
    colors = {-1: theme.cycle(1), 0: theme.muted, 1: theme.cycle(0)}
    for value, lo, hi in ((-1, -lim, -gamma / 2), (0, -gamma / 2, gamma / 2), (1, gamma / 2, lim)):
        part = w[(t == value)]
        ax.hist(part.tolist(), bins=bins.tolist(), color=colors[value], alpha=0.85)
    for x in (-gamma / 2, gamma / 2):
        ax.axvline(x, color=theme.fg, linestyle="--", linewidth=1)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.16)  # room above the bars for the labels of the thresholds
    ax.text(gamma / 2, top * 1.05, " +γ/2", color=theme.fg, va="bottom")
    ax.text(-gamma / 2, top * 1.05, "−γ/2 ", color=theme.fg, ha="right", va="bottom")
    ax.set_xlabel(f"master weight (γ = mean |W| = {gamma:.4f})")
    ax.set_ylabel("number of weights")
    ax.set_title(f"Trained master weights of {bitnet_vs_float.HIST_LAYER}")
    counts = [int((t == v).sum()) for v in (-1, 0, 1)]
    bars = bx.barh(["−1", "0", "+1"], counts, color=[colors[-1], colors[0], colors[1]], height=0.7)
    for bar, c in zip(bars, counts):
        bx.annotate(f"{c:,} ({c / len(t):.1%})", (c, bar.get_y() + bar.get_height() / 2), xytext=(4, 0),
                    textcoords="offset points", ha="left", va="center", color=theme.fg)
    bx.set_xlim(0, max(counts) * 1.45)
    bx.set_ylabel("ternary value")
    bx.set_xlabel("number of weights")
    bx.set_title(f"After RoundClip: {tensor_entropy_bits(t):.3f} bits per weight")
    bx.grid(axis="y", visible=False)
    fig.tight_layout(h_pad=1.5)
    return fig


# --------------------------------------------------------------------------------------
# Cheap figures
# --------------------------------------------------------------------------------------


@figure("bitnet-ternary-entropy")
def ternary_entropy(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import Linear, entropy_bits, tensor_entropy_bits, weight_quant

    p0s = [i / 200 for i in range(201)]
    hs = [entropy_bits([(1 - p) / 2, p, (1 - p) / 2]) for p in p0s]
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    ax.plot(p0s, hs, color=theme.cycle(0), linewidth=2, label="H of {−1, 0, +1} with P(−1) = P(+1)")
    ax.axhline(2.0, color=theme.muted, linestyle=":", linewidth=1.2)
    ax.text(0.99, 2.0, "2-bit codes: 2 bits ", color=theme.muted, ha="right", va="bottom")
    ax.axhline(1.6, color=theme.cycle(1), linestyle="--", linewidth=1.2)
    ax.text(0.99, 1.6, "5 per byte (3⁵ = 243 ≤ 256): 1.6 bits ", color=theme.cycle(1), ha="right", va="bottom")
    ax.axhline(1.0, color=theme.muted, linestyle=":", linewidth=1.2)
    ax.text(0.99, 1.0, "binary: 1 bit ", color=theme.muted, ha="right", va="bottom")
    points = [(1 / 3, math.log2(3), "equally likely: log₂3 ≈ 1.585")]
    g = torch.Generator().manual_seed(0)
    gauss, _ = weight_quant(torch.randn(512, 512, generator=g))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        uniform, _ = weight_quant(Linear(512, 512).weight)
    for name, t in (("Gaussian weights", gauss), ("nn.Linear's initial weights", uniform)):
        points.append((float((t == 0).float().mean()), tensor_entropy_bits(t), name))
    for k, (x, y, name) in enumerate(points):
        ax.plot([x], [y], marker="o", markersize=7, color=theme.cycle(k + 2), linestyle="none",
                label=f"{name} ({x:.2f} zeros, {y:.3f} bits)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 2.15)
    ax.set_xlabel("fraction of zeros P(0)")
    ax.set_ylabel("bits per weight")
    ax.set_title("Entropy of a ternary weight,\nand what real codes spend")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17))
    return fig


@figure("bitnet-threshold-zeros")
def threshold_zeros(theme: Theme):
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.ticker import FuncFormatter

    from gptnotes import Linear, ternary_threshold, weight_quant

    g = torch.Generator().manual_seed(0)
    weights = {"torch.randn (std 1)": torch.randn(256, 256, generator=g)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for c_in in (64, 1024):
            weights[f"nn.Linear init, C_in = {c_in}"] = Linear(c_in, 256).weight.detach()
    thresholds = torch.logspace(-3, 0.3, 120)
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for k, (name, w) in enumerate(weights.items()):
        # share of weights that ternary_threshold(w, t) sets to 0, i.e. with |w| <= t,
        # for all thresholds at once (checked against ternary_threshold at one of them)
        sorted_abs = w.abs().flatten().sort().values
        zeros = (torch.searchsorted(sorted_abs, thresholds, right=True) / w.numel()).tolist()
        assert zeros[60] == float((ternary_threshold(w, thresholds[60].item()) == 0).float().mean())
        ax.plot(thresholds.tolist(), zeros, color=theme.cycle(k), linewidth=2, label=name)
        ternary, gamma = weight_quant(w)
        ax.plot([float(gamma) / 2], [float((ternary == 0).float().mean())], marker="o", markersize=8,
                color=theme.cycle(k), markeredgecolor=theme.fg)
    for t in (0.05, 0.5):
        ax.axvline(t, color=theme.muted, linestyle="--", linewidth=1)
        ax.text(t, 1.02, f" {t}", color=theme.muted)
    ax.plot([], [], marker="o", linestyle="none", color=theme.muted, markeredgecolor=theme.fg,
            label="absmean: threshold γ/2 found from the weights")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.01, not 10^-2
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("fixed threshold (weights with |w| below it become 0)")
    ax.set_ylabel("fraction of weights set to 0")
    ax.set_title("A fixed threshold:\nthe weights' scale decides, not the threshold")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17))
    return fig
