"""Figures of the embeddings pages (concept module gptnotes.embedding)."""

from __future__ import annotations

from sitetools.figures import Theme, figure

_GROUPS = {
    "cat": 0, "dog": 0,
    "king": 1, "queen": 1,
    "sleeps": 2, "eats": 2, "rules": 2, "speaks": 2,
    "the": 3, ".": 3,
}
_GROUP_NAMES = ("animals", "royals", "verbs", "'the' and '.'")
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


def _pca_2d(table):
    """Project the rows of a (V, C) table onto its first two principal components."""
    import torch

    centred = table - table.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vh[:2].T                                    # (V, 2)


def _place_labels(ax, xs, ys, labels, theme, fontsize=12.0):
    """Write each label next to its point where it overlaps no other label, point or the frame.

    Greedy: the most crowded points choose first, each taking the first free spot among
    right, left, above and below, then spots further out (with a thin leader line).
    """
    import math

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData
    frame = ax.get_window_extent(renderer)
    pts = [tuple(to_px.transform((x, y))) for x, y in zip(xs, ys)]
    r = 6.0 * fig.dpi / 72                                       # marker radius and a margin, in px
    sizes = []
    for label in labels:
        t = ax.text(0, 0, label, fontsize=fontsize)
        box = t.get_window_extent(renderer)
        sizes.append((box.width, box.height))
        t.remove()

    def box_at(i, dx, dy, ha, va):
        w, h = sizes[i]
        x0 = pts[i][0] + dx - {"left": 0, "center": w / 2, "right": w}[ha]
        y0 = pts[i][1] + dy - {"bottom": 0, "center": h / 2, "top": h}[va]
        return (x0, y0, x0 + w, y0 + h)

    def overlaps(a, b, pad=2.0):
        return a[0] < b[2] + pad and b[0] < a[2] + pad and a[1] < b[3] + pad and b[1] < a[3] + pad

    near = [sum(math.dist(p, q) < 60 for q in pts) for p in pts]
    placed: list[tuple] = []
    candidates = [(r, 0, "left", "center"), (-r, 0, "right", "center"), (0, r, "center", "bottom"),
                  (0, -r, "center", "top")]
    for dist in (2.5 * r, 4 * r, 6 * r):
        for k in range(8):
            ang = math.pi * k / 4
            dx, dy = dist * math.cos(ang), dist * math.sin(ang)
            ha = "left" if dx > 1 else "right" if dx < -1 else "center"
            va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            candidates.append((dx, dy, ha, va))
    for i in sorted(range(len(labels)), key=lambda i: -near[i]):
        for dx, dy, ha, va in candidates:
            box = box_at(i, dx, dy, ha, va)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            dots = [(p[0] - r / 2, p[1] - r / 2, p[0] + r / 2, p[1] + r / 2) for j, p in enumerate(pts) if j != i]
            if inside and not any(overlaps(box, o) for o in placed + dots):
                break
        else:
            dx, dy, ha, va = candidates[0]
            box = box_at(i, dx, dy, ha, va)
        placed.append(box)
        leader = math.hypot(dx, dy) > 1.5 * r
        ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx * 72 / fig.dpi, dy * 72 / fig.dpi), textcoords="offset points",
                    fontsize=fontsize, color=theme.fg, ha=ha, va=va,
                    arrowprops={"arrowstyle": "-", "color": theme.muted, "linewidth": 0.7, "shrinkA": 1, "shrinkB": 4}
                    if leader else None)


@figure("embedding-space")
def embedding_space(theme: Theme):
    """The toy next-word embeddings before and after training, projected to 2-D with PCA."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from gptnotes import toy_next_word_data, train_next_token_embeddings

    vocab, ids = toy_next_word_data()
    result = train_next_token_embeddings(ids, len(vocab))

    # Stacked, not side by side: two panels across the column would shrink the text.
    fig, axes = plt.subplots(2, 1, figsize=(6.0, 8.4))
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
        ax.set_title(title, fontsize=12)
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
        _place_labels(ax, xs, ys, ["'.'" if w == "." else w for w in vocab], theme)
    handles = [Line2D([], [], marker="o", linestyle="", markersize=7, color=theme.cycle(g), label=name)
               for g, name in enumerate(_GROUP_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncols=4, bbox_to_anchor=(0.5, 0.0), columnspacing=1.2,
               handletextpad=0.3)
    fig.suptitle(f"{_count(len(vocab)).capitalize()} word embeddings (C = {result.weight_after.shape[1]}) "
                 "projected to 2-D")
    fig.tight_layout(rect=(0, 0.04, 1, 1), h_pad=1.5)
    return fig
