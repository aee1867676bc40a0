"""gptnotes: the reference package of GPT Notes.

Every building block of a small GPT, written from scratch in plain PyTorch and proved
equal to PyTorch's own where PyTorch has one. Each module is one concept of the site.
"""

from gptnotes.data import CharTokenizer, get_batch, load_corpus, load_text, train_val_split
from gptnotes.linear import Linear
from gptnotes.sampling import sample_next_token, softmax, softmax_with_temperature

__version__ = "0.1.0"

__all__ = [
    "CharTokenizer",
    "Linear",
    "get_batch",
    "load_corpus",
    "load_text",
    "sample_next_token",
    "softmax",
    "softmax_with_temperature",
    "train_val_split",
]
