"""gptnotes.sampling: softmax from scratch, temperature, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptnotes import sample_next_token, softmax, softmax_with_temperature

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]))
def test_softmax_equals_torch_softmax(shape, seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * scale
    for dim in range(-len(shape), len(shape)):
        torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))


def test_softmax_is_a_distribution():
    x = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(0))
    p = softmax(x)
    assert bool((p > 0).all())
    torch.testing.assert_close(p.sum(-1), torch.ones(4, 5))


def test_softmax_is_shift_invariant_and_stable_for_huge_logits():
    x = torch.tensor([1000.0, 1001.0, 1002.0])
    naive = torch.exp(x) / torch.exp(x).sum()
    assert bool(torch.isnan(naive).all())  # exp(1000) overflows to inf; inf / inf is nan
    torch.testing.assert_close(softmax(x), softmax(x - 1000.0))
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1))


def test_softmax_handles_masked_entries_like_torch():
    x = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, 2.0]])
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1))
    assert softmax(x)[0, 1].item() == 0.0


def test_softmax_double_precision_and_gradients_match_torch():
    x = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    w = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (g1,) = torch.autograd.grad((softmax(x) * w).sum(), x)
    (g2,) = torch.autograd.grad((torch.softmax(x, -1) * w).sum(), x)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0, 2.0, 10.0])
def test_temperature_divides_the_logits(t):
    z = torch.randn(2, 9, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(softmax_with_temperature(z, t), torch.softmax(z / t, dim=-1))


def test_softmax_with_temperature_is_unchanged_by_subtracting_the_maximum():
    z = torch.randn(5, 7, generator=torch.Generator().manual_seed(0)) * 4
    for t in (0.3, 1.0, 2.5):
        torch.testing.assert_close(softmax_with_temperature(z, t), torch.softmax(z / t, dim=-1))
    assert softmax_with_temperature(torch.tensor([[1.0, -math.inf, 3.0]]), 0.5)[0, 1].item() == 0.0


def test_temperature_one_is_plain_softmax():
    z = torch.randn(5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(softmax_with_temperature(z, 1.0), softmax(z))


def test_temperature_orders_sharpness_and_keeps_ranking():
    z = torch.tensor([2.0, 1.0, 0.5, -1.0])
    entropies = []
    for t in [0.25, 0.5, 1.0, 2.0, 4.0]:
        p = softmax_with_temperature(z, t)
        assert p.argsort().tolist() == z.argsort().tolist()
        entropies.append(float(-(p * p.log()).sum()))
    assert entropies == sorted(entropies)  # higher temperature, higher entropy


def test_temperature_limits():
    z = torch.tensor([0.3, 2.0, -1.0, 1.9])
    cold = softmax_with_temperature(z, 1e-4)
    assert cold.tolist() == [0.0, 1.0, 0.0, 0.0]  # the argmax, one-hot
    hot = softmax_with_temperature(z, 1e6)
    torch.testing.assert_close(hot, torch.full((4,), 0.25), atol=1e-5, rtol=0)


def test_temperature_limit_with_a_tie_splits_the_mass():
    z = torch.tensor([1.0, 3.0, 3.0])
    torch.testing.assert_close(softmax_with_temperature(z, 1e-3), torch.tensor([0.0, 0.5, 0.5]))


@pytest.mark.parametrize("temperature", [1e-40, 1e-45])
def test_a_tiny_temperature_reaches_the_argmax_instead_of_overflowing(temperature):
    z = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(softmax_with_temperature(z, temperature), torch.tensor([0.0, 0.0, 1.0]))
    assert sample_next_token(z, temperature).item() == 2
    assert sample_next_token(torch.tensor([3e38, 0.0]), 0.1).item() == 0  # z / T would overflow
    assert sample_next_token(torch.tensor([60000.0, 0.0], dtype=torch.float16), 0.5).item() == 0


@pytest.mark.parametrize("temperature", [1e-50, 7e-46, 5e-324])
def test_temperatures_below_float32_give_the_one_hot_limit(temperature):
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.5, 0.5, -1.0]])
    probs = softmax_with_temperature(logits, temperature)  # was NaN: the temperature rounded to 0
    assert probs.tolist() == [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]
    half = softmax_with_temperature(logits.half(), 1e-10)
    assert half.tolist() == [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]
    g = torch.Generator().manual_seed(0)
    assert sample_next_token(logits[:1], temperature, generator=g).tolist() == [[1]]


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, -0.5, float("nan"), float("inf"), -float("inf")])
def test_bad_temperature_values_raise_value_error(bad):
    with pytest.raises(ValueError, match="temperature"):
        softmax_with_temperature(torch.tensor([1.0, 2.0]), bad)
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(torch.tensor([1.0, 2.0]), temperature=bad)


@pytest.mark.parametrize("bad", ["1.0", None, [1.0], True])
def test_bad_temperature_types_raise_type_error(bad):
    with pytest.raises(TypeError, match="temperature"):
        softmax_with_temperature(torch.tensor([1.0, 2.0]), bad)


def test_empty_logits_raise():
    with pytest.raises(ValueError, match="logits"):
        softmax(torch.tensor([]))
    with pytest.raises(ValueError, match="logits"):
        softmax_with_temperature(torch.empty(3, 0), 1.0)
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.empty(2, 0))


def test_bad_logits_raise():
    with pytest.raises(TypeError, match="logits"):
        softmax([1.0, 2.0])
    with pytest.raises(TypeError, match="logits"):
        softmax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="logits"):
        softmax(torch.tensor(1.0))
    with pytest.raises(ValueError, match="dim"):
        softmax(torch.tensor([1.0, 2.0]), dim=1)
    with pytest.raises(TypeError, match="dim"):
        softmax(torch.tensor([1.0, 2.0]), dim=0.0)
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.tensor([0.0, float("inf")]))
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.tensor([[0.0, 1.0], [-math.inf, -math.inf]]))
    with pytest.raises(TypeError, match="generator"):
        sample_next_token(torch.tensor([0.0, 1.0]), generator=0)


def test_sampling_from_no_rows_is_refused():
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.zeros(0, 3))


def test_sampling_shapes_and_dtype():
    g = torch.Generator().manual_seed(0)
    assert sample_next_token(torch.zeros(7), generator=g).shape == (1,)
    out = sample_next_token(torch.zeros(4, 7), generator=g)
    assert out.shape == (4, 1) and out.dtype == torch.long
    assert bool(((out >= 0) & (out < 7)).all())


def test_sampling_is_reproducible_with_a_seeded_generator():
    logits = torch.randn(8, 20, generator=torch.Generator().manual_seed(5))
    a = sample_next_token(logits, generator=torch.Generator().manual_seed(42))
    b = sample_next_token(logits, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b)


def test_sampling_frequencies_follow_the_probabilities():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.7]))
    n = 20000
    draws = sample_next_token(logits.expand(n, 3).contiguous(), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws.squeeze(1), minlength=3).double() / n
    # Binomial standard deviation is at most sqrt(0.25 / n) = 0.0035; allow 5 of them.
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64), atol=0.018, rtol=0)


def test_masked_tokens_are_never_sampled():
    logits = torch.tensor([[0.0, -math.inf, 0.0, -math.inf]]).expand(500, 4).contiguous()
    draws = sample_next_token(logits, generator=torch.Generator().manual_seed(1))
    assert set(draws.unique().tolist()) <= {0, 2}


def test_cold_sampling_is_greedy():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(2))
    draws = sample_next_token(logits, temperature=1e-4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(draws.squeeze(1), logits.argmax(-1))
