"""Tests of gptnotes.bitnet: quantisers, BitLinear, the integer path, packing, the notes' layers."""

from __future__ import annotations

import math
import os
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import Linear
from gptnotes.bitnet import (
    BinaryLinear,
    BitLinear,
    BitLinearInference,
    RMSNorm,
    ThresholdTernaryLinear,
    _int8_matmul_int32,
    activation_fake_quant,
    activation_quant,
    entropy_bits,
    int8_matmul,
    pack_ternary,
    pack_ternary_2bit,
    replace_linear_with_bitlinear,
    straight_through,
    ternary_threshold,
    tensor_entropy_bits,
    unpack_ternary,
    unpack_ternary_2bit,
    weight_fake_quant,
    weight_memory_report,
    weight_quant,
)

U32 = 2.0**-24  # unit roundoff of float32
HYP = settings(max_examples=30, deadline=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------
# Entropy
# ---------------------------------------------------------------------------------------


def test_entropy_of_three_equally_likely_values_is_log2_3():
    assert entropy_bits([1 / 3, 1 / 3, 1 / 3]) == pytest.approx(math.log2(3), abs=1e-12)
    assert math.log2(3) == pytest.approx(1.58496, abs=1e-5)


@given(n=st.integers(1, 64))
@HYP
def test_entropy_of_uniform_over_n_is_log2_n(n):
    assert entropy_bits(torch.full((n,), 1.0 / n, dtype=torch.float64)) == pytest.approx(math.log2(n), abs=1e-9)


def test_entropy_edge_cases():
    assert entropy_bits([1.0, 0.0, 0.0]) == 0.0
    assert entropy_bits([0.5, 0.5]) == 1.0
    assert entropy_bits([0.5, 0.25, 0.25]) == pytest.approx(1.5)


def test_tensor_entropy_matches_counted_frequencies():
    values = torch.randint(-1, 2, (1000,), generator=_gen(0))
    counts = Counter(values.tolist())
    expected = -sum(c / 1000 * math.log2(c / 1000) for c in counts.values())
    assert tensor_entropy_bits(values) == pytest.approx(expected, abs=1e-12)


def test_empirical_entropy_of_absmean_ternary_gaussian_weights():
    # For w ~ N(0, s^2): gamma = E|w| = s*sqrt(2/pi), so w -> 0 when |w| <= gamma/2, i.e. with
    # probability p0 = erf(sqrt(2/pi)/2 / sqrt(2)), and -1, +1 each with (1 - p0)/2.
    w = torch.randn(1000, 1000, generator=_gen(1)) * 0.02
    ternary, _ = weight_quant(w)
    p0 = math.erf(math.sqrt(2 / math.pi) / 2 / math.sqrt(2))
    expected = entropy_bits([p0, (1 - p0) / 2, (1 - p0) / 2])
    assert float((ternary == 0).double().mean()) == pytest.approx(p0, abs=0.002)
    assert tensor_entropy_bits(ternary) == pytest.approx(expected, abs=0.002)
    assert tensor_entropy_bits(ternary) < math.log2(3)


def test_empirical_entropy_of_ternary_uniform_init_weights():
    # Linear's init is uniform on [-b, b]: gamma = b/2, zero iff |w| <= b/4: p0 = 1/4.
    torch.manual_seed(2)
    ternary, _ = weight_quant(Linear(1000, 1000).weight)
    expected = entropy_bits([0.25, 0.375, 0.375])
    assert tensor_entropy_bits(ternary) == pytest.approx(expected, abs=0.002)


@pytest.mark.parametrize(
    ("probs", "exc"),
    [
        ([0.5, 0.6], ValueError),
        ([1.5, -0.5], ValueError),
        ([], ValueError),
        ([float("nan"), 1.0], ValueError),
        ("abc", TypeError),
        (3, TypeError),
        (["a", "b"], TypeError),
        (torch.ones(2, 2) / 4, ValueError),
    ],
)
def test_entropy_bits_rejects_bad_probs(probs, exc):
    with pytest.raises(exc, match="probs"):
        entropy_bits(probs)


def test_tensor_entropy_rejects_bad_values():
    with pytest.raises(TypeError, match="values"):
        tensor_entropy_bits([1, 2])
    with pytest.raises(ValueError, match="values"):
        tensor_entropy_bits(torch.tensor([]))
    with pytest.raises(ValueError, match="values"):
        tensor_entropy_bits(torch.tensor([1.0, float("nan")]))


# ---------------------------------------------------------------------------------------
# Weight quantiser (absmean)
# ---------------------------------------------------------------------------------------


def _roundclip_reference(r: torch.Tensor) -> torch.Tensor:
    """RoundClip(r, -1, 1) written as a threshold rule, independently of torch.round."""
    return torch.sign(r) * (r.abs() > 0.5).to(r.dtype)


@given(seed=st.integers(0, 10_000), rows=st.integers(1, 9), cols=st.integers(1, 9), log_scale=st.integers(-6, 3))
@HYP
def test_weight_quant_matches_the_formula(seed, rows, cols, log_scale):
    w = torch.randn(rows, cols, generator=_gen(seed)) * 10.0**log_scale
    ternary, gamma = weight_quant(w)
    assert ternary.dtype == torch.int8 and ternary.shape == w.shape
    assert float(gamma) == pytest.approx(max(float(w.double().abs().mean()), 1e-5), rel=1e-6)
    assert torch.equal(ternary.float(), _roundclip_reference(w / gamma))
    deq = weight_fake_quant(w)
    assert torch.equal(deq, ternary.float() * gamma)
    assert set(deq.unique().tolist()) <= {-float(gamma), 0.0, float(gamma)}


def test_absmean_is_a_threshold_rule_with_threshold_half_gamma():
    w = torch.randn(300, 200, generator=_gen(3))
    ternary, gamma = weight_quant(w)
    # exact identity on w / gamma, and on w itself with threshold gamma / 2 (no ties here)
    assert torch.equal(ternary.float(), ternary_threshold(w / gamma, 0.5))
    assert torch.equal(ternary.float(), ternary_threshold(w, float(gamma) / 2))


def test_weight_quant_ties_round_half_to_even():
    # gamma = mean(0.5, 1.5, 0.5, 1.5) = 1, so w / gamma = w exactly: 0.5 -> 0, 1.5 -> 2 -> 1.
    ternary, gamma = weight_quant(torch.tensor([0.5, 1.5, -0.5, -1.5]))
    assert float(gamma) == 1.0
    assert ternary.tolist() == [0, 1, 0, -1]


@given(seed=st.integers(0, 10_000), k=st.integers(-12, 12))
@HYP
def test_weight_quant_is_scale_invariant(seed, k):
    w = torch.randn(7, 5, generator=_gen(seed))
    t1, g1 = weight_quant(w)
    t2, g2 = weight_quant(w * 2.0**k)  # a power of two scales without rounding
    assert torch.equal(t1, t2)
    assert float(g2) == float(g1) * 2.0**k


def test_weight_quant_edge_cases():
    t, g = weight_quant(torch.zeros(4, 4))
    assert float(g) == pytest.approx(1e-5) and bool((t == 0).all())
    assert bool((weight_fake_quant(torch.zeros(3)) == 0).all())
    # one huge value: gamma ~ 1e6 / 100, only the huge entry survives
    w = torch.full((100,), 0.1)
    w[7] = 1e6
    t, g = weight_quant(w)
    assert float(g) == pytest.approx((1e6 + 99 * 0.1) / 100, rel=1e-6)
    assert t.nonzero().flatten().tolist() == [7] and t[7] == 1
    # negative only: never +1; a negative constant becomes all -1 with gamma = |c|
    t, _ = weight_quant(-torch.rand(50, generator=_gen(4)))
    assert set(t.tolist()) <= {-1, 0}
    t, g = weight_quant(torch.full((3, 3), -0.25))
    assert bool((t == -1).all()) and float(g) == 0.25
    # tiny values: mean |w| below eps, gamma is clamped and everything rounds to 0
    t, g = weight_quant(torch.randn(64, generator=_gen(5)) * 1e-8)
    assert float(g) == pytest.approx(1e-5) and bool((t == 0).all())


def test_weight_quant_errors():
    with pytest.raises(ValueError, match="w"):
        weight_quant(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="w"):
        weight_quant(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="w"):
        weight_quant(torch.empty(0, 3))
    with pytest.raises(TypeError, match="w"):
        weight_quant(torch.tensor([1, 0, -1]))
    with pytest.raises(TypeError, match="w"):
        weight_quant([0.1, 0.2])
    with pytest.raises(ValueError, match="eps"):
        weight_quant(torch.ones(2), eps=0.0)


def test_ternary_threshold_errors():
    with pytest.raises(ValueError, match="threshold"):
        ternary_threshold(torch.ones(2), -0.1)
    with pytest.raises(ValueError, match="threshold"):
        ternary_threshold(torch.ones(2), float("inf"))
    with pytest.raises(TypeError, match="threshold"):
        ternary_threshold(torch.ones(2), "0.5")
    with pytest.raises(TypeError, match="w"):
        ternary_threshold(torch.ones(2, dtype=torch.int64), 0.5)


# ---------------------------------------------------------------------------------------
# Activation quantiser (per-token absmax)
# ---------------------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000), tokens=st.integers(1, 6), c=st.integers(1, 12), log_scale=st.integers(-3, 3))
@example(seed=1280, tokens=4, c=1, log_scale=-3)  # a token whose only value is under the 1e-5 floor
@HYP
def test_activation_quant_matches_the_formula_per_token(seed, tokens, c, log_scale):
    x = torch.randn(tokens, c, generator=_gen(seed)) * 10.0**log_scale
    codes, scale = activation_quant(x)
    assert codes.dtype == torch.int8 and scale.shape == (tokens, 1)
    for i in range(tokens):
        s = 127.0 / max(float(x[i].abs().max()), 1e-5)
        assert float(scale[i, 0]) == pytest.approx(s, rel=1e-6)
        for j in range(c):
            v = float(x[i, j]) * float(scale[i, 0])
            assert abs(int(codes[i, j]) - v) <= 0.5 + 1e-4  # rounded to the nearest integer
        if float(x[i].abs().max()) >= 1e-5:  # under the floor the scale is capped instead
            assert int(codes[i].abs().max()) == 127  # the absmax entry lands on +-127
    # dequantised values are within half a step of the input
    deq = activation_fake_quant(x)
    assert bool(((deq - x).abs() <= 0.5 / scale * (1 + 1e-5)).all())


def test_activation_quant_is_per_token_and_handles_edge_cases():
    x = torch.tensor([[0.0, 0.0, 0.0], [1e6, 1.0, -2.0], [-1.0, -3.0, -0.5], [1e-9, -1e-9, 0.0]])
    codes, scale = activation_quant(x)
    assert codes[0].tolist() == [0, 0, 0] and float(scale[0]) == pytest.approx(127 / 1e-5)
    assert codes[1].tolist() == [127, 0, 0]  # one huge value flattens the rest of its token
    assert codes[2].tolist() == [-42, -127, -21]  # negative only: -1*127/3 = -42.33, -0.5*127/3 = -21.17
    assert codes[3].tolist() == [0, 0, 0]  # tiny values fall under the eps floor
    # tokens do not influence each other
    c_alone, _ = activation_quant(x[2:3])
    assert torch.equal(c_alone[0], codes[2])


def test_activation_quant_keeps_leading_dims():
    x = torch.randn(2, 3, 8, generator=_gen(6))
    codes, scale = activation_quant(x)
    assert codes.shape == (2, 3, 8) and scale.shape == (2, 3, 1)
    flat_codes, _ = activation_quant(x.reshape(6, 8))
    assert torch.equal(codes.reshape(6, 8), flat_codes)


def test_activation_quant_errors():
    with pytest.raises(ValueError, match="x"):
        activation_quant(torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match="x"):
        activation_quant(torch.tensor(1.0))
    with pytest.raises(ValueError, match="x"):
        activation_quant(torch.empty(3, 0))
    with pytest.raises(TypeError, match="x"):
        activation_quant(torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(ValueError, match="eps"):
        activation_quant(torch.ones(2, 2), eps=-1.0)


# ---------------------------------------------------------------------------------------
# Straight-through estimator
# ---------------------------------------------------------------------------------------


def test_straight_through_forward_is_exact_and_gradient_is_identity():
    w = torch.randn(256, 256, generator=_gen(7), requires_grad=True)
    q = weight_fake_quant(w)
    out = straight_through(w, q)
    assert torch.equal(out, q)
    g = torch.randn(256, 256, generator=_gen(8))
    out.backward(g)
    assert torch.equal(w.grad, g)
    # Microsoft's form x + (q - x).detach() has the same gradient but is off by one rounding
    # in some entries: the reason we write the STE as q + (x - x.detach()).
    ms = w + (q - w).detach()
    assert int((ms != q).sum()) > 0
    assert float((ms - q).detach().abs().max()) <= 2 * U32 * float(w.detach().abs().max() + q.abs().max())


# ---------------------------------------------------------------------------------------
# RMSNorm
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# The notes' layers
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# BitLinear: init, forward, gradients
# ---------------------------------------------------------------------------------------


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
    with pytest.raises(ValueError, match="input"):
        layer(torch.tensor([[1.0, float("nan"), 0.0, 0.0]]))
    with torch.no_grad():
        layer.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="weight"):
        layer(torch.ones(1, 4))
    with pytest.raises(ValueError, match="weight"):
        layer.quantize()


# ---------------------------------------------------------------------------------------
# The integer path
# ---------------------------------------------------------------------------------------


@given(
    seed=st.integers(0, 10_000),
    lead=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    c_in=st.integers(1, 48),
    c_out=st.integers(1, 16),
)
@HYP
def test_integer_path_equals_the_training_forward_bit_for_bit(seed, lead, c_in, c_out):
    torch.manual_seed(seed)
    layer = BitLinear(c_in, c_out)
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
    layer.eval()
    frozen = layer.quantize()
    x = torch.randn(*lead, c_in)
    with torch.no_grad():
        y_sim, y_int = layer(x), frozen(x)
    assert y_int.shape == y_sim.shape == (*lead, c_out)
    assert torch.equal(y_int, y_sim)
    # both are the exact integer product followed by two float32 roundings
    codes, s = activation_quant(layer.norm(x))
    ternary, gamma = weight_quant(layer.weight)
    exact = (codes.double() @ ternary.double().T) * gamma.double() / s.double()
    assert bool(((y_int.double() - exact).abs() <= 2.01 * U32 * exact.abs()).all())


@given(seed=st.integers(0, 10_000), c_in=st.integers(1, 64), c_out=st.integers(1, 16))
@HYP
def test_dequantised_product_agrees_to_float_rounding(seed, c_in, c_out):
    # Microsoft's order, F.linear(codes / s, gamma * ternary), sums rounded float32 terms:
    # it differs from the exact product by at most about (c_in + 2) u sum |terms|.
    torch.manual_seed(seed)
    layer = BitLinear(c_in, c_out)
    x = torch.randn(5, c_in)
    with torch.no_grad():
        x_n = layer.norm(x)
        y = layer(x)
        y_ms = F.linear(activation_fake_quant(x_n), weight_fake_quant(layer.weight))
    codes, s = activation_quant(x_n)
    ternary, gamma = weight_quant(layer.weight)
    terms = (codes.double().abs() / s.double()) @ ternary.double().abs().T * gamma.double()
    assert bool(((y_ms.double() - y.double()).abs() <= (c_in + 4) * U32 * terms).all())


def test_stacked_layers_integer_path_equals_training_forward():
    torch.manual_seed(1)
    net = nn.Sequential(BitLinear(96, 128), nn.GELU(), BitLinear(128, 128), nn.GELU(), BitLinear(128, 32)).eval()
    frozen = nn.Sequential(*(m.quantize() if isinstance(m, BitLinear) else m for m in net))
    x = torch.randn(64, 96)
    with torch.no_grad():
        assert torch.equal(net(x), frozen(x))
        wide = BitLinear(8192, 4).eval()  # sums up to 128 * 8192 = 2**20, still exact in float32
        x = torch.randn(3, 8192)
        assert torch.equal(wide(x), wide.quantize()(x))


def test_int8_matmul_is_exact_and_matches_the_fallback():
    g = _gen(10)
    for m, k, n in [(1, 1, 1), (5, 17, 3), (64, 256, 32), (0, 4, 3), (3, 0, 2)]:
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g)
        b = torch.randint(-1, 2, (k, n), dtype=torch.int8, generator=g)
        out = int8_matmul(a, b)
        assert out.dtype == torch.int32 and out.shape == (m, n)
        assert torch.equal(out.long(), a.long() @ b.long())
        assert torch.equal(out, _int8_matmul_int32(a, b))
        # floats hold these sums exactly (|sum| <= 128 k < 2**24): a float matmul agrees
        assert torch.equal(out.float(), a.float() @ b.float())
    # a transposed (non-contiguous) operand, as in BitLinearInference
    w = torch.randint(-1, 2, (8, 16), dtype=torch.int8, generator=g)
    a = torch.randint(-128, 128, (4, 16), dtype=torch.int8, generator=g)
    assert torch.equal(int8_matmul(a, w.t()).long(), a.long() @ w.long().T)


def test_int8_matmul_survives_size_one_dims_with_odd_strides():
    # w.t() for a (C_out, 1) weight has shape (1, C_out) and strides (1, 1); torch._int_mm on
    # the CPU mishandles such layouts, int8_matmul copies them to a plain layout first.
    g = _gen(12)
    for _ in range(5):
        a = torch.randint(-128, 128, (1, 1), dtype=torch.int8, generator=g)
        w = torch.randint(-1, 2, (6, 1), dtype=torch.int8, generator=g)
        assert w.t().stride() == (1, 1)
        assert torch.equal(int8_matmul(a, w.t()).long(), a.long() @ w.long().T)
        row = torch.randint(-128, 128, (3, 1), dtype=torch.int8, generator=g).t()  # (1, 3), strides (1, 1)
        b = torch.randint(-1, 2, (3, 2), dtype=torch.int8, generator=g)
        assert torch.equal(int8_matmul(row, b).long(), row.long() @ b.long())


def test_int8_matmul_errors():
    with pytest.raises(TypeError, match="a"):
        int8_matmul(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(TypeError, match="b"):
        int8_matmul(torch.ones(2, 2, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="a"):
        int8_matmul(torch.ones(2, 3, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(ValueError, match="a"):
        int8_matmul(torch.ones(2, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int8))


def test_bitlinear_inference_buffers_and_packed_round_trip():
    torch.manual_seed(0)
    layer = BitLinear(37, 11)
    frozen = layer.quantize()
    ternary, gamma = weight_quant(layer.weight)
    assert frozen.ternary.dtype == torch.int8 and torch.equal(frozen.ternary, ternary)
    assert float(frozen.scale) == float(gamma)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.training
    packed = pack_ternary(frozen.ternary)
    again = BitLinearInference.from_packed(packed, (11, 37), frozen.scale, layer.norm.weight.detach())
    x = torch.randn(2, 3, 37)
    assert torch.equal(again(x), frozen(x))


def test_bitlinear_inference_errors():
    ok_t = torch.zeros(3, 4, dtype=torch.int8)
    with pytest.raises(TypeError, match="ternary"):
        BitLinearInference(torch.zeros(3, 4), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="ternary"):
        BitLinearInference(torch.full((3, 4), 2, dtype=torch.int8), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="ternary"):
        BitLinearInference(torch.zeros(3, dtype=torch.int8), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="scale"):
        BitLinearInference(ok_t, 0.0, torch.ones(4))
    with pytest.raises(ValueError, match="scale"):
        BitLinearInference(ok_t, float("nan"), torch.ones(4))
    with pytest.raises(ValueError, match="norm_weight"):
        BitLinearInference(ok_t, 1.0, torch.ones(5))
    with pytest.raises(ValueError, match="input"):
        BitLinearInference(ok_t, 1.0, torch.ones(4))(torch.ones(2, 3))


# ---------------------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 7), min_size=0, max_size=4)


@given(shape=shapes, seed=st.integers(0, 10_000))
@settings(max_examples=50, deadline=None)
def test_pack_unpack_round_trip_any_shape(shape, seed):
    w = torch.randint(-1, 2, tuple(shape), dtype=torch.int8, generator=_gen(seed))
    n = w.numel()
    packed = pack_ternary(w)
    assert packed.dtype == torch.uint8 and packed.shape == (math.ceil(n / 5),)
    assert torch.equal(unpack_ternary(packed, tuple(shape)), w)
    packed2 = pack_ternary_2bit(w)
    assert packed2.dtype == torch.uint8 and packed2.shape == (math.ceil(n / 4),)
    assert torch.equal(unpack_ternary_2bit(packed2, torch.Size(shape)), w)


def test_pack_accepts_float_and_wide_integer_ternary():
    w = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -0.0]])
    expected = w.to(torch.int8)
    assert torch.equal(unpack_ternary(pack_ternary(w), (2, 3)), expected)
    assert torch.equal(unpack_ternary(pack_ternary(w.long()), (2, 3)), expected)
    assert torch.equal(unpack_ternary_2bit(pack_ternary_2bit(w.double()), (2, 3)), expected)


def test_every_byte_up_to_242_is_a_code():
    # base 3 with 5 digits is a bijection between 0..242 and the 243 groups of 5 trits
    all_bytes = torch.arange(243, dtype=torch.uint8)
    trits = unpack_ternary(all_bytes, (243 * 5,))
    assert torch.equal(pack_ternary(trits), all_bytes)
    assert len({tuple(row) for row in trits.view(243, 5).tolist()}) == 243


def test_packed_bits_per_weight():
    w = torch.randint(-1, 2, (100_000,), dtype=torch.int8, generator=_gen(11))
    bits = pack_ternary(w).nbytes * 8 / w.numel()
    assert 1.6 <= bits <= 1.6001
    assert pack_ternary_2bit(w).nbytes * 8 / w.numel() == 2.0
    assert math.log2(3) < bits < 1.01 * math.log2(3)
    # an odd size pays for at most one padded byte
    w = torch.zeros(100_003, dtype=torch.int8)
    assert pack_ternary(w).nbytes == 20_001


@pytest.mark.parametrize("pack", [pack_ternary, pack_ternary_2bit])
def test_pack_errors(pack):
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="weights"):
        pack(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="weights"):
        pack([1, 0, -1])


@pytest.mark.parametrize(("unpack", "per_byte"), [(unpack_ternary, 5), (unpack_ternary_2bit, 4)])
def test_unpack_errors(unpack, per_byte):
    good = torch.zeros(2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="packed"):
        unpack(good, (3 * per_byte,))  # needs 3 bytes
    with pytest.raises(ValueError, match="packed"):
        unpack(torch.zeros(1, 2, dtype=torch.uint8), (2,))
    with pytest.raises(TypeError, match="packed"):
        unpack(torch.zeros(2, dtype=torch.int16), (2 * per_byte,))
    with pytest.raises(TypeError, match="packed"):
        unpack([0, 0], (2 * per_byte,))
    with pytest.raises(ValueError, match="shape"):
        unpack(good, (-1, 5))
    with pytest.raises(TypeError, match="shape"):
        unpack(good, "ab")
    with pytest.raises(TypeError, match="shape"):
        unpack(good, (2.0, 5))


def test_unpack_rejects_bytes_the_packers_never_write():
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary(torch.tensor([243], dtype=torch.uint8), (5,))
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary(torch.tensor([0], dtype=torch.uint8), (3,))  # padding digits must mean weight 0
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary_2bit(torch.tensor([0b11], dtype=torch.uint8), (4,))
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary_2bit(torch.tensor([0], dtype=torch.uint8), (2,))


def test_weight_memory_report_matches_the_byte_counts():
    for c_out, c_in in [(64, 64), (256, 1024), (3, 7)]:
        n = c_out * c_in
        report = weight_memory_report(nn.Linear(c_in, c_out))
        assert report == {
            "fp32": 4 * n,
            "fp16": 2 * n,
            "int8": n + 4,
            "2-bit": math.ceil(n / 4) + 4,
            "1.6-bit": math.ceil(n / 5) + 4,
        }
    assert weight_memory_report(BitLinear(1024, 1024)) == weight_memory_report(torch.zeros(1024, 1024))
    with pytest.raises(TypeError, match="layer"):
        weight_memory_report(nn.ReLU())
    with pytest.raises(TypeError, match="layer"):
        weight_memory_report(torch.zeros(3, 3, dtype=torch.int8))


# ---------------------------------------------------------------------------------------
# replace_linear_with_bitlinear
# ---------------------------------------------------------------------------------------


class _Head(nn.Module):
    def __init__(self, n_embd, head_size):
        super().__init__()
        self.key = Linear(n_embd, head_size, bias=False)
        self.query = Linear(n_embd, head_size, bias=False)
        self.value = Linear(n_embd, head_size, bias=False)


class _MHA(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.heads = nn.ModuleList(_Head(n_embd, n_embd // n_head) for _ in range(n_head))
        self.proj = Linear(n_embd, n_embd)


class _Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.sa = _MHA(n_embd, n_head)
        self.ffwd = nn.Module()
        self.ffwd.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd))
        self.ln1 = nn.LayerNorm(n_embd)


class _GPTLike(nn.Module):
    """The module tree of the notes' GPT (names only), for the replacement helper."""

    def __init__(self, vocab=11, n_embd=16, n_head=4, n_layer=2):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab, n_embd)
        self.blocks = nn.Sequential(*(_Block(n_embd, n_head) for _ in range(n_layer)))
        self.lm_head = nn.Linear(n_embd, vocab)


def test_replace_swaps_every_linear_in_a_sequential():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(Linear(16, 16, bias=False), nn.GELU()), Linear(16, 4))
    old = {name: m.weight.detach().clone() for name, m in net.named_modules() if isinstance(m, (nn.Linear, Linear))}
    names = replace_linear_with_bitlinear(net)
    assert names == ["0", "2.0", "3"] == list(old)
    for name in names:
        new = net.get_submodule(name)
        assert type(new) is BitLinear and new.bias is None
        assert torch.equal(new.weight, old[name])
    assert not any(type(m) in (nn.Linear, Linear) for m in net.modules())
    assert net(torch.randn(2, 8)).shape == (2, 4)
    assert replace_linear_with_bitlinear(net) == []  # BitLinear layers are left alone


def test_replace_on_a_gpt_like_tree_keeps_embeddings_and_head():
    torch.manual_seed(0)
    model = _GPTLike(n_layer=2, n_head=4)
    names = replace_linear_with_bitlinear(model)
    assert len(names) == 2 * (3 * 4 + 3)
    assert "blocks.0.sa.heads.3.value" in names and "blocks.1.ffwd.net.2" in names
    assert type(model.lm_head) is nn.Linear  # excluded by default
    assert type(model.token_embedding_table) is nn.Embedding
    assert isinstance(model.blocks[0].ln1, nn.LayerNorm)
    # applying it to model.blocks only gives the same result on a fresh model
    fresh = _GPTLike(n_layer=2, n_head=4)
    assert [f"blocks.{n}" for n in replace_linear_with_bitlinear(fresh.blocks)] == names
    # everything still trains: every BitLinear master weight gets a gradient
    block = model.blocks[1]
    x = torch.randn(2, 5, 16)
    h = block.sa.heads[0]
    out = block.ffwd.net(block.sa.proj(h.key(x).repeat(1, 1, 4)) + h.query(x).repeat(1, 1, 4) + h.value(x).repeat(1, 1, 4))
    out.sum().backward()
    for m in (h.key, h.query, h.value, block.sa.proj, block.ffwd.net[0], block.ffwd.net[2]):
        assert m.weight.grad is not None and float(m.weight.grad.abs().sum()) > 0


def test_replace_exclude_and_errors():
    net = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    assert replace_linear_with_bitlinear(net, exclude=("1",)) == ["0"]
    assert replace_linear_with_bitlinear(net, exclude=("1.0",)) == ["1.1"]
    with pytest.raises(TypeError, match="module"):
        replace_linear_with_bitlinear(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="module"):
        replace_linear_with_bitlinear("model")
    with pytest.raises(TypeError, match="exclude"):
        replace_linear_with_bitlinear(net, exclude="lm_head")
    with pytest.raises(TypeError, match="linear"):
        BitLinear.from_linear(nn.Conv1d(2, 2, 1))


def test_property_tests_draw_repeatable_examples_unless_told_to_explore():
    # tests/conftest.py loads the profile before this module is imported; HYP inherits it
    exploring = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
    assert HYP.derandomize is not exploring
    assert HYP.max_examples == 30 and HYP.deadline is None  # this module's own settings kept


# ---------------------------------------------------------------------------------------
# Bad input found by an audit of the public API (it failed deep in PyTorch or answered
# silently with NaN or an empty tensor)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [BinaryLinear, ThresholdTernaryLinear, BitLinear])
def test_bitnet_layers_share_linears_input_check(layer):
    torch.manual_seed(0)
    with pytest.raises(TypeError, match="input must have the dtype of the weight"):
        layer(3, 2)(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="in_features=3"):
        layer(3, 2)(torch.randn(2, 4))


def test_bitnet_helpers_check_shapes_dtypes_and_the_stored_scale():
    with pytest.raises(ValueError, match="q must have the shape of x"):
        straight_through(torch.randn(3), torch.randn(4))
    with pytest.raises(TypeError, match="values must hold real numbers"):
        tensor_entropy_bits(torch.tensor([1 + 1j, 2 + 0j]))
    with pytest.raises(TypeError, match="probs must hold real numbers"):
        entropy_bits(torch.tensor([1 + 0j]))
    with pytest.raises(ValueError, match="2-D"):
        weight_memory_report(torch.randn(5))
    with pytest.raises(ValueError, match="scale must be finite in float32"):
        BitLinearInference(torch.tensor([[1, 0, -1]], dtype=torch.int8), 1e300, torch.ones(3))


# --- issue 14, item 10: numerics ---------------------------------------------------------


def test_item10_int8_matmul_refuses_a_k_where_int32_would_wrap():
    from gptnotes.bitnet import INT8_MATMUL_MAX_K

    k = INT8_MATMUL_MAX_K + 1  # 131072: 16384 * K = 2**31
    a = torch.full((1, k), -128, dtype=torch.int8)
    b = torch.full((k, 1), -128, dtype=torch.int8)
    with pytest.raises(ValueError, match="K=131072: .* exact in int32 only for K <= 131071"):
        int8_matmul(a, b)  # returned -2147483648 (wrapped)
    ok = int8_matmul(a[:, :INT8_MATMUL_MAX_K], b[:INT8_MATMUL_MAX_K])
    assert ok.item() == 16384 * INT8_MATMUL_MAX_K


def test_item10_activation_quant_of_small_float16_values_is_not_zero():
    x = torch.tensor([[1e-3, -5e-4, 2.5e-4]], dtype=torch.float16)
    codes, scale = activation_quant(x)  # 127 / 1e-3 overflowed float16: scale inf, codes 0
    assert codes.tolist() == [[127, -64, 32]] and bool(torch.isfinite(scale).all())
    fake = activation_fake_quant(x)
    assert fake.dtype == torch.float16 and torch.allclose(fake.float(), x.float(), rtol=1e-2)


@pytest.mark.parametrize("eps", [1e-320, 1e300])
def test_item10_rmsnorm_refuses_an_eps_float32_cannot_use(eps):
    with pytest.raises(ValueError, match=r"eps must lie in"):
        RMSNorm(4, eps=eps)  # 1e-320 gave NaN for a zero input, 1e300 an overflow error
