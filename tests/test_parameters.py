"""Parameter counts and tables of nn.Modules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import (
    Embedding,
    Linear,
    count_parameters,
    format_millions,
    format_parameter_table,
    parameter_counts_by_module,
    parameter_table,
)

# --- a stand-in with the structure of the notes' GPT (vocab 65, block 8, C 64, 4 heads, 4 layers)
# Built from plain torch.nn so that these tests do not depend on gptnotes.gpt.


class _Head(nn.Module):
    def __init__(self, n_embd: int, head_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(8, 8)))   # a buffer, not a parameter


class _MultiHead(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_Head(n_embd, n_embd // n_head) for _ in range(n_head))
        self.proj = nn.Linear(n_embd, n_embd)


class _FeedForward(nn.Module):
    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(0.0))


class _Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.sa = _MultiHead(n_embd, n_head)
        self.ffwd = _FeedForward(n_embd)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)


class _NotesGPT(nn.Module):
    def __init__(self, vocab_size: int = 65, block_size: int = 8, n_embd: int = 64, n_head: int = 4, n_layer: int = 4) -> None:
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[_Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)


def _expected_notes_rows() -> list[tuple[str, tuple[int, ...]]]:
    """The parameter listing printed in the notes, generated from its pattern."""
    rows = [("token_embedding_table.weight", (65, 64)), ("position_embedding_table.weight", (8, 64))]
    for b in range(4):
        p = f"blocks.{b}."
        for h in range(4):
            rows += [(f"{p}sa.heads.{h}.{kind}.weight", (16, 64)) for kind in ("key", "query", "value")]
        rows += [(p + "sa.proj.weight", (64, 64)), (p + "sa.proj.bias", (64,))]
        rows += [(p + "ffwd.net.0.weight", (256, 64)), (p + "ffwd.net.0.bias", (256,))]
        rows += [(p + "ffwd.net.2.weight", (64, 256)), (p + "ffwd.net.2.bias", (64,))]
        rows += [(p + f"{ln}.{w}", (64,)) for ln in ("ln1", "ln2") for w in ("weight", "bias")]
    rows += [("ln_f.weight", (64,)), ("ln_f.bias", (64,)), ("lm_head.weight", (65, 64)), ("lm_head.bias", (65,))]
    return rows


MODULES = [
    lambda: nn.Linear(10, 5),
    lambda: nn.Linear(10, 5, bias=False),
    lambda: Linear(64, 256),
    lambda: Embedding(65, 64),
    lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
    lambda: nn.Conv2d(1, 20, 5),
    lambda: nn.LSTM(10, 20, num_layers=2),
    lambda: nn.LayerNorm(64),
    lambda: nn.BatchNorm1d(16),
    lambda: nn.ReLU(),
    _NotesGPT,
]


@pytest.mark.parametrize("make", MODULES)
def test_count_equals_the_numel_sum(make):
    torch.manual_seed(0)
    module = make()
    expected = sum(p.numel() for p in module.parameters())
    assert count_parameters(module) == expected
    assert count_parameters(module, trainable_only=True) == expected
    assert sum(n for _, _, n in parameter_table(module)) == expected
    assert sum(parameter_counts_by_module(module).values()) == expected


def test_known_counts():
    assert count_parameters(nn.Linear(10, 5)) == 10 * 5 + 5
    assert count_parameters(nn.Conv2d(1, 20, 5)) == 20 * 1 * 5 * 5 + 20
    assert count_parameters(nn.ReLU()) == 0
    assert count_parameters(nn.BatchNorm1d(16)) == 32          # running stats are buffers


def test_the_notes_gpt_has_208193_parameters():
    model = _NotesGPT()
    assert count_parameters(model) == 208_193
    assert f"{format_millions(count_parameters(model))} M parameters" == "0.208193 M parameters"
    assert str(208_193 / 1e6) == format_millions(208_193)      # what the notes' print shows


def test_table_rows_match_named_parameters():
    model = _NotesGPT()
    rows = parameter_table(model)
    assert [(n, s) for n, s, _ in rows] == _expected_notes_rows()
    for (name, shape, numel), (ref_name, p) in zip(rows, model.named_parameters(), strict=True):
        assert name == ref_name
        assert shape == tuple(p.shape) and all(type(d) is int for d in shape)
        assert numel == p.numel()


def test_trainable_only_respects_requires_grad():
    model = _NotesGPT()
    model.token_embedding_table.weight.requires_grad_(False)
    for p in model.blocks[0].parameters():
        p.requires_grad_(False)
    expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count_parameters(model, trainable_only=True) == expected
    assert count_parameters(model, trainable_only=True) < count_parameters(model) == 208_193


def test_tied_parameters_count_once():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(65, 64)
            self.head = nn.Linear(64, 65)
            self.head.weight = self.emb.weight                  # weight tying

    model = Tied()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) == 65 * 64 + 65
    assert sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) == 2 * 65 * 64 + 65
    assert [n for n, _, _ in parameter_table(model)] == ["emb.weight", "head.bias"]


def test_format_table_lines():
    model = _NotesGPT()
    text = format_parameter_table(model)
    lines = text.split("\n")
    rows = _expected_notes_rows()
    assert len(lines) == len(rows) + 1
    for line, (name, shape) in zip(lines, rows):
        fields = line.split()
        assert fields[0] == name
        assert " ".join(fields[1:-1]) == "[" + ", ".join(map(str, shape)) + "]"
        assert int(fields[-1].replace(",", "")) == torch.Size(shape).numel()
    assert lines[-1] == "total: 208,193 parameters (0.208193 M parameters)"
    assert "torch.Size" not in text
    # Columns are aligned: every shape starts at the same offset.
    starts = {line.index("[") for line in lines[:-1]}
    assert len(starts) == 1


def test_format_table_of_a_module_without_parameters_and_of_a_scalar_parameter():
    assert format_parameter_table(nn.ReLU()) == "total: 0 parameters (0.0 M parameters)"
    m = nn.Module()
    m.scale = nn.Parameter(torch.tensor(2.0))
    assert parameter_table(m) == [("scale", (), 1)]
    assert format_parameter_table(m).split("\n")[0].split() == ["scale", "[]", "1"]


@settings(max_examples=50, deadline=None)
@given(st.integers(100, 10**12))
def test_format_millions_is_what_print_shows(n):
    # Python prints n / 1e6 as the shortest decimal that round-trips; for these n (at least
    # 1e-4 million, well below 2**53) that is the exact decimal.
    text = str(n / 1e6)
    assert format_millions(n) == text


@pytest.mark.parametrize("n,text", [(0, "0.0"), (3, "0.000003"), (1_000_000, "1.0"), (10_745_000, "10.745")])
def test_format_millions_edges(n, text):
    assert format_millions(n) == text


def test_counts_by_module():
    model = _NotesGPT()
    top = parameter_counts_by_module(model)
    assert top == {
        "token_embedding_table": 65 * 64,
        "position_embedding_table": 8 * 64,
        "blocks": 4 * (12 * 16 * 64 + 64 * 64 + 64 + 64 * 256 + 256 + 256 * 64 + 64 + 4 * 64),
        "ln_f": 128,
        "lm_head": 65 * 64 + 65,
    }
    per_block = parameter_counts_by_module(model, depth=2)
    assert [k for k in per_block if k.startswith("blocks")] == ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    assert len(set(per_block[f"blocks.{b}"] for b in range(4))) == 1
    assert sum(per_block.values()) == 208_193
    # Deeper than a name: the name itself is the group.
    assert parameter_counts_by_module(nn.Linear(2, 3), depth=5) == {"weight": 6, "bias": 3}


@pytest.mark.parametrize("fn", [count_parameters, parameter_table, format_parameter_table, parameter_counts_by_module])
@pytest.mark.parametrize("value", [None, "model", torch.zeros(3), [nn.Linear(2, 2)]])
def test_non_module_errors(fn, value):
    with pytest.raises(TypeError, match="^module must be a torch.nn.Module"):
        fn(value)


def test_argument_errors():
    with pytest.raises(TypeError, match="trainable_only"):
        count_parameters(nn.Linear(2, 2), trainable_only="yes")
    with pytest.raises(ValueError, match="depth"):
        parameter_counts_by_module(nn.Linear(2, 2), depth=0)
    with pytest.raises(TypeError, match="depth"):
        parameter_counts_by_module(nn.Linear(2, 2), depth=1.0)
    with pytest.raises(ValueError, match="^n must"):
        format_millions(-1)
    with pytest.raises(TypeError, match="^n must"):
        format_millions(1.5)
    with pytest.raises(TypeError, match="^n must"):
        format_millions(True)
