"""Figures of the torch.nn page (concept module gptnotes.parameters)."""

from __future__ import annotations

from sitetools.figures import Theme, figure


@figure("batchnorm-running-mean")
def batchnorm_running_mean(theme: Theme):
    """A batch norm's running mean (an EMA of batch means) against the data's mean."""
    import matplotlib.pyplot as plt
    import torch
    from torch import nn

    from gptnotes import count_parameters

    g = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm1d(1, momentum=0.1)
    assert count_parameters(bn) == 2            # weight and bias; the running stats are buffers
    steps, batch_size, data_mean = 60, 32, 10.0
    batch_means, running = [], [bn.running_mean.item()]
    for _ in range(steps):
        batch = torch.randn(batch_size, 1, generator=g) * 3 + data_mean
        bn(batch)                                # training mode: updates the running estimates
        batch_means.append(batch.mean().item())
        running.append(bn.running_mean.item())

    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    ax.scatter(range(1, steps + 1), batch_means, s=14, color=theme.cycle(1), label="mean of each training batch", zorder=3)
    ax.plot(range(0, steps + 1), running, color=theme.cycle(0), linewidth=2.2, label="running_mean (buffer)")
    ax.axhline(data_mean, color=theme.muted, linestyle="--", linewidth=1)
    ax.text(1, data_mean + 2.2, f"dashed line: the mean of the data, {data_mean:g}", color=theme.muted, ha="left")
    ax.set_xlabel("training batches seen")
    ax.set_ylabel("mean")
    ax.set_xlim(0, steps)
    ax.set_ylim(-0.5, 13)
    keep = 1 - bn.momentum
    ax.set_title(f"running_mean ← {keep:g} · running_mean\n+ {bn.momentum:g} · batch mean, from {running[0]:g}")
    ax.legend(loc="lower right")
    return fig
