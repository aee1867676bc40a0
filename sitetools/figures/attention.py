"""Figures of the attention page: learned attention patterns, and what the scale does."""

from __future__ import annotations

from functools import lru_cache

from sitetools.figures import Theme, figure

_SHOWN = {" ": "␣", "\n": "⏎"}
SAMPLE = "MARA:\nThe lamp is lit, the"


@lru_cache(maxsize=1)
def _trained_gpt():
    """A small GPT trained briefly on the package corpus (once per build), and its tokenizer."""
    import torch

    from gptnotes import CharTokenizer, GPTLanguageModel, load_corpus, train, train_val_split

    text = load_corpus()
    tok = CharTokenizer(text)
    train_data, val_data = train_val_split(torch.tensor(tok.encode(text)))
    torch.manual_seed(0)
    model = GPTLanguageModel(tok.vocab_size, block_size=32, n_embd=32, n_head=4, n_layer=2, attention="fused")
    state = train(model, train_data, val_data, steps=500, batch_size=16, block_size=32, lr=3e-3,
                  eval_iters=10, seed=0, progress=False)
    model.eval()
    return tok, model, state.history.eval_losses[-1]


@figure("attention-patterns")
def attention_patterns(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    tok, model, losses = _trained_gpt()
    idx = torch.tensor([tok.encode(SAMPLE)])  # (1, T)
    maps = model.attention_maps(idx)[0, 0]  # layer 0, sequence 0: (nh, T, T)
    T = idx.shape[1]
    labels = [_SHOWN.get(c, c) for c in SAMPLE]
    fig, axes = plt.subplots(2, 2, figsize=(9.0, 9.6))
    for h, ax in enumerate(axes.flat):
        w = maps[h]
        itself = w.diagonal().mean().item()
        previous = w.diagonal(offset=-1).mean().item()
        ax.imshow(w.numpy(), cmap=theme.cmap, vmin=0.0, vmax=1.0)
        ax.set_xticks(range(T), labels, fontsize=9)
        ax.set_yticks(range(T), labels, fontsize=9)
        ax.tick_params(length=0)
        ax.grid(False)
        ax.set_title(f"head {h}: {previous:.0%} on the previous character,\n{itself:.0%} on itself (mean weight)",
                     fontsize=10)
        if h >= 2:
            ax.set_xlabel("key: the position looked at")
        if h % 2 == 0:
            ax.set_ylabel("query: the position looking")
    fig.suptitle(f"Layer 0 of a small GPT trained for 500 steps (validation loss {losses['val']:.2f})\n"
                 "each row: the attention weights of one position over its past", fontsize=11)
    fig.tight_layout()
    return fig


@figure("attention-scale")
def attention_scale(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import causal_mask, softmax

    g = torch.Generator().manual_seed(0)
    T, hs, C = 8, 16, 64  # the notes' model: 4 heads of 16 in a width of 64
    q = torch.randn(2000, T, hs, generator=g)  # unit-variance queries and keys
    k = torch.randn(2000, T, hs, generator=g)
    scores = q @ k.transpose(-2, -1)  # (2000, T, T), variance hs
    mask = ~causal_mask(T)
    cases = [("no scale", 1.0), ("head_size ** -0.5 (right)", hs**-0.5), ("C ** -0.5 (the notes)", C**-0.5)]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(cases)
    for i, (name, scale) in enumerate(cases):
        w = softmax((scores * scale).masked_fill(mask, float("-inf")))[:, -1]  # last row: (2000, T)
        ranked = w.sort(dim=-1, descending=True).values.mean(dim=0)  # mean weight of the 1st, 2nd, ... largest
        xs = [j + (i - 1) * width for j in range(T)]
        ax.bar(xs, ranked.tolist(), width=width, color=theme.cycle(i),
               label=f"{name}: score variance {(scores * scale).var().item():.2f}")
    ax.axhline(1 / T, color=theme.muted, linestyle="--", linewidth=1)
    ax.text(T - 0.5, 1 / T + 0.015, "uniform 1/8", color=theme.muted, ha="right", fontsize=9)
    ax.set_xticks(range(T), ["1st", "2nd", "3rd"] + [f"{j + 1}th" for j in range(3, T)])
    ax.set_xlabel("the 8 attention weights of the last position, largest first")
    ax.set_ylabel("mean weight")
    ax.set_ylim(0, 1)
    ax.set_title("Random queries and keys (head size 16): the scale sets how peaked attention is")
    ax.legend(fontsize=9, loc="upper right")
    ax.grid(axis="x", visible=False)
    return fig
