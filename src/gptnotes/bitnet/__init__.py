"""BitNet b1.58 from scratch: ternary weights, 8-bit activations, and two simpler layers to compare.

BitNet b1.58 (Ma et al., 2024, "The Era of 1-bit LLMs") replaces the linear layers of a
Transformer by [`BitLinear`][gptnotes.bitnet.layers.BitLinear]: the weights are quantised to
the three values ``{-1, 0, +1}`` times one float scale per matrix (absmean), the activations
to 8-bit integers with one scale per token (absmax), and the layer trains full-precision
*master* weights that the quantisers are applied to in every forward pass; a
straight-through estimator lets the gradient reach them.

One module per job, in the order the BitNet pages use them:

| Module | What it holds | Page |
| --- | --- | --- |
| `quant` | the quantisers and the straight-through estimator; entropy, where "1.58 bits" comes from | BitNet b1.58, BitLinear |
| `norm` | `RMSNorm`, the norm in front of every BitLinear | BitLinear |
| `layers` | `BinaryLinear`, `ThresholdTernaryLinear` (two simple layers that fail) and `BitLinear` | Three simple quantised layers, BitLinear |
| `inference` | after training: `int8_matmul` and `BitLinearInference`, integer products | BitLinear |
| `packing` | storage: 5 weights per byte (1.6 bits) or 4 (2 bits), and the bytes of each format | BitLinear |
| `convert` | a whole model: Linear layers into BitLinear, BitLinear into integer layers | Training a BitNet GPT |

Every public name is importable from here and from ``gptnotes``:
``from gptnotes.bitnet import BitLinear`` and ``from gptnotes import BitLinear`` are the same class.
"""

from gptnotes.bitnet.convert import freeze_bitlinear_layers, replace_linear_with_bitlinear
from gptnotes.bitnet.inference import BitLinearInference, int8_matmul
from gptnotes.bitnet.layers import BinaryLinear, BitLinear, ThresholdTernaryLinear
from gptnotes.bitnet.norm import RMSNorm
from gptnotes.bitnet.packing import (
    pack_ternary,
    pack_ternary_2bit,
    unpack_ternary,
    unpack_ternary_2bit,
    weight_memory_report,
)
from gptnotes.bitnet.quant import (
    activation_fake_quant,
    activation_quant,
    entropy_bits,
    straight_through,
    tensor_entropy_bits,
    ternary_threshold,
    weight_fake_quant,
    weight_quant,
)

__all__ = [
    # quant
    "entropy_bits",
    "tensor_entropy_bits",
    "straight_through",
    "ternary_threshold",
    "weight_quant",
    "weight_fake_quant",
    "activation_quant",
    "activation_fake_quant",
    # norm
    "RMSNorm",
    # layers
    "BinaryLinear",
    "ThresholdTernaryLinear",
    "BitLinear",
    # inference
    "int8_matmul",
    "BitLinearInference",
    # packing
    "pack_ternary",
    "unpack_ternary",
    "pack_ternary_2bit",
    "unpack_ternary_2bit",
    "weight_memory_report",
    # convert
    "replace_linear_with_bitlinear",
    "freeze_bitlinear_layers",
]
