"""Quantisers: from float weights and activations to a few integer codes, and how many bits those codes need.

The maths of BitNet b1.58's two roundings, one function each, in the order the pages
introduce them:

* information content (why "1.58 bits", on the page *BitNet b1.58*):
  [`entropy_bits`][gptnotes.bitnet.quant.entropy_bits],
  [`tensor_entropy_bits`][gptnotes.bitnet.quant.tensor_entropy_bits];
* the weights (the page *BitLinear*, "The maths" and "Absmean is a threshold rule"):
  [`ternary_threshold`][gptnotes.bitnet.quant.ternary_threshold] (the general rule),
  [`weight_quant`][gptnotes.bitnet.quant.weight_quant] (absmean: ternary codes and one scale),
  [`weight_fake_quant`][gptnotes.bitnet.quant.weight_fake_quant] (the float view a layer trains with);
* the activations ("The 8-bit activations": 8 bits per token, absmax):
  [`activation_quant`][gptnotes.bitnet.quant.activation_quant],
  [`activation_fake_quant`][gptnotes.bitnet.quant.activation_fake_quant];
* the gradient through the rounding ("Gradients: the straight-through estimator"):
  [`straight_through`][gptnotes.bitnet.quant.straight_through].

Each public function checks its arguments (a learner calls them directly on the pages);
the layers call the unchecked cores (``weight_quant_unchecked``,
``activation_quant_unchecked``,
``straight_through_unchecked``) after checking their own input once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gptnotes._checks import check_eps, check_finite, check_float_tensor, check_tensor

__all__ = [
    "entropy_bits",
    "tensor_entropy_bits",
    "straight_through",
    "ternary_threshold",
    "weight_quant",
    "weight_fake_quant",
    "activation_quant",
    "activation_fake_quant",
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
    returns [`entropy_bits`][gptnotes.bitnet.quant.entropy_bits] of them. For a ternary weight matrix this is the number of
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
    return straight_through_unchecked(x, q)


def straight_through_unchecked(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """[`straight_through`][gptnotes.bitnet.quant.straight_through] without the argument checks (for the layers)."""
    return q.detach() + (x - x.detach())


def ternary_threshold(w: torch.Tensor, threshold: float) -> torch.Tensor:
    """Map each weight to -1, 0 or +1: 0 where ``|w| <= threshold``, else its sign.

    The general threshold rule. [`ThresholdTernaryLinear`][gptnotes.bitnet.layers.ThresholdTernaryLinear] uses it with a fixed threshold;
    absmean quantisation ([`weight_quant`][gptnotes.bitnet.quant.weight_quant]) is the same rule with the threshold
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
    threshold = check_threshold(threshold)
    return torch.where(w.abs() > threshold, torch.sign(w), torch.zeros_like(w))


def check_threshold(threshold: object) -> float:
    """Return ``threshold`` as a float if it is a non-negative finite number, else raise."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative finite number, got {threshold!r}")
    return float(threshold)


def weight_quant(w: torch.Tensor, eps: float = QUANT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Quantise a weight tensor to ternary codes and one scale (absmean, BitNet b1.58).

    \(\gamma = \max(\frac{1}{nm}\sum_{ij}|W_{ij}|,\ \epsilon)\) and
    \(\widetilde W = \mathrm{RoundClip}(W / \gamma, -1, 1)\) with
    \(\mathrm{RoundClip}(x, a, b) = \max(a, \min(b, \mathrm{round}(x)))\), so that
    \(W \approx \gamma \widetilde W\). The paper writes \(W/(\gamma + \epsilon)\);
    Microsoft's reference code clamps \(\gamma\) at \(\epsilon\) instead, as here.
    Equivalent to [`ternary_threshold`][gptnotes.bitnet.quant.ternary_threshold] with threshold \(\gamma/2\), then scale
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
    return weight_quant_unchecked(w, check_eps(eps, "eps"))


def weight_quant_unchecked(w: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[`weight_quant`][gptnotes.bitnet.quant.weight_quant] without the argument checks (for the layers)."""
    w = w.detach()
    gamma = w.abs().mean().clamp(min=eps)
    ternary = (w / gamma).round().clamp(-1, 1).to(torch.int8)
    return ternary, gamma


def weight_fake_quant(w: torch.Tensor, eps: float = QUANT_EPS) -> torch.Tensor:
    """Return the dequantised ternary weights ``gamma * ternary`` as floats (training view).

    What a BitLinear layer multiplies by while it trains: every entry is ``-gamma``, ``0`` or
    ``+gamma``. No gradient flows through it; wrap it in [`straight_through`][gptnotes.bitnet.quant.straight_through].

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
    return activation_quant_unchecked(x, check_eps(eps, "eps"))


def activation_quant_unchecked(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[`activation_quant`][gptnotes.bitnet.quant.activation_quant] without the argument checks (for the layers)."""
    # In float32 at least: 127 / absmax overflows float16 (max 65504) once absmax < 1.9e-3.
    x = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    scale = ACT_QMAX / x.abs().amax(dim=-1, keepdim=True).clamp(min=eps)  # (*, 1)
    codes = (x * scale).round().clamp(-ACT_QMAX - 1, ACT_QMAX).to(torch.int8)  # (*, C)
    return codes, scale


def activation_fake_quant(x: torch.Tensor, eps: float = QUANT_EPS) -> torch.Tensor:
    """Return the dequantised 8-bit activations ``codes / scale`` as floats (training view).

    Each token keeps at most 256 distinct values. No gradient flows through it; wrap it in
    [`straight_through`][gptnotes.bitnet.quant.straight_through].

    Args:
        x: Floating-point tensor ``(*, C)``, finite.
        eps: Floor of the per-token absmax, positive.

    Shape:
        - Input: ``(*, C)``; Output: ``(*, C)``.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: As [`activation_quant`][gptnotes.bitnet.quant.activation_quant].

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import activation_fake_quant
        >>> [round(v, 4) for v in activation_fake_quant(torch.tensor([0.5, -1.0, 0.001])).tolist()]
        [0.5039, -1.0, 0.0]
    """
    codes, scale = activation_quant(x, eps)
    return (codes.to(scale.dtype) / scale).to(x.dtype)
