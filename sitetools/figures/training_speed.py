"""Figure of the training-speed page: where the FLOPs of one trained token go, for both model sizes."""

from __future__ import annotations

from sitetools.figures import Theme, figure

SIZES = {
    "small (0.2 M parameters, T = 32)": dict(vocab_size=65, block_size=32, n_embd=64, n_head=4, n_layer=4),
    "lecture (10.8 M parameters, T = 256)": dict(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6),
}


def _parts(sizes: dict) -> dict[str, int]:
    """FLOPs per token (forward + backward) by part: 6 per weight, 6 L T C for causal attention."""
    import torch

    from gptnotes import GPTLanguageModel

    torch.manual_seed(0)
    model = GPTLanguageModel(**sizes, attention="fused")
    parts = {"Q, K, V": 0, "attention scores and sum": 0, "output projection": 0, "feed-forward": 0, "lm_head": 0,
             "biases and layer norms": 0}
    for name, p in model.named_parameters():
        if "embedding" in name:
            continue
        if p.dim() < 2:
            parts["biases and layer norms"] += 6 * p.numel()
        elif "c_attn" in name:
            parts["Q, K, V"] += 6 * p.numel()
        elif "sa.proj" in name:
            parts["output projection"] += 6 * p.numel()
        elif "ffwd" in name:
            parts["feed-forward"] += 6 * p.numel()
        else:
            parts["lm_head"] += 6 * p.numel()
    c = model.config
    parts["attention scores and sum"] = 6 * c.n_layer * c.block_size * c.n_embd
    return parts


@figure("training-speed-flops")
def flops_per_token(theme: Theme):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 2.9))
    labels = list(SIZES)
    rows = [_parts(SIZES[label]) for label in labels]
    names = list(rows[0])
    for y, row in enumerate(rows):
        total = sum(row.values())
        left = 0.0
        for i, name in enumerate(names):
            share = 100 * row[name] / total
            ax.barh(y, share, left=left, color=theme.cycle(i), edgecolor=theme.fg, linewidth=0.3,
                    label=name if y == 0 else None)
            if share > 6:
                ax.text(left + share / 2, y, f"{share:.0f} %", ha="center", va="center", fontsize=8, color="white")
            left += share
        ax.text(101, y, f"{total / 1e6:.2f} MFLOP", va="center", fontsize=9, color=theme.fg)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("share of the FLOPs of one trained token (forward + backward)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.38), ncol=3, fontsize=8, frameon=False)
    ax.set_title("Nearly all the arithmetic is matrix products with the weights")
    return fig
