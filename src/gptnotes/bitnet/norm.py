"""Root-mean-square normalisation, the norm in front of every BitLinear.

[`RMSNorm`][gptnotes.bitnet.norm.RMSNorm] is LayerNorm without the mean and without the bias,
bit-for-bit equal to ``torch.nn.RMSNorm``. It has a module of its own because both the
training layer ([`BitLinear`][gptnotes.bitnet.layers.BitLinear]) and the integer inference
layer ([`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference]) normalise their
input with it before quantising (the page *BitLinear*, "The maths").
"""

from __future__ import annotations

import torch
from torch import nn

from gptnotes._checks import check_allocation, check_eps, check_float_tensor, check_positive_int

__all__ = ["RMSNorm"]


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
