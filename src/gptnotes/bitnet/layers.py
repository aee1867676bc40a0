"""Quantised linear layers: two simple ones that fail, and BitLinear, the layer of BitNet b1.58.

* [`BinaryLinear`][gptnotes.bitnet.layers.BinaryLinear] (the sign of each weight: binary,
  never 0) and [`ThresholdTernaryLinear`][gptnotes.bitnet.layers.ThresholdTernaryLinear]
  (a fixed threshold, blind to the weights' scale): the page *Three simple quantised
  layers*, kept to compare;
* [`BitLinear`][gptnotes.bitnet.layers.BitLinear]: ternary weights with one absmean scale,
  8-bit activations per token, float master weights trained through the straight-through
  estimator; the page *BitLinear*. Its
  [`quantize`][gptnotes.bitnet.layers.BitLinear.quantize] freezes it into a
  [`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference].

Each layer checks its input's type, dtype and shape (cheap) and does not scan the values:
a NaN or an infinity in a token's input gives NaN in that token's output, as with
``nn.Linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import check_finite
from gptnotes.bitnet.inference import BitLinearInference
from gptnotes.bitnet.norm import RMSNorm
from gptnotes.bitnet.quant import (
    QUANT_EPS,
    activation_quant_unchecked,
    check_threshold,
    straight_through_unchecked,
    weight_quant_unchecked,
)
from gptnotes.linear import Linear

__all__ = ["BinaryLinear", "ThresholdTernaryLinear", "BitLinear"]

# --------------------------------------------------------------------------------------
# Two simpler quantised layers, kept for comparison
# --------------------------------------------------------------------------------------

class BinaryLinear(Linear):
    """A naive "BitLinear": weights replaced by their sign. Binary, never ternary.

    Forward: ``F.linear(x, sign(W), b)``. A first attempt often writes ``W.sign().clamp(-1, 1)``
    and expects -1, 0, 1; but ``sign`` returns 0 only for a weight exactly 0.0, which a
    float initialisation practically never produces, so the weights are binary (1 bit)
    and the clamp does nothing. Unlike BitNet, there is no scale (with the standard
    initialisation the output is about ``sqrt(3 * in_features)`` times larger than with the
    float weights it came from), no activation quantisation,
    and, by default, no straight-through estimator: ``sign`` has a zero
    gradient, so ``weight.grad`` is all zeros and only the bias learns. ``ste=True`` adds the
    STE for comparison.

    Same initialisation as [`Linear`][gptnotes.linear.Linear] (``torch.randn`` weights would do as well
    here: the sign of either is a fair coin).

    Args:
        in_features: Size C_in of the last input dimension.
        out_features: Size C_out of the output.
        bias: Whether to add a full-precision bias.
        ste: Whether gradients reach ``weight`` through a straight-through estimator.

    Shape:
        - Input: ``(*, C_in)``, e.g. ``(B, T, C_in)``. Output: ``(*, C_out)``.

    Raises:
        TypeError: If a size or flag has the wrong type, or the input is not a float tensor.
        ValueError: If a size is not positive, or the input's last dimension is wrong.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import BinaryLinear
        >>> _ = torch.manual_seed(0)
        >>> layer = BinaryLinear(10, 5)
        >>> sorted(set(layer.quantized_weight().flatten().tolist()))
        [-1.0, 1.0]
        >>> layer(torch.randn(2, 10)).sum().backward()
        >>> bool(layer.weight.grad.abs().sum() == 0), bool(layer.bias.grad.abs().sum() > 0)
        (True, True)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, ste: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if not isinstance(ste, bool):
            raise TypeError(f"ste must be True or False, got {type(ste).__name__}")
        self.ste = ste

    def quantized_weight(self) -> torch.Tensor:
        """Return ``sign(weight).clamp(-1, 1)``, the sign quantiser (values -1, +1).

        Shape:
            - Output: ``(C_out, C_in)``, the shape of ``weight``.
        """
        return self.weight.sign().clamp(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        w = self.quantized_weight()  # (C_out, C_in)
        if self.ste:
            w = straight_through_unchecked(self.weight, w)
        return F.linear(x, w, self.bias)  # (*, C_out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ste={self.ste}"


class ThresholdTernaryLinear(Linear):
    """A naive ternary layer: a fixed threshold, blind to the weights' scale.

    Forward: ``F.linear(x, q, b)`` with ``q = 0`` where ``|W| < threshold`` and ``sign(W)``
    elsewhere (``torch.where(|x| < t, 0, x).sign()``). The threshold is a fixed
    number, so how many weights become 0 depends on the scale of the weights, not on a
    choice: with ``torch.randn`` weights (standard deviation 1) and ``threshold=0.5`` about 38 % are 0,
    while with the standard initialisation used here (``|W| <= 1/sqrt(in_features)``) a layer
    with ``in_features >= 4`` has every weight below 0.5, and the output is just the bias.
    No scale, no activation quantisation, and no gradient to ``weight`` (``where`` and
    ``sign`` stop it). Absmean quantisation fixes this with the threshold ``mean(|W|) / 2``
    (see [`ternary_threshold`][gptnotes.bitnet.quant.ternary_threshold]).

    Args:
        in_features: Size C_in of the last input dimension.
        out_features: Size C_out of the output.
        bias: Whether to add a full-precision bias.
        threshold: Weights with ``|w| < threshold`` become 0; non-negative (0.5 by default).

    Shape:
        - Input: ``(*, C_in)``, e.g. ``(B, T, C_in)``. Output: ``(*, C_out)``.

    Raises:
        TypeError: If a size or the threshold has the wrong type, or the input is not a
            floating-point tensor.
        ValueError: If a size is not positive, the threshold negative or not finite, or the
            input's last dimension is wrong.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import ThresholdTernaryLinear
        >>> _ = torch.manual_seed(0)
        >>> layer = ThresholdTernaryLinear(64, 8)            # |W| <= 1/8 < 0.5
        >>> bool((layer.quantized_weight() == 0).all())
        True
        >>> x = torch.randn(3, 64)
        >>> torch.equal(layer(x), layer.bias.expand(3, 8))     # only the bias is left
        True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, threshold: float = 0.5) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.threshold = check_threshold(threshold)

    def quantized_weight(self) -> torch.Tensor:
        """Return the ternary weights: 0 where ``|W| < threshold``, else ``sign(W)``.

        Shape:
            - Output: ``(C_out, C_in)``, the shape of ``weight``.
        """
        w = self.weight
        return torch.where(w.abs() < self.threshold, torch.zeros_like(w), w).sign()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return F.linear(x, self.quantized_weight(), self.bias)  # (*, C_out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", threshold={self.threshold}"


# --------------------------------------------------------------------------------------
# BitLinear (BitNet b1.58)
# --------------------------------------------------------------------------------------


class BitLinear(Linear):
    r"""The linear layer of BitNet b1.58: ternary weights, 8-bit activations, no bias.

    Forward (training and evaluation alike, as in Microsoft's reference code):

    1. ``x_n = RMSNorm(x)``;
    2. ``x_q = activation_fake_quant(x_n) = codes / s`` (8 bits per token, absmax);
    3. ``w_q = weight_fake_quant(W) = gamma * ternary`` (absmean);
    4. ``y = x_q @ w_q.T``.

    The quantisers go through [`straight_through`][gptnotes.bitnet.quant.straight_through], so the gradient reaches the
    full-precision master weights ``weight`` (and the RMSNorm gain and the input) as if
    they were the identity. Step 4 equals ``(codes @ ternary.T) * gamma / s``: an integer
    matrix product, then one rescale per output. We compute it in that order, the order of
    the integer kernel (the STE applied to ``s * x_n`` and ``W / gamma``, whose rounded
    values are ``codes`` and ``ternary``): the float matrix product of integer-valued
    operands is exact while every partial sum stays below ``2**24`` (``in_features <=
    131072``), so this forward is bit-for-bit the output of [`quantize`][gptnotes.bitnet.layers.BitLinear.quantize]'s integer
    path. Computing ``x_q @ w_q.T`` literally (Microsoft's code) gives the same numbers up to
    float32 rounding of the sum (about ``1e-7`` relative); in a stack of layers such a
    rounding difference can flip one activation code of the next layer.

    The master weights start as in [`Linear`][gptnotes.linear.Linear] / ``nn.Linear(bias=False)`` (same
    seed, same numbers). There is no bias: the paper removes all biases.

    Args:
        in_features: Size C_in of the last input dimension.
        out_features: Size C_out of the output.

    Shape:
        - Input: ``(*, C_in)``, e.g. ``(B, T, C_in)``. Output: ``(*, C_out)``.

    Attributes:
        weight: Full-precision master weights ``(C_out, C_in)``, the ones the optimiser updates.
        norm: The [`RMSNorm`][gptnotes.bitnet.norm.RMSNorm] applied to the input.

    Raises:
        TypeError: If a size is not an integer, or the input is not a floating-point tensor
            of the weight's dtype.
        ValueError: If a size is not positive, or the input's last dimension is not
            ``in_features``.

    The forward pass does not scan values: a token whose input holds NaN or infinity gets
    NaN in its output row, and NaN or infinity in the master weights makes every output NaN
    ([`quantize`][gptnotes.bitnet.layers.BitLinear.quantize] refuses such weights).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import BitLinear
        >>> _ = torch.manual_seed(0)
        >>> layer = BitLinear(16, 4)
        >>> x = torch.randn(2, 3, 16)                     # (B, T, C_in)
        >>> y = layer(x)
        >>> tuple(y.shape)                                # (B, T, C_out)
        (2, 3, 4)
        >>> y.sum().backward()                            # the STE lets gradients through
        >>> bool(layer.weight.grad.abs().sum() > 0)
        True
        >>> frozen = layer.eval().quantize()              # int8 weights, integer matmul
        >>> torch.equal(frozen(x), layer(x))
        True
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.norm = RMSNorm(self.in_features)

    @classmethod
    def from_linear(cls, linear: nn.Module) -> BitLinear:
        """Build a BitLinear with a copy of the weight of a ``Linear`` / ``nn.Linear``.

        The bias, if any, is not carried over: BitLinear has none (see
        [`replace_linear_with_bitlinear`][gptnotes.bitnet.convert.replace_linear_with_bitlinear]).

        Args:
            linear: A [`Linear`][gptnotes.linear.Linear] or ``torch.nn.Linear``.

        Returns:
            A new BitLinear on the same device and dtype, in the same train/eval mode.

        Raises:
            TypeError: If ``linear`` is not one of those layers.

        Examples:
            >>> import torch
            >>> from gptnotes.bitnet import BitLinear
            >>> fc = torch.nn.Linear(8, 3)
            >>> bit = BitLinear.from_linear(fc)
            >>> torch.equal(bit.weight, fc.weight), bit.bias is None
            (True, True)
        """
        if not is_plain_linear(linear):
            raise TypeError(f"linear must be a gptnotes.Linear or torch.nn.Linear, got {type(linear).__name__}")
        weight = linear.weight
        new = cls(weight.shape[1], weight.shape[0]).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            new.weight.copy_(weight)
        new.train(linear.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x_n = self.norm(x)  # (*, C_in)
        codes, s = activation_quant_unchecked(x_n, QUANT_EPS)  # (*, C_in) int8, (*, 1)
        ternary, gamma = weight_quant_unchecked(self.weight, QUANT_EPS)  # (C_out, C_in) int8, ()
        c = straight_through_unchecked(x_n * s, codes.to(x_n.dtype))  # (*, C_in), integer values
        t = straight_through_unchecked(self.weight / gamma, ternary.to(self.weight.dtype))  # (C_out, C_in)
        return F.linear(c, t) * gamma / s  # (*, C_out): exact integer sums, then the scales

    @torch.no_grad()
    def quantize(self) -> BitLinearInference:
        """Freeze the layer for inference: ternary ``int8`` weights and one float scale.

        The weights are quantised once; activations are still quantised per call (they
        depend on the input). The result computes the same outputs as this layer, bit for
        bit (see [`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference]).

        Returns:
            A [`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference] with a copy of the RMSNorm gain.

        Raises:
            ValueError: If the weights hold NaN or infinity.
        """
        check_finite(self.weight, "weight")  # once per layer, not per call
        ternary, gamma = weight_quant_unchecked(self.weight, QUANT_EPS)
        return BitLinearInference(ternary, gamma, self.norm.weight.detach().clone(), eps=self.norm.eps)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def is_plain_linear(module: nn.Module) -> bool:
    """Whether ``module`` is a float ``Linear`` / ``nn.Linear``, not one of the quantised layers built on it."""
    return isinstance(module, (Linear, nn.Linear)) and not isinstance(
        module, (BitLinear, BinaryLinear, ThresholdTernaryLinear)
    )
