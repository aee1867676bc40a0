"""Figures of the training page: a real loss curve, trained at build time (cached)."""

from __future__ import annotations

from functools import lru_cache

from sitetools.figures import Theme, figure

STEPS = 600
EVAL_INTERVAL = 50


@lru_cache(maxsize=1)
def _run():
    """Train the CLI's default GPT on the package corpus; the same numbers every time (CPU, seeded).

    Runs once per build (both palettes share it) and the rendered figures are cached on disk.
    One thread: on a small shared machine, several threads fight and are slower than one.
    """
    import torch

    from gptnotes import CharTokenizer, GPTLanguageModel, load_corpus, train, train_val_split

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        text = load_corpus()
        tok = CharTokenizer(text)
        data = torch.tensor(tok.encode(text), dtype=torch.long)
        train_data, val_data = train_val_split(data, 0.9)
        torch.manual_seed(0)
        # The sizes `gptnotes train` uses by default; "fused" attention is the same maths, faster.
        model = GPTLanguageModel(tok.vocab_size, block_size=32, n_embd=64, n_head=4, n_layer=4, attention="fused")
        state = train(model, train_data, val_data, steps=STEPS, batch_size=16, block_size=32, lr=1e-3,
                      eval_interval=EVAL_INTERVAL, eval_iters=10, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    sizes = {"params": sum(p.numel() for p in model.parameters()), "corpus_bytes": len(text.encode("utf-8"))}
    return tok.vocab_size, state.history, sizes


@figure("training-loss-curve")
def loss_curve(theme: Theme):
    import math

    import matplotlib.pyplot as plt

    vocab_size, h, sizes = _run()
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
    ax.set_title(f"A {sizes['params'] / 1e6:.2f} M-parameter GPT, {len(h.steps)} AdamW steps\n"
                 f"on the package's {sizes['corpus_bytes'] / 1000:.0f} KB corpus")
    ax.set_ylim(0.8, 5.0)
    ax.legend(loc="center right")
    return fig
