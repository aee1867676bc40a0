r"""The bigram language model: the next token from the current token alone.

Two versions of the same model:

* [`BigramLanguageModel`][gptnotes.bigram.BigramLanguageModel], a neural network whose only
  layer is a ``(vocab, vocab)``
  embedding table: row ``i`` holds the *logits* of the token that follows token ``i``.
  It is trained with gradient descent like every later model of the site.
* [`CountBigramModel`][gptnotes.bigram.CountBigramModel], the same table computed in closed
  form by counting which token follows which ([`bigram_counts`][gptnotes.bigram.bigram_counts])
  and normalising each row. Without smoothing the
  counted table is the exact minimum of the training loss, so it tells how far gradient
  descent still is from the best any bigram model can do on that text.

The loss of a bigram model depends on the text only through the count matrix:

$$
\mathcal{L} = -\frac{1}{N}\sum_{i,j} n_{ij} \log p(j \mid i),
\qquad p(\cdot \mid i) = \operatorname{softmax}(W_{i,:})
$$

which [`nll_from_counts`][gptnotes.bigram.nll_from_counts] computes, and which
[`fit_to_counts`][gptnotes.bigram.fit_to_counts] minimises over the whole text at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
    check_targets,
    check_tensor,
    check_token_ids,
)
from gptnotes.sampling import check_generator, sample_next_token_unchecked

__all__ = [
    "BigramLanguageModel",
    "CountBigramModel",
    "bigram_counts",
    "fit_counts",
    "fit_to_counts",
    "nll_from_counts",
]


@torch.no_grad()
def _generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    vocab_size: int,
    context_size: int,
) -> torch.Tensor:
    """The sampling loop shared by the language models of gptnotes.

    Feeds the last ``context_size`` tokens of every row to ``model``, samples the next token
    from the logits at the last position and appends it; ``max_new_tokens`` times. The
    arguments are checked once, here: the loop calls ``model._forward`` (the model's forward
    after its checks), since every id it appends was sampled from the vocabulary.
    """
    idx = check_token_ids(idx, vocab_size, "idx", ndim=2)
    max_new_tokens = check_nonnegative_int(max_new_tokens, "max_new_tokens")
    temperature = check_positive_finite(temperature, "temperature")
    check_generator(generator)
    if idx.shape[0] == 0 or idx.shape[1] == 0:
        raise ValueError(f"idx must hold at least one row of at least one token to continue from, got shape {tuple(idx.shape)}")
    for _ in range(max_new_tokens):
        logits, _ = model._forward(idx[:, -context_size:], None)  # (B, T', C)
        next_id = sample_next_token_unchecked(logits[:, -1, :], temperature, generator)  # (B, 1)
        idx = torch.cat((idx, next_id), dim=1)  # (B, T + 1)
    return idx


class BigramLanguageModel(nn.Module):
    """A language model that predicts the next token from the current token only.

    Its single parameter is a ``(vocab_size, vocab_size)`` table, stored in an
    `torch.nn.Embedding`: looking up token ``i`` returns row ``i``, which is read directly
    as the logits of the next token (not as a feature vector, as in the GPT). The tokens before
    the current one have no influence at all, whatever the length of ``idx``.

    The table starts as `torch.nn.Embedding` initialises it, every entry drawn from
    N(0, 1). Because those logits are not all equal, the loss at initialisation is about
    ``ln(vocab_size) + 0.5`` rather than ``ln(vocab_size)`` (the loss of a uniform guess).

    Args:
        vocab_size: V, the number of distinct tokens.

    Shape:
        - idx: ``(B, T)`` token ids.
        - targets: ``(B, T)``, the token that follows each token of ``idx``.
        - logits: ``(B, T, C)`` with ``C = vocab_size``.

    Attributes:
        token_embedding_table: ``nn.Embedding(vocab_size, vocab_size)``; its weight row ``i``
            holds the next-token logits after token ``i``.
        vocab_size: V.

    Raises:
        TypeError: If ``vocab_size`` is not an integer; in ``forward``, if ``idx`` or
            ``targets`` is not an integer tensor.
        ValueError: If ``vocab_size`` is not positive; in ``forward``, if ``idx`` is not 2-D,
            is empty, holds ids outside the vocabulary, or ``targets`` does not have the shape
            of ``idx``.

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel
        >>> _ = torch.manual_seed(0)
        >>> model = BigramLanguageModel(vocab_size=5)
        >>> idx = torch.tensor([[0, 1, 2], [3, 4, 0]])      # (B=2, T=3)
        >>> logits, loss = model(idx, targets=torch.tensor([[1, 2, 3], [4, 0, 1]]))
        >>> tuple(logits.shape)
        (2, 3, 5)
        >>> bool(torch.equal(logits[0, 0], model.token_embedding_table.weight[0]))   # row of token 0
        True
        >>> out = model.generate(idx, max_new_tokens=4, generator=torch.Generator().manual_seed(0))
        >>> tuple(out.shape)
        (2, 7)
    """

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        check_allocation(4 * self.vocab_size**2, "the float32 (vocab_size, vocab_size) table of BigramLanguageModel",
                         f"vocab_size={self.vocab_size}")
        self.token_embedding_table = nn.Embedding(self.vocab_size, self.vocab_size)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the next-token logits of every position, and the loss if targets are given.

        Args:
            idx: ``(B, T)`` integer token ids in ``[0, vocab_size)``.
            targets: Optional ``(B, T)`` integer ids; ``targets[b, t]`` is the token after
                ``idx[b, t]``.

        Returns:
            ``(logits, loss)``: logits ``(B, T, C)``; loss is the mean cross-entropy over all
            ``B * T`` positions (a 0-D tensor), or ``None`` without targets.
        """
        idx = check_token_ids(idx, self.vocab_size, "idx", ndim=2)
        if idx.numel() == 0:
            raise ValueError(f"idx must hold at least one token, got shape {tuple(idx.shape)}")
        if targets is not None:
            targets = check_targets(targets, idx, self.vocab_size)
        return self._forward(idx, targets)

    def _forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[`forward`][gptnotes.bigram.BigramLanguageModel.forward] after its checks: tensor operations only."""
        logits = self.token_embedding_table(idx)  # (B, T, C)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        # F.cross_entropy wants the classes in dimension 1: one row of C logits per example.
        loss = F.cross_entropy(logits.view(B * T, C), targets.reshape(B * T))
        return logits, loss

    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue every row of ``idx`` by ``max_new_tokens`` sampled tokens.

        Each new token is drawn with [`sample_next_token`][gptnotes.sampling.sample_next_token]
        (``torch.multinomial``
        on the softmax of the logits), so two calls give different texts unless a seeded
        ``generator`` is passed. Only the last token of each row is fed to the model: it is all
        a bigram model looks at. Runs under ``torch.no_grad()``.

        Args:
            idx: ``(B, T)`` token ids to continue, ``T >= 1``.
            max_new_tokens: How many tokens to append, ``>= 0``.
            temperature: Divides the logits before the softmax (``< 1`` sharper, ``> 1`` flatter).
            generator: Optional `torch.Generator` for reproducible samples.

        Shape:
            - idx: ``(B, T)``; output: ``(B, T + max_new_tokens)``, starting with ``idx``.

        Returns:
            The extended sequences.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If ``idx`` is not 2-D, empty or outside the vocabulary,
                ``max_new_tokens`` is negative or ``temperature`` is not positive and finite.
        """
        return _generate(self, idx, max_new_tokens, temperature, generator, self.vocab_size, context_size=1)

    def log_prob_table(self) -> torch.Tensor:
        """Return the ``(V, V)`` table of ``log p(next = j | current = i)``.

        The log-softmax of each row of the embedding table: directly comparable with
        the ``log_probs`` of a [`CountBigramModel`][gptnotes.bigram.CountBigramModel].

        Shape:
            - Output: ``(V, V)``; row ``i`` holds ``log p(next = j | current = i)`` and its
              exponentials sum to 1.

        Examples:
            >>> import torch
            >>> from gptnotes import BigramLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> table = BigramLanguageModel(4).log_prob_table()
            >>> [round(v, 4) for v in table.exp().sum(dim=1).tolist()]
            [1.0, 1.0, 1.0, 1.0]
        """
        return F.log_softmax(self.token_embedding_table.weight, dim=-1)


def bigram_counts(data: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Count how often each token follows each other token.

    ``counts[i, j]`` is the number of positions ``t`` with ``data[t] == i`` and
    ``data[t + 1] == j``. The ``N - 1`` consecutive pairs of the text are all a bigram model
    can learn from.

    Args:
        data: 1-D integer tensor of token ids, at least 2 of them.
        vocab_size: V.

    Shape:
        - data: ``(N,)``; output: ``(V, V)``, dtype ``torch.long``, summing to ``N - 1``.

    Returns:
        The count matrix.

    Raises:
        TypeError: If ``data`` is not an integer tensor.
        ValueError: If ``data`` is not 1-D, has fewer than 2 tokens, or holds ids outside
            the vocabulary.

    Examples:
        >>> import torch
        >>> from gptnotes import bigram_counts
        >>> bigram_counts(torch.tensor([0, 1, 1, 0, 1]), vocab_size=2).tolist()
        [[0, 2], [1, 1]]
    """
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    check_token_ids(data, vocab_size, "data", ndim=1)
    if len(data) < 2:
        raise ValueError(f"data must hold at least 2 tokens (one pair of consecutive tokens), got {len(data)}")
    pairs = data[:-1].long() * vocab_size + data[1:].long()  # (N - 1,) one number per pair
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def _check_counts(counts: object, name: str = "counts") -> torch.Tensor:
    check_tensor(counts, name, ndim=2)
    if counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"{name} must be a square (V, V) matrix, got shape {tuple(counts.shape)}")
    if counts.is_complex() or counts.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {counts.dtype}")
    if bool((counts < 0).any()) or not bool(torch.isfinite(counts.double()).all()):
        raise ValueError(f"{name} must hold finite, non-negative counts")
    if float(counts.sum()) == 0:
        raise ValueError(f"{name} must not be all zeros: there is no pair to learn from")
    return counts


def nll_from_counts(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    r"""Mean negative log-likelihood of every counted pair under a table of logits.

    $$
    -\frac{1}{\sum_{ij} n_{ij}} \sum_{i,j} n_{ij}\, \log\operatorname{softmax}(z_{i,:})_j
    $$

    This is exactly the mean of ``F.cross_entropy`` over all the pairs of the text, computed
    from the ``V x V`` counts instead of the ``N`` pairs. Differentiable in ``logits``.
    Pairs that never occur (``n_ij = 0``) contribute nothing, even where a logit is ``-inf``.

    Args:
        logits: ``(V, V)`` floating-point table; row ``i`` holds the next-token logits after
            token ``i``, e.g. ``model.token_embedding_table.weight`` or a log-probability table.
        counts: ``(V, V)`` non-negative counts, e.g. from
            [`bigram_counts`][gptnotes.bigram.bigram_counts].

    Shape:
        - logits, counts: ``(V, V)``; output: ``()``, a 0-D tensor.

    Returns:
        A 0-D tensor, in nats.

    Raises:
        TypeError: If an argument is not a tensor of the right kind.
        ValueError: If the shapes differ or are not square, or ``counts`` is negative or all zero.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from gptnotes import bigram_counts, nll_from_counts
        >>> data = torch.tensor([0, 1, 1, 0, 1, 2])
        >>> logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
        >>> per_pair = F.cross_entropy(logits[data[:-1]], data[1:])
        >>> bool(torch.isclose(nll_from_counts(logits, bigram_counts(data, 3)), per_pair))
        True
    """
    _check_counts(counts)
    check_tensor(logits, "logits", ndim=2)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.shape != counts.shape:
        raise ValueError(f"logits must have the shape of counts {tuple(counts.shape)}, got {tuple(logits.shape)}")
    counts = counts.to(logits.dtype)
    log_probs = F.log_softmax(logits, dim=-1)  # (V, V)
    weighted = torch.where(counts > 0, counts * log_probs, torch.zeros_like(log_probs))
    return -weighted.sum() / counts.sum()


class CountBigramModel:
    r"""The bigram model in closed form: normalised (smoothed) counts.

    $$
    p(j \mid i) = \frac{n_{ij} + \alpha}{\sum_k (n_{ik} + \alpha)}
    $$

    With ``smoothing`` \(\alpha = 0\) these are the maximum-likelihood probabilities: no
    table of logits whatsoever reaches a lower loss on the counted text, so their loss is the
    exact optimum a trained [`BigramLanguageModel`][gptnotes.bigram.BigramLanguageModel] can
    approach (never beat). A pair never
    seen gets probability 0 then, which makes the loss on other text infinite as soon as such a
    pair occurs; ``smoothing = 1`` (add-one, Laplace) gives every pair a small probability and a
    finite validation loss, at the price of a slightly higher training loss. A row whose token
    never occurs with a follower (all counts and ``smoothing`` zero) is set to uniform.

    Args:
        counts: ``(V, V)`` non-negative counts, from
            [`bigram_counts`][gptnotes.bigram.bigram_counts].
        smoothing: \(\alpha \ge 0\), added to every count.

    Shape:
        - counts, log_probs: ``(V, V)``; row ``i`` is the current token, column ``j`` the next.

    Attributes:
        counts: The counts, as given.
        smoothing: \(\alpha\).
        vocab_size: V.
        log_probs: ``(V, V)`` float64 table of ``log p(j | i)``; ``-inf`` for unseen pairs when
            ``smoothing = 0``.

    Raises:
        TypeError: If ``counts`` is not a real tensor or ``smoothing`` not a number.
        ValueError: If ``counts`` is not square, negative or all zero, or ``smoothing`` is
            negative or not finite.

    Examples:
        >>> import torch
        >>> from gptnotes import CountBigramModel, bigram_counts
        >>> data = torch.tensor([0, 1, 1, 0, 1])
        >>> mle = CountBigramModel(bigram_counts(data, 2), smoothing=0.0)
        >>> [[round(p, 4) for p in row] for row in mle.log_probs.exp().tolist()]
        [[0.0, 1.0], [0.5, 0.5]]
        >>> round(mle.nll(data), 4)          # (0 + ln 2 + ln 2 + 0) / 4
        0.3466
    """

    def __init__(self, counts: torch.Tensor, smoothing: float = 1.0) -> None:
        _check_counts(counts)
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)):
            raise TypeError(f"smoothing must be a non-negative number, got {type(smoothing).__name__}")
        if not (smoothing >= 0 and smoothing < float("inf")):
            raise ValueError(f"smoothing must be a non-negative finite number, got {smoothing!r}")
        self.counts = counts
        self.smoothing = float(smoothing)
        self.vocab_size = counts.shape[0]
        smoothed = counts.double() + self.smoothing  # (V, V)
        totals = smoothed.sum(dim=1, keepdim=True)  # (V, 1)
        uniform = torch.full_like(smoothed, 1.0 / self.vocab_size)
        probs = torch.where(totals > 0, smoothed / totals.clamp_min(1e-300), uniform)
        self.log_probs = probs.log()

    def nll(self, data: torch.Tensor) -> float:
        """Mean negative log-likelihood (nats per token) of the consecutive pairs of ``data``.

        Args:
            data: 1-D integer tensor of at least 2 token ids.

        Shape:
            - data: ``(N,)``, giving ``N - 1`` pairs; output: a Python float.

        Returns:
            A Python float; ``inf`` if ``data`` holds a pair of probability 0.

        Raises:
            TypeError: If ``data`` is not an integer tensor.
            ValueError: If ``data`` is not 1-D, has fewer than 2 tokens, or holds ids outside
                the vocabulary.
        """
        check_token_ids(data, self.vocab_size, "data", ndim=1)
        if len(data) < 2:
            raise ValueError(f"data must hold at least 2 tokens (one pair of consecutive tokens), got {len(data)}")
        return 0.0 - float(self.log_probs[data[:-1].long(), data[1:].long()].mean())  # 0.0 - x: no -0.0

    def __repr__(self) -> str:
        return f"CountBigramModel(vocab_size={self.vocab_size}, smoothing={self.smoothing})"


def fit_counts(data: torch.Tensor, vocab_size: int, smoothing: float = 1.0) -> CountBigramModel:
    """Count the pairs of ``data`` and return the smoothed count model.

    Shorthand for ``CountBigramModel(bigram_counts(data, vocab_size), smoothing)``.

    Args:
        data: 1-D integer tensor of token ids, at least 2 of them.
        vocab_size: V.
        smoothing: Added to every count (see
            [`CountBigramModel`][gptnotes.bigram.CountBigramModel]); ``0`` gives the exact
            optimum of the loss on ``data``.

    Shape:
        - data: ``(N,)``; the model's tables: ``(V, V)``.

    Returns:
        The fitted [`CountBigramModel`][gptnotes.bigram.CountBigramModel].

    Examples:
        >>> import math, torch
        >>> from gptnotes import fit_counts
        >>> model = fit_counts(torch.tensor([0, 1, 0, 1, 0]), vocab_size=2, smoothing=0.0)
        >>> model.nll(torch.tensor([0, 1, 0, 1, 0]))     # 0 -> 1 and 1 -> 0 always: certain
        0.0
    """
    return CountBigramModel(bigram_counts(data, vocab_size), smoothing=smoothing)


def fit_to_counts(
    model: BigramLanguageModel,
    counts: torch.Tensor,
    *,
    steps: int = 300,
    lr: float = 0.5,
) -> list[float]:
    """Train a `BigramLanguageModel` on a whole text at once, through its counts.

    Because a bigram model's loss on a text depends only on the count matrix
    ([`nll_from_counts`][gptnotes.bigram.nll_from_counts]), one gradient step on that loss is
    one step on the mean loss of
    *every* pair of the text: full-batch gradient descent, without sampling batches. Each row
    of the table is a separate convex problem; Adam, whose step size is per entry, moves the
    rows of rare tokens as fast as those of frequent ones, which plain gradient descent does
    not (their gradients are proportional to the token's frequency).

    Args:
        model: The model to train, in place.
        counts: ``(V, V)`` counts of the training text.
        steps: Number of Adam steps.
        lr: Adam's learning rate (large values are fine: the problem is convex and smooth).

    Shape:
        - counts: ``(V, V)``, the shape of ``model.token_embedding_table.weight``.

    Returns:
        The loss before each step (``steps`` floats, in nats).

    Raises:
        TypeError: If ``model`` is not a `BigramLanguageModel`.
        ValueError: If ``counts`` does not match the model's vocabulary, or a number is not positive.

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel, bigram_counts, fit_counts, fit_to_counts
        >>> data = torch.tensor([0, 1, 2, 0, 1, 1, 2, 0, 2, 1])
        >>> _ = torch.manual_seed(0)
        >>> model = BigramLanguageModel(3)
        >>> losses = fit_to_counts(model, bigram_counts(data, 3), steps=200)
        >>> optimum = fit_counts(data, 3, smoothing=0.0).nll(data)
        >>> losses[0] > 0.5 + optimum, abs(losses[-1] - optimum) < 0.01
        (True, True)
    """
    if not isinstance(model, BigramLanguageModel):
        raise TypeError(f"model must be a BigramLanguageModel, got {type(model).__name__}")
    _check_counts(counts)
    if counts.shape != (model.vocab_size, model.vocab_size):
        raise ValueError(
            f"counts must have shape (vocab_size, vocab_size) = {(model.vocab_size, model.vocab_size)}, "
            f"got {tuple(counts.shape)}"
        )
    steps = check_positive_int(steps, "steps")
    lr = check_positive_finite(lr, "lr")
    table = model.token_embedding_table.weight
    optimizer = torch.optim.Adam([table], lr=lr)
    losses = []
    for _ in range(steps):
        loss = nll_from_counts(table, counts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
