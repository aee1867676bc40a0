"""Figure and tables of the training-speed page: where the FLOPs of one trained token go,
for both model sizes; and where the time of one step goes, from the benchmark's profiles."""

from __future__ import annotations

import re
from pathlib import Path

from sitetools.figures import Theme, figure, table

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "train_throughput.md"
INPUTS = (RESULTS,)  # part of the render cache's key

#: The two models: the site's small GPT and the lecture's (their names are completed with
#: their parameter counts, computed, in the figure).
SIZES = {
    "small": {"vocab_size": 65, "block_size": 32, "n_embd": 64, "n_head": 4, "n_layer": 4},
    "lecture": {"vocab_size": 65, "block_size": 256, "n_embd": 384, "n_head": 6, "n_layer": 6},
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


def _text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (a #rrggbb fill)."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lum = [(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4) for c in (r, g, b)]
    y = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2]
    return "#000000" if (y + 0.05) / 0.05 > 1.05 / (y + 0.05) else "#ffffff"


@figure("training-speed-flops")
def flops_per_token(theme: Theme):
    import matplotlib.pyplot as plt
    import torch

    from gptnotes import GPTLanguageModel

    # Each model's name above its bar, the legend below: long labels on the left would make
    # the figure wider than the column and shrink its text.
    fig, ax = plt.subplots(figsize=(6.8, 3.7))
    rows = [_parts(SIZES[key]) for key in SIZES]
    names = list(rows[0])
    for y, (key, row) in enumerate(zip(SIZES, rows)):
        torch.manual_seed(0)
        n_params = sum(p.numel() for p in GPTLanguageModel(**SIZES[key]).parameters())
        total = sum(row.values())
        left = 0.0
        for i, name in enumerate(names):
            share = 100 * row[name] / total
            color = theme.cycle(i)
            ax.barh(y, share, left=left, color=color, edgecolor=theme.fg, linewidth=0.3, height=0.55,
                    label=name if y == 0 else None)
            if share > 7:
                ax.text(left + share / 2, y, f"{share:.0f} %", ha="center", va="center", color=_text_on(color))
            left += share
        ax.annotate(f"{key} ({n_params / 1e6:.1f} M parameters, T = {SIZES[key]['block_size']}): "
                    f"{total / 1e6:.2f} MFLOP", (0, y - 0.3), xytext=(3, 2), textcoords="offset points",
                    ha="left", va="bottom", color=theme.fg)
    ax.set_yticks([])
    ax.set_ylim(len(rows) - 0.6, -0.75)
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of the FLOPs of one trained token (forward + backward)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.set_title("Nearly all the arithmetic is matrix products with the weights")
    ax.grid(False)
    return fig


# torch.profiler's table has ten columns and is 134 characters wide; the page shows the four
# that the text discusses, as Markdown tables that fit the column.
_PROFILE = re.compile(r"^\*\*Where the time goes: (?P<title>[^*]+)\*\*.*?\n```text\n(?P<body>.*?)\n```", re.M | re.S)
_KEEP = ("Name", "Self CPU %", "Self CPU", "# of Calls")


def profiles(text: str) -> list[tuple[str, list[dict[str, str]], str]]:
    """The profiles in the benchmark's results: ``(title, rows, total line)`` each, a row a dict
    of the profiler's columns by name."""
    out = []
    for m in _PROFILE.finditer(text):
        lines = [line for line in m["body"].splitlines() if line.strip()]
        header = next(line for line in lines if line.strip().startswith("Name"))
        names = re.split(r"\s{2,}", header.strip())
        rows = []
        for line in lines:
            if line.startswith("-") or line is header or ":" in line and "total" in line:
                continue
            cells = re.split(r"\s{2,}", line.strip())
            if len(cells) == len(names):
                rows.append(dict(zip(names, cells)))
        total = next((line.strip() for line in lines if line.startswith("Self CPU time total")), "")
        out.append((m["title"].strip(), rows, total))
    return out


@table("training-speed-profiles")
def profile_tables() -> str:
    found = profiles(RESULTS.read_text(encoding="utf-8"))
    if not found:
        raise ValueError(f"no profile in {RESULTS}")
    out = []
    for title, rows, total in found:
        spent = total.split(":", 1)[-1].strip()
        out += [f"**{title}**: {spent} of CPU time in all" if total else f"**{title}**", ""]
        out.append("| operation | self CPU % | self CPU | calls |")
        out.append("| --- | ---: | ---: | ---: |")
        out += [f"| `{r['Name']}` | {r['Self CPU %']} | {r['Self CPU']} | {r['# of Calls']} |" for r in rows]
        out.append("")
    return "\n".join(out)
