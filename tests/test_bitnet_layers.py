"""Tests of gptnotes.bitnet.layers: the two simple quantised layers and BitLinear."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptnotes import Linear
from gptnotes.bitnet.inference import int8_matmul
from gptnotes.bitnet.layers import BinaryLinear, BitLinear, ThresholdTernaryLinear
from gptnotes.bitnet.norm import RMSNorm
from gptnotes.bitnet.quant import activation_fake_quant, activation_quant, weight_fake_quant, weight_quant


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("seed", range(5))
def test_binary_linear_has_no_zeros(seed):
    torch.manual_seed(seed)
    layer = BinaryLinear(256, 128)
    q = layer.quantized_weight()
    assert set(q.unique().tolist()) == {-1.0, 1.0}
    # the notes' own init (torch.randn) gives no zeros either
    with torch.no_grad():
        layer.weight.normal_()
    assert int((layer.quantized_weight() == 0).sum()) == 0
    # sign() gives 0 only for an exact 0.0, and clamp(-1, 1) changes nothing
    with torch.no_grad():
        layer.weight[0, 0] = 0.0
    assert float(layer.quantized_weight().detach()[0, 0]) == 0.0
    assert torch.equal(layer.weight.sign().clamp(-1, 1), layer.weight.sign())


def test_binary_linear_output_is_sqrt_3_in_times_larger():
    # uniform init on [-b, b], b = 1/sqrt(C_in): Var(w) = 1/(3 C_in); sign(w) has variance 1.
    torch.manual_seed(0)
    c_in = 256
    binary = BinaryLinear(c_in, 512, bias=False)
    x = torch.randn(4096, c_in)
    with torch.no_grad():
        ratio = float(binary(x).std() / F.linear(x, binary.weight).std())
    assert ratio == pytest.approx(math.sqrt(3 * c_in), rel=0.05)


def test_notes_layers_give_no_gradient_to_their_weights():
    torch.manual_seed(0)
    x = torch.randn(8, 16)
    for layer in (BinaryLinear(16, 4), ThresholdTernaryLinear(16, 4, threshold=0.05)):
        layer(x).pow(2).sum().backward()
        assert bool((layer.weight.grad == 0).all())
        assert float(layer.bias.grad.abs().sum()) > 0
    # BinaryLinear(ste=True): the gradient reaches the weights, equal to the straight-through one
    layer = BinaryLinear(16, 4, ste=True)
    r = torch.randn(8, 4)
    (layer(x) * r).sum().backward()
    torch.testing.assert_close(layer.weight.grad, r.T @ x)


def test_threshold_layer_ignores_the_weights_scale():
    torch.manual_seed(0)
    layer = ThresholdTernaryLinear(64, 32)  # default threshold 0.5, |w| <= 1/8
    assert bool((layer.quantized_weight() == 0).all())
    x = torch.randn(5, 64)
    assert torch.equal(layer(x), layer.bias.expand(5, 32))
    # with the notes' torch.randn init, the zero fraction is P(|z| < t)
    with torch.no_grad():
        layer.weight.normal_()
    big = ThresholdTernaryLinear(1000, 1000)
    with torch.no_grad():
        big.weight.normal_()
    for t in (0.5, 0.05):
        big.threshold = t
        frac = float((big.quantized_weight() == 0).float().mean())
        assert frac == pytest.approx(math.erf(t / math.sqrt(2)), abs=0.005)
    # a weight exactly at the threshold keeps its sign (strict <), unlike ternary_threshold
    small = ThresholdTernaryLinear(2, 1, threshold=0.5)
    with torch.no_grad():
        small.weight.copy_(torch.tensor([[0.5, -0.4]]))
    assert small.quantized_weight().tolist() == [[1.0, 0.0]]


def test_notes_layers_errors():
    with pytest.raises(TypeError, match="ste"):
        BinaryLinear(2, 2, ste=1)
    with pytest.raises(ValueError, match="threshold"):
        ThresholdTernaryLinear(2, 2, threshold=-1.0)
    with pytest.raises(TypeError, match="threshold"):
        ThresholdTernaryLinear(2, 2, threshold=None)
    with pytest.raises(ValueError, match="input"):
        BinaryLinear(3, 2)(torch.ones(4, 2))
    with pytest.raises(ValueError, match="in_features"):
        ThresholdTernaryLinear(0, 2)


@pytest.mark.parametrize("layer", [BinaryLinear, ThresholdTernaryLinear, BitLinear])
def test_quantised_layers_check_their_input_like_linear(layer):
    torch.manual_seed(0)
    with pytest.raises(TypeError, match="input must have the dtype of the weight"):
        layer(3, 2)(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="in_features=3"):
        layer(3, 2)(torch.randn(2, 4))


def test_notes_integer_layer_behaviour():
    """What the notes' all-integer TernaryBitLinear does, step by step."""
    # 1. x.to(torch.int8) truncates toward zero: most activations of a normal layer become 0
    x = torch.randn(100_000, generator=_gen(9))
    frac_zero = float((x.to(torch.int8) == 0).float().mean())
    assert frac_zero == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.005)  # P(|z| < 1) = 0.683
    assert torch.tensor([0.9, -0.9, 1.7, -1.7, 126.99]).to(torch.int8).tolist() == [0, 0, 1, -1, 126]
    # 2. int8 @ int8 runs on the CPU but returns int8: the sum 400 cannot be held
    a = torch.full((1, 4), 100, dtype=torch.int8)
    b = torch.ones(4, 1, dtype=torch.int8)
    wrapped = torch.matmul(a, b)
    assert wrapped.dtype == torch.int8 and int(wrapped) != 400
    assert int(int8_matmul(a, b)) == 400
    # 3. adding a float bias in place to the int8 result raises
    out = torch.matmul(torch.ones(1, 10, dtype=torch.int8), torch.ones(10, 5, dtype=torch.int8))
    with pytest.raises(RuntimeError, match="can't be cast"):
        out += torch.zeros(5)
    # 4. an integer nn.Parameter must be created with requires_grad=False
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(torch.zeros(2, dtype=torch.int8))


@pytest.mark.parametrize(("c_in", "c_out", "seed"), [(8, 4, 0), (64, 256, 1), (3, 1, 2)])
def test_bitlinear_init_equals_linear_without_bias(c_in, c_out, seed):
    torch.manual_seed(seed)
    ours = BitLinear(c_in, c_out)
    torch.manual_seed(seed)
    ref = nn.Linear(c_in, c_out, bias=False)
    torch.manual_seed(seed)
    scratch = Linear(c_in, c_out, bias=False)
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.weight, scratch.weight)
    assert ours.bias is None
    assert torch.equal(ours.norm.weight, torch.ones(c_in))


def test_bitlinear_forward_is_the_rescaled_integer_product():
    torch.manual_seed(0)
    layer = BitLinear(32, 8)
    x = torch.randn(2, 5, 32)
    y = layer(x)
    codes, s = activation_quant(layer.norm(x))
    ternary, gamma = weight_quant(layer.weight)
    exact = (codes.double() @ ternary.double().T) * gamma.double() / s.double()
    torch.testing.assert_close(y.double(), exact, rtol=1e-5, atol=1e-6)


def test_bitlinear_gradients_follow_the_straight_through_estimator():
    torch.manual_seed(0)
    layer = BitLinear(24, 6)
    x = torch.randn(3, 4, 24, requires_grad=True)
    r = torch.randn(3, 4, 6)
    (layer(x) * r).sum().backward()
    # weight: dL/dW = r^T x_q, the gradient of a linear layer whose input is the quantised x
    x_q = activation_fake_quant(layer.norm(x.detach())).detach()
    expected_w = r.reshape(-1, 6).T @ x_q.reshape(-1, 24)
    torch.testing.assert_close(layer.weight.grad, expected_w)
    # input and RMSNorm gain: as if both quantisers were the identity
    x2 = x.detach().clone().requires_grad_(True)
    norm = RMSNorm(24)
    w_q = weight_fake_quant(layer.weight).detach()
    (F.linear(norm(x2), w_q) * r).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(layer.norm.weight.grad, norm.weight.grad)


def test_bitlinear_learns():
    torch.manual_seed(0)
    layer = BitLinear(16, 4)
    x = torch.randn(256, 16)
    target = x @ torch.randn(16, 4) * 0.5
    opt = torch.optim.AdamW(layer.parameters(), lr=3e-2)
    losses = []
    for _ in range(60):
        loss = F.mse_loss(layer(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bitlinear_errors():
    with pytest.raises(ValueError, match="in_features"):
        BitLinear(0, 3)
    with pytest.raises(TypeError, match="out_features"):
        BitLinear(3, True)
    layer = BitLinear(4, 2)
    with pytest.raises(ValueError, match="input"):
        layer(torch.ones(3, 5))
    with pytest.raises(TypeError, match="input"):
        layer(torch.ones(3, 4, dtype=torch.int64))
    with torch.no_grad():
        layer.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="weight"):
        layer.quantize()  # freezing checks the master weights once


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_bitlinear_gives_nan_for_a_non_finite_token_and_leaves_the_others(bad):
    # the forward pass does not scan values (as nn.Linear): the bad token's row becomes NaN,
    # every other token is computed as without it, and the frozen layer agrees
    torch.manual_seed(0)
    layer = BitLinear(4, 3)
    x = torch.randn(2, 3, 4)
    clean = layer(x)
    x[1, 2, 0] = bad
    y = layer(x)
    assert bool(torch.isnan(y[1, 2]).all())
    keep = torch.ones(2, 3, dtype=torch.bool)
    keep[1, 2] = False
    assert torch.equal(y[keep], clean[keep])
    frozen = layer.quantize()(x)
    assert bool(torch.isnan(frozen[1, 2]).all()) and torch.equal(frozen[keep], clean[keep])


def test_bitlinear_with_non_finite_master_weights_gives_nan_everywhere():
    torch.manual_seed(0)
    layer = BitLinear(4, 3)
    with torch.no_grad():
        layer.weight[0, 0] = float("inf")
    assert bool(torch.isnan(layer(torch.randn(5, 4))).all())


@pytest.mark.parametrize("layer", [BinaryLinear, ThresholdTernaryLinear])
def test_simple_layers_pass_non_finite_input_through_like_linear(layer):
    torch.manual_seed(0)
    m = layer(4, 3, bias=False)
    x = torch.randn(2, 4)
    x[0, 1] = float("nan")
    y = m(x)
    expected = F.linear(x, m.quantized_weight())
    assert torch.equal(y.isnan(), expected.isnan()) and torch.equal(y[1], expected[1])
