"""Tests of gptnotes.bigram: the neural bigram model and its closed-form counterpart."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gptnotes import (
    BigramLanguageModel,
    CountBigramModel,
    bigram_counts,
    fit_counts,
    fit_to_counts,
    nll_from_counts,
)


def _model(V: int = 7, seed: int = 0) -> BigramLanguageModel:
    torch.manual_seed(seed)
    return BigramLanguageModel(V)


# --- forward ---------------------------------------------------------------------------


def test_logits_are_rows_of_the_table():
    model = _model(7)
    idx = torch.tensor([[0, 3, 6], [2, 2, 5]])
    logits, loss = model(idx)
    assert loss is None
    assert logits.shape == (2, 3, 7)
    for b in range(2):
        for t in range(3):
            assert torch.equal(logits[b, t], model.token_embedding_table.weight[idx[b, t]])


def test_table_is_vocab_by_vocab_and_only_parameter():
    model = _model(11)
    params = dict(model.named_parameters())
    assert list(params) == ["token_embedding_table.weight"]
    assert params["token_embedding_table.weight"].shape == (11, 11)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_equals_cross_entropy_and_manual_nll(seed):
    model = _model(9, seed)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(9, (4, 6), generator=g)
    targets = torch.randint(9, (4, 6), generator=g)
    logits, loss = model(idx, targets)
    # the (B, T, C) -> (B*T, C) reshape of the model, against per-position log-softmax
    log_probs = torch.log_softmax(logits, dim=-1)  # (B, T, C)
    manual = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    assert torch.allclose(loss, manual, atol=1e-6)
    assert torch.allclose(loss, F.cross_entropy(logits.permute(0, 2, 1), targets), atol=1e-6)


def test_uniform_table_gives_exactly_ln_vocab():
    model = _model(65)
    with torch.no_grad():
        model.token_embedding_table.weight.zero_()
    idx = torch.randint(65, (4, 8))
    _, loss = model(idx, torch.randint(65, (4, 8)))
    assert abs(loss.item() - math.log(65)) < 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_at_init_is_ln_vocab_plus_about_one_half(seed):
    # The table starts N(0, 1), so the logits are not equal and the expected loss is
    # E[logsumexp(z)] for z ~ N(0, I_V), which is ln V + 1/2 - (e - 1) / (2V) + O(1/V^2)
    # (delta method on ln E[sum e^z] = ln V + 1/2): 4.661 for V = 65, not ln 65 = 4.174.
    # Over 20 000 uniform random pairs the loss of one table has a standard deviation of
    # about 0.02 around that value (measured over 20 seeds: 0.017), so 0.1 is > 5 sigma.
    V = 65
    model = _model(V, seed)
    data = torch.randint(V, (1, 20_001), generator=torch.Generator().manual_seed(100 + seed))
    _, loss = model(data[:, :-1], data[:, 1:])
    expected = math.log(V) + 0.5 - (math.e - 1) / (2 * V)
    assert abs(loss.item() - expected) < 0.1
    assert loss.item() > math.log(V) + 0.3  # clearly above the uniform guess


def test_logits_depend_on_the_current_token_only():
    # "given the previous tokens": a bigram model ignores everything but the last one.
    model = _model(7)
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    changed = idx.clone()
    changed[0, :4] = torch.tensor([6, 0, 6, 0])
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.equal(a[0, 4], b[0, 4])
    assert not torch.equal(a[0, :4], b[0, :4])


def test_loss_of_the_whole_text_equals_nll_from_counts():
    model = _model(6)
    data = torch.randint(6, (300,), generator=torch.Generator().manual_seed(3))
    _, loss = model(data[None, :-1], data[None, 1:])  # one batch, every pair once
    via_counts = nll_from_counts(model.token_embedding_table.weight, bigram_counts(data, 6))
    assert torch.allclose(loss, via_counts, atol=1e-5)


# --- generate ----------------------------------------------------------------------------


def test_generate_shape_prefix_and_range():
    model = _model(7)
    idx = torch.tensor([[1, 2], [3, 4], [5, 6]])
    out = model.generate(idx, max_new_tokens=10, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 12)
    assert torch.equal(out[:, :2], idx)
    assert int(out.min()) >= 0 and int(out.max()) < 7


def test_generate_is_reproducible_with_a_generator():
    model = _model(7)
    idx = torch.zeros(2, 1, dtype=torch.long)
    a = model.generate(idx, 30, generator=torch.Generator().manual_seed(5))
    b = model.generate(idx, 30, generator=torch.Generator().manual_seed(5))
    c = model.generate(idx, 30, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_generate_zero_tokens_returns_idx():
    model = _model(7)
    idx = torch.tensor([[1, 2, 3]])
    assert torch.equal(model.generate(idx, 0), idx)


def test_generate_uses_only_the_last_token():
    model = _model(7)
    a = model.generate(torch.tensor([[0, 1, 4]]), 20, generator=torch.Generator().manual_seed(1))
    b = model.generate(torch.tensor([[6, 6, 4]]), 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[:, 3:], b[:, 3:])


def test_generate_samples_rather_than_taking_the_most_likely_token():
    # The notes (002, "Output") say the model selects the token with the highest probability.
    # generate samples: with p = (0.6, 0.4) the second token comes out about 40% of the time.
    # 4000 draws: standard deviation of the fraction sqrt(0.24 / 4000) = 0.008; 0.04 is 5 sigma.
    model = BigramLanguageModel(2)
    with torch.no_grad():
        model.token_embedding_table.weight.copy_(torch.log(torch.tensor([[0.6, 0.4], [0.6, 0.4]])))
    idx = torch.zeros(4000, 1, dtype=torch.long)
    out = model.generate(idx, 1, generator=torch.Generator().manual_seed(0))
    frac_second = out[:, 1].float().mean().item()
    assert abs(frac_second - 0.4) < 0.04


def test_generate_temperature_sharpens():
    model = BigramLanguageModel(2)
    with torch.no_grad():
        model.token_embedding_table.weight.copy_(torch.log(torch.tensor([[0.6, 0.4], [0.6, 0.4]])))
    idx = torch.zeros(4000, 1, dtype=torch.long)
    cold = model.generate(idx, 1, temperature=0.25, generator=torch.Generator().manual_seed(0))
    # p(second) at T = 0.25 is 0.4^4 / (0.6^4 + 0.4^4) = 0.165
    assert abs(cold[:, 1].float().mean().item() - 0.165) < 0.03


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "idx, exc, match",
    [
        (torch.tensor([[0, 7]]), ValueError, "idx"),
        (torch.tensor([[-1, 0]]), ValueError, "idx"),
        (torch.tensor([[0.0, 1.0]]), TypeError, "idx"),
        (torch.tensor([0, 1, 2]), ValueError, "idx"),
        ([[0, 1]], TypeError, "idx"),
    ],
)
def test_forward_rejects_bad_idx(idx, exc, match):
    with pytest.raises(exc, match=match):
        _model(7)(idx)


def test_forward_rejects_bad_targets():
    model = _model(7)
    idx = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="targets"):
        model(idx, torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="targets"):
        model(idx, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="targets"):
        model(idx, torch.tensor([[1, 2, 9]]))
    with pytest.raises(TypeError, match="targets"):
        model(idx, torch.tensor([[1.0, 2.0, 3.0]]))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_token_ids_of_any_integer_dtype_are_taken_as_long(dtype):
    model = _model()
    ids, nxt = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]])
    assert torch.equal(model(ids.to(dtype), nxt.to(dtype))[1], model(ids, nxt)[1])
    assert model.generate(ids.to(dtype), 2).dtype == torch.long


@pytest.mark.parametrize("shape", [(0, 3), (1, 0)])
def test_an_empty_batch_is_refused_not_answered_with_nan(shape):
    empty = torch.zeros(shape, dtype=torch.long)
    with pytest.raises(ValueError, match="idx"):
        _model()(empty, empty)
    with pytest.raises(ValueError, match="idx"):
        _model().generate(empty, 2)


def test_generate_rejects_bad_arguments():
    model = _model(7)
    idx = torch.tensor([[0]])
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(idx, -1)
    with pytest.raises(TypeError, match="max_new_tokens"):
        model.generate(idx, 2.5)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(idx, 3, temperature=0.0)
    with pytest.raises(ValueError, match="idx"):
        model.generate(torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="idx"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="generator"):
        model.generate(idx, 3, generator=0)


def test_generate_checks_its_arguments_once_not_at_every_new_token(monkeypatch):
    import gptnotes.bigram as bigram

    calls = []
    check = bigram.check_token_ids
    monkeypatch.setattr(bigram, "check_token_ids", lambda *a, **k: calls.append(a[2]) or check(*a, **k))
    out = _model(7).generate(torch.tensor([[0, 1]]), 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 22) and calls == ["idx"]   # one scan of the ids, not 21


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)])
def test_constructor_rejects_bad_vocab_size(bad, exc):
    with pytest.raises(exc, match="vocab_size"):
        BigramLanguageModel(bad)


def test_a_table_beyond_the_machine_is_refused(monkeypatch):
    import gptnotes._checks as checks

    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 24 * 10**9)
    with pytest.raises(ValueError, match=r"vocab_size=100000: .* would need 40 GB of memory, more than this machine's 24 GB"):
        BigramLanguageModel(100000)


# --- counts and the closed-form optimum ---------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=60))
def test_bigram_counts_match_a_counter(ids):
    counts = bigram_counts(torch.tensor(ids), 5)
    expected = Counter(zip(ids[:-1], ids[1:]))
    assert counts.dtype == torch.long
    assert int(counts.sum()) == len(ids) - 1
    for i in range(5):
        for j in range(5):
            assert counts[i, j].item() == expected[(i, j)]


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(3, 80), st.integers(0, 10_000))
def test_nll_from_counts_equals_cross_entropy_over_pairs(V, n, seed):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(V, (n,), generator=g)
    logits = torch.randn(V, V, generator=g) * 3
    expected = F.cross_entropy(logits[data[:-1]], data[1:])
    assert torch.allclose(nll_from_counts(logits, bigram_counts(data, V)), expected, atol=1e-5)


def test_unsmoothed_counts_are_the_normalised_count_matrix():
    data = torch.tensor([0, 1, 2, 0, 1, 1, 0, 2, 2, 2, 0])
    counts = bigram_counts(data, 3)
    mle = CountBigramModel(counts, smoothing=0.0)
    expected = counts.double() / counts.sum(dim=1, keepdim=True)
    assert torch.allclose(mle.log_probs.exp(), expected)


def test_smoothing_adds_alpha_to_every_count():
    data = torch.tensor([0, 1, 2, 0, 1, 1, 0])
    counts = bigram_counts(data, 3)
    model = CountBigramModel(counts, smoothing=0.5)
    expected = (counts.double() + 0.5) / (counts.double() + 0.5).sum(dim=1, keepdim=True)
    assert torch.allclose(model.log_probs.exp(), expected)


def test_counted_table_is_the_optimum_of_the_training_loss():
    # No perturbation of the maximum-likelihood table can lower the loss on its own text.
    g = torch.Generator().manual_seed(0)
    data = torch.randint(5, (400,), generator=g)
    counts = bigram_counts(data, 5)
    mle = fit_counts(data, 5, smoothing=0.0)
    best = nll_from_counts(mle.log_probs, counts).item()
    assert abs(best - mle.nll(data)) < 1e-9
    for _ in range(20):
        perturbed = mle.log_probs + 0.05 * torch.randn(5, 5, generator=g, dtype=torch.float64)
        assert nll_from_counts(perturbed, counts).item() >= best


def test_nll_from_counts_ignores_minus_infinity_on_unseen_pairs():
    # smoothing = 0 puts log p = -inf on pairs that never occur; 0 * -inf would be nan
    data = torch.tensor([0, 1, 0, 1, 2, 2, 0])
    mle = fit_counts(data, 3, smoothing=0.0)
    assert bool(torch.isinf(mle.log_probs).any())
    got = nll_from_counts(mle.log_probs, bigram_counts(data, 3)).item()
    assert math.isfinite(got) and abs(got - mle.nll(data)) < 1e-12


def test_smoothing_trades_training_loss_for_finite_validation_loss():
    train_data = torch.tensor([0, 1, 0, 1, 0, 1, 2, 0, 1])
    val_data = torch.tensor([1, 1, 2, 2])  # pairs 1->1 and 2->2 never occur in training
    mle = fit_counts(train_data, 3, smoothing=0.0)
    laplace = fit_counts(train_data, 3, smoothing=1.0)
    assert mle.nll(val_data) == math.inf
    assert math.isfinite(laplace.nll(val_data))
    assert laplace.nll(train_data) > mle.nll(train_data)


def test_a_token_never_followed_gets_a_uniform_row():
    data = torch.tensor([0, 1, 0, 1, 2])  # 2 only at the end: its row has no counts
    mle = fit_counts(data, 3, smoothing=0.0)
    assert torch.allclose(mle.log_probs[2].exp(), torch.full((3,), 1 / 3, dtype=torch.float64))


def test_neural_model_reaches_the_counted_optimum():
    g = torch.Generator().manual_seed(1)
    # a text with structure: mostly i -> i + 1, sometimes a random jump
    ids = [0]
    for _ in range(2000):
        ids.append((ids[-1] + 1) % 10 if torch.rand(1, generator=g).item() < 0.8 else int(torch.randint(10, (1,), generator=g)))
    data = torch.tensor(ids)
    counts = bigram_counts(data, 10)
    optimum = fit_counts(data, 10, smoothing=0.0).nll(data)
    model = _model(10)
    losses = fit_to_counts(model, counts, steps=300, lr=0.5)
    final = nll_from_counts(model.token_embedding_table.weight, counts).item()
    assert losses[0] > optimum + 1.0
    assert 0.0 <= final - optimum + 1e-6  # a lower bound: never beaten
    assert final - optimum < 0.01
    assert all(loss >= optimum - 1e-5 for loss in losses)
    # and the learned probabilities are the counted ones wherever a row has enough data
    assert torch.allclose(model.log_prob_table().exp().double(), fit_counts(data, 10, 0.0).log_probs.exp(), atol=0.02)


def test_count_model_and_fit_errors():
    with pytest.raises(ValueError, match="counts"):
        CountBigramModel(torch.tensor([[1, -1], [0, 2]]))
    with pytest.raises(ValueError, match="counts"):
        CountBigramModel(torch.ones(2, 3))
    with pytest.raises(ValueError, match="counts"):
        CountBigramModel(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="smoothing"):
        CountBigramModel(torch.ones(3, 3), smoothing=-1.0)
    with pytest.raises(TypeError, match="smoothing"):
        CountBigramModel(torch.ones(3, 3), smoothing="1")
    with pytest.raises(ValueError, match="data"):
        bigram_counts(torch.tensor([1]), 3)
    with pytest.raises(ValueError, match="data"):
        bigram_counts(torch.tensor([0, 5]), 3)
    with pytest.raises(TypeError, match="data"):
        bigram_counts(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="logits"):
        nll_from_counts(torch.zeros(2, 2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="data"):
        fit_counts(torch.tensor([0, 1, 2]), 3).nll(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="counts"):
        fit_to_counts(_model(4), torch.ones(3, 3), steps=2)
    with pytest.raises(TypeError, match="model"):
        fit_to_counts(torch.nn.Linear(2, 2), torch.ones(3, 3), steps=2)
    with pytest.raises(ValueError, match="steps"):
        fit_to_counts(_model(3), torch.ones(3, 3), steps=0)
