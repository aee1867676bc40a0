"""1-bit and 1.58-bit linear layers: BitNet b1.58 from scratch, and two simpler layers to compare.

BitNet b1.58 (Ma et al., 2024, "The Era of 1-bit LLMs") replaces the linear layers of a
Transformer by [`BitLinear`][gptnotes.bitnet.BitLinear]: the weights are quantised to the three values
``{-1, 0, +1}`` times one float scale per matrix (absmean quantisation), the activations to
8-bit integers with one scale per token (absmax quantisation), and the layer is trained with
full-precision *master* weights that the quantisers are applied to in every forward pass;
a straight-through estimator (STE) lets the gradient reach the master weights.

The module holds, in dependency order:

* information content: [`entropy_bits`][gptnotes.bitnet.entropy_bits], [`tensor_entropy_bits`][gptnotes.bitnet.tensor_entropy_bits] (why "1.58 bits");
* quantisers: [`straight_through`][gptnotes.bitnet.straight_through], [`ternary_threshold`][gptnotes.bitnet.ternary_threshold], [`weight_quant`][gptnotes.bitnet.weight_quant],
  [`weight_fake_quant`][gptnotes.bitnet.weight_fake_quant], [`activation_quant`][gptnotes.bitnet.activation_quant], [`activation_fake_quant`][gptnotes.bitnet.activation_fake_quant],
  [`int8_matmul`][gptnotes.bitnet.int8_matmul];
* [`RMSNorm`][gptnotes.bitnet.RMSNorm] (equal to ``torch.nn.RMSNorm``);
* two simpler quantised layers, kept for comparison: [`BinaryLinear`][gptnotes.bitnet.BinaryLinear] (sign: binary, never 0) and
  [`ThresholdTernaryLinear`][gptnotes.bitnet.ThresholdTernaryLinear] (fixed threshold, blind to the weights' scale);
* [`BitLinear`][gptnotes.bitnet.BitLinear] (training, simulated quantisation) and [`BitLinearInference`][gptnotes.bitnet.BitLinearInference]
  (frozen int8 weights, int8 activations, int32 accumulation);
* storage: [`pack_ternary`][gptnotes.bitnet.pack_ternary] / [`unpack_ternary`][gptnotes.bitnet.unpack_ternary] (5 weights per byte, 1.6 bits),
  [`pack_ternary_2bit`][gptnotes.bitnet.pack_ternary_2bit] / [`unpack_ternary_2bit`][gptnotes.bitnet.unpack_ternary_2bit] (4 per byte, 2 bits) and
  [`weight_memory_report`][gptnotes.bitnet.weight_memory_report];
* [`replace_linear_with_bitlinear`][gptnotes.bitnet.replace_linear_with_bitlinear] to turn the linear layers of a model into BitLinear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_eps,
    check_finite,
    check_float_tensor,
    check_positive_finite,
    check_positive_int,
    check_tensor,
)
from gptnotes.linear import Linear

__all__ = [
    "entropy_bits",
    "tensor_entropy_bits",
    "straight_through",
    "ternary_threshold",
    "weight_quant",
    "weight_fake_quant",
    "activation_quant",
    "activation_fake_quant",
    "int8_matmul",
    "RMSNorm",
    "BinaryLinear",
    "ThresholdTernaryLinear",
    "BitLinear",
    "BitLinearInference",
    "pack_ternary",
    "unpack_ternary",
    "pack_ternary_2bit",
    "unpack_ternary_2bit",
    "weight_memory_report",
    "replace_linear_with_bitlinear",
]

#: Default ``eps`` of the quantisers: the floor of the absmean / absmax scale, as in
#: Microsoft's reference code (``clamp_(min=1e-5)``). It only matters for an all-zero
#: weight matrix or an all-zero token.
QUANT_EPS = 1e-5

#: Largest magnitude of an 8-bit activation code, ``Q_b`` in the paper (2**7 - 1).
ACT_QMAX = 127


# --------------------------------------------------------------------------------------
# Information content: where "1.58 bits" comes from
# --------------------------------------------------------------------------------------


def entropy_bits(probs: torch.Tensor | Sequence[float]) -> float:
    r"""Return the Shannon entropy, in bits, of a discrete distribution.

    \(H = -\sum_i p_i \log_2 p_i\), with \(0 \log_2 0 = 0\). It is the least
    average number of bits per symbol that any lossless code can reach for symbols drawn
    independently from ``probs``; three equally likely values give
    \(\log_2 3 \approx 1.585\), the "1.58" of BitNet b1.58.

    Args:
        probs: Probabilities, 1-D: a tensor or a sequence of numbers, non-negative and
            summing to 1 (within ``1e-6``).

    Shape:
        - probs: ``(K,)``, one probability per value; output: a Python float.

    Returns:
        The entropy in bits, a Python float.

    Raises:
        TypeError: If ``probs`` is not a tensor or a sequence of real numbers.
        ValueError: If ``probs`` is empty, not 1-D, negative, not finite, or does not sum to 1.

    Examples:
        >>> from gptnotes.bitnet import entropy_bits
        >>> round(entropy_bits([1/3, 1/3, 1/3]), 5)
        1.58496
        >>> entropy_bits([0.5, 0.5]), entropy_bits([1.0, 0.0])
        (1.0, 0.0)
    """
    if isinstance(probs, torch.Tensor):
        if probs.is_complex():
            raise TypeError(f"probs must hold real numbers, got dtype {probs.dtype}")
        p = probs.detach().to(torch.float64)
    elif isinstance(probs, (str, bytes)) or not isinstance(probs, Sequence):
        raise TypeError(f"probs must be a tensor or a sequence of numbers, got {type(probs).__name__}")
    else:
        try:
            p = torch.tensor([float(v) for v in probs], dtype=torch.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"probs must hold numbers only ({err})") from None
    if p.dim() != 1 or p.numel() == 0:
        raise ValueError(f"probs must be a non-empty 1-D list of probabilities, got shape {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError("probs must hold finite, non-negative probabilities")
    total = float(p.sum())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"probs must sum to 1, got {total!r}")
    p = p[p > 0]
    return float(-(p * torch.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def tensor_entropy_bits(values: torch.Tensor) -> float:
    """Return the empirical entropy, in bits per element, of the values in a tensor.

    Counts how often each distinct value occurs, turns the counts into frequencies and
    returns [`entropy_bits`][gptnotes.bitnet.entropy_bits] of them. For a ternary weight matrix this is the number of
    bits per weight an ideal entropy coder would need; it equals ``log2(3)`` only when
    -1, 0 and +1 are equally frequent, and is lower otherwise.

    Args:
        values: Any tensor with at least one element (integer, bool or finite floats).

    Shape:
        - values: any shape; output: a Python float.

    Returns:
        The entropy of the value frequencies in bits, a Python float.

    Raises:
        TypeError: If ``values`` is not a tensor of real numbers.
        ValueError: If ``values`` is empty or holds NaN or infinity.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import tensor_entropy_bits
        >>> tensor_entropy_bits(torch.tensor([-1, 0, 1, 1]))
        1.5
        >>> round(tensor_entropy_bits(torch.tensor([-1, 0, 1] * 100)), 4)
        1.585
    """
    check_tensor(values, "values")
    if values.is_complex():
        raise TypeError(f"values must hold real numbers, got dtype {values.dtype}")
    if values.numel() == 0:
        raise ValueError("values must have at least one element")
    check_finite(values, "values")
    _, counts = torch.unique(values.detach().flatten(), return_counts=True)
    return entropy_bits(counts.to(torch.float64) / values.numel())


# --------------------------------------------------------------------------------------
# Quantisers
# --------------------------------------------------------------------------------------


def _check_eps(eps: float) -> float:
    return check_eps(eps, "eps")


def straight_through(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Return ``q`` in the forward pass and pass the gradient to ``x`` unchanged.

    The straight-through estimator (STE): rounding has a zero derivative almost everywhere,
    so a quantised forward pass would stop every gradient. The STE uses the quantised
    values forward and treats the quantiser as the identity backward:
    \(\partial L / \partial x := \partial L / \partial q\).

    Microsoft's reference code writes it ``x + (q - x).detach()``. We write
    ``q.detach() + (x - x.detach())``: the same gradient, but ``x - x.detach()`` is exactly
    zero, so the forward value is exactly ``q``, while ``x + (q - x)`` can differ from ``q``
    by one float rounding (for a 256 x 256 matrix of N(0, 1) weights, several percent of
    the entries do).

    Args:
        x: The full-precision tensor that receives the gradient.
        q: Its quantised version, same shape (broadcastable).

    Shape:
        - x: any shape; q: the shape of ``x`` (or broadcastable to it); output: the
          broadcast shape of the two.

    Returns:
        A tensor equal to ``q`` whose gradient flows to ``x``.

    Raises:
        TypeError: If ``x`` or ``q`` is not a tensor.
        ValueError: If ``q`` does not have the shape of ``x``.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import straight_through
        >>> x = torch.tensor([0.3, -1.7], requires_grad=True)
        >>> y = straight_through(x, x.round())
        >>> y.tolist()
        [0.0, -2.0]
        >>> (3 * y).sum().backward()
        >>> x.grad.tolist()
        [3.0, 3.0]
    """
    check_tensor(x, "x")
    check_tensor(q, "q")
    if q.shape != x.shape:
        raise ValueError(f"q must have the shape of x {tuple(x.shape)} (it replaces x's values), got {tuple(q.shape)}")
    return q.detach() + (x - x.detach())


def ternary_threshold(w: torch.Tensor, threshold: float) -> torch.Tensor:
    """Map each weight to -1, 0 or +1: 0 where ``|w| <= threshold``, else its sign.

    The general threshold rule. [`ThresholdTernaryLinear`][gptnotes.bitnet.ThresholdTernaryLinear] uses it with a fixed threshold;
    absmean quantisation ([`weight_quant`][gptnotes.bitnet.weight_quant]) is the same rule with the threshold
    ``gamma / 2`` derived from the weights themselves (``gamma = mean(|w|)``), plus the scale
    ``gamma``: ``round(w / gamma)`` clipped to [-1, 1] is 0 exactly when
    ``|w / gamma| <= 1/2`` (``torch.round`` sends a tie 0.5 to 0, round half to even).

    Args:
        w: Floating-point tensor of any shape.
        threshold: Non-negative finite number.

    Shape:
        - w: any shape, e.g. ``(C_out, C_in)``; output: the shape of ``w``.

    Returns:
        A tensor of ``w``'s shape and dtype holding only -1, 0 and +1.

    Raises:
        TypeError: If ``w`` is not a floating-point tensor or ``threshold`` not a number.
        ValueError: If ``threshold`` is negative or not finite, or ``w`` is not finite.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import ternary_threshold
        >>> ternary_threshold(torch.tensor([-0.9, -0.2, 0.0, 0.5, 0.51]), 0.5).tolist()
        [-1.0, 0.0, 0.0, 0.0, 1.0]
    """
    check_float_tensor(w, "w")
    check_finite(w, "w")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative finite number, got {threshold!r}")
    return torch.where(w.abs() > threshold, torch.sign(w), torch.zeros_like(w))


def weight_quant(w: torch.Tensor, eps: float = QUANT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Quantise a weight tensor to ternary codes and one scale (absmean, BitNet b1.58).

    \(\gamma = \max(\frac{1}{nm}\sum_{ij}|W_{ij}|,\ \epsilon)\) and
    \(\widetilde W = \mathrm{RoundClip}(W / \gamma, -1, 1)\) with
    \(\mathrm{RoundClip}(x, a, b) = \max(a, \min(b, \mathrm{round}(x)))\), so that
    \(W \approx \gamma \widetilde W\). The paper writes \(W/(\gamma + \epsilon)\);
    Microsoft's reference code clamps \(\gamma\) at \(\epsilon\) instead, as here.
    Equivalent to [`ternary_threshold`][gptnotes.bitnet.ternary_threshold] with threshold \(\gamma/2\), then scale
    \(\gamma\).

    Args:
        w: Non-empty floating-point tensor (usually ``(C_out, C_in)``), finite.
        eps: Floor of the scale, positive; only an all-zero (or tiny) ``w`` reaches it.

    Shape:
        - w: any shape, usually ``(C_out, C_in)``; ternary: the shape of ``w``; gamma: ``()``.

    Returns:
        ``(ternary, gamma)``: an ``int8`` tensor of ``w``'s shape holding -1, 0, +1, and a
        0-dim float tensor (``w``'s dtype), the scale.

    Raises:
        TypeError: If ``w`` is not a floating-point tensor.
        ValueError: If ``w`` is empty or holds NaN or infinity, or ``eps`` is not positive.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import weight_quant
        >>> ternary, gamma = weight_quant(torch.tensor([[0.4, -0.1], [-1.0, 0.3]]))
        >>> ternary.tolist(), ternary.dtype, round(gamma.item(), 4)
        ([[1, 0], [-1, 1]], torch.int8, 0.45)
    """
    check_float_tensor(w, "w")
    if w.numel() == 0:
        raise ValueError("w must have at least one element")
    check_finite(w, "w")
    return _weight_quant(w, _check_eps(eps))


def _weight_quant(w: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[`weight_quant`][gptnotes.bitnet.weight_quant] without the argument checks (for callers that made them)."""
    w = w.detach()
    gamma = w.abs().mean().clamp(min=eps)
    ternary = (w / gamma).round().clamp(-1, 1).to(torch.int8)
    return ternary, gamma


def weight_fake_quant(w: torch.Tensor, eps: float = QUANT_EPS) -> torch.Tensor:
    """Return the dequantised ternary weights ``gamma * ternary`` as floats (training view).

    What a BitLinear layer multiplies by while it trains: every entry is ``-gamma``, ``0`` or
    ``+gamma``. No gradient flows through it; wrap it in [`straight_through`][gptnotes.bitnet.straight_through].

    Args:
        w: Non-empty floating-point tensor, finite.
        eps: Floor of the scale, positive.

    Shape:
        - w: any shape, usually ``(C_out, C_in)``; output: the shape of ``w``.

    Returns:
        A tensor of ``w``'s shape and dtype with values in ``{-gamma, 0, +gamma}``.

    Raises:
        TypeError: If ``w`` is not a floating-point tensor.
        ValueError: If ``w`` is empty or not finite, or ``eps`` is not positive.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import weight_fake_quant
        >>> [round(v, 4) for v in weight_fake_quant(torch.tensor([0.4, -0.1, -1.0, 0.3])).tolist()]
        [0.45, 0.0, -0.45, 0.45]
    """
    ternary, gamma = weight_quant(w, eps)
    return ternary.to(w.dtype) * gamma


def activation_quant(x: torch.Tensor, eps: float = QUANT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Quantise activations to 8-bit integers with one scale per token (absmax).

    For each vector along the last dimension (one token):
    \(s = 127 / \max(\max_k |x_k|,\ \epsilon)\) and
    \(x_q = \mathrm{clamp}(\mathrm{round}(s x), -128, 127)\), so that
    \(x \approx x_q / s\). The largest entry of each token maps to ±127.

    Args:
        x: Floating-point tensor ``(*, C)`` with ``C >= 1``, finite.
        eps: Floor of the per-token absmax, positive.

    Shape:
        - Input: ``(*, C)``, e.g. ``(B, T, C)``.
        - Output: codes ``(*, C)`` (``int8``) and scales ``(*, 1)`` (``x``'s dtype, float32 for
          float16 and bfloat16 ``x``, whose range cannot hold ``127 / absmax`` for small values).

    Returns:
        ``(codes, scale)``: the ``int8`` codes and the per-token scales ``s``.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` is 0-dim, has an empty last dimension or is not finite, or
            ``eps`` is not positive.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import activation_quant
        >>> codes, scale = activation_quant(torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -0.01]]))
        >>> codes.tolist(), codes.dtype
        ([[64, -127, 32], [127, 0, -1]], torch.int8)
        >>> [round(v, 2) for v in scale.flatten().tolist()]
        [127.0, 63.5]
    """
    check_float_tensor(x, "x")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension, got shape {tuple(x.shape)}")
    check_finite(x, "x")
    eps = _check_eps(eps)
    # In float32 at least: 127 / absmax overflows float16 (max 65504) once absmax < 1.9e-3.
    x = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    scale = ACT_QMAX / x.abs().amax(dim=-1, keepdim=True).clamp(min=eps)  # (*, 1)
    codes = (x * scale).round().clamp(-ACT_QMAX - 1, ACT_QMAX).to(torch.int8)  # (*, C)
    return codes, scale


def activation_fake_quant(x: torch.Tensor, eps: float = QUANT_EPS) -> torch.Tensor:
    """Return the dequantised 8-bit activations ``codes / scale`` as floats (training view).

    Each token keeps at most 256 distinct values. No gradient flows through it; wrap it in
    [`straight_through`][gptnotes.bitnet.straight_through].

    Args:
        x: Floating-point tensor ``(*, C)``, finite.
        eps: Floor of the per-token absmax, positive.

    Shape:
        - Input: ``(*, C)``; Output: ``(*, C)``.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: As [`activation_quant`][gptnotes.bitnet.activation_quant].

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import activation_fake_quant
        >>> [round(v, 4) for v in activation_fake_quant(torch.tensor([0.5, -1.0, 0.001])).tolist()]
        [0.5039, -1.0, 0.0]
    """
    codes, scale = activation_quant(x, eps)
    return (codes.to(scale.dtype) / scale).to(x.dtype)


#: The largest inner size K for which every int8 x int8 sum of K products fits in int32:
#: 16384 * K <= 2**31 - 1.
INT8_MATMUL_MAX_K = (2**31 - 1) // (128 * 128)


def _int8_matmul_int32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fallback of [`int8_matmul`][gptnotes.bitnet.int8_matmul]: widen to int32 first (exact, but no BLAS: slow)."""
    return a.to(torch.int32) @ b.to(torch.int32)


def _plain_layout(t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` (2-D) with textbook row- or column-major strides, copying if needed.

    ``torch._int_mm`` on the CPU (PyTorch 2.13, oneDNN) silently returns garbage when an
    operand has a size-1 dimension whose stride is not the textbook one, e.g. ``w.t()`` for a
    weight of shape ``(C_out, 1)``: shape ``(1, C_out)``, strides ``(1, 1)``. PyTorch calls
    such a tensor contiguous (the stride of a size-1 dimension is never used to index), so
    ``.contiguous()`` does not copy it. Compare pytorch/pytorch issue 195066 (stride 0).
    """
    rows, cols = t.shape
    if t.stride() == (cols, 1) or (rows > 1 and cols > 1 and t.stride() == (1, rows)):
        return t
    return t.clone(memory_format=torch.contiguous_format)


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Multiply two ``int8`` matrices exactly, accumulating in ``int32``.

    ``torch.matmul`` on two ``int8`` tensors runs on the CPU but returns ``int8``: sums
    beyond 127 wrap around. This function returns ``int32`` instead. It uses
    ``torch._int_mm`` (int8 x int8 -> int32; a private PyTorch function, which on a CPU with
    int8 dot-product instructions is faster than a float32 matmul) and falls back to widening
    both operands to ``int32`` and calling ``torch.matmul`` (exact, but integer matmul has no
    BLAS kernel and is several times slower than float32). With one factor ternary
    (|value| <= 1) and the other ``int8``, every sum is at most ``128 * K`` in magnitude, far
    inside ``int32`` for any realistic ``K``; for any two ``int8`` factors the sum is exact up to
    ``K = INT8_MATMUL_MAX_K = 131071``, and a longer ``K`` is refused rather than wrapped. Operands with an unusual memory layout are
    copied first: ``torch._int_mm`` on the CPU returns garbage for some of them (a size-1
    dimension with a non-standard stride, e.g. the transpose of a ``(C_out, 1)`` weight).

    Args:
        a: ``int8`` tensor ``(M, K)``.
        b: ``int8`` tensor ``(K, N)``.

    Shape:
        - Output: ``(M, N)``, ``int32``.

    Returns:
        The exact product ``a @ b`` in ``int32``.

    Raises:
        TypeError: If ``a`` or ``b`` is not an ``int8`` tensor.
        ValueError: If they are not 2-D, their inner sizes differ, or ``K > 131071``.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import int8_matmul
        >>> a = torch.full((1, 4), 100, dtype=torch.int8)
        >>> b = torch.ones(4, 1, dtype=torch.int8)
        >>> int8_matmul(a, b).tolist(), int8_matmul(a, b).dtype
        ([[400]], torch.int32)
    """
    for name, t in (("a", a), ("b", b)):
        check_tensor(t, name, ndim=2)
        if t.dtype != torch.int8:
            raise TypeError(f"{name} must be an int8 tensor, got dtype {t.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must have matching inner sizes, got {tuple(a.shape)} @ {tuple(b.shape)}")
    if a.shape[1] > INT8_MATMUL_MAX_K:
        raise ValueError(
            f"a and b have inner size K={a.shape[1]}: a sum of K products of int8 values (up to 128 * 128 each) "
            f"is exact in int32 only for K <= {INT8_MATMUL_MAX_K}; split the product along K"
        )
    if hasattr(torch, "_int_mm") and a.device.type == "cpu" and a.shape[0] > 0 and a.shape[1] > 0 and b.shape[1] > 0:
        try:
            return torch._int_mm(_plain_layout(a), _plain_layout(b))
        except RuntimeError:  # a build or device without the kernel: fall back
            pass
    return _int8_matmul_int32(a, b)


def _check_features(x: object, in_features: int) -> torch.Tensor:
    check_float_tensor(x, "input")
    assert isinstance(x, torch.Tensor)
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(f"input must have last dimension in_features={in_features}, got shape {tuple(x.shape)}")
    check_finite(x, "input")
    return x


# --------------------------------------------------------------------------------------
# RMSNorm
# --------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    r"""Root-mean-square normalisation of the last dimension, with a learned gain.

    \(y = x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \cdot g\): like LayerNorm without
    subtracting the mean and without a bias. BitLinear normalises its input with it before
    quantising, so that every token reaches the quantiser at the same scale. Bit-for-bit
    equal to ``torch.nn.RMSNorm(dim, eps=eps)`` (PyTorch >= 2.4).

    Args:
        dim: Size C of the last dimension.
        eps: Added to the mean square before the square root, positive.

    Shape:
        - Input: ``(*, C)``, e.g. ``(B, T, C)``. Output: the same shape.

    Attributes:
        weight: The gain ``g``, shape ``(C,)``, initialised to ones.

    Raises:
        TypeError: If ``dim`` is not an integer or the input not a floating-point tensor.
        ValueError: If ``dim`` or ``eps`` is not positive, or the input's last dimension is
            not ``dim``.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import RMSNorm
        >>> norm = RMSNorm(4)
        >>> x = torch.tensor([[3.0, -3.0, 3.0, -3.0]])
        >>> [round(v, 4) for v in norm(x)[0].tolist()]
        [1.0, -1.0, 1.0, -1.0]
        >>> torch.equal(norm(x), torch.nn.RMSNorm(4, eps=1e-5)(x))
        True
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_allocation(4 * self.dim, "the float32 weight of RMSNorm", f"dim={self.dim}")
        self.eps = check_eps(eps, "eps")
        self.weight = nn.Parameter(torch.ones(self.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "input")
        if x.dim() == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"input must have last dimension dim={self.dim}, got shape {tuple(x.shape)}")
        rms_inv = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (*, 1)
        return x * rms_inv * self.weight  # (*, C)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


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
        check_finite(self._check_input(x), "input")
        w = self.quantized_weight()  # (C_out, C_in)
        if self.ste:
            w = straight_through(self.weight, w)
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
    (see [`ternary_threshold`][gptnotes.bitnet.ternary_threshold]).

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
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative finite number, got {threshold!r}")
        self.threshold = float(threshold)

    def quantized_weight(self) -> torch.Tensor:
        """Return the ternary weights: 0 where ``|W| < threshold``, else ``sign(W)``.

        Shape:
            - Output: ``(C_out, C_in)``, the shape of ``weight``.
        """
        w = self.weight
        return torch.where(w.abs() < self.threshold, torch.zeros_like(w), w).sign()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_finite(self._check_input(x), "input")
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

    The quantisers go through [`straight_through`][gptnotes.bitnet.straight_through], so the gradient reaches the
    full-precision master weights ``weight`` (and the RMSNorm gain and the input) as if
    they were the identity. Step 4 equals ``(codes @ ternary.T) * gamma / s``: an integer
    matrix product, then one rescale per output. We compute it in that order, the order of
    the integer kernel (the STE applied to ``s * x_n`` and ``W / gamma``, whose rounded
    values are ``codes`` and ``ternary``): the float matrix product of integer-valued
    operands is exact while every partial sum stays below ``2**24`` (``in_features <=
    131072``), so this forward is bit-for-bit the output of [`quantize`][gptnotes.bitnet.BitLinear.quantize]'s integer
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
        norm: The [`RMSNorm`][gptnotes.bitnet.RMSNorm] applied to the input.

    Raises:
        TypeError: If a size is not an integer, or the input is not a floating-point tensor.
        ValueError: If a size is not positive, the input's last dimension is not
            ``in_features``, or the input or the weights hold NaN or infinity.

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
        [`replace_linear_with_bitlinear`][gptnotes.bitnet.replace_linear_with_bitlinear]).

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
        if not isinstance(linear, (Linear, nn.Linear)) or isinstance(linear, (BitLinear, BinaryLinear, ThresholdTernaryLinear)):
            raise TypeError(f"linear must be a gptnotes.Linear or torch.nn.Linear, got {type(linear).__name__}")
        weight = linear.weight
        new = cls(weight.shape[1], weight.shape[0]).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            new.weight.copy_(weight)
        new.train(linear.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_finite(self._check_input(x), "input")
        check_finite(self.weight, "weight")
        x_n = self.norm(x)  # (*, C_in)
        codes, s = activation_quant(x_n)  # (*, C_in) int8, (*, 1)
        ternary, gamma = _weight_quant(self.weight, QUANT_EPS)  # (C_out, C_in) int8, (); checked above
        c = straight_through(x_n * s, codes.to(x_n.dtype))  # (*, C_in), integer values
        t = straight_through(self.weight / gamma, ternary.to(self.weight.dtype))  # (C_out, C_in)
        return F.linear(c, t) * gamma / s  # (*, C_out): exact integer sums, then the scales

    @torch.no_grad()
    def quantize(self) -> BitLinearInference:
        """Freeze the layer for inference: ternary ``int8`` weights and one float scale.

        The weights are quantised once; activations are still quantised per call (they
        depend on the input). The result computes the same outputs as this layer, bit for
        bit (see [`BitLinearInference`][gptnotes.bitnet.BitLinearInference]).

        Returns:
            A [`BitLinearInference`][gptnotes.bitnet.BitLinearInference] with a copy of the RMSNorm gain.

        Raises:
            ValueError: If the weights hold NaN or infinity.
        """
        check_finite(self.weight, "weight")
        ternary, gamma = weight_quant(self.weight)
        return BitLinearInference(ternary, gamma, self.norm.weight.detach().clone(), eps=self.norm.eps)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class BitLinearInference(nn.Module):
    r"""A frozen BitLinear that multiplies integers: int8 x int8 accumulated in int32.

    Forward: ``x_n = RMSNorm(x)``; ``codes, s = activation_quant(x_n)``;
    ``acc = codes @ ternary.T`` in ``int32`` ([`int8_matmul`][gptnotes.bitnet.int8_matmul]); ``y = acc * gamma / s``.
    The integer sum is exact, so the only roundings are the float RMSNorm, the activation
    quantiser and the final two float operations, exactly those of [`BitLinear`][gptnotes.bitnet.BitLinear]'s
    forward: the two are equal bit for bit (for ``in_features <= 131072``).

    Args:
        ternary: ``int8`` tensor ``(C_out, C_in)`` holding only -1, 0, +1.
        scale: The weight scale ``gamma``: a positive finite number or 0-dim tensor.
        norm_weight: RMSNorm gain, float tensor ``(C_in,)``.
        eps: RMSNorm epsilon, positive.

    Shape:
        - Input: ``(*, C_in)``, e.g. ``(B, T, C_in)``. Output: ``(*, C_out)``, float32.

    Raises:
        TypeError: If an argument has the wrong type or dtype.
        ValueError: If ``ternary`` holds other values than -1, 0, +1, the shapes do not fit,
            a value is not finite (``scale`` in float32, where it is stored), or the
            input's last dimension is wrong.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import BitLinear, pack_ternary, BitLinearInference
        >>> _ = torch.manual_seed(0)
        >>> frozen = BitLinear(10, 4).quantize()
        >>> frozen.ternary.dtype, tuple(frozen.ternary.shape)
        (torch.int8, (4, 10))
        >>> packed = pack_ternary(frozen.ternary)          # 40 weights -> 8 bytes
        >>> packed.numel()
        8
        >>> again = BitLinearInference.from_packed(packed, (4, 10), frozen.scale, frozen.norm.weight)
        >>> x = torch.randn(3, 10)
        >>> torch.equal(again(x), frozen(x))
        True
    """

    def __init__(self, ternary: torch.Tensor, scale: float | torch.Tensor, norm_weight: torch.Tensor, eps: float = 1e-5) -> None:
        super().__init__()
        check_tensor(ternary, "ternary", ndim=2)
        if ternary.dtype != torch.int8:
            raise TypeError(f"ternary must be an int8 tensor, got dtype {ternary.dtype}")
        if ternary.numel() == 0:
            raise ValueError(f"ternary must not be empty, got shape {tuple(ternary.shape)}")
        if bool((ternary.abs() > 1).any()):
            raise ValueError("ternary must hold only -1, 0 and 1")
        gamma = check_positive_finite(scale, "scale")
        if not math.isfinite(float(torch.tensor(gamma, dtype=torch.float32))):
            raise ValueError(f"scale must be finite in float32 (the dtype it is stored in), got {gamma!r}")
        check_float_tensor(norm_weight, "norm_weight", ndim=1)
        check_finite(norm_weight, "norm_weight")
        if norm_weight.shape[0] != ternary.shape[1]:
            raise ValueError(
                f"norm_weight must have in_features={ternary.shape[1]} entries, got {norm_weight.shape[0]}"
            )
        self.out_features, self.in_features = (int(s) for s in ternary.shape)
        self.register_buffer("ternary", ternary.detach().clone())
        self.register_buffer("scale", torch.tensor(gamma, dtype=torch.float32))
        self.norm = RMSNorm(self.in_features, eps=eps)
        with torch.no_grad():
            self.norm.weight.copy_(norm_weight)
        self.norm.weight.requires_grad_(False)
        self.eval()

    @classmethod
    def from_packed(
        cls,
        packed: torch.Tensor,
        shape: Sequence[int],
        scale: float | torch.Tensor,
        norm_weight: torch.Tensor,
        eps: float = 1e-5,
    ) -> BitLinearInference:
        """Build the layer from 1.6-bit packed weights (see [`pack_ternary`][gptnotes.bitnet.pack_ternary]).

        Args:
            packed: ``uint8`` tensor from [`pack_ternary`][gptnotes.bitnet.pack_ternary].
            shape: ``(C_out, C_in)``.
            scale: The weight scale ``gamma``.
            norm_weight: RMSNorm gain ``(C_in,)``.
            eps: RMSNorm epsilon.

        Shape:
            - packed: ``(ceil(C_out * C_in / 5),)``; norm_weight: ``(C_in,)``;
              the layer's weight: ``(C_out, C_in)``.

        Returns:
            A [`BitLinearInference`][gptnotes.bitnet.BitLinearInference].

        Raises:
            TypeError: If ``packed`` is not ``uint8`` or an argument has the wrong type.
            ValueError: If ``packed`` does not fit ``shape`` (see [`unpack_ternary`][gptnotes.bitnet.unpack_ternary]) or
                another argument is invalid (see the constructor).
        """
        return cls(unpack_ternary(packed, shape), scale, norm_weight, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.in_features)
        lead = x.shape[:-1]
        x_n = self.norm(x.to(torch.float32)).reshape(-1, self.in_features)  # (N, C_in), N = B*T
        codes, s = activation_quant(x_n)  # (N, C_in) int8, (N, 1)
        acc = int8_matmul(codes, self.ternary.t())  # (N, C_out) int32, exact
        y = acc.to(torch.float32) * self.scale / s  # (N, C_out)
        return y.reshape(*lead, self.out_features)  # (*, C_out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale.item():.6g}"


# --------------------------------------------------------------------------------------
# Storage: 5 trits per byte (1.6 bits) and 4 per byte (2 bits)
# --------------------------------------------------------------------------------------

_TRITS_PER_BYTE = 5  # 3**5 = 243 <= 256
_POW3 = (1, 3, 9, 27, 81)
_MAX_TRIT_BYTE = 3**_TRITS_PER_BYTE - 1  # 242
_CRUMBS_PER_BYTE = 4  # 2 bits each


def _ternary_codes(weights: object) -> torch.Tensor:
    """Check ``weights`` and return them flat as ``int64`` codes 0, 1, 2 (weight + 1)."""
    check_tensor(weights, "weights")
    assert isinstance(weights, torch.Tensor)
    if weights.dtype == torch.bool or weights.is_complex():
        raise TypeError(f"weights must be an integer or floating-point tensor, got dtype {weights.dtype}")
    flat = weights.detach().flatten()
    if flat.is_floating_point():
        check_finite(flat, "weights")
    if flat.numel() and bool(((flat != -1) & (flat != 0) & (flat != 1)).any()):
        bad = flat[(flat != -1) & (flat != 0) & (flat != 1)][0].item()
        raise ValueError(f"weights must hold only -1, 0 and 1, found {bad!r}")
    return flat.to(torch.int64) + 1


def _check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, torch.Size):
        return tuple(int(s) for s in shape)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise TypeError(f"shape must be a tuple of non-negative integers, got {type(shape).__name__}")
    dims = tuple(shape)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"shape must be a tuple of non-negative integers, got {dims!r}")
        if d < 0:
            raise ValueError(f"shape must be a tuple of non-negative integers, got {dims!r}")
    return dims


def _check_packed(packed: object, expected_len: int, per_byte: int, shape: tuple[int, ...]) -> torch.Tensor:
    check_tensor(packed, "packed")
    assert isinstance(packed, torch.Tensor)
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 tensor, got dtype {packed.dtype}")
    if packed.dim() != 1:
        raise ValueError(f"packed must be 1-D, got shape {tuple(packed.shape)}")
    if packed.numel() != expected_len:
        raise ValueError(
            f"packed must hold {expected_len} bytes for shape {shape} ({per_byte} weights per byte), "
            f"got {packed.numel()}"
        )
    return packed


def pack_ternary(weights: torch.Tensor) -> torch.Tensor:
    r"""Pack ternary weights five to a byte: 1.6 bits per weight.

    Five weights \(w_0 \dots w_4 \in \{-1, 0, 1\}\) become the digits
    \(d_i = w_i + 1 \in \{0, 1, 2\}\) of one base-3 number
    \(d_0 + 3 d_1 + 9 d_2 + 27 d_3 + 81 d_4 \le 242\), which fits a byte because
    \(3^5 = 243 \le 256\). The weights are read in row-major order; the last byte is
    padded with weights 0. 8 / 5 = 1.6 bits per weight, 0.95 % above the
    \(\log_2 3 \approx 1.585\) of an ideal code for equally likely values.

    Args:
        weights: Tensor of any shape (integer, or float holding only -1.0, 0.0, 1.0).

    Shape:
        - weights: any shape, ``n`` elements; output: ``(ceil(n / 5),)``.

    Returns:
        A 1-D ``uint8`` tensor of ``ceil(weights.numel() / 5)`` bytes.

    Raises:
        TypeError: If ``weights`` is not an integer or floating-point tensor.
        ValueError: If ``weights`` holds a value other than -1, 0, 1 (or NaN).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import pack_ternary, unpack_ternary
        >>> w = torch.tensor([[1, 0, -1], [-1, 1, 1]], dtype=torch.int8)
        >>> packed = pack_ternary(w)
        >>> packed.tolist(), packed.dtype
        ([167, 122], torch.uint8)
        >>> torch.equal(unpack_ternary(packed, (2, 3)), w)
        True
    """
    codes = _ternary_codes(weights)
    n = codes.numel()
    n_bytes = -(-n // _TRITS_PER_BYTE)
    padded = torch.ones(n_bytes * _TRITS_PER_BYTE, dtype=torch.int64, device=codes.device)  # pad: weight 0
    padded[:n] = codes
    powers = torch.tensor(_POW3, dtype=torch.int64, device=codes.device)
    return (padded.view(n_bytes, _TRITS_PER_BYTE) * powers).sum(dim=1).to(torch.uint8)


def unpack_ternary(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Unpack [`pack_ternary`][gptnotes.bitnet.pack_ternary]'s bytes into an ``int8`` tensor of -1, 0, 1.

    Args:
        packed: 1-D ``uint8`` tensor of exactly ``ceil(prod(shape) / 5)`` bytes.
        shape: The shape of the weights, a tuple (or ``torch.Size``) of non-negative ints.

    Shape:
        - packed: ``(ceil(n / 5),)`` with ``n = prod(shape)``; output: ``shape``.

    Returns:
        An ``int8`` tensor of shape ``shape``.

    Raises:
        TypeError: If ``packed`` is not a ``uint8`` tensor or ``shape`` not a tuple of ints.
        ValueError: If ``packed`` is not 1-D, has the wrong length for ``shape``, or holds a
            byte that [`pack_ternary`][gptnotes.bitnet.pack_ternary] cannot produce (above 242, or non-zero padding).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import unpack_ternary
        >>> unpack_ternary(torch.tensor([167, 122], dtype=torch.uint8), (2, 3)).tolist()
        [[1, 0, -1], [-1, 1, 1]]
    """
    dims = _check_shape(shape)
    n = math.prod(dims)
    n_bytes = -(-n // _TRITS_PER_BYTE)
    _check_packed(packed, n_bytes, _TRITS_PER_BYTE, dims)
    values = packed.to(torch.int64)
    if n_bytes and int(values.max()) > _MAX_TRIT_BYTE:
        raise ValueError(f"packed holds byte {int(values.max())}; pack_ternary writes at most {_MAX_TRIT_BYTE}")
    powers = torch.tensor(_POW3, dtype=torch.int64, device=packed.device)
    digits = (values.unsqueeze(1) // powers) % 3  # (n_bytes, 5)
    flat = digits.flatten()
    if bool((flat[n:] != 1).any()):
        raise ValueError("packed has non-zero padding after the last weight; it was not written by pack_ternary")
    return (flat[:n] - 1).to(torch.int8).reshape(dims)


def pack_ternary_2bit(weights: torch.Tensor) -> torch.Tensor:
    """Pack ternary weights four to a byte, two bits each: 2 bits per weight.

    Simpler and faster to decode than [`pack_ternary`][gptnotes.bitnet.pack_ternary] (shifts and masks instead of
    divisions), at 25 % more memory; a common layout for ternary weights (Hugging Face's
    BitNet integration packs four values per ``uint8``). Weight ``w`` becomes the 2-bit code
    ``w + 1``; weight ``i`` of a group of four sits at bits ``2i, 2i + 1``. The code 3 is unused.

    Args:
        weights: Tensor of any shape (integer, or float holding only -1.0, 0.0, 1.0).

    Shape:
        - weights: any shape, ``n`` elements; output: ``(ceil(n / 4),)``.

    Returns:
        A 1-D ``uint8`` tensor of ``ceil(weights.numel() / 4)`` bytes.

    Raises:
        TypeError: If ``weights`` is not an integer or floating-point tensor.
        ValueError: If ``weights`` holds a value other than -1, 0, 1 (or NaN).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import pack_ternary_2bit
        >>> pack_ternary_2bit(torch.tensor([1, 0, -1, 1, 0])).tolist()
        [134, 85]
    """
    codes = _ternary_codes(weights)
    n = codes.numel()
    n_bytes = -(-n // _CRUMBS_PER_BYTE)
    padded = torch.ones(n_bytes * _CRUMBS_PER_BYTE, dtype=torch.int64, device=codes.device)  # pad: weight 0
    padded[:n] = codes
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.int64, device=codes.device)
    return (padded.view(n_bytes, _CRUMBS_PER_BYTE) << shifts).sum(dim=1).to(torch.uint8)


def unpack_ternary_2bit(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Unpack [`pack_ternary_2bit`][gptnotes.bitnet.pack_ternary_2bit]'s bytes into an ``int8`` tensor of -1, 0, 1.

    Args:
        packed: 1-D ``uint8`` tensor of exactly ``ceil(prod(shape) / 4)`` bytes.
        shape: The shape of the weights.

    Shape:
        - packed: ``(ceil(n / 4),)`` with ``n = prod(shape)``; output: ``shape``.

    Returns:
        An ``int8`` tensor of shape ``shape``.

    Raises:
        TypeError: If ``packed`` is not a ``uint8`` tensor or ``shape`` not a tuple of ints.
        ValueError: If ``packed`` has the wrong length or holds the unused code 3.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import unpack_ternary_2bit
        >>> unpack_ternary_2bit(torch.tensor([134, 85], dtype=torch.uint8), (5,)).tolist()
        [1, 0, -1, 1, 0]
    """
    dims = _check_shape(shape)
    n = math.prod(dims)
    n_bytes = -(-n // _CRUMBS_PER_BYTE)
    _check_packed(packed, n_bytes, _CRUMBS_PER_BYTE, dims)
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.int64, device=packed.device)
    codes = ((packed.to(torch.int64).unsqueeze(1) >> shifts) & 3).flatten()
    if bool((codes == 3).any()):
        raise ValueError("packed holds the 2-bit code 3, which pack_ternary_2bit never writes")
    if bool((codes[n:] != 1).any()):
        raise ValueError("packed has non-zero padding after the last weight; it was not written by pack_ternary_2bit")
    return (codes[:n] - 1).to(torch.int8).reshape(dims)


def weight_memory_report(layer: nn.Module | torch.Tensor) -> dict[str, int]:
    """Measure the bytes a weight matrix takes in five formats, from real tensors.

    Each number is the ``nbytes`` of a tensor actually built: the weight cast to float32
    and float16, the ternary codes as ``int8`` (one byte per weight, what the integer matmul
    reads), packed four per byte ([`pack_ternary_2bit`][gptnotes.bitnet.pack_ternary_2bit]) and five per byte
    ([`pack_ternary`][gptnotes.bitnet.pack_ternary]). The three ternary formats add the ``nbytes`` of the float32
    scale ``gamma`` (4 bytes). Biases and norm gains are not counted.

    Args:
        layer: A module with a 2-D float ``weight`` (``Linear``, ``nn.Linear``,
            ``BitLinear``) or a float weight tensor.

    Shape:
        - the weight: ``(C_out, C_in)``; output: a dict of byte counts.

    Returns:
        ``{"fp32": ..., "fp16": ..., "int8": ..., "2-bit": ..., "1.6-bit": ...}`` in bytes.

    Raises:
        TypeError: If ``layer`` has no floating-point ``weight``.
        ValueError: If the weight is not 2-D, is empty or is not finite.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import weight_memory_report
        >>> weight_memory_report(torch.nn.Linear(64, 64))
        {'fp32': 16384, 'fp16': 8192, 'int8': 4100, '2-bit': 1028, '1.6-bit': 824}
    """
    if isinstance(layer, torch.Tensor):
        weight = layer
    else:
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"layer must be a tensor or a module with a weight tensor, got {type(layer).__name__}")
    check_float_tensor(weight, "layer.weight", ndim=2)
    weight = weight.detach()
    ternary, gamma = weight_quant(weight)
    gamma32 = gamma.to(torch.float32)
    return {
        "fp32": weight.to(torch.float32).nbytes,
        "fp16": weight.to(torch.float16).nbytes,
        "int8": ternary.nbytes + gamma32.nbytes,
        "2-bit": pack_ternary_2bit(ternary).nbytes + gamma32.nbytes,
        "1.6-bit": pack_ternary(ternary).nbytes + gamma32.nbytes,
    }


# --------------------------------------------------------------------------------------
# Model surgery
# --------------------------------------------------------------------------------------


def _is_plain_linear(module: nn.Module) -> bool:
    notes_layers = (BitLinear, BinaryLinear, ThresholdTernaryLinear)
    return isinstance(module, (Linear, nn.Linear)) and not isinstance(module, notes_layers)


def replace_linear_with_bitlinear(module: nn.Module, exclude: Iterable[str] = ("lm_head",)) -> list[str]:
    """Replace, in place, every ``Linear`` / ``nn.Linear`` inside ``module`` by a BitLinear.

    Each new [`BitLinear`][gptnotes.bitnet.BitLinear] has the same shape and a copy of the old weight as its
    master weights. Biases are dropped: BitNet b1.58 has none (the paper removes all
    biases, like LLaMA), and BitLinear's fixed signature has no ``bias``. The replacement is
    meant to be followed by training (BitNet is quantisation-aware training, not a
    conversion of a trained model: quantising a trained float model's weights without
    training changes its outputs a lot). In a GPT, apply it to ``model.blocks``: the token
    and position embeddings and the output head ``lm_head`` stay full precision, as in the
    paper; any submodule whose name, or last name component, is in ``exclude`` is left
    alone too.

    Args:
        module: The model or submodule to change (not itself a Linear: for one layer use
            [`BitLinear.from_linear`][gptnotes.bitnet.BitLinear.from_linear]).
        exclude: Names of submodules to keep, full dotted names or last components.

    Returns:
        The dotted names of the replaced layers, in module order.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module``, is itself a Linear, or
            ``exclude`` is a single string.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from gptnotes import Linear
        >>> from gptnotes.bitnet import BitLinear, replace_linear_with_bitlinear
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), Linear(16, 8))
        >>> replace_linear_with_bitlinear(net)
        ['0', '2']
        >>> [type(m).__name__ for m in net]
        ['BitLinear', 'ReLU', 'BitLinear']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if _is_plain_linear(module):
        raise TypeError("module must contain Linear layers, not be one; use BitLinear.from_linear(layer)")
    if isinstance(exclude, (str, bytes)):
        raise TypeError("exclude must be a collection of names, e.g. ('lm_head',), not a single string")
    skip = set(exclude)
    replaced: list[str] = []
    for name, child in list(module.named_modules()):
        if not name or not _is_plain_linear(child):
            continue
        if name in skip or name.rsplit(".", 1)[-1] in skip:
            continue
        parent_name, _, attr = name.rpartition(".")
        if any(part in skip for part in parent_name.split(".") if part):
            continue
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, BitLinear.from_linear(child))
        replaced.append(name)
    return replaced
