"""Figures of the nn.Linear page."""

from __future__ import annotations

from sitetools.figures import Theme, figure


@figure("linear-init")
def linear_init(theme: Theme):
    """Top: a fresh layer's weights against ±1/sqrt(in). Bottom: activation scale with depth."""
    import math

    import matplotlib.pyplot as plt
    import torch
    from matplotlib.ticker import NullFormatter
    from torch import nn

    from gptnotes import Linear

    # Stacked, not side by side: two panels across the column would shrink the text.
    fig, (left, right) = plt.subplots(2, 1, figsize=(6.1, 8.0))

    torch.manual_seed(0)
    for k, (fan_in, fan_out) in enumerate(((16, 1024), (256, 64))):    # 16,384 weights each
        w = Linear(fan_in, fan_out).weight.detach().flatten()
        bound = 1 / math.sqrt(fan_in)
        color = theme.cycle(k)
        left.hist(w.tolist(), bins=30, range=(-bound, bound), density=True, color=color, alpha=0.7,
                  label=f"Linear({fan_in}, {fan_out}): bound 1/√{fan_in} = {bound:g}")
        left.hlines(1 / (2 * bound), -bound, bound, color=color, linewidth=1.2)   # the uniform density
        for sign in (-1, 1):  # the bounds, drawn up to just above the bars (the legend is higher)
            left.vlines(sign * bound, 0, 1.1 / (2 * bound), color=color, linestyle="--", linewidth=1.2)
    left.set_xlim(-0.3, 0.3)
    left.set_xlabel("weight value")
    left.set_ylabel("density")
    left.set_title("A fresh layer's weights: uniform in ±1/√C_in")
    left.set_ylim(0, left.get_ylim()[1] * 1.45)  # room for the legend above the bars
    left.legend(loc="upper center")
    left.grid(axis="x", visible=False)

    depth, width = 20, 256

    def stds(kaiming: bool) -> list[float]:
        torch.manual_seed(0)
        x = torch.randn(64, width)
        out = [x.std().item()]
        for _ in range(depth):
            layer = Linear(width, width)
            if kaiming:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            x = torch.relu(layer(x))
            out.append(x.std().item())
        return out

    layers = list(range(depth + 1))
    default, kaiming = stds(False), stds(True)
    right.plot(layers, default, marker="o", markersize=3.5, color=theme.cycle(0), label="default: U(±1/√C_in)")
    right.plot(layers, kaiming, marker="s", markersize=3.5, color=theme.cycle(1), label="Kaiming for ReLU: N(0, 2/C_in)")
    right.set_yscale("log")
    lo, hi = min(default + kaiming), max(default + kaiming)
    ticks = [v for v in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2) if lo / 1.5 <= v <= hi * 1.5]
    right.set_yticks(ticks, [f"{v:g}" for v in ticks])  # plain decimals, not 10^-1 in small math text
    right.yaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel(f"Linear({width}, {width}) + ReLU layers applied")
    right.set_ylabel("std of the activations")
    right.set_xticks(range(0, depth + 1, 5))
    right.set_title("Activation scale through a deep stack")
    right.legend(loc="center right")
    fig.tight_layout(h_pad=2.0)
    return fig
