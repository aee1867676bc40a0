"""Figures of the GPT page: where the parameters of the site's small model are."""

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
