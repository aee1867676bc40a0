"""Figures of the training page: a real loss curve (the run is sitetools.experiments.training)."""

from __future__ import annotations

from sitetools.experiments import training as experiment
from sitetools.figures import Theme, figure

INPUTS = (experiment.__file__,)  # the experiment's source is part of the render cache's key


@figure("training-loss-curve")
def loss_curve(theme: Theme):
    import math

    import matplotlib.pyplot as plt

    run = experiment.corpus_run()
    vocab_size, h = run.vocab_size, run.history
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    ax.plot(h.steps, h.losses, color=theme.muted, linewidth=0.6, alpha=0.6, label="loss of each training batch")
    ax.plot(h.eval_steps, [e["train"] for e in h.eval_losses], marker="o", markersize=3.5,
            color=theme.cycle(0), label="training text (estimate_loss)")
    ax.plot(h.eval_steps, [e["val"] for e in h.eval_losses], marker="s", markersize=3.5,
            color=theme.cycle(1), label="validation text (estimate_loss)")
    ax.axhline(math.log(vocab_size), color=theme.muted, linestyle="--", linewidth=1)
    ax.text(h.steps[-1], math.log(vocab_size) + 0.05, f"ln {vocab_size} = {math.log(vocab_size):.2f}: uniform guess",
            color=theme.muted, ha="right", va="bottom")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title(f"A {run.params / 1e6:.2f} M-parameter GPT, {len(h.steps)} AdamW steps\n"
                 f"on the package's {run.corpus_bytes / 1000:.0f} KB corpus")
    ax.set_ylim(0.8, 5.0)
    ax.legend(loc="center right")
    return fig
