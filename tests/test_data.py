"""Tokenizer, train/val split, batches of shifted windows, and text loading."""

from __future__ import annotations

import math
import os
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptnotes import CharTokenizer, get_batch, load_corpus, load_text, train_val_split

CORPUS = load_corpus()
TOK = CharTokenizer(CORPUS)


# --- CharTokenizer ------------------------------------------------------------------------


def test_vocab_is_the_sorted_set_of_characters():
    tok = CharTokenizer("banana bread")
    assert tok.chars == [" ", "a", "b", "d", "e", "n", "r"]
    assert tok.vocab_size == len(tok) == 7
    assert tok.encode("bad") == [2, 1, 3]
    # Same text, same ids; order of appearance does not matter.
    assert CharTokenizer("bread banana").chars == tok.chars


def test_corpus_round_trip():
    ids = TOK.encode(CORPUS)
    assert len(ids) == len(CORPUS)
    assert min(ids) == 0 and max(ids) == TOK.vocab_size - 1
    assert TOK.decode(ids) == CORPUS
    assert TOK.decode(torch.tensor(ids)) == CORPUS


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=TOK.chars, max_size=200))
def test_round_trip_for_any_text_over_the_vocabulary(text):
    ids = TOK.encode(text)
    assert all(0 <= i < TOK.vocab_size for i in ids)
    assert TOK.decode(ids) == text
    assert [TOK.chars[i] for i in ids] == list(text)


def test_decode_accepts_a_zero_dim_tensor():
    assert TOK.decode(torch.tensor(TOK.encode("Q")[0])) == "Q"


@pytest.mark.parametrize("char", ["@", "\u00e9", "\t"])
def test_encode_names_text_and_the_unknown_character(char):
    with pytest.raises(ValueError, match=rf"text .*{re.escape(repr(char))}.* position 3"):
        TOK.encode("abc" + char + "d")


def test_encode_needs_a_str():
    with pytest.raises(TypeError, match="text"):
        TOK.encode([1, 2])


@pytest.mark.parametrize("text,exc", [("", ValueError), (None, TypeError), (["a"], TypeError)])
def test_tokenizer_needs_non_empty_text(text, exc):
    with pytest.raises(exc, match="text"):
        CharTokenizer(text)


@pytest.mark.parametrize(
    "ids,exc",
    [
        ([0, 72], ValueError),                       # one past the last id
        ([-1], ValueError),
        ([1.0], TypeError),
        ([True], TypeError),
        (torch.tensor([[1, 2]]), ValueError),        # 2-D
        (torch.tensor([1.0]), TypeError),            # float ids
        (torch.tensor([99]), ValueError),
    ],
)
def test_decode_errors(ids, exc):
    assert TOK.vocab_size == 72
    with pytest.raises(exc, match="ids"):
        TOK.decode(ids)


# --- train_val_split ----------------------------------------------------------------------


def test_split_keeps_order_first_ninety_percent_then_the_rest():
    data = torch.arange(100)
    train, val = train_val_split(data)
    assert torch.equal(train, torch.arange(90)) and torch.equal(val, torch.arange(90, 100))
    assert torch.equal(torch.cat([train, val]), data)


def test_split_of_a_list_and_of_the_corpus():
    train, val = train_val_split(list(range(10)), train_fraction=0.7)
    assert train == list(range(7)) and val == [7, 8, 9]
    data = torch.tensor(TOK.encode(CORPUS))
    train, val = train_val_split(data)
    n = int(0.9 * len(data))
    assert len(train) == n and len(val) == len(data) - n
    assert TOK.decode(train) + TOK.decode(val) == CORPUS


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, 1.5, -0.1, float("nan")])
def test_split_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        train_val_split(torch.arange(10), fraction)


@pytest.mark.parametrize("fraction", ["0.9", None, True])
def test_split_fraction_wrong_type(fraction):
    with pytest.raises(TypeError, match="train_fraction"):
        train_val_split(torch.arange(10), fraction)


def test_split_errors_on_data():
    with pytest.raises(ValueError, match="data"):
        train_val_split(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="data"):
        train_val_split([1], 0.9)                     # one part would be empty
    with pytest.raises(TypeError, match="data"):
        train_val_split(12345)


# --- get_batch ----------------------------------------------------------------------------


def _locate(row: torch.Tensor, data: torch.Tensor) -> list[int]:
    """Every start i with data[i : i + len(row)] == row."""
    windows = data.unfold(0, len(row), 1)                         # (N - T + 1, T)
    return torch.nonzero((windows == row).all(dim=1)).flatten().tolist()


@pytest.mark.parametrize("block_size,batch_size", [(1, 1), (8, 4), (16, 32), (64, 3)])
def test_shapes_dtype_and_shift_on_the_corpus(block_size, batch_size):
    data = torch.tensor(TOK.encode(CORPUS))
    x, y = get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (batch_size, block_size)
    assert x.dtype == y.dtype == data.dtype
    for b in range(batch_size):
        # Some window of the data is x[b], and the window one token later is y[b].
        starts = [i for i in _locate(x[b], data) if i + block_size < len(data)]
        assert any(torch.equal(data[i + 1 : i + block_size + 1], y[b]) for i in starts)
        # So y[b, t] is the token that follows x[b, t]: the targets are x shifted by one.
        assert torch.equal(y[b, :-1], x[b, 1:])


def test_each_row_is_one_window_of_distinct_tokens():
    # With all tokens distinct, every window has exactly one place in the data.
    data = torch.randperm(500, generator=torch.Generator().manual_seed(1))
    x, y = get_batch(data, 10, 50, generator=torch.Generator().manual_seed(2))
    for b in range(50):
        (i,) = _locate(x[b], data)
        assert torch.equal(y[b], data[i + 1 : i + 11])
        for t in range(10):
            assert y[b, t] == data[i + t + 1]                      # the token after x[b, t]


def test_batches_are_reproducible_with_a_seeded_generator():
    data = torch.arange(1000)
    a = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    b = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(42))
    c = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    torch.manual_seed(7)
    d = get_batch(data, 8, 16)
    torch.manual_seed(7)
    e = get_batch(data, 8, 16)
    assert torch.equal(d[0], e[0])


def test_the_only_window_of_a_minimal_data():
    data = torch.arange(9)                                         # block_size + 1 tokens
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        x, y = get_batch(data, 8, 4, generator=g)
        assert torch.equal(x, data[:8].expand(4, 8))
        assert torch.equal(y, data[1:].expand(4, 8))


def test_every_start_is_in_range_and_every_start_is_reachable():
    # len(data) = T + 3: the valid starts are 0, 1, 2 (the last target is data[-1]).
    block_size = 5
    data = torch.arange(block_size + 3)
    g = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(300):
        x, y = get_batch(data, block_size, 8, generator=g)
        starts.update(x[:, 0].tolist())
        assert int(y.max()) <= len(data) - 1
    assert starts == {0, 1, 2}


@pytest.mark.parametrize("length", [0, 1, 8])
def test_data_shorter_than_block_size_plus_one(length):
    with pytest.raises(ValueError, match=r"data has .* block_size \+ 1 = 9"):
        get_batch(torch.arange(length), 8, 2)


@pytest.mark.parametrize("name,value", [("block_size", 0), ("block_size", -2), ("batch_size", 0), ("batch_size", -1)])
def test_non_positive_sizes(name, value):
    kwargs = {"block_size": 4, "batch_size": 2, name: value}
    with pytest.raises(ValueError, match=name):
        get_batch(torch.arange(100), **kwargs)


@pytest.mark.parametrize("name,value", [("block_size", 4.0), ("batch_size", "2"), ("batch_size", True)])
def test_non_int_sizes(name, value):
    kwargs = {"block_size": 4, "batch_size": 2, name: value}
    with pytest.raises(TypeError, match=name):
        get_batch(torch.arange(100), **kwargs)


@pytest.mark.parametrize(
    "data,exc",
    [
        (torch.arange(100.0), TypeError),                  # float data
        (torch.zeros(10, 10, dtype=torch.long), ValueError),  # 2-D data
        (list(range(100)), TypeError),                     # not a tensor
        (torch.ones(100, dtype=torch.bool), TypeError),
    ],
)
def test_bad_data(data, exc):
    with pytest.raises(exc, match="data"):
        get_batch(data, 4, 2)


def test_generator_must_be_a_generator():
    with pytest.raises(TypeError, match="generator"):
        get_batch(torch.arange(100), 4, 2, generator=0)


# --- load_text and load_corpus ------------------------------------------------------------


def test_load_text_reads_utf8_with_non_ascii(tmp_path):
    text = "na\u00efve caf\u00e9 \u2014 \u65e5\u672c \U0001f30a\nline two\n"
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    assert load_text(path) == text
    assert load_text(str(path)) == text


def test_load_text_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="path.*nope.txt"):
        load_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="path: .* is a folder, not a text file"):
        load_text(tmp_path)                                     # a folder is not a file (not "no such file")


def test_load_text_refuses_a_fifo_and_a_device_clearly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="path: .*pipe.* is not a regular file"):
        load_text(fifo)                                          # before: "no such file"
    with pytest.raises(ValueError, match="not a regular file"):
        load_text("/dev/zero")                                   # before: "no such file" (or reading forever)


def test_encode_tensor_equals_encode_and_names_an_unknown_character():
    tok = CharTokenizer("hello wörld 😀")
    text = "wörld 😀 hello" * 3
    ids = tok.encode_tensor(text)
    assert ids.dtype == torch.long and ids.tolist() == tok.encode(text)
    with pytest.raises(ValueError, match="character 'x' at position 2"):
        tok.encode_tensor("hex")
    assert tok.encode_tensor("").shape == (0,)


def test_load_text_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="path.*empty"):
        load_text(path)


def test_load_text_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9".encode("latin-1"))             # b"caf\xe9"
    with pytest.raises(ValueError, match="path.*not UTF-8.*byte 3"):
        load_text(path)


def test_load_text_path_type():
    with pytest.raises(TypeError, match="path"):
        load_text(42)


def test_corpus_is_a_few_kilobytes_of_plain_text():
    text = load_corpus()
    assert text == CORPUS                                         # the same text every time
    assert 8_000 <= len(text.encode("utf-8")) <= 20_000
    allowed = set("\n") | {chr(c) for c in range(32, 127)}
    assert set(text) <= allowed
    assert text.endswith("\n") and "\r" not in text
    assert len(text.split()) > 1_500                              # words, not noise


def test_corpus_round_trip_through_the_tokenizer():
    tok = CharTokenizer(load_corpus())
    assert tok.vocab_size == 72
    assert tok.decode(tok.encode(load_corpus())) == load_corpus()


def test_a_bigram_count_model_learns_from_the_corpus():
    # Held-out next-character loss of add-one bigram counts from the first 90%:
    # clearly below the unigram model, far below guessing uniformly.
    data = torch.tensor(TOK.encode(CORPUS))
    train, val = train_val_split(data)
    V = TOK.vocab_size
    counts = torch.ones(V, V)
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    probs = counts / counts.sum(dim=1, keepdim=True)
    bigram = -probs[val[:-1], val[1:]].log().mean().item()
    unigram_p = (torch.bincount(train, minlength=V) + 1.0) / (len(train) + V)
    unigram = -unigram_p[val].log().mean().item()
    assert bigram < unigram - 0.4
    assert unigram < math.log(V) - 0.5
