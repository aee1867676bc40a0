"""Figures of the softmax page."""

from __future__ import annotations

from sitetools.figures import Theme, figure


@figure("softmax-temperature")
def softmax_temperature(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import softmax_with_temperature

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -2.0])
    temps = [0.25, 0.5, 1.0, 2.0, 5.0]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(temps)
    for k, t in enumerate(temps):
        p = softmax_with_temperature(logits, t)
        xs = [i + (k - (len(temps) - 1) / 2) * width for i in range(len(logits))]
        ax.bar(xs, p.tolist(), width=width, label=f"T = {t:g}", color=theme.cycle(k))
    ax.axhline(1 / len(logits), color=theme.muted, linestyle="--", linewidth=1)
    ax.text(len(logits) - 0.5, 1 / len(logits) + 0.02, "uniform 1/6", color=theme.muted, ha="right", fontsize=9)
    ax.set_xticks(range(len(logits)), [f"z = {v:g}" for v in logits.tolist()])
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title("The same six logits at five temperatures")
    ax.legend(ncols=5, loc="upper right", fontsize=9)
    ax.grid(axis="x", visible=False)
    return fig
