"""Figures of the bigram page: the learned next-character table and the loss curves."""

from __future__ import annotations

from sitetools.experiments import bigram as experiment
from sitetools.figures import Theme, figure

INPUTS = (experiment.__file__,)  # the experiment's source is part of the render cache's key
_SHOWN = {" ": "␣", "\n": "⏎"}


def _label(ch: str) -> str:
    return _SHOWN.get(ch, ch)


@figure("bigram-table")
def bigram_table(theme: Theme):
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.colors import PowerNorm

    run = experiment.corpus_run()
    tok, counts, model = run.tok, run.counts, run.full
    shown = 24
    order = torch.argsort(counts.sum(dim=1), descending=True)[:shown]  # the most frequent characters
    with torch.no_grad():
        probs = model.log_prob_table().exp()[order][:, order]  # (shown, shown)
    labels = [_label(tok.chars[i]) for i in order.tolist()]
    fig, ax = plt.subplots(figsize=(7.0, 6.6))
    # a square-root colour scale, so that probabilities of a few percent are visible too
    im = ax.imshow(probs.numpy(), cmap=theme.cmap, norm=PowerNorm(0.5, vmin=0.0, vmax=float(probs.max())))
    ax.set_xticks(range(len(labels)), labels, fontsize=12)
    ax.set_yticks(range(len(labels)), labels, fontsize=12)
    ax.tick_params(length=0)
    ax.grid(False)
    ax.set_xlabel("next character")
    ax.set_ylabel("current character")
    ax.set_title(f"p(next | current) learned by the bigram model\n(the {shown} most frequent characters of the package corpus)")
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("probability (square-root scale)")
    bar.outline.set_edgecolor(theme.muted)
    return fig


@figure("bigram-loss")
def bigram_loss(theme: Theme):
    import math

    import matplotlib.pyplot as plt

    run = experiment.corpus_run()
    optimum, full_losses, mini_losses = run.optimum, run.full_losses, run.mini_losses
    V = run.tok.vocab_size
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    ax.plot(range(len(full_losses)), full_losses, color=theme.cycle(0), linewidth=2,
            label="full batch: Adam on the exact loss (fit_to_counts)")
    ax.plot(range(len(mini_losses)), mini_losses, color=theme.cycle(1), linewidth=1.5,
            label=f"random batches of {experiment.MINI_BATCH} × {experiment.MINI_BLOCK} (AdamW)")
    for y, text, style, above in ((math.log(V) + 0.5, "ln V + 1/2: expected at initialisation", ":", True),
                                  (math.log(V), "ln V: a uniform guess", "--", True),
                                  (optimum, f"counted optimum {optimum:.3f}", "-", False)):  # below: the curves lie above
        ax.axhline(y, color=theme.muted, linestyle=style, linewidth=1)
        ax.text(len(full_losses) - 1, y + (0.04 if above else -0.04), text, color=theme.muted, ha="right",
                va="bottom" if above else "top")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss on the whole training text (nats)")
    ax.set_ylim(optimum - 0.2, max(full_losses[0], mini_losses[0]) + 0.2)
    ax.set_title("Training the bigram model:\nthe loss approaches the counted optimum")
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.42))
    return fig
