"""gptnotes: the reference package of GPT Notes.

Every building block of a small GPT, written from scratch in plain PyTorch and proved
equal to PyTorch's own where PyTorch has one. Each module is one concept of the site.
"""

from gptnotes.bitnet import (
    BinaryLinear,
    BitLinear,
    BitLinearInference,
    RMSNorm,
    ThresholdTernaryLinear,
    activation_fake_quant,
    activation_quant,
    entropy_bits,
    int8_matmul,
    pack_ternary,
    pack_ternary_2bit,
    replace_linear_with_bitlinear,
    straight_through,
    tensor_entropy_bits,
    ternary_threshold,
    unpack_ternary,
    unpack_ternary_2bit,
    weight_fake_quant,
    weight_memory_report,
    weight_quant,
)
from gptnotes.data import CharTokenizer, get_batch, load_text, train_val_split
from gptnotes.linear import Linear
from gptnotes.sampling import sample_next_token, softmax, softmax_with_temperature

__version__ = "0.1.0"

__all__ = [
    "BinaryLinear",
    "BitLinear",
    "BitLinearInference",
    "CharTokenizer",
    "Linear",
    "RMSNorm",
    "ThresholdTernaryLinear",
    "activation_fake_quant",
    "activation_quant",
    "entropy_bits",
    "get_batch",
    "int8_matmul",
    "load_text",
    "pack_ternary",
    "pack_ternary_2bit",
    "replace_linear_with_bitlinear",
    "sample_next_token",
    "softmax",
    "softmax_with_temperature",
    "straight_through",
    "tensor_entropy_bits",
    "ternary_threshold",
    "train_val_split",
    "unpack_ternary",
    "unpack_ternary_2bit",
    "weight_fake_quant",
    "weight_memory_report",
    "weight_quant",
]
