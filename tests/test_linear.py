"""gptnotes.Linear is nn.Linear written from scratch: same init, outputs, gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import Linear

SIZES = [(1, 1), (3, 5), (10, 5), (64, 16), (64, 256), (256, 64), (7, 1)]
SEEDS = [0, 1, 1234]


def _pair(in_features: int, out_features: int, bias: bool = True, seed: int = 0) -> tuple[Linear, nn.Linear]:
    """Our layer with the same parameters as a freshly initialised nn.Linear."""
    torch.manual_seed(seed)
    ref = nn.Linear(in_features, out_features, bias=bias)
    ours = Linear(in_features, out_features, bias=bias)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("in_features,out_features", SIZES)
def test_init_is_bit_for_bit_nn_linear(in_features, out_features, seed, bias):
    torch.manual_seed(seed)
    ref = nn.Linear(in_features, out_features, bias=bias)
    after_ref = torch.rand(3)           # the next numbers of the generator
    torch.manual_seed(seed)
    ours = Linear(in_features, out_features, bias=bias)
    after_ours = torch.rand(3)
    assert torch.equal(ours.weight, ref.weight)
    if bias:
        assert torch.equal(ours.bias, ref.bias)
    else:
        assert ours.bias is None and ref.bias is None
    # Same amount of randomness consumed: the generator is in the same state afterwards.
    assert torch.equal(after_ours, after_ref)


def test_parameters_have_the_shapes_and_names_of_nn_linear():
    ours, ref = Linear(10, 5), nn.Linear(10, 5)
    assert tuple(ours.weight.shape) == (5, 10)          # [out_features, in_features]
    assert tuple(ours.bias.shape) == (5,)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    assert all(isinstance(p, nn.Parameter) for p in ours.parameters())
    assert repr(ours).replace("Linear", "X") == repr(ref).replace("Linear", "X")
    # Parameters move freely between the two classes.
    ref.load_state_dict(ours.state_dict())
    assert torch.equal(ref.weight, ours.weight)


def test_init_is_uniform_within_one_over_sqrt_in_features():
    # For U(-k, k): every value in [-k, k], mean 0, variance k^2 / 3. The bias is not zeros.
    torch.manual_seed(0)
    layer = Linear(64, 4096)
    k = 1 / math.sqrt(64)
    for p in (layer.weight, layer.bias):
        assert p.abs().max().item() <= k
        assert p.max().item() > 0.99 * k and p.min().item() < -0.99 * k
        assert abs(p.mean().item()) < 0.05 * k
        assert p.var().item() == pytest.approx(k * k / 3, rel=0.05)
    assert int((layer.bias == 0).sum()) == 0


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=4),
    in_features=st.integers(1, 9),
    out_features=st.integers(1, 9),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_forward_equals_nn_linear_for_any_leading_shape(lead, in_features, out_features, bias, seed):
    ours, ref = _pair(in_features, out_features, bias, seed)
    x = torch.randn(*lead, in_features, generator=torch.Generator().manual_seed(seed))
    y = ours(x)
    assert y.shape == (*lead, out_features)
    torch.testing.assert_close(y, ref(x))
    # And the formula itself, written with an explicit sum over the input features.
    manual = (x.unsqueeze(-2) * ours.weight).sum(-1)            # (*, out)
    if bias:
        manual = manual + ours.bias
    torch.testing.assert_close(y, manual)


def test_batch_and_time_shapes():
    ours, ref = _pair(32, 16, seed=3)
    x = torch.randn(4, 8, 32)                                  # (B, T, C)
    assert ours(x).shape == (4, 8, 16)
    torch.testing.assert_close(ours(x), ref(x))
    # A (B, T, C) input is T * B independent rows: the same as flattening first.
    torch.testing.assert_close(ours(x), ours(x.reshape(32, 32)).reshape(4, 8, 16))


def test_bias_false_is_a_pure_matrix_product():
    ours, ref = _pair(6, 4, bias=False, seed=5)
    x = torch.randn(3, 6)
    assert ours.bias is None
    assert sum(p.numel() for p in ours.parameters()) == 24
    torch.testing.assert_close(ours(x), x @ ours.weight.T)
    torch.testing.assert_close(ours(x), ref(x))
    # Without a bias the map is linear: f(0) = 0 and f(a x) = a f(x).
    assert torch.equal(ours(torch.zeros(6)), torch.zeros(4))
    torch.testing.assert_close(ours(2.5 * x), 2.5 * ours(x))


def test_with_bias_the_map_is_affine_not_linear():
    ours, _ = _pair(5, 3, seed=7)
    assert torch.equal(ours(torch.zeros(5)), ours.bias)        # f(0) = b, not 0
    a, b = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(ours(a + b), ours(a) + ours(b) - ours.bias)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7,), (5, 7), (2, 3, 7)])
def test_gradients_equal_nn_linear(shape, bias):
    ours, ref = _pair(7, 4, bias, seed=11)
    x1 = torch.randn(*shape, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    upstream = torch.randn(*shape[:-1], 4)
    (ours(x1) * upstream).sum().backward()
    (ref(x2) * upstream).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(x1.grad, x2.grad)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_linear_layers_without_activation_collapse_into_one(seed):
    torch.manual_seed(seed)
    first, second = Linear(6, 10), Linear(10, 3)
    x = torch.randn(4, 5, 6)
    stacked = second(first(x))
    merged = Linear(6, 3)
    with torch.no_grad():
        merged.weight.copy_(second.weight @ first.weight)              # (3, 6)
        merged.bias.copy_(second.weight @ first.bias + second.bias)    # (3,)
    torch.testing.assert_close(stacked, merged(x), rtol=1e-5, atol=1e-5)


def test_a_relu_in_between_breaks_the_collapse():
    # An affine g satisfies g(a) + g(b) - g(0) == g(a + b); two layers with ReLU do not.
    torch.manual_seed(0)
    first, second = Linear(2, 16), Linear(16, 1)
    affine = lambda x: second(first(x))                                # noqa: E731
    nonlinear = lambda x: second(torch.relu(first(x)))                 # noqa: E731
    a, b, zero = torch.tensor([3.0, -2.0]), torch.tensor([-1.0, 4.0]), torch.zeros(2)
    torch.testing.assert_close(affine(a) + affine(b) - affine(zero), affine(a + b))
    gap = (nonlinear(a) + nonlinear(b) - nonlinear(zero) - nonlinear(a + b)).abs().item()
    assert gap > 1e-2


def test_dtype_follows_the_module():
    ours, ref = _pair(4, 2, seed=0)
    ours, ref = ours.double(), ref.double()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert ours(x).dtype == torch.float64
    torch.testing.assert_close(ours(x), ref(x))


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (5,), (2, 3, 1)])
def test_wrong_last_dimension(shape):
    with pytest.raises(ValueError, match="in_features=4"):
        Linear(4, 2)(torch.randn(*shape))


def test_zero_dim_input():
    with pytest.raises(ValueError, match="input"):
        Linear(1, 2)(torch.tensor(1.0))


@pytest.mark.parametrize("value", [0, -3])
@pytest.mark.parametrize("name", ["in_features", "out_features"])
def test_non_positive_sizes(name, value):
    kwargs = {"in_features": 3, "out_features": 2, name: value}
    with pytest.raises(ValueError, match=name):
        Linear(**kwargs)


@pytest.mark.parametrize("value", [2.0, "3", True, None])
@pytest.mark.parametrize("name", ["in_features", "out_features"])
def test_non_int_sizes(name, value):
    kwargs = {"in_features": 3, "out_features": 2, name: value}
    with pytest.raises(TypeError, match=name):
        Linear(**kwargs)


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_bias_must_be_bool(value):
    with pytest.raises(TypeError, match="bias"):
        Linear(3, 2, bias=value)


@pytest.mark.parametrize("value", [[1.0, 2.0, 3.0], 3.0, None])
def test_input_must_be_a_tensor(value):
    with pytest.raises(TypeError, match="input"):
        Linear(3, 2)(value)


def test_input_must_be_float_of_the_weight_dtype():
    layer = Linear(3, 2)
    with pytest.raises(TypeError, match="input"):
        layer(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="input.*float32"):
        layer(torch.ones(2, 3, dtype=torch.float64))


def test_a_weight_beyond_the_machine_is_refused_in_words():
    with pytest.raises(ValueError, match="in_features=9223372036854775808, out_features=3: .* would need"):
        Linear(2**63, 3)  # was torch's "Overflow when unpacking long long"
