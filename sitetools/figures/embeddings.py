"""Figures of the embeddings page."""

from __future__ import annotations

from sitetools.figures import Theme, figure

_GROUPS = {
    "cat": 0, "dog": 0,
    "king": 1, "queen": 1,
    "sleeps": 2, "eats": 2, "rules": 2, "speaks": 2,
    "the": 3, ".": 3,
}
_GROUP_NAMES = ("animals", "royals", "verbs", "'the' and '.'")


def _pca_2d(table):
    """Project the rows of a (V, C) table onto its first two principal components."""
    import torch

    centred = table - table.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vh[:2].T                                    # (V, 2)


def _place_labels(ax, xs, ys, labels, theme, min_gap_px=15.0):
    """Write each label right of its point, pushed apart vertically where labels would collide."""
    fig = ax.figure
    fig.canvas.draw()
    to_px, to_data = ax.transData, ax.transData.inverted()
    px = [to_px.transform((x, y)) for x, y in zip(xs, ys)]
    widths = [7.0 * len(label) + 8 for label in labels]
    spots = [[p[0] + 6, p[1] + 4] for p in px]                 # label anchor (left, baseline-ish)
    for _ in range(200):
        moved = False
        for i in range(len(spots)):
            for j in range(i + 1, len(spots)):
                a, b = spots[i], spots[j]
                overlap_x = a[0] < b[0] + widths[j] and b[0] < a[0] + widths[i]
                dy = a[1] - b[1]
                if overlap_x and abs(dy) < min_gap_px:
                    push = (min_gap_px - abs(dy)) / 2 + 0.1
                    sign = 1.0 if dy >= 0 else -1.0
                    a[1] += sign * push
                    b[1] -= sign * push
                    moved = True
        if not moved:
            break
    for (x, y), p, spot, label in zip(zip(xs, ys), px, spots, labels):
        tx, ty = to_data.transform(spot)
        ax.annotate(label, (x, y), xytext=(tx, ty), textcoords="data", fontsize=10, color=theme.fg,
                    va="center", ha="left",
                    arrowprops=dict(arrowstyle="-", color=theme.muted, linewidth=0.6, shrinkA=0, shrinkB=3)
                    if abs(spot[1] - (p[1] + 4)) > 3 else None)


@figure("embedding-space")
def embedding_space(theme: Theme):
    """The toy next-word embeddings before and after training, projected to 2-D with PCA."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from gptnotes import toy_next_word_data, train_next_token_embeddings

    vocab, ids = toy_next_word_data()
    result = train_next_token_embeddings(ids, len(vocab))

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6))
    for ax, table, title in ((axes[0], result.weight_before, "before training (random)"),
                             (axes[1], result.weight_after, f"after {len(result.losses)} steps of next-word training")):
        points = _pca_2d(table)
        cat = points[vocab.index("cat")]
        points = points * cat.sign().where(cat != 0, 1)          # SVD signs are arbitrary: put "cat" up and right
        xs, ys = points[:, 0].tolist(), points[:, 1].tolist()
        ax.scatter(xs, ys, s=46, color=[theme.cycle(_GROUPS[w]) for w in vocab], zorder=3)
        pad_x = (max(xs) - min(xs)) * 0.15 + 1e-3
        pad_y = (max(ys) - min(ys)) * 0.18 + 1e-3
        ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x * 2.2)
        ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
        ax.tick_params(labelsize=8)
        _place_labels(ax, xs, ys, ["'.'" if w == "." else w for w in vocab], theme)
    handles = [Line2D([], [], marker="o", linestyle="", markersize=7, color=theme.cycle(g), label=name)
               for g, name in enumerate(_GROUP_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncols=4, fontsize=9, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Ten word embeddings (C = 8) projected to 2-D", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
