"""The training page's experiment: the CLI's default GPT trained on the package corpus.

The figure of ``sitetools/figures/training.py`` draws its loss curves (each training batch,
and ``estimate_loss`` on the training and validation text every ``EVAL_INTERVAL`` steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from gptnotes import CharTokenizer, GPTLanguageModel, TrainHistory, load_corpus, train, train_val_split

STEPS = 600
EVAL_INTERVAL = 50
#: The sizes `gptnotes train` uses by default; "fused" attention is the same maths, faster.
SIZES = {"block_size": 32, "n_embd": 64, "n_head": 4, "n_layer": 4}
BATCH_SIZE, LR, EVAL_ITERS = 16, 1e-3, 10


@dataclass
class TrainingRun:
    """What the training figure shows.

    Attributes:
        vocab_size: V of the corpus.
        history: The run's [`TrainHistory`][gptnotes.training.TrainHistory].
        params: The model's number of parameters.
        corpus_bytes: The size of the training text in UTF-8 bytes.
    """

    vocab_size: int
    history: TrainHistory
    params: int
    corpus_bytes: int


def run(text: str | None = None, steps: int = STEPS, eval_interval: int = EVAL_INTERVAL, **sizes: int) -> TrainingRun:
    """Train the GPT on ``text`` (the package corpus by default); ``sizes`` override ``SIZES``.

    The same numbers every time (CPU, seeded). One thread: on a small shared machine, several
    threads fight and are slower than one.
    """
    s = {**SIZES, **sizes}
    text = load_corpus() if text is None else text
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tok = CharTokenizer(text)
        data = torch.tensor(tok.encode(text), dtype=torch.long)
        train_data, val_data = train_val_split(data, 0.9)
        torch.manual_seed(0)
        model = GPTLanguageModel(tok.vocab_size, attention="fused", **s)
        state = train(model, train_data, val_data, steps=steps, batch_size=BATCH_SIZE, block_size=s["block_size"],
                      lr=LR, eval_interval=eval_interval, eval_iters=EVAL_ITERS, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    params = sum(p.numel() for p in model.parameters())
    return TrainingRun(tok.vocab_size, state.history, params, len(text.encode("utf-8")))


@lru_cache(maxsize=1)
def corpus_run() -> TrainingRun:
    """`run` on the package corpus, once per build; the rendered figure is cached on disk."""
    return run()
