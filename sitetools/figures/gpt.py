"""Figures of the GPT pages: where the parameters of the site's small model are (gpt.md); the
sinusoidal encoding, and how far apart token + position sums are (positional.md)."""

from __future__ import annotations

from sitetools.figures import Theme, figure


def _kind(name: str) -> str:
    if name.startswith("token_embedding_table"):
        return "token table"
    if name.startswith("position_embedding_table"):
        return "position table"
    if ".sa.heads." in name or ".sa.c_attn." in name:
        return "attention: queries, keys, values"
    if ".sa.proj." in name:
        return "attention: projection (sa.proj)"
    if ".ffwd." in name:
        return "feed-forward (ffwd)"
    if ".ln1." in name or ".ln2." in name or name.startswith("ln_f"):
        return "layer norms"
    if name.startswith("lm_head"):
        return "output layer (lm_head)"
    raise ValueError(f"unexpected parameter {name}")


@figure("gpt-parameters")
def parameters(theme: Theme):
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.ticker import FuncFormatter

    from gptnotes import GPTConfig, GPTLanguageModel, parameter_table

    torch.manual_seed(0)
    model = GPTLanguageModel.from_config(GPTConfig())
    counts: dict[str, int] = {}
    for name, _, numel in parameter_table(model):
        counts[_kind(name)] = counts.get(_kind(name), 0) + numel
    total = sum(counts.values())
    assert total == 208_193
    items = sorted(counts.items(), key=lambda kv: kv[1])
    # Each kind's name above its bar rather than on the left: long names would make the
    # figure wider than the column, and shrink all of its text with it.
    fig, ax = plt.subplots(figsize=(6.6, 5.0))
    ys = [1.6 * i for i in range(len(items))]
    bars = ax.barh(ys, [v for _, v in items], color=theme.cycle(0), height=0.75)
    for bar, (kind, v) in zip(bars, items):
        y = bar.get_y() + bar.get_height() / 2
        ax.annotate(f"{v:,} ({100 * v / total:.1f}%)", (v, y), xytext=(4, 0), textcoords="offset points",
                    va="center", color=theme.fg)
        ax.annotate(kind, (0, bar.get_y() + bar.get_height()), xytext=(3, 2), textcoords="offset points",
                    va="bottom", ha="left", color=theme.fg)
    ax.set_yticks([])
    ax.set_ylim(ys[0] - 0.6, ys[-1] + 1.2)
    ax.set_xlim(0, max(counts.values()) * 1.45)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k" if x else "0"))
    ax.set_xlabel(f"parameters (all {model.config.n_layer} blocks together)")
    ax.set_title(f"The {total:,} parameters of the site's small GPT, by kind")
    ax.grid(axis="y", visible=False)
    return fig


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
