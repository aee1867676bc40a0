"""A linear layer written from scratch: ``y = x Wᵀ + b``.

[`Linear`][gptnotes.linear.Linear] stores its weight as ``[out_features, in_features]``, exactly
like `torch.nn.Linear`, and draws its initial weights and bias from the same uniform
distribution, so that the two are interchangeable given the same parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gptnotes._checks import check_allocation, check_float_tensor, check_positive_int

__all__ = ["Linear"]


class Linear(nn.Module):
    r"""Apply an affine map to the last dimension: ``y = x @ weight.T + bias``.

    The same maths and the same default initialisation as `torch.nn.Linear`:
    every weight and every bias entry starts uniform in
    \([-1/\sqrt{\text{in\_features}},\ 1/\sqrt{\text{in\_features}}]\).

    Args:
        in_features: Size C_in of the last dimension of the input.
        out_features: Size C_out of the last dimension of the output.
        bias: If ``False``, the layer has no bias (``self.bias is None``), as the key,
            query and value layers of attention.

    Shape:
        - Input: ``(*, C_in)``, any number of leading dimensions, e.g. ``(B, T, C_in)``.
        - Output: ``(*, C_out)``, the same leading dimensions.

    Attributes:
        weight: Learnable tensor of shape ``(C_out, C_in)``. Row ``j`` holds the weights
            of output feature ``j``, which is why the forward pass multiplies by its transpose.
        bias: Learnable tensor of shape ``(C_out,)``, or ``None``.
        checks_input: ``True``: ``forward`` checks its input and names what is wrong.
            ``False`` for a layer inside a model that checked the input already (the key,
            query and value layers of a [`Head`][gptnotes.attention.Head]).

    Raises:
        TypeError: If a size is not an integer, ``bias`` is not a bool, or the input is not
            a floating-point tensor of the weight's dtype.
        ValueError: If a size is not positive, or the input's last dimension is not ``in_features``.

    Examples:
        >>> import torch
        >>> from gptnotes import Linear
        >>> _ = torch.manual_seed(0)
        >>> layer = Linear(4, 3)
        >>> tuple(layer.weight.shape)
        (3, 4)
        >>> x = torch.randn(2, 5, 4)          # (B, T, C_in)
        >>> tuple(layer(x).shape)             # (B, T, C_out)
        (2, 5, 3)
        >>> torch.allclose(layer(x), x @ layer.weight.T + layer.bias)
        True
    """

    checks_input = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {type(bias).__name__}")
        check_allocation(
            4 * self.out_features * (self.in_features + int(bias)), "the float32 weight of Linear",
            f"in_features={self.in_features}, out_features={self.out_features}",
        )
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw weight and bias uniform in ±1/sqrt(in_features), as ``nn.Linear`` does.

        ``nn.Linear`` reaches this bound through ``kaiming_uniform_(a=sqrt(5))``:
        gain ``sqrt(2 / (1 + 5)) = sqrt(1/3)`` times ``sqrt(3 / in_features)``
        is ``1 / sqrt(in_features)``. We compute it the same way, in the same order,
        so that the same seed gives bit-for-bit the same numbers.
        """
        gain = math.sqrt(2.0 / (1 + 5))
        bound = math.sqrt(3.0) * (gain / math.sqrt(self.in_features))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                bias_bound = 1 / math.sqrt(self.in_features)
                self.bias.uniform_(-bias_bound, bias_bound)

    def _check_input(self, x: object) -> torch.Tensor:
        """The input checks of ``forward``, shared with the layers built on this one."""
        check_float_tensor(x, "input")
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"input must have the dtype of the weight ({self.weight.dtype}), got {x.dtype}; "
                "convert one of them with .to()"
            )
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must have last dimension in_features={self.in_features}, "
                f"got shape {tuple(x.shape)}"
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.checks_input:
            self._check_input(x)
        y = x @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
