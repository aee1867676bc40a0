"""Tests of gptnotes.gpt: feed-forward, blocks, and the small GPT of the notes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import (
    Block,
    CausalSelfAttention,
    FeedForward,
    GPTConfig,
    GPTLanguageModel,
    MultiHeadAttention,
    causal_mask,
    layer_norm,
)

NOTES_SIZES = dict(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4)


def _notes_listing() -> list[tuple[str, tuple[int, ...]]]:
    """The parameter listing printed in the notes (003, after "named_parameters"), rebuilt
    from its visible pattern: embeddings, 4 identical blocks, final norm and head."""
    rows = [("token_embedding_table.weight", (65, 64)), ("position_embedding_table.weight", (8, 64))]
    for b in range(4):
        for h in range(4):
            for kind in ("key", "query", "value"):
                rows.append((f"blocks.{b}.sa.heads.{h}.{kind}.weight", (16, 64)))
        rows += [
            (f"blocks.{b}.sa.proj.weight", (64, 64)),
            (f"blocks.{b}.sa.proj.bias", (64,)),
            (f"blocks.{b}.ffwd.net.0.weight", (256, 64)),
            (f"blocks.{b}.ffwd.net.0.bias", (256,)),
            (f"blocks.{b}.ffwd.net.2.weight", (64, 256)),
            (f"blocks.{b}.ffwd.net.2.bias", (64,)),
            (f"blocks.{b}.ln1.weight", (64,)),
            (f"blocks.{b}.ln1.bias", (64,)),
            (f"blocks.{b}.ln2.weight", (64,)),
            (f"blocks.{b}.ln2.bias", (64,)),
        ]
    rows += [("ln_f.weight", (64,)), ("ln_f.bias", (64,)), ("lm_head.weight", (65, 64)), ("lm_head.bias", (65,))]
    return rows


def _gpt(seed=0, **kw):
    torch.manual_seed(seed)
    sizes = dict(vocab_size=11, block_size=8, n_embd=16, n_head=4, n_layer=2)
    sizes.update(kw)
    return GPTLanguageModel(**sizes)


# --- the notes' model ----------------------------------------------------------------------


def test_named_parameters_are_exactly_the_notes_listing():
    model = GPTLanguageModel(**NOTES_SIZES)
    got = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    assert len(got) == 94
    assert got == _notes_listing()


def test_parameter_count_is_208193():
    model = GPTLanguageModel(**NOTES_SIZES)
    total = sum(p.numel() for p in model.parameters())
    assert total == 208_193
    assert f"{total / 1e6} M parameters" == "0.208193 M parameters"
    # the notes' breakdown: 4160 + 512 + 4 blocks x (12288 + 4160 + 33088 + 256) + 128 + 4225
    per_block = 4 * 3 * 16 * 64 + (64 * 64 + 64) + (256 * 64 + 256 + 64 * 256 + 64) + 4 * 64
    assert total == 65 * 64 + 8 * 64 + 4 * per_block + 2 * 64 + (65 * 64 + 65)


def test_config_defaults_are_the_notes_model_and_from_config_matches():
    cfg = GPTConfig()
    assert (cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_head, cfg.n_layer) == (65, 8, 64, 4, 4)
    assert cfg.dropout == 0.0 and cfg.attention == "heads"
    torch.manual_seed(0)
    a = GPTLanguageModel.from_config(cfg)
    torch.manual_seed(0)
    b = GPTLanguageModel(**NOTES_SIZES)
    assert a.config == b.config == cfg
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)


def test_fused_config_has_the_same_number_of_parameters():
    model = GPTLanguageModel(**NOTES_SIZES, attention="fused")
    assert sum(p.numel() for p in model.parameters()) == 208_193
    names = [n for n, _ in model.named_parameters()]
    assert "blocks.0.sa.c_attn.weight" in names
    assert dict(model.named_parameters())["blocks.0.sa.c_attn.weight"].shape == (192, 64)


# --- a reference written with torch.nn only ------------------------------------------------


class _RefHead(nn.Module):
    def __init__(self, C, hs, block):
        super().__init__()
        self.key = nn.Linear(C, hs, bias=False)
        self.query = nn.Linear(C, hs, bias=False)
        self.value = nn.Linear(C, hs, bias=False)
        self.hs = hs

    def forward(self, x):
        T = x.shape[1]
        q, k, v = self.query(x), self.key(x), self.value(x)
        w = (q @ k.transpose(-2, -1)) / math.sqrt(self.hs)
        w = w.masked_fill(torch.ones(T, T).tril() == 0, float("-inf")).softmax(-1)
        return w @ v


class _RefMHA(nn.Module):
    def __init__(self, C, nh, block):
        super().__init__()
        self.heads = nn.ModuleList([_RefHead(C, C // nh, block) for _ in range(nh)])
        self.proj = nn.Linear(C, C)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))


class _RefFF(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(C, 4 * C), nn.ReLU(), nn.Linear(4 * C, C), nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


class _RefBlock(nn.Module):
    def __init__(self, C, nh, block):
        super().__init__()
        self.sa = _RefMHA(C, nh, block)
        self.ffwd = _RefFF(C)
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class _RefGPT(nn.Module):
    """The lecture's architecture with torch.nn layers only (and the head_size scale)."""

    def __init__(self, V, block, C, nh, nl):
        super().__init__()
        self.token_embedding_table = nn.Embedding(V, C)
        self.position_embedding_table = nn.Embedding(block, C)
        self.blocks = nn.Sequential(*[_RefBlock(C, nh, block) for _ in range(nl)])
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T))
        return self.lm_head(self.ln_f(self.blocks(x)))


def test_same_seed_gives_the_weights_of_a_torch_nn_model():
    # gptnotes.Linear draws like nn.Linear, and modules are created in the same order:
    # the default initialisation is PyTorch's, bit for bit.
    torch.manual_seed(0)
    ours = GPTLanguageModel(**NOTES_SIZES)
    torch.manual_seed(0)
    ref = _RefGPT(65, 8, 64, 4, 4)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.equal(p, ref_params[name]), name


@pytest.mark.parametrize("seed", [0, 1])
def test_logits_equal_the_torch_nn_reference(seed):
    ours = _gpt(seed)
    ref = _RefGPT(11, 8, 16, 4, 2)
    ref.load_state_dict(dict(ours.named_parameters()))  # its heads build their masks inline
    idx = torch.randint(11, (3, 8), generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(ours(idx)[0], ref(idx), atol=1e-5)


def test_block_equals_torch_transformer_encoder_layer_pre_norm():
    torch.manual_seed(0)
    block = Block(16, 4, 8)
    ref = nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True)
    fused = CausalSelfAttention.from_multi_head(block.sa)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(fused.c_attn.weight)
        ref.self_attn.in_proj_bias.zero_()
        ref.self_attn.out_proj.load_state_dict(block.sa.proj.state_dict())
        ref.linear1.load_state_dict(block.ffwd.net[0].state_dict())
        ref.linear2.load_state_dict(block.ffwd.net[2].state_dict())
        ref.norm1.load_state_dict(block.ln1.state_dict())
        ref.norm2.load_state_dict(block.ln2.state_dict())
    x = torch.randn(3, 7, 16)
    expected = ref(x, src_mask=~causal_mask(7), is_causal=True)
    assert torch.allclose(block(x), expected, atol=1e-5)


# --- pieces --------------------------------------------------------------------------------


def test_feed_forward_acts_on_each_position_separately():
    torch.manual_seed(0)
    ffwd = FeedForward(8)
    x = torch.randn(2, 5, 8)
    whole = ffwd(x)
    for t in range(5):
        assert torch.allclose(whole[:, t], ffwd(x[:, t]), atol=1e-6)
    manual = F.relu(x @ ffwd.net[0].weight.T + ffwd.net[0].bias) @ ffwd.net[2].weight.T + ffwd.net[2].bias
    assert torch.allclose(whole, manual, atol=1e-6)


def test_block_is_pre_norm_residual():
    torch.manual_seed(0)
    block = Block(16, 4, 8)
    x = torch.randn(2, 6, 16)
    h = x + block.sa(block.ln1(x))
    assert torch.allclose(block(x), h + block.ffwd(block.ln2(h)), atol=1e-6)
    assert isinstance(block.sa, MultiHeadAttention)
    assert isinstance(Block(16, 4, 8, attention="fused").sa, CausalSelfAttention)


# --- forward, loss, causality, positions ---------------------------------------------------


def test_forward_shapes_and_loss_is_cross_entropy():
    model = _gpt()
    idx = torch.randint(11, (3, 8))
    targets = torch.randint(11, (3, 8))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 8, 11)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)))
    assert model(idx)[1] is None
    assert model(idx[:, :3])[0].shape == (3, 3, 11)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_at_init_is_close_to_ln_vocab(seed):
    # lm_head reads a layer-normed vector (unit variance per feature) through weights uniform in
    # +-1/sqrt(C): the logits have variance about C * (1 / (3C)) = 1/3 (+ 1/(3C) from the bias).
    # For logits z of small variance s2, E[logsumexp(z)] ~ ln V + s2 / 2, so the loss starts
    # near ln 65 + 0.17 = 4.34, not at ln 65 = 4.17 exactly. Over 512 random targets the loss
    # has a standard deviation of about 0.02 (measured: 0.022 over 10 seeds); 0.1 is ~5 sigma.
    torch.manual_seed(seed)
    model = GPTLanguageModel(**NOTES_SIZES)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(65, (64, 8), generator=g)
    logits, loss = model(idx, torch.randint(65, (64, 8), generator=g))
    s2 = logits.var(dim=-1).mean().item()
    assert 0.25 < s2 < 0.45
    assert abs(loss.item() - (math.log(65) + s2 / 2)) < 0.1
    assert abs(loss.item() - math.log(65)) < 0.35


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_changing_a_future_token_never_changes_earlier_logits(attention):
    model = _gpt(attention=attention)
    idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(0))
    base, _ = model(idx)
    for t in range(8):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        out, _ = model(changed)
        assert torch.allclose(out[:, :t], base[:, :t], atol=1e-6)
        assert not torch.allclose(out[:, t], base[:, t])


def test_same_token_at_two_positions_enters_as_two_vectors():
    model = _gpt()
    x = model.embed(torch.tensor([[4, 4, 4]]))
    assert not torch.allclose(x[0, 0], x[0, 1])
    expected = model.token_embedding_table.weight[4] + model.position_embedding_table.weight[:3]
    assert torch.allclose(x[0], expected)


def test_adding_embeddings_is_a_linear_map_of_the_concatenated_one_hots():
    # The notes worry that addition can collide (7 = 4 + 3 = 2 + 5). tok + pos is exactly one
    # linear layer applied to [one_hot(token), one_hot(position)]: nothing is lost that a
    # concatenation followed by a linear layer would keep.
    model = _gpt()
    V, block, C = 11, 8, 16
    idx = torch.randint(V, (2, block), generator=torch.Generator().manual_seed(0))
    one_hots = torch.cat(
        [F.one_hot(idx, V).float(), F.one_hot(torch.arange(block), block).float().expand(2, block, block)], dim=-1
    )  # (B, T, V + block)
    W = torch.cat([model.token_embedding_table.weight, model.position_embedding_table.weight])  # (V + block, C)
    assert torch.allclose(model.embed(idx), one_hots @ W, atol=1e-6)
    # and the V * block sums are all distinct, with a wide margin, at initialisation
    sums = (model.token_embedding_table.weight[:, None, :] + model.position_embedding_table.weight[None]).reshape(-1, C)
    dist = torch.cdist(sums, sums) + torch.eye(V * block) * 1e9
    assert dist.min().item() > 0.5


def test_position_table_is_learned_not_a_fixed_formula():
    # The notes (002) describe positional encodings as a fixed mathematical formula; here the
    # positions are a learned table that receives gradients like every other weight.
    model = _gpt()
    idx = torch.randint(11, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    pos = model.position_embedding_table.weight
    assert pos.requires_grad and pos.grad is not None and pos.grad.abs().sum() > 0


def test_order_matters_with_positions_and_through_the_causal_mask():
    idx = torch.tensor([[1, 2, 3, 4, 5, 6]])
    perm = torch.tensor([[3, 1, 5, 2, 4, 6]])  # the same tokens before the last, reordered

    def last_logits(model, x):
        return model(x)[0][:, -1]

    one = _gpt(n_layer=1)
    two = _gpt(n_layer=2)
    # with positions, order changes the prediction
    assert not torch.allclose(last_logits(one, idx), last_logits(one, perm), atol=1e-4)
    with torch.no_grad():
        one.position_embedding_table.weight.zero_()
        two.position_embedding_table.weight.zero_()
    # without positions, one layer of attention sees the past as a bag of tokens ...
    assert torch.allclose(last_logits(one, idx), last_logits(one, perm), atol=1e-5)
    # ... but with two layers the causal mask alone already makes order visible
    assert not torch.allclose(last_logits(two, idx), last_logits(two, perm), atol=1e-4)


def test_dropout_zero_makes_train_and_eval_identical():
    # The notes (003, model.eval()) stress dropout and batch norm; this GPT has no batch norm,
    # and layer norm behaves the same in both modes: only dropout differs.
    model = _gpt()
    idx = torch.randint(11, (2, 8))
    train_logits = model(idx)[0]
    model.eval()
    assert torch.equal(train_logits, model(idx)[0])
    noisy = _gpt(dropout=0.3)
    assert not torch.allclose(noisy(idx)[0], noisy(idx)[0])
    noisy.eval()
    assert torch.equal(noisy(idx)[0], noisy(idx)[0])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_token_ids_of_any_integer_dtype_are_taken_as_long(dtype, attention):
    model = _gpt(attention=attention)
    ids, nxt = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]])
    _, want = model(ids, nxt)
    _, got = model(ids.to(dtype), nxt.to(dtype))
    assert torch.equal(got, want)
    out = model.generate(ids.to(dtype), 2, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.long and out.shape == (1, 5)


# --- fused fast path -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_fused_model_gives_the_same_logits_loss_and_gradients(seed):
    model = _gpt(seed)
    fused = model.to_fused()
    assert fused.config.attention == "fused" and model.config.attention == "heads"
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(11, (4, 8), generator=g)
    targets = torch.randint(11, (4, 8), generator=g)
    logits_a, loss_a = model(idx, targets)
    logits_b, loss_b = fused(idx, targets)
    assert torch.allclose(logits_a, logits_b, atol=1e-5)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    loss_a.backward()
    loss_b.backward()
    grads_b = {n: p.grad for n, p in fused.named_parameters()}
    for name, p in model.named_parameters():
        if ".sa.heads." in name:
            continue
        assert torch.allclose(p.grad, grads_b[name], atol=1e-5), name
    for i, block in enumerate(model.blocks):
        gq, gk, gv = grads_b[f"blocks.{i}.sa.c_attn.weight"].split(16, dim=0)
        for h, head in enumerate(block.sa.heads):
            rows = slice(4 * h, 4 * (h + 1))
            assert torch.allclose(head.query.weight.grad, gq[rows], atol=1e-5)
            assert torch.allclose(head.key.weight.grad, gk[rows], atol=1e-5)
            assert torch.allclose(head.value.weight.grad, gv[rows], atol=1e-5)


def test_to_fused_copies_and_leaves_the_original_alone():
    model = _gpt()
    fused = model.to_fused()
    with torch.no_grad():
        fused.lm_head.bias.add_(1.0)
    assert not torch.equal(fused.lm_head.bias, model.lm_head.bias)
    assert isinstance(model.blocks[0].sa, MultiHeadAttention)


# --- generation and attention maps ---------------------------------------------------------


def test_generate_crops_to_block_size_and_is_reproducible():
    model = _gpt()
    idx = torch.randint(11, (2, 3))
    a = model.generate(idx, 25, generator=torch.Generator().manual_seed(0))
    b = model.generate(idx, 25, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 28) and torch.equal(a, b) and torch.equal(a[:, :3], idx)
    assert int(a.min()) >= 0 and int(a.max()) < 11


def test_generate_looks_at_the_last_block_size_tokens_only():
    model = _gpt()
    tail = torch.randint(11, (1, 8), generator=torch.Generator().manual_seed(1))
    a = torch.cat([torch.tensor([[0, 0, 0, 0]]), tail], dim=1)
    b = torch.cat([torch.tensor([[9, 5, 1, 7]]), tail], dim=1)
    out_a = model.generate(a, 1, generator=torch.Generator().manual_seed(3))
    out_b = model.generate(b, 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out_a[:, -1], out_b[:, -1])
    # and one step equals sampling from the logits of the last position by hand
    logits = model(tail)[0][:, -1]
    manual = torch.multinomial(torch.softmax(logits, -1), 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out_a[:, -1:], manual)


def test_attention_maps_match_the_heads():
    model = _gpt(n_layer=2)
    model.eval()
    idx = torch.randint(11, (2, 6))
    maps = model.attention_maps(idx)
    assert maps.shape == (2, 2, 4, 6, 6)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 4, 6), atol=1e-5)
    assert bool((maps.triu(diagonal=1) == 0).all())
    first = model.blocks[0]
    _, w = first.sa.heads[2](first.ln1(model.embed(idx)), return_weights=True)
    assert torch.allclose(maps[0, :, 2], w, atol=1e-6)
    assert torch.allclose(model.to_fused().attention_maps(idx), maps, atol=1e-5)


def test_generate_at_a_tiny_temperature_takes_the_argmax():
    model = _gpt().eval()
    idx = torch.tensor([[1, 2]])
    out = model.generate(idx, 3, temperature=1e-45)  # 1 / T overflows float32: no error
    greedy = idx
    with torch.no_grad():
        for _ in range(3):
            greedy = torch.cat((greedy, model(greedy)[0][:, -1].argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(out, greedy)


# --- errors --------------------------------------------------------------------------------


def test_sequence_longer_than_block_size_is_rejected():
    model = _gpt()
    with pytest.raises(ValueError, match="idx.*block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_bad_idx_and_targets_are_rejected():
    model = _gpt()
    idx = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="idx"):
        model(torch.full((2, 4), 11))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="idx"):
        model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="targets"):
        model(idx, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(idx, torch.full((2, 4), -1))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(idx, -2)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(n_embd=18, n_head=4), ValueError, "n_embd"),
        (dict(n_head=0), ValueError, "n_head"),
        (dict(vocab_size=0), ValueError, "vocab_size"),
        (dict(block_size=2.5), TypeError, "block_size"),
        (dict(dropout=1.0), ValueError, "dropout"),
        (dict(attention="flash"), ValueError, "attention"),
    ],
)
def test_bad_sizes_are_rejected(kw, exc, match):
    with pytest.raises(exc, match=match):
        _gpt(**kw)
    sizes = dict(vocab_size=11, block_size=8, n_embd=16, n_head=4, n_layer=2)
    sizes.update(kw)
    with pytest.raises(exc, match=match):
        GPTConfig(**sizes)


def test_from_config_requires_a_config():
    with pytest.raises(TypeError, match="config"):
        GPTLanguageModel.from_config({"vocab_size": 65})


def test_fused_attention_calls_its_layers_so_that_they_can_be_replaced():
    # The fast path must run c_attn and proj as modules (not their weights directly): BitNet
    # swaps them for BitLinear layers, whose forward quantises the weights.
    from gptnotes.bitnet import replace_linear_with_bitlinear

    model = _gpt().to_fused()
    idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(0))
    before = model(idx)[0]
    replaced = replace_linear_with_bitlinear(model.blocks)
    assert {"0.sa.c_attn", "0.sa.proj", "1.sa.c_attn", "1.sa.proj"} <= set(replaced)
    calls = []
    hook = model.blocks[0].sa.c_attn.register_forward_hook(lambda *args: calls.append(1))
    after = model(idx)[0]
    hook.remove()
    assert calls == [1] and not torch.allclose(before, after, atol=1e-3)


@pytest.mark.parametrize("shape", [(0, 3), (1, 0)])
def test_an_empty_batch_is_refused_not_answered_with_nan(shape):
    empty = torch.zeros(shape, dtype=torch.long)
    with pytest.raises(ValueError, match="idx"):
        _gpt()(empty, empty)
    with pytest.raises(ValueError, match="idx"):
        _gpt().generate(empty, 2)


def test_the_model_checks_its_input_once_and_the_blocks_do_not(monkeypatch):
    # Checks at the edge: forward checks idx and targets; a block receives what the model
    # made of them and checks nothing again (the count was 107 check calls per forward).
    import gptnotes.gpt as gpt

    calls = []
    for name in ("check_token_ids", "check_targets", "check_float_tensor"):
        real = getattr(gpt, name)
        monkeypatch.setattr(gpt, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    model = GPTLanguageModel(**NOTES_SIZES)
    idx = torch.randint(65, (2, 8))
    model(idx, idx)
    assert calls == ["check_token_ids", "check_targets"]
    with pytest.raises(RuntimeError):  # a block alone on a wrong x: its layer norm says so
        Block(8, 2, 4)(torch.randn(1, 3, 5))


# ---------------------------------------------------------------------------------------
# layer_norm from scratch against torch.nn.LayerNorm
# ---------------------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000), shape=st.lists(st.integers(1, 6), min_size=0, max_size=2),
       C=st.integers(2, 96), log_scale=st.integers(-3, 3), eps=st.sampled_from([1e-5, 1e-3, 0.1]))
@settings(max_examples=40, deadline=None)
def test_layer_norm_equals_torch_values_and_gradients(seed, shape, C, log_scale, eps):
    g = torch.Generator().manual_seed(seed)
    # an offset and a spread of the same size (a constant input is tested on its own, below)
    x = (torch.randn(*shape, C, generator=g, dtype=torch.float64) + torch.randn(1, generator=g)) * 10.0**log_scale
    ln = nn.LayerNorm(C, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.normal_(generator=g)
        ln.bias.normal_(generator=g)
    # float64, where rounding is negligible: the same values and the same gradients
    x.requires_grad_()
    ours, theirs = layer_norm(x, ln.weight, ln.bias, eps=eps), ln(x)
    assert ours.shape == theirs.shape == x.shape
    assert torch.allclose(ours, theirs, atol=1e-9, rtol=1e-9)
    up = torch.randn(theirs.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((ours * up).sum(), (x, ln.weight, ln.bias))
    ref = torch.autograd.grad((theirs * up).sum(), (x, ln.weight, ln.bias))
    for name, a, b in zip(("x", "weight", "bias"), grads, ref):
        assert torch.allclose(a, b, atol=1e-7, rtol=1e-6), name
    # float32, as a model runs it: the same values up to float32 rounding
    x32, w32, b32 = x.detach().float(), ln.weight.detach().float(), ln.bias.detach().float()
    expected = F.layer_norm(x32, (C,), w32, b32, eps)
    assert torch.allclose(layer_norm(x32, w32, b32, eps=eps), expected, atol=1e-4, rtol=1e-4)


def test_layer_norm_without_weight_and_bias_standardises_each_position():
    torch.manual_seed(0)
    x = 5 + 3 * torch.randn(4, 7, 32)
    y = layer_norm(x)
    assert torch.allclose(y, F.layer_norm(x, (32,)), atol=1e-5)
    assert y.mean(-1).abs().max() < 1e-5 and (y.var(-1, unbiased=False) - 1).abs().max() < 1e-3
    assert torch.equal(layer_norm(x[:1]), y[:1])  # per position: the rest of the batch plays no part
    constant = layer_norm(torch.full((2, 8), 3.0))  # no spread: eps keeps it finite, all zeros
    assert torch.equal(constant, torch.zeros(2, 8))


def test_layer_norm_errors_name_the_argument():
    x = torch.randn(2, 4)
    with pytest.raises(TypeError, match="x"):
        layer_norm(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="x"):
        layer_norm([1.0, 2.0])
    with pytest.raises(ValueError, match="x"):
        layer_norm(torch.tensor(1.0))
    with pytest.raises(ValueError, match="x"):
        layer_norm(torch.ones(3, 0))
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(4,\)"):
        layer_norm(x, torch.ones(3))
    with pytest.raises(ValueError, match="bias"):
        layer_norm(x, torch.ones(4), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="weight"):
        layer_norm(x, torch.ones(4, dtype=torch.long))
    for eps in (0.0, -1e-5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps"):
            layer_norm(x, eps=eps)
    with pytest.raises(TypeError, match="eps"):
        layer_norm(x, eps="1e-5")


# --- issue 14 ------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-320, 1e300])
def test_item10_layer_norm_refuses_an_eps_float32_cannot_use(eps):
    with pytest.raises(ValueError, match=r"eps must lie in \[1.175e-38, 1e\+30\]"):
        layer_norm(torch.zeros(1, 4), eps=eps)  # was NaN (1e-320 is 0 in float32) or an overflow error


def test_item8_config_counts_parameters_and_memory_without_building():
    cfg = GPTConfig(**NOTES_SIZES)
    assert cfg.parameter_count() == 208193
    fused = GPTConfig(**{**NOTES_SIZES, "attention": "fused"})
    torch.manual_seed(0)
    assert fused.parameter_count() == sum(p.numel() for p in GPTLanguageModel.from_config(fused).parameters())
    assert cfg.memory_bytes() == 4 * 208193 + 8 * 8 and fused.memory_bytes() == 4 * 208193


def test_item8_a_model_beyond_the_machine_is_refused_before_building(monkeypatch):
    import gptnotes._checks as checks

    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 10**9)
    with pytest.raises(ValueError, match=r"n_layer=100000: a GPTLanguageModel of [\d,]+ parameters would need"):
        GPTLanguageModel(65, 8, 64, 4, 100000)  # was still building after 60 s


def test_item3_config_attention_is_a_plain_str():
    import numpy as np

    assert type(GPTConfig(attention=np.str_("fused")).attention) is str


# --- the lecture's checkpoints -------------------------------------------------------------
# A re-creation of the classes of the lecture's gpt.py (karpathy/ng-video-lecture), with its
# globals (n_embd, block_size, dropout, ...) made arguments. Its Head registers its causal mask
# as a persistent float buffer, so its state_dict has a "...heads.M.tril" entry per head.


class LectureHead(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)
        return wei @ v


class LectureMultiHeadAttention(nn.Module):
    def __init__(self, n_embd, num_heads, head_size, block_size, dropout):
        super().__init__()
        self.heads = nn.ModuleList([LectureHead(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class LectureFeedFoward(nn.Module):  # sic: the lecture's spelling
    def __init__(self, n_embd, dropout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout)
        )

    def forward(self, x):
        return self.net(x)


class LectureBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size, dropout):
        super().__init__()
        head_size = n_embd // n_head
        self.sa = LectureMultiHeadAttention(n_embd, n_head, head_size, block_size, dropout)
        self.ffwd = LectureFeedFoward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class LectureGPTLanguageModel(nn.Module):
    """The lecture's model (``BigramLanguageModel`` in the video's version of gpt.py)."""

    def __init__(self, vocab_size, block_size, n_embd, n_head, n_layer, dropout=0.0, init_weights=True):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[LectureBlock(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)
        if init_weights:  # added to the lecture's repository after the video
            self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)
        pos_emb = self.position_embedding_table(torch.arange(T))
        x = self.ln_f(self.blocks(tok_emb + pos_emb))
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        return logits, F.cross_entropy(logits.view(B * T, C), targets.view(B * T))


def test_the_lecture_state_dict_has_a_mask_per_head_and_otherwise_our_names():
    torch.manual_seed(0)
    lecture = LectureGPTLanguageModel(**NOTES_SIZES)
    ours = GPTLanguageModel(**NOTES_SIZES)
    theirs, mine = lecture.state_dict(), ours.state_dict()
    masks = [k for k in theirs if k.endswith(".tril")]
    assert len(masks) == 16 and set(theirs) == set(mine)
    assert [k for k in theirs if k not in masks] == [k for k in mine if k not in masks] == [
        n for n, _ in _notes_listing()]
    assert len({id(mine[k]) for k in masks}) == 1  # one tensor for all heads: saved once
    assert all(torch.equal(mine[k], theirs[k]) and mine[k].dtype == theirs[k].dtype for k in masks)


@pytest.mark.parametrize("init_weights", [True, False], ids=["N(0, 0.02) init", "PyTorch default init"])
def test_a_lecture_checkpoint_loads_strictly_and_gives_the_same_logits(tmp_path, init_weights):
    torch.manual_seed(1)
    lecture = LectureGPTLanguageModel(**NOTES_SIZES, init_weights=init_weights).eval()
    torch.save(lecture.state_dict(), tmp_path / "lecture.pt")
    ours = GPTLanguageModel(**NOTES_SIZES)
    ours.load_state_dict(torch.load(tmp_path / "lecture.pt", weights_only=True), strict=True)
    idx = torch.randint(65, (3, 8), generator=torch.Generator().manual_seed(0))
    (want, want_loss), (got, got_loss) = lecture(idx, idx), ours.eval()(idx, idx)
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(got_loss, want_loss, atol=1e-6)


def test_a_gptnotes_state_dict_loads_strictly_into_the_lecture_model(tmp_path):
    ours = _gpt(vocab_size=65)
    torch.save(ours.state_dict(), tmp_path / "ours.pt")
    lecture = LectureGPTLanguageModel(65, 8, 16, 4, 2)
    lecture.load_state_dict(torch.load(tmp_path / "ours.pt", weights_only=True), strict=True)
    idx = torch.randint(65, (2, 8), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lecture(idx)[0], ours(idx)[0], atol=1e-5)


def test_a_state_dict_without_the_masks_still_loads_and_a_wrong_mask_is_refused():
    ours, other = _gpt(seed=1), _gpt(seed=2)
    params_only = {n: p.detach() for n, p in other.named_parameters()}  # what gptnotes checkpoints hold
    ours.load_state_dict(params_only, strict=True)
    assert torch.equal(ours.lm_head.weight, other.lm_head.weight)
    bad = other.state_dict()
    bad["blocks.1.sa.heads.2.tril"] = torch.ones(8, 8)  # not causal
    with pytest.raises(RuntimeError, match=r"blocks\.1\.sa\.heads\.2\.tril must be the causal mask"):
        ours.load_state_dict(bad)
    fused = _gpt().to_fused()  # one c_attn per block, no heads: no masks either way
    assert not [k for k in fused.state_dict() if k.endswith(".tril")]
