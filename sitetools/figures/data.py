"""Figures of the batching page (concept module gptnotes.data)."""

from __future__ import annotations

from sitetools.figures import Theme, figure


def _show(ch: str) -> str:
    return {" ": "␣", "\n": "↵"}.get(ch, ch)


@figure("batch-windows")
def batch_windows(theme: Theme):
    """One batch of get_batch: the x and y windows over the first characters of the corpus."""
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import Rectangle

    from gptnotes import CharTokenizer, get_batch, load_corpus

    text = load_corpus()
    tok = CharTokenizer(text)
    n, block_size, batch_size, seed = 40, 8, 4, 4
    data = torch.tensor(tok.encode(text[:n]))
    x, y = get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed))
    ix = torch.randint(n - block_size, (batch_size,), generator=torch.Generator().manual_seed(seed))
    for b, i in enumerate(ix.tolist()):  # the same starts as get_batch drew
        assert torch.equal(x[b], data[i : i + block_size]) and torch.equal(y[b], data[i + 1 : i + block_size + 1])

    # 40 cells across the column: about 12 pt a cell, room for one 12 pt character
    fig, ax = plt.subplots(figsize=(6.9, 2.45))
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.8)
    row_h = 1.0

    def cell(col: int, row: float, ch: str, face: str | None, edge: str, text_color: str) -> None:
        ax.add_patch(Rectangle((col, -row - row_h), 1, row_h, facecolor=face or "none", edgecolor=edge, linewidth=0.8))
        ax.text(col + 0.5, -row - row_h / 2, _show(ch), ha="center", va="center", fontsize=12, color=text_color,
                family="monospace")

    for col, ch in enumerate(text[:n]):
        cell(col, 0, ch, None, theme.muted, theme.fg)
    ax.text(-0.6, -0.5, "data", ha="right", va="center", fontsize=12, color=theme.fg)

    x_color, y_color = theme.cycle(0), theme.cycle(1)
    for b, i in enumerate(ix.tolist()):
        top = 1.6 + b * 2.35
        for t in range(block_size):
            cell(i + t, top, text[i + t], x_color, x_color, "white" if theme.name == "light" else "#0d1117")
            cell(i + t + 1, top + row_h, text[i + t + 1], None, y_color, theme.fg)
        ax.text(-0.6, -top - 0.5, f"x[{b}]", ha="right", va="center", fontsize=12, color=x_color)
        ax.text(-0.6, -top - 1.5, f"y[{b}]", ha="right", va="center", fontsize=12, color=y_color)

    ax.set_xlim(-2.6, n + 0.2)
    ax.set_ylim(-(1.6 + batch_size * 2.35) - 0.2, 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"get_batch(data, block_size={block_size}, batch_size={batch_size}) on the first {n} characters:\n"
                 "each y window is its x window one character later", fontsize=12)
    return fig
