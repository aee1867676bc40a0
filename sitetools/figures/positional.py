"""Figures of the positional page: the sinusoidal encoding, and how far apart token + position sums are."""

from __future__ import annotations

from sitetools.figures import Theme, figure


def _sinusoidal(num_positions: int, C: int):
    import torch

    t = torch.arange(num_positions, dtype=torch.float64)[:, None]
    omega = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float64) / C)
    pe = torch.zeros(num_positions, C, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * omega)
    pe[:, 1::2] = torch.cos(t * omega)
    return pe


@figure("positional-sinusoidal")
def sinusoidal(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    n, C = 64, 64
    pe = _sinusoidal(n, C)
    unit = pe / pe.norm(dim=1, keepdim=True)
    similarity = unit @ unit.T
    # Stacked, not side by side: two panels across the column would shrink the text.
    fig, (left, right) = plt.subplots(2, 1, figsize=(5.9, 7.8), constrained_layout=True)
    fig.get_layout_engine().set(h_pad=0.12)
    im = left.imshow(pe.numpy(), cmap=theme.cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    left.set_xlabel("dimension (even: sin, odd: cos)")
    left.set_ylabel("position t")
    left.set_title(f"Sinusoidal encoding (fixed): {n} positions, C = {C}")
    fig.colorbar(im, ax=left, shrink=0.9, label="value")
    im2 = right.imshow(similarity.numpy(), cmap=theme.cmap, aspect="auto", interpolation="nearest")
    right.set_xlabel("position")
    right.set_ylabel("position")
    right.set_title("Cosine similarity between positions")
    fig.colorbar(im2, ax=right, shrink=0.9, label="cosine similarity")
    for ax in (left, right):
        ax.grid(False)
    assert torch.allclose(similarity.diagonal(), torch.ones(n, dtype=torch.float64))
    return fig


@figure("positional-collisions")
def collisions(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import GPTLanguageModel

    widths = [1, 2, 4, 8, 16, 32, 64, 128]
    vocab, positions = 65, 8
    closest, median = [], []
    for C in widths:
        torch.manual_seed(0)
        model = GPTLanguageModel(vocab_size=vocab, block_size=positions, n_embd=C, n_head=1, n_layer=1)
        E = model.token_embedding_table.weight.detach()
        P = model.position_embedding_table.weight.detach()
        sums = (E[:, None, :] + P[None, :, :]).reshape(-1, C)
        d = torch.cdist(sums.double(), sums.double())
        d = d[~torch.eye(len(sums), dtype=torch.bool)]
        closest.append(d.min().item())
        median.append(d.median().item())
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    ax.plot(widths, median, marker="o", color=theme.cycle(0), label="typical pair (median distance)")
    ax.plot(widths, closest, marker="s", color=theme.cycle(1), label="closest pair")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("width C of the embeddings")
    ax.set_ylabel("distance between two sums")
    ax.set_title(f"{vocab * positions} token + position sums ({vocab} tokens × {positions} positions),\n"
                 "at initialisation")
    ax.annotate("C = 1: sums pile up,\nlike 4 + 3 = 2 + 5", xy=(1, closest[0]), xytext=(1.6, 8),
                color=theme.fg, arrowprops={"arrowstyle": "->", "color": theme.muted})
    ax.axvline(64, color=theme.muted, linestyle="--", linewidth=1)
    ax.text(64 / 1.08, max(median), "this site's\nmodel", color=theme.muted, ha="right", va="top")
    ax.legend(loc="upper left")
    return fig
