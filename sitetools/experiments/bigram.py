"""The bigram page's experiment: two bigram models trained on the package corpus.

One is trained on the whole text at once, through its counts
([`fit_to_counts`][gptnotes.bigram.fit_to_counts]); the other the lecture's way, AdamW on
random batches, with the exact loss on the whole training text measured after every step.
The counted optimum ([`CountBigramModel`][gptnotes.bigram.CountBigramModel] without smoothing)
is the floor both approach. The figures of ``sitetools/figures/bigram.py`` draw the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from gptnotes import (
    BigramLanguageModel,
    CharTokenizer,
    CountBigramModel,
    bigram_counts,
    fit_to_counts,
    get_batch,
    load_corpus,
    nll_from_counts,
    train_val_split,
)

STEPS = 300
FULL_LR, MINI_LR = 0.5, 0.1
MINI_BATCH, MINI_BLOCK = 32, 8  # the random batches of the second model


@dataclass
class BigramRun:
    """What the bigram figures show.

    Attributes:
        tok: The tokenizer of the corpus.
        counts: ``(V, V)`` pair counts of the training text.
        optimum: The loss of the counted table on the training text: the best any bigram model can do.
        full: The model trained full-batch through the counts.
        full_losses: Its exact training loss before each step (``steps`` numbers).
        mini_losses: The exact training loss of the mini-batch model at the start and after
            every step (``steps + 1`` numbers).
    """

    tok: CharTokenizer
    counts: torch.Tensor
    optimum: float
    full: BigramLanguageModel
    full_losses: list[float]
    mini_losses: list[float]


def run(text: str | None = None, steps: int = STEPS) -> BigramRun:
    """Train both bigram models on ``text`` (the package corpus by default); seeded, the same every time."""
    text = load_corpus() if text is None else text
    tok = CharTokenizer(text)
    train_data, _ = train_val_split(tok.encode_tensor(text))
    V = tok.vocab_size
    counts = bigram_counts(train_data, V)
    optimum = CountBigramModel(counts, smoothing=0.0).nll(train_data)

    torch.manual_seed(0)
    full = BigramLanguageModel(V)
    full_losses = fit_to_counts(full, counts, steps=steps, lr=FULL_LR)

    # The lecture's way: AdamW on random batches of 32 x 8 characters; after each step the
    # exact loss on the whole training text (through the counts), not the noisy batch loss.
    torch.manual_seed(0)
    mini = BigramLanguageModel(V)
    table = mini.token_embedding_table.weight
    opt = torch.optim.AdamW(mini.parameters(), lr=MINI_LR)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mini_losses = [nll_from_counts(table, counts).item()]
    for _ in range(steps):
        x, y = get_batch(train_data, block_size=MINI_BLOCK, batch_size=MINI_BATCH, generator=g)
        _, loss = mini(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            mini_losses.append(nll_from_counts(table, counts).item())
    return BigramRun(tok, counts, optimum, full, full_losses, mini_losses)


@lru_cache(maxsize=1)
def corpus_run() -> BigramRun:
    """`run` on the package corpus, once per build (both palettes share it)."""
    return run()
