"""Figures of the background page."""

from __future__ import annotations

from sitetools.figures import Theme, figure, pow10_formatter


@figure("float-spacing")
def float_spacing(theme: Theme):
    """The gap from each float to the next one, for float32, bfloat16 and float16."""
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import GPTLanguageModel

    xs64 = torch.logspace(-4, 5.5, 600, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for k, (dtype, label) in enumerate(
        [(torch.float32, "float32"), (torch.bfloat16, "bfloat16"), (torch.float16, "float16")]
    ):
        finite = xs64[xs64 < torch.finfo(dtype).max]
        x = finite.to(dtype)
        gap = (torch.nextafter(x, torch.tensor(float("inf"), dtype=dtype)) - x).to(torch.float64)
        ax.step(x.to(torch.float64).tolist(), gap.tolist(), where="post", color=theme.cycle(k), label=label)

    fp16_max = torch.finfo(torch.float16).max
    ax.axvline(fp16_max, color=theme.cycle(2), linestyle=":", linewidth=1.2)
    ax.text(fp16_max * 0.8, 3e-8, f"float16 max\n{fp16_max:,.0f}", color=theme.cycle(2), ha="right")

    torch.manual_seed(0)
    model = GPTLanguageModel(vocab_size=72, block_size=16, n_embd=32, n_head=4, n_layer=2)
    w = torch.cat([p.detach().abs().flatten() for p in model.parameters()])
    share = 0.98  # the middle 98% of the weights' magnitudes
    lo, hi = torch.quantile(w[w > 0], torch.tensor([(1 - share) / 2, (1 + share) / 2])).tolist()
    ax.axvspan(lo, hi, color=theme.muted, alpha=0.18, linewidth=0)
    ax.text((lo * hi) ** 0.5, 2.0, f"{share:.0%} of a small\nGPT's weights", color=theme.fg, ha="center", va="top")

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(pow10_formatter())  # 10⁻³ in plain text: a full-size exponent
    ax.yaxis.set_major_formatter(pow10_formatter())
    ax.set_xlabel("magnitude of the number |x|")
    ax.set_ylabel("gap to the next float")
    ax.set_title("Floats are a ladder\nwhose rungs widen as numbers grow")
    ax.legend(loc="upper left")
    return fig


@figure("causal-influence")
def causal_influence(theme: Theme):
    """Which outputs of the GPT change when one input token changes: a lower triangle."""
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from gptnotes import CharTokenizer, GPTLanguageModel, load_corpus

    tok = CharTokenizer(load_corpus())
    torch.manual_seed(0)
    model = GPTLanguageModel(vocab_size=tok.vocab_size, block_size=8, n_embd=32, n_head=4, n_layer=2)
    idx = torch.tensor([tok.encode("MACHINE:")])  # (1, 8)
    T = idx.shape[1]
    with torch.no_grad():
        base, _ = model(idx)  # (1, T, V)
        change = np.zeros((T, T))
        for j in range(T):
            other = idx.clone()
            other[0, j] = (other[0, j] + 1) % tok.vocab_size
            logits, _ = model(other)
            change[:, j] = (logits - base).abs().amax(dim=-1)[0].numpy()  # (T,) one value per output position

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import NullFormatter

    shown = np.ma.masked_where(change == 0, change)
    im = ax.imshow(shown, cmap=theme.cmap, norm=LogNorm(vmin=shown.min() / 3, vmax=shown.max()))
    for i in range(T):
        for j in range(T):
            if change[i, j] == 0:
                ax.text(j, i, "0", ha="center", va="center", color=theme.muted, fontsize=11)
    chars = [repr(c)[1:-1] for c in tok.decode(idx[0].tolist())]
    ax.set_xticks(range(T), [f"{j}\n{c}" for j, c in enumerate(chars)])
    ax.set_yticks(range(T), [f"{i} {c}" for i, c in enumerate(chars)])
    ax.set_xlabel("input position whose token is changed")
    ax.set_ylabel("output position (its logits)")
    ax.set_title("Largest change of each position's logits")
    ax.grid(visible=False)
    cbar = fig.colorbar(im, ax=ax, shrink=0.85)
    lo, hi = im.norm.vmin, im.norm.vmax
    ticks = [v for v in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10) if lo <= v <= hi]
    cbar.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])  # plain decimals, not 10^-1 in small math text
    cbar.ax.yaxis.set_minor_formatter(NullFormatter())
    cbar.set_label("max |change of a logit| (log scale)")
    return fig
