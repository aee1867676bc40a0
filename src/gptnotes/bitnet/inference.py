"""Integer inference: a frozen BitLinear that multiplies int8 by int8 and sums in int32.

What runs after training (the page *BitLinear*, "Inference with integers"):
[`int8_matmul`][gptnotes.bitnet.inference.int8_matmul], the exact integer product (with a
workaround for a PyTorch bug in ``torch._int_mm``), and
[`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference], the layer that
[`BitLinear.quantize`][gptnotes.bitnet.layers.BitLinear.quantize] returns: ternary ``int8``
weights and one scale, equal bit for bit to the training layer's forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gptnotes._checks import check_finite, check_float_tensor, check_positive_finite, check_tensor
from gptnotes.bitnet.norm import RMSNorm
from gptnotes.bitnet.packing import unpack_ternary
from gptnotes.bitnet.quant import QUANT_EPS, activation_quant_unchecked

__all__ = ["int8_matmul", "BitLinearInference"]

#: The largest inner size K for which every int8 x int8 sum of K products fits in int32:
#: 16384 * K <= 2**31 - 1.
INT8_MATMUL_MAX_K = (2**31 - 1) // (128 * 128)


def _int8_matmul_int32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fallback of [`int8_matmul`][gptnotes.bitnet.inference.int8_matmul]: widen to int32 first (exact, but no BLAS: slow)."""
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
    return _int8_matmul(a, b)


def _int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[`int8_matmul`][gptnotes.bitnet.inference.int8_matmul] without the argument checks (for the layer)."""
    if hasattr(torch, "_int_mm") and a.device.type == "cpu" and a.shape[0] > 0 and a.shape[1] > 0 and b.shape[1] > 0:
        try:
            return torch._int_mm(_plain_layout(a), _plain_layout(b))
        except RuntimeError:  # a build or device without the kernel: fall back
            pass
    return _int8_matmul_int32(a, b)


class BitLinearInference(nn.Module):
    r"""A frozen BitLinear that multiplies integers: int8 x int8 accumulated in int32.

    Forward: ``x_n = RMSNorm(x)``; ``codes, s = activation_quant(x_n)``;
    ``acc = codes @ ternary.T`` in ``int32`` ([`int8_matmul`][gptnotes.bitnet.inference.int8_matmul]); ``y = acc * gamma / s``.
    The integer sum is exact, so the only roundings are the float RMSNorm, the activation
    quantiser and the final two float operations, exactly those of [`BitLinear`][gptnotes.bitnet.layers.BitLinear]'s
    forward: the two are equal bit for bit (for ``in_features <= 131072``). The input's
    values are not scanned: a token holding NaN or infinity gives NaN in its output row.

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
        """Build the layer from 1.6-bit packed weights (see [`pack_ternary`][gptnotes.bitnet.packing.pack_ternary]).

        Args:
            packed: ``uint8`` tensor from [`pack_ternary`][gptnotes.bitnet.packing.pack_ternary].
            shape: ``(C_out, C_in)``.
            scale: The weight scale ``gamma``.
            norm_weight: RMSNorm gain ``(C_in,)``.
            eps: RMSNorm epsilon.

        Shape:
            - packed: ``(ceil(C_out * C_in / 5),)``; norm_weight: ``(C_in,)``;
              the layer's weight: ``(C_out, C_in)``.

        Returns:
            A [`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference].

        Raises:
            TypeError: If ``packed`` is not ``uint8`` or an argument has the wrong type.
            ValueError: If ``packed`` does not fit ``shape`` (see [`unpack_ternary`][gptnotes.bitnet.packing.unpack_ternary]) or
                another argument is invalid (see the constructor).
        """
        return cls(unpack_ternary(packed, shape), scale, norm_weight, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "input")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must have last dimension in_features={self.in_features}, got shape {tuple(x.shape)}"
            )
        lead = x.shape[:-1]
        x_n = self.norm(x.to(torch.float32)).reshape(-1, self.in_features)  # (N, C_in), N = B*T
        codes, s = activation_quant_unchecked(x_n, QUANT_EPS)  # (N, C_in) int8, (N, 1)
        acc = _int8_matmul(codes, self.ternary.t())  # (N, C_out) int32, exact: |sum| <= 128 * C_in
        y = acc.to(torch.float32) * self.scale / s  # (N, C_out)
        return y.reshape(*lead, self.out_features)  # (*, C_out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale.item():.6g}"
