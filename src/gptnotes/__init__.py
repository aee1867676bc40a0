"""gptnotes: the reference package of GPT Notes.

Every building block of a small GPT, written from scratch in plain PyTorch and proved
equal to PyTorch's own where PyTorch has one. Each module is one concept of the site.
"""

from gptnotes.data import CharTokenizer, get_batch, load_corpus, load_text, train_val_split
from gptnotes.embedding import (
    TOY_FEATURES,
    TOY_NEXT_WORD_TEXT,
    Embedding,
    EmbeddingTrainingResult,
    analogy,
    cosine_similarity,
    dot_similarity,
    embed_by_matmul,
    nearest,
    one_hot,
    toy_next_word_data,
    toy_word_embeddings,
    train_next_token_embeddings,
)
from gptnotes.inspect import (
    count_parameters,
    format_millions,
    format_parameter_table,
    parameter_counts_by_module,
    parameter_table,
)
from gptnotes.linear import Linear
from gptnotes.sampling import sample_next_token, softmax, softmax_with_temperature

__version__ = "0.1.0"

__all__ = [
    "CharTokenizer",
    "Embedding",
    "EmbeddingTrainingResult",
    "Linear",
    "TOY_FEATURES",
    "TOY_NEXT_WORD_TEXT",
    "analogy",
    "cosine_similarity",
    "count_parameters",
    "dot_similarity",
    "embed_by_matmul",
    "format_millions",
    "format_parameter_table",
    "get_batch",
    "load_corpus",
    "load_text",
    "nearest",
    "one_hot",
    "parameter_counts_by_module",
    "parameter_table",
    "sample_next_token",
    "softmax",
    "softmax_with_temperature",
    "toy_next_word_data",
    "toy_word_embeddings",
    "train_next_token_embeddings",
    "train_val_split",
]
