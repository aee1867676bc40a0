"""Figures of the softmax page (concept module gptnotes.sampling)."""

from __future__ import annotations

from sitetools.figures import Theme, figure

#: The logits and temperatures of the first temperature program on docs/concepts/softmax.md
#: (tests/test_figures.py checks that the page still uses them).
LOGITS = (2.0, 1.0, 0.5, 0.0, -1.0)
TEMPERATURES = (0.25, 0.5, 1.0, 2.0, 5.0)

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


@figure("softmax-temperature")
def softmax_temperature(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import softmax_with_temperature

    logits = torch.tensor(LOGITS)
    temps = list(TEMPERATURES)
    n = len(logits)
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    width = 0.84 / len(temps)
    for k, t in enumerate(temps):
        p = softmax_with_temperature(logits, t)
        xs = [i + (k - (len(temps) - 1) / 2) * width for i in range(n)]
        ax.bar(xs, p.tolist(), width=width, label=f"T = {t:g}", color=theme.cycle(k))
    ax.axhline(1 / n, color=theme.muted, linestyle="--", linewidth=1)
    ax.text(n - 0.5, 1 / n + 0.02, f"uniform 1/{n}", color=theme.muted, ha="right", va="bottom")
    ax.set_xticks(range(n), [f"z = {v:g}" for v in logits.tolist()])
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"The same {_count(n)} logits at {_count(len(temps))} temperatures")
    ax.legend(ncols=2, loc="upper right", columnspacing=1.2, handlelength=1.2)
    ax.grid(axis="x", visible=False)
    return fig
