r"""One-hot vectors, embedding tables, and how to compare embeddings.

A token id is a name, not a quantity: id 7 is not "more" than id 3. A model turns each id
into a vector of C learned numbers, its *embedding*, by looking up a row of a table of
shape ``(vocab_size, C)``:

- [`one_hot`][gptnotes.embedding.one_hot] writes an id as a vector with a single 1, and
  [`embed_by_matmul`][gptnotes.embedding.embed_by_matmul] shows that multiplying that vector by
  the table picks one row;
- [`Embedding`][gptnotes.embedding.Embedding] does the same lookup directly (``weight[idx]``), as
  `torch.nn.Embedding` does, without ever building the one-hot vectors;
- [`dot_similarity`][gptnotes.embedding.dot_similarity],
  [`cosine_similarity`][gptnotes.embedding.cosine_similarity],
  [`nearest`][gptnotes.embedding.nearest] and [`analogy`][gptnotes.embedding.analogy] compare
  embeddings;
- [`toy_word_embeddings`][gptnotes.embedding.toy_word_embeddings] is a small hand-made table
  whose columns mean something (gender, royalty, ...), for vector arithmetic such as
  ``king - man + woman``;
- [`train_next_token_embeddings`][gptnotes.embedding.train_next_token_embeddings] shows that
  embeddings are *learned*: a few steps of next-token training pull together the rows of tokens
  that are used in the same contexts.

$$
\operatorname{onehot}(i)\,W = W_{i,:} \qquad
\cos(a, b) = \frac{a \cdot b}{\lVert a \rVert\,\lVert b \rVert}
$$

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_eps,
    check_finite,
    check_float_tensor,
    check_positive_finite,
    check_positive_int,
    check_token_ids,
    skip_input_checks,
)
from gptnotes.linear import Linear

__all__ = [
    "one_hot",
    "Embedding",
    "embed_by_matmul",
    "dot_similarity",
    "cosine_similarity",
    "nearest",
    "TOY_FEATURES",
    "toy_word_embeddings",
    "analogy",
    "TOY_NEXT_WORD_TEXT",
    "toy_next_word_data",
    "EmbeddingTrainingResult",
    "train_next_token_embeddings",
]


def one_hot(idx: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Write each id as a float vector of ``num_classes`` zeros with a single 1.

    Built from scratch: a tensor of zeros gets one extra last
    dimension, and `torch.Tensor.scatter_` writes ``1.0`` at position ``idx`` along
    it (``idx.unsqueeze(-1)`` gives the index the shape that ``scatter_`` expects). Equal
    to ``torch.nn.functional.one_hot(idx, num_classes).float()``, but float from the start,
    so that it can be multiplied by a weight matrix.

    Unlike raw ``scatter_`` and ``F.one_hot`` (which raise a bare ``RuntimeError``), an id
    out of range gets a ``ValueError`` that names ``idx`` and the bad id.

    Args:
        idx: Integer tensor of ids of any shape, e.g. ``(B, T)``.
        num_classes: The number of classes V (the vocabulary size); ids must lie in
            ``[0, num_classes)``.

    Shape:
        - idx: ``(*)``, e.g. ``(B, T)``.
        - Output: ``(*, V)``, e.g. ``(B, T, V)``, the default float dtype (``float32``).

    Returns:
        The one-hot vectors.

    Raises:
        TypeError: If ``idx`` is not an integer tensor or ``num_classes`` not an int.
        ValueError: If ``num_classes`` is not positive, or an id is negative or
            ``>= num_classes``.

    Examples:
        >>> import torch
        >>> from gptnotes import one_hot
        >>> one_hot(torch.tensor([2, 0]), num_classes=4).tolist()
        [[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
        >>> tuple(one_hot(torch.zeros(2, 8, dtype=torch.long), 65).shape)   # (B, T, V)
        (2, 8, 65)
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    check_token_ids(idx, num_classes, "idx")
    check_allocation(4 * idx.numel() * num_classes, "the float32 one-hot tensor", f"num_classes={num_classes}")
    out = torch.zeros(*idx.shape, num_classes, device=idx.device)   # (*, V)
    return out.scatter_(-1, idx.long().unsqueeze(-1), 1.0)          # (*, V), one 1 per row


class Embedding(nn.Module):
    """A table of learnable vectors, one row per token id; ``forward`` looks rows up.

    Written from scratch, with the same parameter, the same initialisation and the same
    results as `torch.nn.Embedding` (without its options ``padding_idx``,
    ``max_norm``, ...): ``weight`` has shape ``(num_embeddings, embedding_dim)`` and starts
    as independent draws from the standard normal distribution N(0, 1), so the same seed
    gives the same table as ``nn.Embedding``. Row ``i`` is the vector of token ``i``.

    Looking up ``weight[idx]`` gives the same numbers as ``one_hot(idx) @ weight`` (see
    [`embed_by_matmul`][gptnotes.embedding.embed_by_matmul]) without building a ``(*, V)``
    tensor of zeros. In backward, only the rows that were looked up get a gradient (repeated ids
    add up).

    Args:
        num_embeddings: V, the number of rows (the vocabulary size).
        embedding_dim: C, the length of each vector.

    Shape:
        - Input: ``(*)`` integer ids, e.g. ``(B, T)``.
        - Output: ``(*, C)``, e.g. ``(B, T, C)``.

    Attributes:
        weight: Learnable tensor of shape ``(V, C)``, initialised from N(0, 1).
        checks_input: ``True``: ``forward`` checks the ids (their dtype, and that every one
            lies in ``[0, V)``, a scan of the data) and names a bad one. ``False`` inside a
            model that checked the ids once at its entry.

    Raises:
        TypeError: If a size is not an integer, or the input is not an integer tensor.
        ValueError: If a size is not positive, or an id is outside ``[0, V)`` (plain
            indexing would silently read row ``V - 1`` for id ``-1``).

    Examples:
        >>> import torch
        >>> from gptnotes import Embedding
        >>> _ = torch.manual_seed(0)
        >>> emb = Embedding(65, 32)                  # vocab_size=65, C=32
        >>> tuple(emb.weight.shape)
        (65, 32)
        >>> idx = torch.tensor([[1, 5, 5], [0, 2, 64]])   # (B, T) = (2, 3)
        >>> tuple(emb(idx).shape)                    # (B, T, C)
        (2, 3, 32)
        >>> torch.equal(emb(idx)[0, 1], emb.weight[5])
        True
    """

    checks_input = True

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        check_allocation(4 * self.num_embeddings * self.embedding_dim, "the float32 table of Embedding",
                         f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}")
        self.weight = nn.Parameter(torch.empty(self.num_embeddings, self.embedding_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fill ``weight`` from N(0, 1), the same draw as ``nn.Embedding.reset_parameters``."""
        with torch.no_grad():
            self.weight.normal_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.checks_input:
            check_token_ids(idx, self.num_embeddings, "idx")
        return self.weight[idx.long()]                             # (*, C)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def embed_by_matmul(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embed ids the slow way: ``one_hot(idx) @ weight``, a matrix product that picks rows.

    Each one-hot row has a single 1, at column ``i``, so its product with ``weight`` adds
    ``1 * weight[i]`` and zeros: exactly row ``i``. The result equals ``weight[idx]`` (and
    [`Embedding`][gptnotes.embedding.Embedding]), but costs ``V`` multiply-adds per number
    instead of one copy, which is why embedding layers look rows up instead.

    Args:
        idx: Integer tensor of ids, e.g. ``(B, T)``, in ``[0, V)``.
        weight: The table, a 2-D floating-point tensor ``(V, C)``.

    Shape:
        - idx: ``(*)``; weight: ``(V, C)``; output: ``(*, C)``.

    Returns:
        The embeddings.

    Raises:
        TypeError: If ``idx`` is not an integer tensor or ``weight`` not a float tensor.
        ValueError: If ``weight`` is not 2-D or an id is outside ``[0, V)``.

    Examples:
        >>> import torch
        >>> from gptnotes import embed_by_matmul
        >>> weight = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])   # (V=3, C=2)
        >>> embed_by_matmul(torch.tensor([2, 0]), weight).tolist()
        [[5.0, 6.0], [1.0, 2.0]]
    """
    check_float_tensor(weight, "weight", ndim=2)
    return one_hot(idx, weight.shape[0]).to(weight.dtype) @ weight    # (*, V) @ (V, C) -> (*, C)


def _check_pair(a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    check_float_tensor(a, "a")
    check_float_tensor(b, "b")
    if a.dim() == 0 or b.dim() == 0:
        name = "a" if a.dim() == 0 else "b"
        raise ValueError(f"{name} must have at least one dimension (the vector), got a 0-D tensor")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"b must have the same last dimension as a (the vector length C), "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[-1] == 0:
        raise ValueError(f"a and b must be vectors of at least one number, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(
            f"b of shape {tuple(b.shape)} does not broadcast with a of shape {tuple(a.shape)}"
        ) from None
    return a, b


def dot_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""The dot product of vectors along the last dimension: \(\sum_c a_c b_c\).

    Positive when the vectors point into the same half-space (angle below 90 degrees),
    zero when they are perpendicular, negative when they point in opposite directions.
    It also grows with the lengths of the vectors;
    [`cosine_similarity`][gptnotes.embedding.cosine_similarity] removes that. Leading dimensions
    broadcast, so a query ``(C,)`` against a table ``(V, C)`` gives ``(V,)`` scores.

    Args:
        a: Floating-point tensor ``(*, C)``.
        b: Floating-point tensor ``(*, C)``, broadcastable with ``a``.

    Shape:
        - a, b: ``(*, C)``; output: ``(*)``, the broadcast leading shape.

    Returns:
        The dot products.

    Raises:
        TypeError: If ``a`` or ``b`` is not a floating-point tensor.
        ValueError: If either is 0-D or empty along C, the last dimensions differ, or the
            shapes do not broadcast.

    Examples:
        >>> import torch
        >>> from gptnotes import dot_similarity
        >>> a = torch.tensor([1.0, 0.0])
        >>> [dot_similarity(a, torch.tensor(v)).item() for v in ([2.0, 1.0], [0.0, 3.0], [-1.0, 0.5])]
        [2.0, 0.0, -1.0]
    """
    _check_pair(a, b)
    return (a * b).sum(dim=-1)                                 # (*)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""Cosine of the angle between vectors along the last dimension, in ``[-1, 1]``.

    $$
    \cos(a, b) = \frac{a}{\max(\lVert a \rVert, \epsilon)} \cdot
    \frac{b}{\max(\lVert b \rVert, \epsilon)}
    $$

    1 for the same direction, 0 for perpendicular, -1 for opposite, whatever the lengths.
    Each norm is clamped to at least ``eps`` before dividing, exactly as
    `torch.nn.functional.cosine_similarity` does, so a zero vector gives similarity
    0 instead of a division by zero, and vectors much shorter than ``eps`` get a value
    scaled down towards 0.

    Args:
        a: Floating-point tensor ``(*, C)``.
        b: Floating-point tensor ``(*, C)``, broadcastable with ``a``.
        eps: Smallest norm used in the division, a positive number.

    Shape:
        - a, b: ``(*, C)``; output: ``(*)``.

    Returns:
        The cosine similarities.

    Raises:
        TypeError: If ``a`` or ``b`` is not a floating-point tensor, or ``eps`` not a number.
        ValueError: If the shapes do not fit (see
            [`dot_similarity`][gptnotes.embedding.dot_similarity]) or ``eps`` is
            not positive and finite.

    Examples:
        >>> import torch
        >>> from gptnotes import cosine_similarity
        >>> a = torch.tensor([1.0, 0.0])
        >>> [round(cosine_similarity(a, torch.tensor(v)).item(), 4) for v in ([5.0, 0.0], [1.0, 1.0], [-2.0, 0.0])]
        [1.0, 0.7071, -1.0]
        >>> cosine_similarity(a, torch.zeros(2)).item()   # a zero vector: 0 by convention
        0.0
    """
    eps = check_eps(eps)
    _check_pair(a, b)
    a_unit = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)   # (*, C)
    b_unit = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)   # (*, C)
    return (a_unit * b_unit).sum(dim=-1)                       # (*)


def nearest(
    query: torch.Tensor,
    table: torch.Tensor,
    k: int = 1,
    exclude: Iterable[int] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` rows of ``table`` with the largest cosine similarity to ``query``.

    Ties keep the lower row first. Rows listed in ``exclude`` are skipped: an analogy
    query such as ``king - man + woman`` usually lies closest to one of its own inputs,
    so those are excluded (see [`analogy`][gptnotes.embedding.analogy]).

    Args:
        query: Floating-point vector ``(C,)``.
        table: Floating-point table ``(V, C)``, one candidate per row.
        k: How many rows to return, between 1 and the number of rows not excluded.
        exclude: Row ids that may not be returned.

    Shape:
        - query: ``(C,)``; table: ``(V, C)``; outputs: ``(k,)`` each.

    Returns:
        ``(indices, scores)``: the row ids (``torch.long``) and their cosine similarities,
        best first.

    Raises:
        TypeError: If ``query``/``table`` are not float tensors, ``k`` not an int or
            ``exclude`` holds a non-int.
        ValueError: If the shapes do not fit or are empty, ``query`` or ``table`` holds NaN or infinity,
            an excluded id is outside ``[0, V)``, or ``k`` is larger than the number of
            candidates.

    Examples:
        >>> import torch
        >>> from gptnotes import nearest
        >>> table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.0]])
        >>> ids, scores = nearest(torch.tensor([1.0, 0.0]), table, k=2)
        >>> ids.tolist(), [round(s, 4) for s in scores.tolist()]
        ([0, 2], [1.0, 0.9939])
        >>> nearest(torch.tensor([1.0, 0.0]), table, k=1, exclude=[0])[0].tolist()
        [2]
    """
    check_float_tensor(query, "query", ndim=1)
    check_float_tensor(table, "table", ndim=2)
    if query.shape[0] != table.shape[1]:
        raise ValueError(
            f"query must have length C={table.shape[1]} (the columns of table), got {query.shape[0]}"
        )
    if query.shape[0] == 0 or table.shape[0] == 0:
        raise ValueError(f"query and table must not be empty, got shapes {tuple(query.shape)} and {tuple(table.shape)}")
    check_finite(query, "query")
    check_finite(table, "table")  # a NaN row would compare as neither better nor worse, and sort first
    k = check_positive_int(k, "k")
    if isinstance(exclude, (str, bytes)) or not isinstance(exclude, Iterable):
        raise TypeError(f"exclude must be an iterable of int row ids, got {type(exclude).__name__}")
    banned = []
    for i in exclude:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"exclude must hold int row ids, got {type(i).__name__} {i!r}")
        if not 0 <= i < table.shape[0]:
            raise ValueError(f"exclude holds row id {i}, outside [0, {table.shape[0] - 1}]")
        banned.append(i)
    candidates = table.shape[0] - len(set(banned))
    if k > candidates:
        raise ValueError(f"k must be at most the number of candidate rows ({candidates}), got {k}")
    scores = cosine_similarity(query, table)                   # (V,)
    if banned:
        scores = scores.clone()
        scores[banned] = float("-inf")
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    return order, scores[order]


TOY_FEATURES: tuple[str, ...] = ("person", "gender", "royal", "young", "family", "fruit", "citrus")
"""Meaning of the columns of [`toy_word_embeddings`][gptnotes.embedding.toy_word_embeddings]
(``gender``: -1 male, +1 female)."""

_TOY_ROWS: dict[str, tuple[float, ...]] = {
    #           person gender royal young family fruit citrus
    "man":      (1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "woman":    (1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "boy":      (1.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0),
    "girl":     (1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0),
    "king":     (1.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    "queen":    (1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    "prince":   (1.0, -1.0, 1.0, 1.0, 0.0, 0.0, 0.0),
    "princess": (1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0),
    "uncle":    (1.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0),
    "aunt":     (1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0),
    "nephew":   (1.0, -1.0, 0.0, 1.0, 1.0, 0.0, 0.0),
    "niece":    (1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0),
    "apple":    (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "orange":   (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
}


def toy_word_embeddings() -> tuple[list[str], torch.Tensor]:
    """A hand-made embedding table of 14 words whose 7 columns have names.

    Each column is one feature from [`TOY_FEATURES`][gptnotes.embedding.TOY_FEATURES]:
    ``person``, ``gender`` (-1 for male words, +1 for female words, 0 otherwise), ``royal``,
    ``young``, ``family`` (aunt, uncle, niece, nephew), ``fruit`` and ``citrus`` (apple,
    orange). Because the features are written in by hand, relations are exact:
    ``E(aunt) - E(uncle)`` equals ``E(woman) - E(man)``, and ``E(king) - E(man) + E(woman)``
    is ``E(queen)``. A learned table (``nn.Embedding`` after training) has no named columns and
    such relations hold only approximately; this table is for seeing the arithmetic, not a
    trained model.

    Shape:
        - table: ``(14, 7)``: 14 words, 7 named features.

    Returns:
        ``(words, table)``: the 14 words, and a float tensor ``(14, 7)`` whose row ``i``
        is the vector of ``words[i]``. A new tensor on every call.

    Examples:
        >>> from gptnotes import toy_word_embeddings
        >>> words, table = toy_word_embeddings()
        >>> tuple(table.shape)
        (14, 7)
        >>> E = dict(zip(words, table))
        >>> bool((E["aunt"] - E["uncle"] == E["woman"] - E["man"]).all())
        True
    """
    words = list(_TOY_ROWS)
    return words, torch.tensor([_TOY_ROWS[w] for w in words])


def _word_index(words: Sequence[str], word: object, name: str) -> int:
    if not isinstance(word, str):
        raise TypeError(f"{name} must be a str, got {type(word).__name__}")
    try:
        return list(words).index(word)
    except ValueError:
        raise ValueError(f"{name}: the word {word!r} is not in words") from None


def analogy(
    a: str,
    b: str,
    c: str,
    words: Sequence[str],
    table: torch.Tensor,
    k: int = 1,
) -> list[tuple[str, float]]:
    """Answer "``a`` is to ``b`` as ``c`` is to ?" with vector arithmetic.

    Computes ``E(b) - E(a) + E(c)`` and returns the ``k`` words whose rows have the largest
    cosine similarity to it, leaving out ``a``, ``b`` and ``c`` themselves (the usual rule;
    without it the answer is often one of the inputs). For ``man : king :: woman : ?``
    the query is ``king - man + woman``.

    Args:
        a: The first word of the known pair (``"man"``), one of ``words``.
        b: The second word of the known pair (``"king"``).
        c: The word whose partner is wanted (``"woman"``).
        words: The vocabulary; ``words[i]`` is the word of row ``i`` of ``table``.
        table: Floating-point embeddings ``(V, C)``.
        k: How many answers to return.

    Shape:
        - table: ``(V, C)``, one row per word of ``words``.

    Returns:
        A list of ``(word, cosine similarity)`` pairs, best first.

    Raises:
        TypeError: If a word is not a str, or ``table`` not a float tensor.
        ValueError: If a word is not in ``words``, ``len(words)`` is not the number of rows
            of ``table``, or ``k`` is too large.

    Examples:
        >>> from gptnotes import analogy, toy_word_embeddings
        >>> words, table = toy_word_embeddings()
        >>> word, score = analogy("man", "king", "woman", words, table)[0]
        >>> word, round(score, 4)
        ('queen', 1.0)
        >>> [w for w, _ in analogy("uncle", "aunt", "nephew", words, table, k=2)]
        ['niece', 'girl']
    """
    check_float_tensor(table, "table", ndim=2)
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"words must be a sequence of str, got {type(words).__name__}")
    if len(words) != table.shape[0]:
        raise ValueError(f"words must have one entry per row of table ({table.shape[0]}), got {len(words)}")
    ia, ib, ic = (_word_index(words, w, n) for w, n in ((a, "a"), (b, "b"), (c, "c")))
    check_finite(table, "table")
    query = table[ib] - table[ia] + table[ic]                  # (C,)
    if not bool(torch.isfinite(query).all()):
        raise ValueError(f"table: E({b!r}) - E({a!r}) + E({c!r}) overflows {table.dtype}; scale the table down")
    ids, scores = nearest(query, table, k=k, exclude=[ia, ib, ic])
    return [(words[i], float(s)) for i, s in zip(ids.tolist(), scores.tolist())]


TOY_NEXT_WORD_TEXT = (
    "the cat sleeps . the dog sleeps . the cat eats . the dog eats . "
    "the king rules . the queen rules . the king speaks . the queen speaks ."
)
"""Eight short sentences: ``cat`` and ``dog`` are followed by the same words, and so are
``king`` and ``queen``, but the two pairs share no next word."""


def toy_next_word_data(text: str = TOY_NEXT_WORD_TEXT) -> tuple[list[str], torch.Tensor]:
    """Split a text on whitespace into words and number them (a word-level tokenizer).

    Args:
        text: The text; by default [`TOY_NEXT_WORD_TEXT`][gptnotes.embedding.TOY_NEXT_WORD_TEXT].

    Shape:
        - ids: ``(N,)`` for a text of ``N`` words; vocab: ``V`` words.

    Returns:
        ``(vocab, ids)``: the sorted distinct words, and the text as a 1-D ``torch.long``
        tensor of word ids (``vocab[ids[i]]`` is the ``i``-th word).

    Raises:
        TypeError: If ``text`` is not a str.
        ValueError: If ``text`` has fewer than two words (there is no next word to learn).

    Examples:
        >>> from gptnotes import toy_next_word_data
        >>> vocab, ids = toy_next_word_data("a b a c")
        >>> vocab, ids.tolist()
        (['a', 'b', 'c'], [0, 1, 0, 2])
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    tokens = text.split()
    if len(tokens) < 2:
        raise ValueError(f"text must hold at least two words, got {len(tokens)}")
    vocab = sorted(set(tokens))
    stoi = {w: i for i, w in enumerate(vocab)}
    return vocab, torch.tensor([stoi[w] for w in tokens], dtype=torch.long)


@dataclass
class EmbeddingTrainingResult:
    """What [`train_next_token_embeddings`][gptnotes.embedding.train_next_token_embeddings] returns.

    Attributes:
        weight_before: The embedding table at initialisation, ``(V, C)``.
        weight_after: The table after training, ``(V, C)``.
        losses: The cross-entropy loss before each step (``steps`` numbers).

    Shape:
        - weight_before, weight_after: ``(V, C)``.

    Examples:
        >>> from gptnotes import toy_next_word_data, train_next_token_embeddings
        >>> vocab, ids = toy_next_word_data()
        >>> result = train_next_token_embeddings(ids, len(vocab), embedding_dim=4, steps=3)
        >>> tuple(result.weight_before.shape), tuple(result.weight_after.shape), len(result.losses)
        ((10, 4), (10, 4), 3)
    """

    weight_before: torch.Tensor
    weight_after: torch.Tensor
    losses: list[float] = field(default_factory=list)


def train_next_token_embeddings(
    data: torch.Tensor,
    vocab_size: int,
    embedding_dim: int = 8,
    steps: int = 200,
    lr: float = 0.05,
    weight_decay: float = 0.1,
    seed: int = 0,
) -> EmbeddingTrainingResult:
    """Train an embedding table on next-token prediction and return it before and after.

    The smallest model in which embeddings are learned: ``logits = Linear(Embedding(x))``,
    a bigram model that goes through C numbers per token. It is trained full-batch on
    every pair ``(data[i], data[i + 1])`` with cross-entropy and `torch.optim.AdamW`
    (the optimiser of the lecture's training loop). Nothing tells the model which tokens are
    alike; tokens followed by the same tokens need the same logits, and the cheapest way
    to get them is the same embedding row, so their rows turn towards each other
    (their cosine similarity rises). Weight decay shrinks the directions that no loss
    term needs, which makes the effect visible within a few hundred steps.

    Initialisation uses its own random state (``seed``), so the global generator is left
    untouched and the same seed gives the same result.

    Args:
        data: 1-D integer tensor of token ids ``(N,)``, ``N >= 2``.
        vocab_size: V; ids must lie in ``[0, V)``.
        embedding_dim: C, the length of each embedding.
        steps: Number of optimiser steps.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW (0 allowed).
        seed: Seed for the initial table and head.

    Shape:
        - data: ``(N,)``; the tables of the result: ``(V, C)`` with ``C = embedding_dim``.

    Returns:
        An [`EmbeddingTrainingResult`][gptnotes.embedding.EmbeddingTrainingResult] with the
        table before and after, and the losses.

    Raises:
        TypeError: If ``data`` is not an integer tensor or a number has the wrong type.
        ValueError: If ``data`` is not 1-D, has fewer than 2 tokens or ids outside
            ``[0, V)``, a size or rate is out of range, or ``seed`` does not fit in 64 bits.
        FloatingPointError: If the loss becomes NaN or infinite (the learning rate is too high).

    Examples:
        >>> from gptnotes import cosine_similarity, toy_next_word_data, train_next_token_embeddings
        >>> vocab, ids = toy_next_word_data()
        >>> result = train_next_token_embeddings(ids, len(vocab))
        >>> cat, dog, king = vocab.index("cat"), vocab.index("dog"), vocab.index("king")
        >>> before = cosine_similarity(result.weight_before[cat], result.weight_before[dog]).item()
        >>> after = cosine_similarity(result.weight_after[cat], result.weight_after[dog]).item()
        >>> after > before, after > 0.8
        (True, True)
        >>> result.losses[-1] < result.losses[0]
        True
    """
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    check_token_ids(data, vocab_size, "data", ndim=1)
    if len(data) < 2:
        raise ValueError(f"data must hold at least 2 tokens (an input and its next token), got {len(data)}")
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    steps = check_positive_int(steps, "steps")
    lr = check_positive_finite(lr, "lr")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
        raise TypeError(f"weight_decay must be a number >= 0, got {type(weight_decay).__name__}")
    if not 0 <= weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must fit in 64 bits (what torch.manual_seed takes), got {seed}")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embedding = Embedding(vocab_size, embedding_dim)
        head = Linear(embedding_dim, vocab_size)
    skip_input_checks(embedding, head)                         # data was checked above, once
    weight_before = embedding.weight.detach().clone()
    params = [*embedding.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=float(weight_decay))
    x, y = data[:-1].long(), data[1:].long()                   # (N-1,) inputs and next tokens
    losses = []
    for _ in range(steps):
        logits = head(embedding(x))                            # (N-1, V)
        loss = F.cross_entropy(logits, y)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"the loss became {losses[-1]} at step {len(losses) - 1}; lower lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return EmbeddingTrainingResult(weight_before, embedding.weight.detach().clone(), losses)
