"""gptnotes: the reference package of GPT Notes.

Every building block of a small GPT, written from scratch in plain PyTorch and proved
equal to PyTorch's own where PyTorch has one. Each module is one concept of the site.
"""

from gptnotes.attention import (
    CausalSelfAttention,
    Head,
    MultiHeadAttention,
    average_past_loop,
    average_past_matmul,
    average_past_softmax,
    causal_attention,
    causal_mask,
)
from gptnotes.bigram import (
    BigramLanguageModel,
    CountBigramModel,
    bigram_counts,
    fit_counts,
    fit_to_counts,
    nll_from_counts,
)
from gptnotes.data import CharTokenizer, get_batch, load_text, train_val_split
from gptnotes.gpt import Block, FeedForward, GPTConfig, GPTLanguageModel
from gptnotes.linear import Linear
from gptnotes.sampling import sample_next_token, softmax, softmax_with_temperature
from gptnotes.training import (
    Checkpoint,
    TrainHistory,
    TrainState,
    estimate_loss,
    eval_mode,
    load_checkpoint,
    save_checkpoint,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "BigramLanguageModel",
    "Block",
    "CausalSelfAttention",
    "CharTokenizer",
    "Checkpoint",
    "CountBigramModel",
    "FeedForward",
    "GPTConfig",
    "GPTLanguageModel",
    "Head",
    "Linear",
    "MultiHeadAttention",
    "TrainHistory",
    "TrainState",
    "average_past_loop",
    "average_past_matmul",
    "average_past_softmax",
    "bigram_counts",
    "causal_attention",
    "causal_mask",
    "estimate_loss",
    "eval_mode",
    "fit_counts",
    "fit_to_counts",
    "get_batch",
    "load_checkpoint",
    "load_text",
    "nll_from_counts",
    "sample_next_token",
    "save_checkpoint",
    "softmax",
    "softmax_with_temperature",
    "train",
    "train_val_split",
]
