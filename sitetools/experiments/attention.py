"""The attention page's experiments: a small trained GPT whose heads are shown, and the scale.

* `run` trains the small GPT of "What a trained head looks at" on the package corpus;
  the figure draws the attention weights of its first layer.
* `scale_experiment` draws the random queries and keys of the program under "Why the scores
  are divided by √head_size" (the same seed, sizes and draws, so the figure shows the variances
  that program prints; tests/test_figures.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from gptnotes import CharTokenizer, GPTLanguageModel, load_corpus, train, train_val_split

#: The small GPT of "What a trained head looks at" on docs/concepts/attention.md.
PATTERN_RUN = {"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 32, "steps": 500}
BATCH_SIZE, LR, EVAL_ITERS = 16, 3e-3, 10


@dataclass
class SmallGPTRun:
    """What the attention-patterns figure shows.

    Attributes:
        tok: The tokenizer of the corpus.
        model: The trained GPT, in ``eval()`` mode, with fused attention.
        losses: The last ``estimate_loss`` of the run, ``{"train": ..., "val": ...}``.
    """

    tok: CharTokenizer
    model: GPTLanguageModel
    losses: dict[str, float]


def run(text: str | None = None, **sizes: int) -> SmallGPTRun:
    """Train the small GPT on ``text`` (the package corpus by default); ``sizes`` override
    entries of ``PATTERN_RUN`` (a test trains a smaller one). Seeded: the same every time."""
    r = {**PATTERN_RUN, **sizes}
    text = load_corpus() if text is None else text
    tok = CharTokenizer(text)
    train_data, val_data = train_val_split(torch.tensor(tok.encode(text)))
    torch.manual_seed(0)
    model = GPTLanguageModel(tok.vocab_size, block_size=r["block_size"], n_embd=r["n_embd"], n_head=r["n_head"],
                             n_layer=r["n_layer"], attention="fused")
    state = train(model, train_data, val_data, steps=r["steps"], batch_size=BATCH_SIZE, block_size=r["block_size"],
                  lr=LR, eval_iters=EVAL_ITERS, seed=0, progress=False)
    model.eval()
    return SmallGPTRun(tok, model, state.history.eval_losses[-1])


@lru_cache(maxsize=1)
def corpus_run() -> SmallGPTRun:
    """`run` with the page's sizes on the package corpus, once per build (both palettes share it)."""
    return run()


SCALE_SEED, SCALE_SAMPLES, SCALE_T, SCALE_HS, SCALE_C = 0, 5000, 8, 16, 64


def scale_experiment() -> tuple[int, int, int, torch.Tensor]:
    """Scores of random unit-variance queries and keys, as the page's program draws them: (T, hs, C, scores)."""
    g = torch.Generator().manual_seed(SCALE_SEED)
    T, hs, C = SCALE_T, SCALE_HS, SCALE_C
    q = torch.randn(SCALE_SAMPLES, T, hs, generator=g)  # unit-variance entries
    k = torch.randn(SCALE_SAMPLES, T, hs, generator=g)
    return T, hs, C, q @ k.transpose(-2, -1)  # (samples, T, T), variance hs
