"""Tests of gptnotes.bitnet.convert: Linear layers into BitLinear, BitLinear layers into integer layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gptnotes import Linear
from gptnotes.bitnet.convert import freeze_bitlinear_layers, replace_linear_with_bitlinear
from gptnotes.bitnet.inference import BitLinearInference
from gptnotes.bitnet.layers import BitLinear


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


def test_freeze_turns_every_bitlinear_into_its_integer_layer_with_the_same_outputs():
    torch.manual_seed(0)
    model = _GPTLike(n_layer=2, n_head=4)
    replaced = replace_linear_with_bitlinear(model.blocks)
    block = model.blocks[1]
    x = torch.randn(2, 5, 16)
    layers = {name: block.get_submodule(name) for name in ("sa.heads.2.key", "sa.proj", "ffwd.net.0")}
    before = {name: m(x) for name, m in layers.items()}
    frozen = freeze_bitlinear_layers(model.blocks)
    assert frozen == replaced  # the same layers, in the same order
    assert not any(isinstance(m, BitLinear) for m in model.modules())
    for name, y in before.items():
        new = block.get_submodule(name)
        assert type(new) is BitLinearInference and torch.equal(new(x), y)
    assert type(model.lm_head) is nn.Linear and type(model.blocks[0].ln1) is nn.LayerNorm
    assert freeze_bitlinear_layers(model) == []  # nothing left to freeze


def test_freeze_leaves_a_model_without_bitlinear_alone_and_checks_its_argument():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    assert freeze_bitlinear_layers(net) == [] and type(net[0]) is nn.Linear
    with pytest.raises(TypeError, match="module"):
        freeze_bitlinear_layers(BitLinear(2, 2))
    with pytest.raises(TypeError, match="module"):
        freeze_bitlinear_layers("model")
    bad = nn.Sequential(BitLinear(2, 2))
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="weight"):
        freeze_bitlinear_layers(bad)
