"""Tests of gptnotes.bitnet.norm: RMSNorm against torch.nn.RMSNorm, and its argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gptnotes.bitnet.norm import RMSNorm


@pytest.mark.parametrize("shape", [(5,), (3, 16), (2, 7, 64), (1, 1, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rmsnorm_equals_torch(shape, seed):
    torch.manual_seed(seed)
    ours, theirs = RMSNorm(shape[-1]), nn.RMSNorm(shape[-1], eps=1e-5)
    with torch.no_grad():
        g = torch.randn(shape[-1])
        ours.weight.copy_(g)
        theirs.weight.copy_(g)
    x = torch.randn(*shape, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(ours(x), theirs(x2))
    ours(x).pow(2).sum().backward()
    theirs(x2).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)


def test_rmsnorm_errors():
    with pytest.raises(ValueError, match="dim"):
        RMSNorm(0)
    with pytest.raises(TypeError, match="dim"):
        RMSNorm(2.0)
    with pytest.raises(ValueError, match="eps"):
        RMSNorm(4, eps=0)
    with pytest.raises(ValueError, match="input"):
        RMSNorm(4)(torch.ones(2, 3))
    with pytest.raises(TypeError, match="input"):
        RMSNorm(4)(torch.ones(2, 4, dtype=torch.int64))


@pytest.mark.parametrize("eps", [1e-320, 1e300])
def test_rmsnorm_refuses_an_eps_float32_cannot_use(eps):
    with pytest.raises(ValueError, match=r"eps must lie in"):
        RMSNorm(4, eps=eps)  # 1e-320 gave NaN for a zero input, 1e300 an overflow error
