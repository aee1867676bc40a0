"""Figures of the attention page: learned attention patterns, and what the scale does."""

from __future__ import annotations

from sitetools.experiments import attention as experiment
from sitetools.figures import Theme, figure

INPUTS = (experiment.__file__,)  # the experiments' source is part of the render cache's key
_SHOWN = {" ": "␣", "\n": "⏎"}
SAMPLE = "MARA:\nThe lamp is lit, the"


@figure("attention-patterns")
def attention_patterns(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    run = experiment.corpus_run()
    tok, model, losses = run.tok, run.model, run.losses
    idx = torch.tensor([tok.encode(SAMPLE)])  # (1, T)
    maps = model.attention_maps(idx)[0, 0]  # layer 0, sequence 0: (nh, T, T)
    T = idx.shape[1]
    labels = [_SHOWN.get(c, c) for c in SAMPLE]
    # Two by two, as wide as the column: 25 characters a side leave about 9 pt per row.
    fig, axes = plt.subplots(2, 2, figsize=(7.3, 8.0), sharex=True, sharey=True)
    for h, ax in enumerate(axes.flat):
        w = maps[h]
        itself = w.diagonal().mean().item()
        previous = w.diagonal(offset=-1).mean().item()
        ax.imshow(w.numpy(), cmap=theme.cmap, vmin=0.0, vmax=1.0)
        ax.set_xticks(range(T), labels, fontsize=10.5)
        ax.set_yticks(range(T), labels, fontsize=10.5)
        ax.tick_params(length=0, pad=2)
        ax.grid(False)
        ax.set_title(f"head {h}: previous {previous:.0%}, itself {itself:.0%}", fontsize=12)
        if h >= 2:
            ax.set_xlabel("key: position looked at")
        if h % 2 == 0:
            ax.set_ylabel("query: position looking")
    fig.suptitle(f"Layer 0 of a small GPT after {experiment.PATTERN_RUN['steps']} steps (validation loss {losses['val']:.2f}).\n"
                 "Each row: one position's attention weights over its past;\n"
                 "titles: mean weight on the previous character and on itself")
    fig.tight_layout(h_pad=2.2, w_pad=0.6)
    return fig


@figure("attention-scale")
def attention_scale(theme: Theme):
    import matplotlib.pyplot as plt

    from gptnotes import causal_mask, softmax

    T, hs, C, scores = experiment.scale_experiment()
    mask = ~causal_mask(T)
    cases = [("no scale", 1.0), ("head_size ** -0.5 (right)", hs**-0.5), ("C ** -0.5 (too small)", C**-0.5)]
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    width = 0.8 / len(cases)
    for i, (name, scale) in enumerate(cases):
        s = scores * scale
        w = softmax(s.masked_fill(mask, float("-inf")))[:, -1]  # last row: (samples, T)
        ranked = w.sort(dim=-1, descending=True).values.mean(dim=0)  # mean weight of the 1st, 2nd, ... largest
        xs = [j + (i - 1) * width for j in range(T)]
        ax.bar(xs, ranked.tolist(), width=width, color=theme.cycle(i),
               label=f"{name}: score variance {s.var().item():.2f}")
    ax.axhline(1 / T, color=theme.muted, linestyle="--", linewidth=1)
    ax.text(T - 0.5, 1 / T + 0.015, f"uniform 1/{T}", color=theme.muted, ha="right", va="bottom", fontsize=11)
    ordinals = {1: "1st", 2: "2nd", 3: "3rd"}
    ax.set_xticks(range(T), [ordinals.get(j + 1, f"{j + 1}th") for j in range(T)])
    ax.set_xlabel(f"the {T} attention weights of the last position, largest first")
    ax.set_ylabel("mean weight")
    ax.set_ylim(0, 1)
    ax.set_title(f"Random queries and keys of head size {hs}:\nthe scale sets how peaked attention is")
    ax.legend(loc="upper right")
    ax.grid(axis="x", visible=False)
    return fig
