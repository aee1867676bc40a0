"""Tests of gptnotes.attention: the averaging trick, heads, multi-head and fused attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import (
    CausalSelfAttention,
    Head,
    MultiHeadAttention,
    Linear,
    average_past_loop,
    average_past_matmul,
    average_past_softmax,
    causal_attention,
    causal_mask,
    softmax_with_temperature,
)

# --- the mask and the averaging trick ------------------------------------------------------


@pytest.mark.parametrize("T", [1, 2, 5, 8])
def test_causal_mask_is_lower_triangle_with_diagonal(T):
    mask = causal_mask(T)
    assert mask.dtype == torch.bool and mask.shape == (T, T)
    for t in range(T):
        for s in range(T):
            assert bool(mask[t, s]) == (s <= t)


def test_causal_mask_lets_a_position_see_itself():
    # The notes (001, "mathematical trick") say token i connects with positions < i; it is <= i.
    assert bool(causal_mask(4).diagonal().all())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 5), st.integers(0, 10_000))
def test_three_averages_agree_with_a_cumulative_mean(B, T, C, seed):
    x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))
    expected = x.cumsum(dim=1) / torch.arange(1, T + 1).view(1, T, 1)  # independent formula
    for fn in (average_past_loop, average_past_matmul, average_past_softmax):
        assert torch.allclose(fn(x), expected, atol=1e-5), fn.__name__


@pytest.mark.parametrize("fn", [average_past_loop, average_past_matmul, average_past_softmax])
def test_average_rejects_bad_input(fn):
    with pytest.raises(ValueError, match="x"):
        fn(torch.randn(4, 3))
    with pytest.raises(TypeError, match="x"):
        fn(torch.ones(1, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="x"):
        fn(torch.randn(1, 0, 3))


def test_causal_mask_rejects_bad_length():
    with pytest.raises(ValueError, match="T"):
        causal_mask(0)
    with pytest.raises(TypeError, match="T"):
        causal_mask(2.0)


# --- the from-scratch attention function ---------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=0, max_size=2),
    st.integers(1, 12),
    st.integers(1, 16),
    st.integers(1, 8),
    st.integers(0, 10_000),
)
def test_causal_attention_equals_sdpa(lead, T, hs, hs_v, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, T, hs, generator=g)
    k = torch.randn(*lead, T, hs, generator=g)
    v = torch.randn(*lead, T, hs_v, generator=g)
    ours, wei = causal_attention(q, k, v, return_weights=True)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(wei.sum(-1), torch.ones(*lead, T), atol=1e-6)
    assert bool((wei.triu(diagonal=1) == 0).all())


def test_causal_attention_gradients_equal_sdpa():
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(2, 3, 6, 4, generator=g) for _ in range(3)]
    a = [t.clone().requires_grad_() for t in tensors]
    b = [t.clone().requires_grad_() for t in tensors]
    w = torch.randn(2, 3, 6, 4, generator=g)
    (causal_attention(*a) * w).sum().backward()
    (F.scaled_dot_product_attention(*b, is_causal=True) * w).sum().backward()
    for x, y in zip(a, b):
        assert torch.allclose(x.grad, y.grad, atol=1e-5)


def test_causal_attention_rejects_mismatched_shapes():
    q = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="k"):
        causal_attention(q, torch.randn(2, 5, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="v"):
        causal_attention(q, q, torch.randn(2, 4, 4))
    with pytest.raises(TypeError, match="q"):
        causal_attention(q.long(), q, q)


def test_causal_attention_checks_dtypes_head_size_and_flags():
    q = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="head size"):
        causal_attention(torch.randn(2, 4, 0), torch.randn(2, 4, 0), q)
    with pytest.raises(TypeError, match="k must have the dtype of q"):
        causal_attention(q, q.double(), q)
    with pytest.raises(TypeError, match="v must have the dtype of q"):
        causal_attention(q, q, q.double())
    with pytest.raises(TypeError, match="return_weights"):
        causal_attention(q, q, q, return_weights="no")


# --- one head ------------------------------------------------------------------------------


def _head(C=12, hs=4, block=8, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return Head(C, hs, block, dropout)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_head_equals_manual_computation_with_head_size_scale(seed):
    head = _head(C=12, hs=4, seed=seed)
    x = torch.randn(3, 6, 12, generator=torch.Generator().manual_seed(seed))
    q = x @ head.query.weight.T
    k = x @ head.key.weight.T
    v = x @ head.value.weight.T
    scores = q @ k.transpose(-2, -1) / math.sqrt(4)
    scores = scores.masked_fill(torch.tril(torch.ones(6, 6)) == 0, float("-inf"))
    expected = torch.softmax(scores, dim=-1) @ v
    assert torch.allclose(head(x), expected, atol=1e-6)
    assert torch.allclose(head(x), F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)


def test_the_notes_scale_by_n_embd_gives_a_different_head():
    # The notes' Head scales by C ** -0.5 with C = n_embd (here 12), not head_size (4).
    head = _head(C=12, hs=4)
    x = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(0))
    q, k, v = head.query(x), head.key(x), head.value(x)
    scores = (q @ k.transpose(-2, -1)).masked_fill(~causal_mask(6), float("-inf"))
    notes = torch.softmax(scores * 12**-0.5, dim=-1) @ v
    right = torch.softmax(scores * 4**-0.5, dim=-1) @ v
    assert torch.allclose(head(x), right, atol=1e-6)
    assert not torch.allclose(head(x), notes, atol=1e-3)


def test_attention_scale_is_a_fixed_temperature_not_a_knob():
    # The notes (004, softmax with temperature) call temperature useful "in attention mechanisms".
    # The only temperature inside attention is the fixed sqrt(head_size); Head has no parameter
    # or argument for another. Temperature is a sampling-time choice (see generate).
    head = _head(C=12, hs=4)
    x = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(1))
    _, wei = head(x, return_weights=True)
    raw = (head.query(x) @ head.key(x).transpose(-2, -1)).masked_fill(~causal_mask(6), float("-inf"))
    assert torch.allclose(wei, softmax_with_temperature(raw, math.sqrt(4)), atol=1e-6)
    assert [n for n, _ in head.named_parameters()] == ["key.weight", "query.weight", "value.weight"]


def test_first_position_returns_its_own_value():
    head = _head()
    x = torch.randn(2, 5, 12)
    out, wei = head(x, return_weights=True)
    assert torch.allclose(out[:, 0], head.value(x)[:, 0], atol=1e-6)
    assert torch.equal(wei[:, 0, 0], torch.ones(2))
    # and every position puts some weight on itself (<= i, not < i)
    assert bool((wei.diagonal(dim1=-2, dim2=-1) > 0).all())


def test_head_is_causal():
    head = _head()
    x = torch.randn(1, 7, 12, generator=torch.Generator().manual_seed(0))
    base = head(x)
    for t in range(7):
        changed = x.clone()
        changed[:, t] = torch.randn(12)
        out = head(changed)
        assert torch.equal(out[:, :t], base[:, :t])
        assert not torch.allclose(out[:, t], base[:, t])


def test_each_head_reads_the_whole_input_vector():
    # The notes (001, HEAD) describe a head as processing one "part" of a split input.
    # A Head sees all C features of each position: its output depends on every one of them.
    head = _head(C=12, hs=4)
    x = torch.randn(1, 5, 12, requires_grad=True)
    head(x).sum().backward()
    assert bool((x.grad.abs().sum(dim=(0, 1)) > 0).all())
    assert head.query.weight.shape == (4, 12)


def test_query_and_key_start_different_and_get_different_gradients():
    head = _head(C=12, hs=4)
    assert not torch.equal(head.query.weight, head.key.weight)
    x = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(0))
    target = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(1))
    ((head(x) - target) ** 2).mean().backward()
    gq, gk, gv = head.query.weight.grad, head.key.weight.grad, head.value.weight.grad
    assert gq.abs().sum() > 0 and gk.abs().sum() > 0
    assert not torch.allclose(gq, gk)
    # even when the two layers start with equal weights, the gradients differ: the roles
    # (row of the score matrix vs column) are what tells them apart
    twin = _head(C=12, hs=4)
    with torch.no_grad():
        twin.key.weight.copy_(twin.query.weight)
    ((twin(x) - target) ** 2).mean().backward()
    assert not torch.allclose(twin.query.weight.grad, twin.key.weight.grad)


def test_swapping_query_and_key_transposes_the_scores_before_masking():
    head = _head(C=12, hs=4)
    x = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(0))
    scores = head.query(x) @ head.key(x).transpose(-2, -1)
    swapped_scores = head.key(x) @ head.query(x).transpose(-2, -1)
    assert torch.allclose(swapped_scores, scores.transpose(-2, -1), atol=1e-6)
    # the mask keeps the lower triangle of a different matrix, so the head's output changes:
    # swapping the two layers of a model, even an untrained one, is not "no difference"
    swapped = _head(C=12, hs=4)
    with torch.no_grad():
        swapped.query.weight.copy_(head.key.weight)
        swapped.key.weight.copy_(head.query.weight)
        swapped.value.weight.copy_(head.value.weight)
    assert not torch.allclose(swapped(x), head(x), atol=1e-4)


@pytest.mark.parametrize("hs", [16, 64])
def test_scale_brings_score_variance_from_head_size_to_one(hs):
    # For independent q, k with unit-variance entries, q . k is a sum of hs products of
    # variance 1: variance hs. Estimated from n = 100 000 independent pairs, the relative
    # standard error of a variance estimate is sqrt((kurtosis - 1) / n) with kurtosis 3 + 6/hs,
    # about 0.005; the 5% tolerance is 10 standard errors.
    g = torch.Generator().manual_seed(hs)
    n = 100_000
    q = torch.randn(n, hs, generator=g)
    k = torch.randn(n, hs, generator=g)
    dots = (q * k).sum(dim=-1)
    assert abs(dots.var().item() / hs - 1) < 0.05
    assert abs((dots * hs**-0.5).var().item() - 1) < 0.05
    # the notes' C ** -0.5 with C = 4 * hs (4 heads) gives variance hs / C = 1/4 instead
    assert abs((dots * (4 * hs) ** -0.5).var().item() - 0.25) < 0.05 * 0.25


def test_unscaled_scores_make_the_softmax_nearly_one_hot():
    g = torch.Generator().manual_seed(0)
    hs, T = 64, 8
    q = torch.randn(500, T, hs, generator=g)
    k = torch.randn(500, T, hs, generator=g)
    scores = q @ k.transpose(-2, -1)  # (500, T, T), variance hs
    last_row_max = lambda s: torch.softmax(s[:, -1], dim=-1).max(dim=-1).values.mean().item()  # noqa: E731
    assert last_row_max(scores) > 0.8  # peaky: mostly one position
    assert last_row_max(scores * hs**-0.5) < 0.5  # spread over the 8 positions


def test_head_rejects_bad_input_and_sizes():
    head = _head(C=12, hs=4, block=8)
    with pytest.raises(ValueError, match="block_size"):
        head(torch.randn(1, 9, 12))
    with pytest.raises(ValueError, match="n_embd"):
        head(torch.randn(1, 5, 10))
    with pytest.raises(ValueError, match="x"):
        head(torch.randn(5, 12))
    with pytest.raises(TypeError, match="x"):
        head(torch.ones(1, 5, 12, dtype=torch.long))
    with pytest.raises(ValueError, match="head_size"):
        Head(12, 0, 8)
    with pytest.raises(TypeError, match="n_embd"):
        Head(12.0, 4, 8)
    with pytest.raises(ValueError, match="dropout"):
        Head(12, 4, 8, dropout=1.0)


def test_return_weights_must_be_a_bool():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8)
    for layer in (Head(8, 4, 4), MultiHeadAttention(8, 2, 4, 4), CausalSelfAttention(8, 2, 4, 4)):
        with pytest.raises(TypeError, match="return_weights must be True or False, got int 1"):
            layer(x, return_weights=1)


def test_head_tril_is_a_buffer_not_saved():
    head = _head(block=8)
    assert "tril" in dict(head.named_buffers())
    assert "tril" not in head.state_dict()
    assert torch.equal(head.tril, torch.tril(torch.ones(8, 8)).bool())


def test_heads_share_one_causal_mask():
    mha = MultiHeadAttention(8, 4, 2, 16)
    ptrs = {h.tril.data_ptr() for h in mha.heads}
    assert len(ptrs) == 1 and mha.heads[0].tril.tolist() == causal_mask(16).tolist()


def test_dropout_acts_in_training_only():
    head = _head(dropout=0.5)
    x = torch.randn(2, 6, 12)
    torch.manual_seed(1)
    a = head(x)
    torch.manual_seed(2)
    b = head(x)
    assert not torch.allclose(a, b)
    head.eval()
    assert torch.equal(head(x), head(x))


# --- several heads -------------------------------------------------------------------------


def _mha(C=16, nh=4, hs=4, block=8, seed=0):
    torch.manual_seed(seed)
    return MultiHeadAttention(C, nh, hs, block)


def test_multi_head_is_concatenated_heads_then_projection():
    mha = _mha()
    x = torch.randn(2, 6, 16)
    cat = torch.cat([h(x) for h in mha.heads], dim=-1)
    assert torch.allclose(mha(x), cat @ mha.proj.weight.T + mha.proj.bias, atol=1e-6)
    assert mha.proj.bias is not None and mha.proj.weight.shape == (16, 16)


def _load_torch_mha(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(mha.n_embd, mha.num_heads, bias=True, batch_first=True)
    fused = CausalSelfAttention.from_multi_head(mha)
    with torch.no_grad():
        ref.in_proj_weight.copy_(fused.c_attn.weight)
        ref.in_proj_bias.zero_()
        ref.out_proj.weight.copy_(mha.proj.weight)
        ref.out_proj.bias.copy_(mha.proj.bias)
    return ref


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("T", [1, 5, 8])
def test_multi_head_equals_fused_and_torch_multihead_attention(seed, T):
    mha = _mha(seed=seed)
    fused = CausalSelfAttention.from_multi_head(mha)
    ref = _load_torch_mha(mha)
    x = torch.randn(3, T, 16, generator=torch.Generator().manual_seed(seed))
    mask = ~causal_mask(T)  # nn.MultiheadAttention masks where True
    expected, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    assert torch.allclose(mha(x), expected, atol=1e-5)
    assert torch.allclose(fused(x), expected, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_multi_head_and_fused_have_the_same_gradients(seed):
    mha = _mha(seed=seed)
    fused = CausalSelfAttention.from_multi_head(mha)
    x1 = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(100 + seed))
    (mha(x1) * w).sum().backward()
    (fused(x2) * w).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-5)
    n = 16  # nh * hs
    gq, gk, gv = fused.c_attn.weight.grad.split(n, dim=0)
    for h, head in enumerate(mha.heads):
        rows = slice(h * 4, (h + 1) * 4)
        assert torch.allclose(head.query.weight.grad, gq[rows], atol=1e-5)
        assert torch.allclose(head.key.weight.grad, gk[rows], atol=1e-5)
        assert torch.allclose(head.value.weight.grad, gv[rows], atol=1e-5)
    assert torch.allclose(mha.proj.weight.grad, fused.proj.weight.grad, atol=1e-5)
    assert torch.allclose(mha.proj.bias.grad, fused.proj.bias.grad, atol=1e-5)


def test_fused_weight_shape_and_head_size_other_than_n_embd_over_heads():
    mha = _mha(C=16, nh=3, hs=5)  # 3 * 5 = 15 != 16 is allowed
    fused = CausalSelfAttention.from_multi_head(mha)
    assert fused.c_attn.weight.shape == (45, 16)
    assert fused.c_attn.bias is None
    x = torch.randn(2, 6, 16)
    assert torch.allclose(fused(x), mha(x), atol=1e-5)


def test_attention_weights_are_returned_per_head():
    mha = _mha()
    fused = CausalSelfAttention.from_multi_head(mha)
    x = torch.randn(2, 6, 16)
    out, wei = mha(x, return_weights=True)
    out_f, wei_f = fused(x, return_weights=True)
    assert wei.shape == (2, 4, 6, 6)
    assert torch.allclose(out, mha(x)) and torch.allclose(out_f, fused(x), atol=1e-5)
    assert torch.allclose(wei, wei_f, atol=1e-5)
    for h, head in enumerate(mha.heads):
        assert torch.allclose(wei[:, h], head(x, return_weights=True)[1])


@pytest.mark.parametrize("layer", ["mha", "fused"])
def test_multi_head_layers_are_causal(layer):
    mha = _mha()
    module = mha if layer == "mha" else CausalSelfAttention.from_multi_head(mha)
    x = torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(0))
    base = module(x)
    for t in range(8):
        changed = x.clone()
        changed[:, t] += 1.0
        out = module(changed)
        assert torch.allclose(out[:, :t], base[:, :t], atol=1e-6)
        assert not torch.allclose(out[:, t], base[:, t])


def test_multi_head_errors():
    mha = _mha()
    with pytest.raises(ValueError, match="block_size"):
        mha(torch.randn(1, 9, 16))
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(16, 0, 4, 8)
    with pytest.raises(TypeError, match="mha"):
        CausalSelfAttention.from_multi_head(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="mha"):
        CausalSelfAttention(16, 2, 8, 8).load_from_multi_head(mha)
    with pytest.raises(ValueError, match="block_size"):
        CausalSelfAttention(16, 4, 4, 8)(torch.randn(1, 9, 16))
    with pytest.raises(TypeError, match="dtype of the weight"):
        CausalSelfAttention(16, 4, 4, 8)(torch.randn(1, 3, 16, dtype=torch.float64))


# --- checks at the edges: a layer on its own checks its input, inside a model once ---------


def _count_checks(monkeypatch):
    """Count the input checks of the attention layers and of Linear while they run."""
    import gptnotes.attention as attention

    calls = {"attention": 0, "linear": 0}
    check, linear_check = attention._check_input, Linear._check_input

    def counted(*args, **kwargs):
        calls["attention"] += 1
        return check(*args, **kwargs)

    def linear_counted(self, x):
        calls["linear"] += 1
        return linear_check(self, x)

    monkeypatch.setattr(attention, "_check_input", counted)
    monkeypatch.setattr(Linear, "_check_input", linear_counted)
    return calls


@pytest.mark.parametrize("layer", [MultiHeadAttention, CausalSelfAttention])
def test_multi_head_layers_check_x_once_not_once_per_inner_layer(layer, monkeypatch):
    torch.manual_seed(0)
    mha = layer(16, 4, 4, 8)
    calls = _count_checks(monkeypatch)
    mha(torch.randn(2, 5, 16))
    assert calls == {"attention": 1, "linear": 0}       # not once more per head and per Linear
    assert all(not m.checks_input for m in mha.modules() if m is not mha and hasattr(m, "checks_input"))


def test_a_head_on_its_own_checks_its_input(monkeypatch):
    torch.manual_seed(0)
    head = Head(8, 4, 4)
    calls = _count_checks(monkeypatch)
    head(torch.randn(1, 3, 8))
    assert calls == {"attention": 1, "linear": 0}       # its key, query and value trust it
    with pytest.raises(TypeError, match="x must have the dtype of the weights"):
        head(torch.randn(1, 3, 8, dtype=torch.float64))  # its Linear layers no longer check it


def test_skipping_the_inner_checks_changes_no_number():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, 4, 6)
    x = torch.randn(2, 5, 8)
    out, wei = mha(x, return_weights=True)
    for h in mha.heads:
        h.checks_input = True
        h.key.checks_input = h.query.checks_input = h.value.checks_input = True
    again, wei_again = mha(x, return_weights=True)
    assert torch.equal(out, again) and torch.equal(wei, wei_again)


@pytest.mark.parametrize("layer", [Head(8, 4, 4), MultiHeadAttention(8, 2, 4, 4), CausalSelfAttention(8, 2, 4, 4)])
def test_inner_layers_without_a_float_weight_still_run(layer):
    from gptnotes.bitnet import BitLinear

    torch.manual_seed(0)
    for name, child in list(layer.named_modules()):
        for attr in ("key", "query", "value", "proj", "c_attn"):
            inner = getattr(child, attr, None)
            if isinstance(inner, Linear):  # swap for a packed ternary layer, as BitNet does
                frozen = BitLinear(inner.in_features, inner.out_features)
                setattr(child, attr, frozen.quantize())
    assert tuple(layer(torch.randn(1, 3, 8)).shape[:2]) == (1, 3)


def test_a_forward_does_not_scan_the_data():
    # NaN input is not refused by a layer's forward: checking every value would cost a pass
    # over the data (and a device sync) per layer; it flows through as NaN, as in torch.nn.
    torch.manual_seed(0)
    x = torch.full((1, 3, 8), float("nan"))
    for layer in (Head(8, 4, 4), MultiHeadAttention(8, 2, 4, 4), CausalSelfAttention(8, 2, 4, 4)):
        assert torch.isnan(layer(x)).all()


def test_sizes_beyond_the_machine_are_refused_with_the_numbers(monkeypatch):
    import gptnotes._checks as checks

    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 10**9)
    with pytest.raises(ValueError, match=r"T=100000: the \(T, T\) boolean causal mask would need 10 GB of memory, "
                                         r"more than this machine's 1 GB"):
        causal_mask(100000)
    with pytest.raises(ValueError, match="num_heads=1000000000000.* would need"):
        MultiHeadAttention(8, 10**12, 4, 6)  # never returned before
    with pytest.raises(ValueError, match="block_size=40000.* would need"):
        Head(8, 4, 40000)
