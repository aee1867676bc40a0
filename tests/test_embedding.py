"""One-hot, the from-scratch Embedding, similarity helpers and the embedding demos."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes import (
    TOY_FEATURES,
    Embedding,
    analogy,
    cosine_similarity,
    dot_similarity,
    embed_by_matmul,
    nearest,
    one_hot,
    toy_next_word_data,
    toy_word_embeddings,
    train_next_token_embeddings,
)

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3)


# --- one_hot ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(shape=shapes, num_classes=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_one_hot_equals_torch_one_hot(shape, num_classes, seed):
    idx = torch.randint(num_classes, shape, generator=torch.Generator().manual_seed(seed))
    out = one_hot(idx, num_classes)
    assert out.shape == (*shape, num_classes)
    assert out.dtype == torch.float32
    assert torch.equal(out, F.one_hot(idx, num_classes).float())


def test_one_hot_rows_have_a_single_one_at_the_id():
    idx = torch.tensor([[3, 0, 4], [4, 4, 1]])                      # (B, T)
    out = one_hot(idx, 5)                                           # (B, T, V)
    assert torch.equal(out.sum(dim=-1), torch.ones(2, 3))
    assert torch.equal(out.argmax(dim=-1), idx)
    assert one_hot(torch.tensor(2), 3).tolist() == [0.0, 0.0, 1.0]  # 0-D id: one vector


def test_one_hot_accepts_int32_ids():
    idx = torch.tensor([1, 0, 2], dtype=torch.int32)
    assert torch.equal(one_hot(idx, 3), F.one_hot(idx.long(), 3).float())


@pytest.mark.parametrize("bad", [5, 7, -1, -5])
def test_one_hot_out_of_range_id(bad):
    with pytest.raises(ValueError, match=rf"idx holds token id {bad}"):
        one_hot(torch.tensor([0, bad, 1]), 5)


def test_raw_scatter_and_torch_one_hot_fail_with_bare_runtime_errors():
    # What one_hot replaces with a named ValueError (on CPU; the notes say scatter_ would
    # silently skip an out-of-range index: it raises).
    target = torch.zeros(2, 5)
    with pytest.raises(RuntimeError, match="out of bounds"):
        target.scatter_(1, torch.tensor([[1], [5]]), 1.0)
    with pytest.raises(RuntimeError, match="out of bounds"):
        target.scatter_(1, torch.tensor([[1], [-1]]), 1.0)
    with pytest.raises(RuntimeError):
        F.one_hot(torch.tensor([1, 5]), 5)


@pytest.mark.parametrize("idx", [torch.tensor([1.0, 2.0]), torch.tensor([True, False]), [1, 2], 3])
def test_one_hot_needs_an_integer_tensor(idx):
    with pytest.raises(TypeError, match="idx"):
        one_hot(idx, 4)


@pytest.mark.parametrize("num_classes,exc", [(0, ValueError), (-2, ValueError), (3.0, TypeError), (None, TypeError)])
def test_one_hot_num_classes(num_classes, exc):
    with pytest.raises(exc, match="num_classes"):
        one_hot(torch.tensor([0]), num_classes)


# --- Embedding ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 1234])
@pytest.mark.parametrize("num_embeddings,embedding_dim", [(1, 1), (65, 32), (8, 64), (500, 3)])
def test_init_is_bit_for_bit_nn_embedding(num_embeddings, embedding_dim, seed):
    torch.manual_seed(seed)
    ref = nn.Embedding(num_embeddings, embedding_dim)
    after_ref = torch.rand(3)
    torch.manual_seed(seed)
    ours = Embedding(num_embeddings, embedding_dim)
    after_ours = torch.rand(3)
    assert torch.equal(ours.weight, ref.weight)
    assert torch.equal(after_ours, after_ref)


def test_init_is_standard_normal():
    torch.manual_seed(0)
    w = Embedding(1000, 100).weight
    assert abs(w.mean().item()) < 0.01
    assert w.std().item() == pytest.approx(1.0, abs=0.01)


def test_parameters_and_state_dict_match_nn_embedding():
    ours, ref = Embedding(10, 4), nn.Embedding(10, 4)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    assert repr(ours).replace("Embedding", "X") == repr(ref).replace("Embedding", "X")
    ref.load_state_dict(ours.state_dict())
    assert torch.equal(ref.weight, ours.weight)


@pytest.mark.parametrize("seed", [0, 3, 99])
@pytest.mark.parametrize("shape", [(4, 8), (1, 1), (2, 3, 5), (7,), ()])
def test_four_ways_to_embed_agree(shape, seed):
    torch.manual_seed(seed)
    vocab_size, C = 65, 16
    ref = nn.Embedding(vocab_size, C)
    ours = Embedding(vocab_size, C)
    ours.load_state_dict(ref.state_dict())
    idx = torch.randint(vocab_size, shape)                          # e.g. (B, T)
    W = ref.weight
    looked_up = ours(idx)                                           # e.g. (B, T, C)
    assert looked_up.shape == (*shape, C)
    assert torch.equal(looked_up, W[idx])
    assert torch.equal(looked_up, ref(idx))
    assert torch.equal(looked_up, one_hot(idx, vocab_size) @ W)     # exact: 1 * w + zeros
    assert torch.equal(looked_up, embed_by_matmul(idx, W))


def test_uint8_ids_are_ids_not_a_mask():
    emb = Embedding(5, 3)
    idx = torch.tensor([1, 2], dtype=torch.uint8)
    assert torch.equal(emb(idx), emb.weight[[1, 2]])


def test_gradient_equals_nn_embedding_and_only_touches_looked_up_rows():
    torch.manual_seed(0)
    ref = nn.Embedding(10, 4)
    ours = Embedding(10, 4)
    ours.load_state_dict(ref.state_dict())
    idx = torch.tensor([[1, 3, 3], [7, 1, 3]])                      # 1 twice, 3 three times
    upstream = torch.randn(2, 3, 4)
    (ours(idx) * upstream).sum().backward()
    (ref(idx) * upstream).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    grad = ours.weight.grad
    untouched = [r for r in range(10) if r not in (1, 3, 7)]
    assert torch.equal(grad[untouched], torch.zeros(len(untouched), 4))
    # A repeated id collects the sum of the gradients of all its positions.
    torch.testing.assert_close(grad[3], upstream[0, 1] + upstream[0, 2] + upstream[1, 2])
    torch.testing.assert_close(grad[7], upstream[1, 0])


@pytest.mark.parametrize("bad", [10, 11, -1])
def test_embedding_out_of_range_ids(bad):
    with pytest.raises(ValueError, match=rf"idx holds token id {bad}"):
        Embedding(10, 4)(torch.tensor([[0, bad]]))


def test_plain_indexing_would_wrap_a_negative_id():
    # Why Embedding checks: W[-1] silently reads the last row.
    W = torch.randn(10, 4)
    assert torch.equal(W[torch.tensor([-1])][0], W[9])


def test_inside_a_model_the_ids_are_checked_once_at_its_entry(monkeypatch):
    import gptnotes.embedding as embedding

    calls = []
    check = embedding.check_token_ids
    monkeypatch.setattr(embedding, "check_token_ids", lambda *a, **k: calls.append(a[2]) or check(*a, **k))
    vocab, ids = toy_next_word_data()
    train_next_token_embeddings(ids, len(vocab), steps=5)
    assert calls == ["data"]                         # not once more per step in Embedding.forward
    Embedding(5, 3)(torch.tensor([1, 2]))             # on its own, the layer checks its ids
    assert calls == ["data", "idx"]


@pytest.mark.parametrize("idx", [torch.tensor([1.0]), [1, 2], torch.tensor([True])])
def test_embedding_needs_integer_ids(idx):
    with pytest.raises(TypeError, match="idx"):
        Embedding(10, 4)(idx)


def test_a_meta_tensor_is_named_not_sent_to_item():
    emb = Embedding(5, 3)
    with pytest.raises(ValueError, match="idx is a meta tensor"):
        emb(torch.zeros(2, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match="query is a meta tensor"):
        nearest(torch.zeros(3, device="meta"), torch.ones(2, 3))


@pytest.mark.parametrize(
    "args,exc,name",
    [
        ((0, 4), ValueError, "num_embeddings"),
        ((10, -1), ValueError, "embedding_dim"),
        ((10.0, 4), TypeError, "num_embeddings"),
        ((10, "4"), TypeError, "embedding_dim"),
    ],
)
def test_embedding_sizes(args, exc, name):
    with pytest.raises(exc, match=name):
        Embedding(*args)


def test_embed_by_matmul_errors():
    with pytest.raises(ValueError, match="weight"):
        embed_by_matmul(torch.tensor([0]), torch.randn(3))
    with pytest.raises(TypeError, match="weight"):
        embed_by_matmul(torch.tensor([0]), torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="idx holds token id 3"):
        embed_by_matmul(torch.tensor([3]), torch.randn(3, 2))


# --- similarity ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    lead_a=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    broadcast_b=st.booleans(),
    C=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    zero_row=st.booleans(),
    eps=st.sampled_from([1e-8, 1e-3, 0.5]),
)
def test_cosine_and_dot_equal_torch(lead_a, broadcast_b, C, seed, zero_row, eps):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*lead_a, C, generator=g)
    b = torch.randn(C, generator=g) if broadcast_b else torch.randn(*lead_a, C, generator=g)
    if zero_row:
        a.view(-1, C)[0] = 0.0
    torch.testing.assert_close(cosine_similarity(a, b, eps=eps), F.cosine_similarity(a, b, dim=-1, eps=eps))
    torch.testing.assert_close(dot_similarity(a, b), torch.linalg.vecdot(a, b))


def test_cosine_ignores_length_and_dot_does_not():
    a, b = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([2.0, 1.0, -2.0])
    assert cosine_similarity(10 * a, 0.1 * b).item() == pytest.approx(cosine_similarity(a, b).item())
    assert dot_similarity(10 * a, b).item() == pytest.approx(10 * dot_similarity(a, b).item())
    # cos = dot / (|a| |b|) = 0 / 9 here: perpendicular
    assert dot_similarity(a, b).item() == 0.0


def test_dot_product_sign_rule():
    # Positive: same general direction. Zero: perpendicular. Negative: opposite.
    a = torch.tensor([1.0, 1.0])
    same = torch.tensor([2.0, 0.5])
    perpendicular = torch.tensor([1.0, -1.0])
    opposite = torch.tensor([-1.0, -3.0])
    assert dot_similarity(a, same).item() > 0
    assert dot_similarity(a, perpendicular).item() == 0
    assert dot_similarity(a, opposite).item() < 0
    assert dot_similarity(a, a).item() == pytest.approx(a.norm().item() ** 2)
    angle = math.degrees(math.acos(cosine_similarity(a, same).item()))
    assert angle < 90


def test_cosine_of_zero_vectors_is_zero_like_torch():
    z = torch.zeros(3)
    assert cosine_similarity(z, torch.ones(3)).item() == 0.0
    assert cosine_similarity(z, z).item() == 0.0


@pytest.mark.parametrize(
    "a,b,exc,name",
    [
        (torch.ones(3, dtype=torch.long), torch.ones(3), TypeError, "a"),
        (torch.ones(3), [1.0, 1.0, 1.0], TypeError, "b"),
        (torch.ones(3), torch.ones(4), ValueError, "b"),
        (torch.ones(2, 3), torch.ones(5, 3), ValueError, "b"),
        (torch.tensor(1.0), torch.ones(1), ValueError, "a"),
    ],
)
def test_similarity_errors(a, b, exc, name):
    for fn in (dot_similarity, cosine_similarity):
        with pytest.raises(exc, match=rf"^{name} "):
            fn(a, b)


def test_similarities_of_empty_vectors_are_refused_not_zero():
    for fn in (dot_similarity, cosine_similarity):
        with pytest.raises(ValueError, match="at least one number"):
            fn(torch.randn(0), torch.randn(0))
    with pytest.raises(ValueError, match="empty"):
        nearest(torch.zeros(0), torch.zeros(5, 0))
    with pytest.raises(ValueError, match="query must be finite"):
        nearest(torch.full((3,), float("nan")), torch.randn(4, 3), k=2)


@pytest.mark.parametrize("eps,exc", [(0.0, ValueError), (-1e-8, ValueError), (float("inf"), ValueError), ("1e-8", TypeError)])
def test_cosine_eps(eps, exc):
    with pytest.raises(exc, match="eps"):
        cosine_similarity(torch.ones(2), torch.ones(2), eps=eps)


@pytest.mark.parametrize("eps", [1e-320, 1e300])
def test_cosine_similarity_refuses_an_eps_float32_cannot_use(eps):
    with pytest.raises(ValueError, match=r"eps must lie in \[1.175e-38, 1e\+30\]"):
        cosine_similarity(torch.zeros(3), torch.ones(3), eps=eps)  # was NaN, or torch's overflow error


@settings(max_examples=25, deadline=None)
@given(V=st.integers(2, 30), C=st.integers(1, 6), seed=st.integers(0, 2**16), data=st.data())
def test_nearest_matches_a_brute_force_ranking(V, C, seed, data):
    g = torch.Generator().manual_seed(seed)
    table, query = torch.randn(V, C, generator=g), torch.randn(C, generator=g)
    exclude = data.draw(st.lists(st.integers(0, V - 1), max_size=V - 1, unique=True))
    k = data.draw(st.integers(1, V - len(exclude)))
    ids, scores = nearest(query, table, k=k, exclude=exclude)
    sims = F.cosine_similarity(query.unsqueeze(0), table, dim=-1)
    ranked = [i for i in sorted(range(V), key=lambda i: -sims[i].item()) if i not in exclude]
    assert ids.dtype == torch.long and ids.shape == scores.shape == (k,)
    torch.testing.assert_close(scores, sims[ids])
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
    assert not set(ids.tolist()) & set(exclude)
    # The k-th best score equals the brute-force k-th best (ties may swap equal rows).
    torch.testing.assert_close(scores[-1], sims[ranked[k - 1]])


def test_nearest_errors():
    table = torch.randn(5, 3)
    with pytest.raises(ValueError, match="query"):
        nearest(torch.randn(4), table)
    with pytest.raises(ValueError, match="table"):
        nearest(torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match="k"):
        nearest(torch.randn(3), table, k=5, exclude=[0])
    with pytest.raises(ValueError, match="k"):
        nearest(torch.randn(3), table, k=0)
    with pytest.raises(ValueError, match="exclude"):
        nearest(torch.randn(3), table, exclude=[5])
    with pytest.raises(TypeError, match="exclude"):
        nearest(torch.randn(3), table, exclude=[1.0])


def test_nearest_refuses_nan_rows_instead_of_ranking_them_first():
    table = torch.tensor([[float("nan"), 0.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="table must be finite"):
        nearest(torch.tensor([1.0, 0.0]), table)  # returned row 0 (NaN) first


# --- the toy table and analogies ----------------------------------------------------------


def test_toy_table_shape_and_names():
    words, table = toy_word_embeddings()
    assert table.shape == (len(words), len(TOY_FEATURES)) == (14, 7)
    assert table.dtype == torch.float32
    assert len(set(words)) == len(words)
    table[0, 0] = 99.0                                              # a fresh copy each call
    assert toy_word_embeddings()[1][0, 0] == 1.0


def test_toy_table_differences_encode_gender_and_royalty():
    words, table = toy_word_embeddings()
    E = dict(zip(words, table))
    gender = E["woman"] - E["man"]
    for male, female in [("uncle", "aunt"), ("king", "queen"), ("boy", "girl"), ("nephew", "niece")]:
        assert torch.equal(E[female] - E[male], gender)
    assert torch.equal(E["queen"] - E["woman"], E["king"] - E["man"])    # royalty
    # The difference of lengths does not carry the relation: |man| = |woman| = |orange|.
    assert E["man"].norm() == E["woman"].norm() == E["orange"].norm()
    assert not torch.equal(E["orange"] - E["man"], gender)


@pytest.mark.parametrize(
    "a,b,c,expected",
    [
        ("man", "king", "woman", "queen"),
        ("uncle", "aunt", "nephew", "niece"),
        ("boy", "girl", "prince", "princess"),
        ("man", "boy", "king", "prince"),
    ],
)
def test_analogies_in_the_toy_table(a, b, c, expected):
    words, table = toy_word_embeddings()
    (word, score), *_ = analogy(a, b, c, words, table, k=3)
    assert word == expected
    assert score == pytest.approx(1.0)


def test_king_is_closer_to_queen_than_to_apple():
    words, table = toy_word_embeddings()
    E = dict(zip(words, table))
    assert cosine_similarity(E["king"], E["queen"]) > cosine_similarity(E["king"], E["apple"])
    assert cosine_similarity(E["king"], E["apple"]).item() == 0.0


def test_analogy_errors():
    words, table = toy_word_embeddings()
    with pytest.raises(ValueError, match="c: the word 'robot'"):
        analogy("man", "king", "robot", words, table)
    with pytest.raises(TypeError, match="a must be a str"):
        analogy(3, "king", "woman", words, table)
    with pytest.raises(ValueError, match="words"):
        analogy("man", "king", "woman", words[:-1], table)
    with pytest.raises(TypeError, match="words"):
        analogy("man", "king", "woman", "man king woman", table)
    with pytest.raises(ValueError, match="k"):
        analogy("man", "king", "woman", words, table, k=12)


def test_analogy_names_the_table_and_none_is_named():
    words, table = toy_word_embeddings()
    bad = table.clone()
    bad[words.index("king"), 0] = float("nan")
    with pytest.raises(ValueError, match="table must be finite"):
        analogy("man", "king", "woman", words, bad)  # said "query", which the caller never passed
    with pytest.raises(TypeError, match="exclude must be an iterable of int row ids, got NoneType"):
        nearest(table[0], table, exclude=None)


# --- embeddings are learned ---------------------------------------------------------------


def test_toy_next_word_data():
    vocab, ids = toy_next_word_data()
    assert vocab == sorted(vocab) and len(vocab) == 10
    assert " ".join(vocab[i] for i in ids.tolist()).startswith("the cat sleeps . the dog")
    with pytest.raises(ValueError, match="text"):
        toy_next_word_data("alone")
    with pytest.raises(TypeError, match="text"):
        toy_next_word_data(["a", "b"])


@functools.lru_cache(maxsize=None)
def _trained(seed: int):
    """Train once per seed for all the tests below (the default settings of the page)."""
    vocab, ids = toy_next_word_data()
    return vocab, ids, train_next_token_embeddings(ids, len(vocab), seed=seed)


def _cos(weight: torch.Tensor, vocab: list[str], u: str, v: str) -> float:
    return cosine_similarity(weight[vocab.index(u)], weight[vocab.index(v)]).item()


@pytest.mark.parametrize("seed", range(3))
def test_training_pulls_tokens_with_the_same_next_words_together(seed):
    vocab, _, result = _trained(seed)
    for u, v in [("cat", "dog"), ("king", "queen")]:
        before, after = _cos(result.weight_before, vocab, u, v), _cos(result.weight_after, vocab, u, v)
        assert after > before + 0.1
        assert after > 0.75
    # Tokens that never share a next word do not become alike.
    assert _cos(result.weight_after, vocab, "cat", "king") < 0.3
    assert result.losses[-1] < result.losses[0]


def test_training_reaches_the_bigram_entropy():
    # The best any next-token model of one previous word can do is the conditional entropy
    # of the next word given the current one, computed here from counts.
    vocab, ids = toy_next_word_data()
    V = len(vocab)
    counts = torch.zeros(V, V)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    p_next = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    floor = -(p_next[ids[:-1], ids[1:]].log()).mean().item()
    *_, result = _trained(0)
    assert floor <= result.losses[-1] < floor + 0.02


def test_training_is_deterministic_and_leaves_the_global_generator_alone():
    vocab, ids = toy_next_word_data()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = train_next_token_embeddings(ids, len(vocab), steps=20, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_next_token_embeddings(ids, len(vocab), steps=20, seed=4)
    c = train_next_token_embeddings(ids, len(vocab), steps=20, seed=5)
    assert torch.equal(a.weight_after, b.weight_after) and a.losses == b.losses
    assert not torch.equal(a.weight_before, c.weight_before)
    assert len(a.losses) == 20
    # The table starts as a seeded nn.Embedding would.
    torch.manual_seed(4)
    assert torch.equal(a.weight_before, nn.Embedding(len(vocab), 8).weight.detach())


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        ({"data": torch.tensor([0.0, 1.0])}, TypeError, "data"),
        ({"data": torch.tensor([0, 10])}, ValueError, "data"),
        ({"data": torch.tensor([1])}, ValueError, "data"),
        ({"data": torch.tensor([[0, 1]])}, ValueError, "data"),
        ({"vocab_size": 0}, ValueError, "vocab_size"),
        ({"embedding_dim": 0}, ValueError, "embedding_dim"),
        ({"steps": 1.5}, TypeError, "steps"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay"),
        ({"weight_decay": "0"}, TypeError, "weight_decay"),
        ({"seed": "0"}, TypeError, "seed"),
    ],
)
def test_training_errors(kwargs, exc, name):
    args = {"data": torch.tensor([0, 1, 2, 1]), "vocab_size": 10, **kwargs}
    with pytest.raises(exc, match=name):
        train_next_token_embeddings(**args)


def test_learned_embeddings_check_the_seed_and_a_diverging_loss():
    data = torch.tensor([0, 1, 2, 1, 0])
    with pytest.raises(ValueError, match="seed"):
        train_next_token_embeddings(data, 3, steps=2, seed=2**70)
    with pytest.raises(FloatingPointError, match="lower lr"):
        train_next_token_embeddings(data, 3, steps=5, lr=1e30)
