"""Figures of the nn.Linear page."""

from __future__ import annotations

from sitetools.figures import Theme, figure


@figure("linear-init")
def linear_init(theme: Theme):
    """Left: a fresh layer's weights against ±1/sqrt(in). Right: activation scale with depth."""
    import math

    import matplotlib.pyplot as plt
    import torch
    from torch import nn

    from gptnotes import Linear

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.8), gridspec_kw={"width_ratios": [1, 1.15]})

    torch.manual_seed(0)
    for k, (fan_in, fan_out) in enumerate(((16, 1024), (256, 64))):    # 16,384 weights each
        w = Linear(fan_in, fan_out).weight.detach().flatten()
        bound = 1 / math.sqrt(fan_in)
        color = theme.cycle(k)
        left.hist(w.tolist(), bins=30, range=(-bound, bound), density=True, color=color, alpha=0.7,
                  label=f"Linear({fan_in}, {fan_out}): bound 1/√{fan_in} = {bound:g}")
        left.hlines(1 / (2 * bound), -bound, bound, color=color, linewidth=1.2)   # the uniform density
        for sign in (-1, 1):
            left.axvline(sign * bound, color=color, linestyle="--", linewidth=1.2)
    left.set_xlim(-0.3, 0.3)
    left.set_xlabel("weight value")
    left.set_ylabel("density")
    left.set_title("A fresh layer's weights: uniform in ±1/√C_in")
    left.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1)
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
    right.plot(layers, stds(False), marker="o", markersize=3.5, color=theme.cycle(0), label="default: U(±1/√C_in)")
    right.plot(layers, stds(True), marker="s", markersize=3.5, color=theme.cycle(1), label="Kaiming for ReLU: N(0, 2/C_in)")
    right.set_yscale("log")
    right.set_xlabel("Linear(256, 256) + ReLU layers applied")
    right.set_ylabel("std of the activations")
    right.set_xticks(range(0, depth + 1, 5))
    right.set_title("Activation scale through a deep stack")
    right.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1)
    fig.tight_layout()
    return fig
