r"""Causal self-attention: from averaging the past to queries, keys, values and heads.

The path of the lecture, in code:

1. **The trick.** Every position ``t`` of a sequence gets the average of the positions
   ``0..t`` (itself included, nothing from the future), computed three equal ways:
   [`average_past_loop`][gptnotes.attention.average_past_loop], [`average_past_matmul`][gptnotes.attention.average_past_matmul] (a lower-triangular matrix product)
   and [`average_past_softmax`][gptnotes.attention.average_past_softmax] (a softmax over scores masked with ``-inf``).

2. **One head.** [`Head`][gptnotes.attention.Head] replaces the uniform average by weights computed from the data:

    $$
    \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(
        \operatorname{mask}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right)\right) V,
    \qquad d_k = \text{head\_size}
    $$

    [`causal_attention`][gptnotes.attention.causal_attention] is the same maths as a function, equal to
    ``F.scaled_dot_product_attention(q, k, v, is_causal=True)``.

3. **Several heads.** [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention] runs ``num_heads`` heads side by side,
   concatenates their outputs and mixes them with a projection; [`CausalSelfAttention`][gptnotes.attention.CausalSelfAttention]
   computes exactly the same with one matrix for the queries, keys and values of all heads
   and PyTorch's fused kernel.

The scale is ``head_size ** -0.5``, the size of the vectors whose dot products form the
scores. Scaling by ``C ** -0.5`` with ``C = n_embd`` instead is a common slip: it makes the
scores of a 4-head model half as large as intended (their variance a quarter).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_bool,
    check_float_tensor,
    check_positive_int,
    check_probability,
    skip_input_checks,
)
from gptnotes.linear import Linear
from gptnotes.sampling import softmax_unchecked

__all__ = [
    "causal_mask",
    "average_past_loop",
    "average_past_matmul",
    "average_past_softmax",
    "causal_attention",
    "Head",
    "MultiHeadAttention",
    "CausalSelfAttention",
]


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Return the ``(T, T)`` boolean mask of which positions may attend to which.

    ``mask[t, s]`` is ``True`` when ``s <= t``: a position sees itself and every earlier
    position, never a later one. It is the lower triangle of a matrix of ones, diagonal included.

    Args:
        T: Sequence length.
        device: Where to create the mask.

    Shape:
        - Output: ``(T, T)``, dtype ``torch.bool``.

    Raises:
        TypeError: If ``T`` is not an integer.
        ValueError: If ``T`` is not positive.

    Examples:
        >>> from gptnotes import causal_mask
        >>> causal_mask(3).int().tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    T = check_positive_int(T, "T")
    check_allocation(T * T, "the (T, T) boolean causal mask", f"T={T}")
    return torch.tril(torch.ones(T, T, dtype=torch.bool, device=device))


# One mask per (block_size, device), shared by every head that is alive: a model of n_layer *
# n_head heads holds one block_size² mask, not n_layer * n_head of them.
_SHARED_MASKS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _shared_causal_mask(T: int) -> torch.Tensor:
    key = (T, str(torch.get_default_device()))
    mask = _SHARED_MASKS.get(key)
    if mask is None:
        mask = causal_mask(T)
        _SHARED_MASKS[key] = mask
    return mask


def _check_attention_sizes(layer: str, n_embd: int, num_heads: int, head_size: int, block_size: int, heads: bool) -> None:
    """Refuse sizes whose weights (float32) and causal mask would not fit in this machine's memory."""
    inner = num_heads * head_size
    nbytes = 4 * (3 * inner * n_embd + inner * n_embd + n_embd) + (block_size * block_size if heads else 0)
    check_allocation(
        nbytes, f"the weights{' and causal mask' if heads else ''} of {layer}",
        f"n_embd={n_embd}, num_heads={num_heads}, head_size={head_size}, block_size={block_size}",
    )


def _check_btc(x: object, name: str = "x") -> torch.Tensor:
    check_float_tensor(x, name, ndim=3)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one position (T >= 1), got shape {tuple(x.shape)}")
    return x


def _check_input(x: object, n_embd: int, block_size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The checks of an attention layer's ``forward``: shape and dtype only, no scan of the data."""
    _check_btc(x)
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"x must have the dtype of the weights ({dtype}), got {x.dtype}; convert one of them with .to()")
    if x.shape[-1] != n_embd:
        raise ValueError(f"x must have last dimension n_embd={n_embd}, got shape {tuple(x.shape)}")
    if x.shape[1] > block_size:
        raise ValueError(
            f"x has T={x.shape[1]} positions, more than block_size={block_size}, the longest "
            "sequence this attention layer was built for"
        )
    return x


def _dtype_of(layer: nn.Module) -> torch.dtype | None:
    """The dtype a layer's input must have: its weight's; ``None`` for a layer without a float
    weight (a packed `BitLinearInference` of gptnotes.bitnet, which checks its input itself)."""
    weight = getattr(layer, "weight", None)
    return weight.dtype if isinstance(weight, torch.Tensor) and weight.is_floating_point() else None


def average_past_loop(x: torch.Tensor) -> torch.Tensor:
    """Average every position with all the positions before it, with two Python loops.

    ``out[b, t] = mean(x[b, 0], ..., x[b, t])``: the simplest way for a token to gather
    information from its past. Slow (one small mean per position) but obviously right; the
    reference for [`average_past_matmul`][gptnotes.attention.average_past_matmul] and [`average_past_softmax`][gptnotes.attention.average_past_softmax].

    Args:
        x: Floating-point tensor ``(B, T, C)``.

    Shape:
        - x: ``(B, T, C)``; output: ``(B, T, C)``.

    Returns:
        The running means.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` is not 3-D or has ``T = 0``.

    Examples:
        >>> import torch
        >>> from gptnotes import average_past_loop
        >>> x = torch.tensor([[[1.0], [3.0], [8.0]]])      # (B=1, T=3, C=1)
        >>> average_past_loop(x)[0, :, 0].tolist()          # 1, (1+3)/2, (1+3+8)/3
        [1.0, 2.0, 4.0]
    """
    _check_btc(x)
    B, T, C = x.shape
    out = torch.zeros_like(x)
    for b in range(B):
        for t in range(T):
            out[b, t] = x[b, : t + 1].mean(dim=0)  # (C,)
    return out


def average_past_matmul(x: torch.Tensor) -> torch.Tensor:
    """The same running mean as one matrix product with a lower-triangular weight matrix.

    Row ``t`` of ``wei`` holds ``1 / (t + 1)`` in its first ``t + 1`` entries and 0 after, so
    ``wei @ x`` averages exactly the past of each position. The ``(T, T)`` matrix is broadcast
    over the batch: ``(T, T) @ (B, T, C) -> (B, T, C)``.

    Args:
        x: Floating-point tensor ``(B, T, C)``.

    Shape:
        - x: ``(B, T, C)``; output: ``(B, T, C)``.

    Returns:
        The running means.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` is not 3-D or has ``T = 0``.

    Examples:
        >>> import torch
        >>> from gptnotes import average_past_matmul
        >>> x = torch.tensor([[[1.0], [3.0], [8.0]]])
        >>> average_past_matmul(x)[0, :, 0].tolist()
        [1.0, 2.0, 4.0]
    """
    _check_btc(x)
    T = x.shape[1]
    wei = causal_mask(T, device=x.device).to(x.dtype)  # (T, T) ones on and below the diagonal
    wei = wei / wei.sum(dim=1, keepdim=True)  # (T, T) each row sums to 1
    return wei @ x  # (T, T) @ (B, T, C) -> (B, T, C)


def average_past_softmax(x: torch.Tensor) -> torch.Tensor:
    """The same running mean as a softmax over masked scores: the form attention uses.

    Start from scores that are all 0 (every past position equally interesting), set the
    future to ``-inf``, and take the softmax of each row: ``exp(-inf) = 0`` removes the future
    and the remaining ``t + 1`` equal entries become ``1 / (t + 1)``. Attention keeps this
    recipe and only replaces the zeros by scores computed from the data.

    Args:
        x: Floating-point tensor ``(B, T, C)``.

    Shape:
        - x: ``(B, T, C)``; output: ``(B, T, C)``.

    Returns:
        The running means.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` is not 3-D or has ``T = 0``.

    Examples:
        >>> import torch
        >>> from gptnotes import average_past_softmax
        >>> x = torch.tensor([[[1.0], [3.0], [8.0]]])
        >>> [round(v, 4) for v in average_past_softmax(x)[0, :, 0].tolist()]
        [1.0, 2.0, 4.0]
    """
    _check_btc(x)
    T = x.shape[1]
    scores = torch.zeros(T, T, dtype=x.dtype, device=x.device)  # (T, T)
    scores = scores.masked_fill(~causal_mask(T, device=x.device), float("-inf"))
    wei = softmax_unchecked(scores, dim=-1)  # (T, T)
    return wei @ x  # (B, T, C)


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Causal scaled dot-product attention, from scratch.

    ``softmax(mask(q @ k^T / sqrt(head_size))) @ v`` with the causal mask of
    [`causal_mask`][gptnotes.attention.causal_mask]: equal to ``F.scaled_dot_product_attention(q, k, v, is_causal=True)``
    (the test suite proves it), but every step is visible and the weights can be returned.

    Args:
        q: Queries ``(*, T, hs)``, e.g. ``(B, T, hs)`` or ``(B, nh, T, hs)``.
        k: Keys, the shape of ``q``.
        v: Values ``(*, T, hs_v)``.
        return_weights: Also return the ``(*, T, T)`` attention weights.

    Shape:
        - q, k: ``(*, T, hs)``; v: ``(*, T, hs_v)``.
        - Output: ``(*, T, hs_v)``; weights: ``(*, T, T)``, each row summing to 1, zero above
          the diagonal.

    Returns:
        The output, or ``(output, weights)`` if ``return_weights``.

    Raises:
        TypeError: If an input is not a floating-point tensor, the three dtypes differ, or
            ``return_weights`` is not a bool.
        ValueError: If the shapes do not fit together, or T or the head size is 0.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from gptnotes import causal_attention
        >>> g = torch.Generator().manual_seed(0)
        >>> q, k, v = (torch.randn(2, 5, 4, generator=g) for _ in range(3))   # (B, T, hs)
        >>> out, wei = causal_attention(q, k, v, return_weights=True)
        >>> tuple(out.shape), tuple(wei.shape)
        ((2, 5, 4), (2, 5, 5))
        >>> torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
        True
        >>> wei[0, 0].tolist()          # the first position can only look at itself
        [1.0, 0.0, 0.0, 0.0, 0.0]
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(t, name)
        if t.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (T, head_size), got shape {tuple(t.shape)}")
    if k.shape != q.shape:
        raise ValueError(f"k must have the shape of q {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v must have the shape of q except the last dimension {tuple(q.shape[:-1])}, got {tuple(v.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have the dtype of q ({q.dtype}), got {t.dtype}; convert with .to()")
    if not isinstance(return_weights, bool):
        raise TypeError(f"return_weights must be True or False, got {type(return_weights).__name__}")
    T, head_size = q.shape[-2], q.shape[-1]
    if T == 0:
        raise ValueError(f"q must hold at least one position (T >= 1), got shape {tuple(q.shape)}")
    if head_size == 0:
        raise ValueError(f"q and k must have a head size of at least 1 (their last dimension), got shape {tuple(q.shape)}")
    out, wei = _causal_attention(q, k, v)
    return (out, wei) if return_weights else out


def _causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[`causal_attention`][gptnotes.attention.causal_attention] after its checks: ``(out, weights)``."""
    T, head_size = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) * head_size**-0.5  # (*, T, hs) @ (*, hs, T) -> (*, T, T)
    scores = scores.masked_fill(~causal_mask(T, device=q.device), float("-inf"))
    wei = softmax_unchecked(scores, dim=-1)  # (*, T, T)
    out = wei @ v  # (*, T, T) @ (*, T, hs_v) -> (*, T, hs_v)
    return out, wei


class Head(nn.Module):
    r"""One head of causal self-attention.

    Every position emits a query ("what am I looking for?"), a key ("what do I contain?")
    and a value ("what do I pass on if chosen"), three separate bias-free linear maps of the
    *whole* input vector of that position. The score of position ``t`` for position ``s`` is
    the dot product ``q_t · k_s`` scaled by ``head_size ** -0.5``; scores of future positions
    are set to ``-inf``; a softmax turns each row into weights; the output of ``t`` is the
    weighted sum of the values of positions ``0..t`` (``t`` itself included).

    The scale is ``head_size ** -0.5``: with queries and keys of unit variance a dot product of
    ``head_size`` terms has variance ``head_size``, and the scale brings it back to 1 so that
    the softmax starts soft instead of nearly one-hot. (Scaling by ``C ** -0.5`` with
    ``C = n_embd`` instead is a common slip, see the module docstring.)

    Args:
        n_embd: C, the size of the input vectors.
        head_size: hs, the size of the queries, keys, values and of the output.
        block_size: The longest sequence the head accepts (size of the ``tril`` buffer).
        dropout: Probability of zeroing an attention weight while training.

    Shape:
        - x: ``(B, T, C)`` with ``T <= block_size``.
        - Output: ``(B, T, hs)``; weights (with ``return_weights=True``): ``(B, T, T)``.

    Attributes:
        key (Linear): ``C -> hs`` without bias, weight ``(hs, C)``: what each position offers.
        query (Linear): ``C -> hs`` without bias, weight ``(hs, C)``: what each position looks for.
        value (Linear): ``C -> hs`` without bias, weight ``(hs, C)``: what each position hands over.
        tril (torch.Tensor): ``(block_size, block_size)`` boolean causal mask (a buffer, not a parameter,
            and not saved in the ``state_dict``).
        head_size (int): hs.
        checks_input (bool): ``True``: ``forward`` checks ``x`` and names what is wrong.
            ``False`` for the heads of a [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention],
            which checks ``x`` once for all of them.

    Raises:
        TypeError: If a size is not an integer or ``dropout`` not a number; in ``forward``, if
            ``x`` is not a floating-point tensor of the weights' dtype or ``return_weights``
            not a bool.
        ValueError: If a size is not positive or ``dropout`` is not in ``[0, 1)``; in
            ``forward``, if ``x`` is not ``(B, T, n_embd)`` with ``1 <= T <= block_size``.

    Examples:
        >>> import torch
        >>> from gptnotes import Head
        >>> _ = torch.manual_seed(0)
        >>> head = Head(n_embd=8, head_size=4, block_size=6)
        >>> x = torch.randn(2, 5, 8)                     # (B, T, C)
        >>> out, wei = head(x, return_weights=True)
        >>> tuple(out.shape), tuple(wei.shape)
        ((2, 5, 4), (2, 5, 5))
        >>> bool((wei[0].triu(diagonal=1) == 0).all())   # nothing from the future
        True
        >>> [round(v, 4) for v in wei[0].sum(dim=-1).tolist()]
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """

    checks_input = True

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_embd = check_positive_int(n_embd, "n_embd")
        self.head_size = check_positive_int(head_size, "head_size")
        self.block_size = check_positive_int(block_size, "block_size")
        dropout = check_probability(dropout, "dropout")
        check_allocation(
            12 * self.n_embd * self.head_size + self.block_size**2, "the weights and causal mask of Head",
            f"n_embd={self.n_embd}, head_size={self.head_size}, block_size={self.block_size}",
        )
        self.key = Linear(self.n_embd, self.head_size, bias=False)
        self.query = Linear(self.n_embd, self.head_size, bias=False)
        self.value = Linear(self.n_embd, self.head_size, bias=False)
        skip_input_checks(self.key, self.query, self.value)  # forward checks x once for the three
        self.register_buffer("tril", _shared_causal_mask(self.block_size), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from every position to its past.

        Args:
            x: ``(B, T, C)`` with ``T <= block_size``.
            return_weights: Also return the ``(B, T, T)`` attention weights that multiplied
                the values (after dropout, so in ``eval()`` mode exactly the softmax).

        Returns:
            ``out`` ``(B, T, hs)``, or ``(out, weights)``.
        """
        if self.checks_input:
            _check_input(x, self.n_embd, self.block_size, _dtype_of(self.query))
            check_bool(return_weights, "return_weights")
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * self.head_size**-0.5  # (B, T, hs) @ (B, hs, T) -> (B, T, T)
        wei = wei.masked_fill(~self.tril[:T, :T], float("-inf"))  # (B, T, T)
        wei = F.softmax(wei, dim=-1)  # (B, T, T)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        out = wei @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)
        return (out, wei) if return_weights else out

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, head_size={self.head_size}, block_size={self.block_size}"


class MultiHeadAttention(nn.Module):
    """Several attention heads side by side, concatenated and projected back to ``n_embd``.

    Each of the ``num_heads`` [`Head`][gptnotes.attention.Head] modules reads the whole ``(B, T, C)`` input (a head
    does not get a slice of it) and has its own queries, keys and values, so each can learn a
    different pattern of what to look at. Their ``(B, T, hs)`` outputs are concatenated into
    ``(B, T, num_heads * hs)`` and a linear projection with bias maps them back to ``C``,
    mixing what the heads found; then dropout.

    This is the teaching path, one module per head, as in the lecture's parameter names
    (``sa.heads.0.key.weight`` ...). [`CausalSelfAttention`][gptnotes.attention.CausalSelfAttention] computes the same faster.

    Args:
        n_embd: C, the size of the input and output vectors.
        num_heads: nh, the number of heads.
        head_size: hs, the size of each head (usually ``n_embd // num_heads``).
        block_size: The longest sequence accepted.
        dropout: Dropout probability, on the attention weights and after the projection.

    Shape:
        - x: ``(B, T, C)``; output: ``(B, T, C)``; weights (``return_weights=True``):
          ``(B, nh, T, T)``.

    Attributes:
        heads: `torch.nn.ModuleList` of ``num_heads`` [`Head`][gptnotes.attention.Head].
        proj: [`Linear`][gptnotes.linear.Linear] ``(nh * hs -> C)`` with bias.
        checks_input (bool): ``True``: ``forward`` checks ``x`` (once, for every head) and names
            what is wrong; ``False`` inside a model whose block checks ``x`` itself.

    Raises:
        TypeError: If a size is not an integer or ``dropout`` not a number; in ``forward``, if
            ``x`` is not a floating-point tensor of the weights' dtype or ``return_weights``
            not a bool.
        ValueError: If a size is not positive or ``dropout`` is not in ``[0, 1)``; in
            ``forward``, if ``x`` is not ``(B, T, n_embd)`` with ``1 <= T <= block_size``.

    Examples:
        >>> import torch
        >>> from gptnotes import MultiHeadAttention
        >>> _ = torch.manual_seed(0)
        >>> mha = MultiHeadAttention(n_embd=8, num_heads=2, head_size=4, block_size=6)
        >>> [name for name, _ in mha.named_parameters()][:3]
        ['heads.0.key.weight', 'heads.0.query.weight', 'heads.0.value.weight']
        >>> out, wei = mha(torch.randn(3, 5, 8), return_weights=True)
        >>> tuple(out.shape), tuple(wei.shape)
        ((3, 5, 8), (3, 2, 5, 5))
    """

    checks_input = True

    def __init__(
        self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_embd = check_positive_int(n_embd, "n_embd")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.head_size = check_positive_int(head_size, "head_size")
        self.block_size = check_positive_int(block_size, "block_size")
        self.dropout_p = check_probability(dropout, "dropout")
        _check_attention_sizes("MultiHeadAttention", self.n_embd, self.num_heads, self.head_size, self.block_size, True)
        self.heads = nn.ModuleList(
            [Head(self.n_embd, self.head_size, self.block_size, self.dropout_p) for _ in range(self.num_heads)]
        )
        self.proj = Linear(self.num_heads * self.head_size, self.n_embd)
        skip_input_checks(*self.heads, self.proj)  # forward checks x once for all of them
        self.dropout = nn.Dropout(self.dropout_p)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run every head, concatenate, project.

        Args:
            x: ``(B, T, C)`` with ``T <= block_size``.
            return_weights: Also return the weights of every head, ``(B, nh, T, T)``.

        Returns:
            ``out`` ``(B, T, C)``, or ``(out, weights)``.
        """
        if self.checks_input:
            _check_input(x, self.n_embd, self.block_size, _dtype_of(self.proj))
            check_bool(return_weights, "return_weights")
        results = [h(x, return_weights=True) for h in self.heads]  # nh x ((B, T, hs), (B, T, T))
        out = torch.cat([o for o, _ in results], dim=-1)  # (B, T, nh * hs)
        out = self.dropout(self.proj(out))  # (B, T, C)
        if return_weights:
            return out, torch.stack([w for _, w in results], dim=1)  # (B, nh, T, T)
        return out


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one matrix for all heads: the fast path.

    Mathematically the same as [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention]: the queries, keys and values of
    all heads are the rows of one ``c_attn`` weight of shape ``(3 * nh * hs, C)`` (queries of
    head 0, 1, ..., then keys, then values), computed by one matrix product and reshaped to
    ``(B, nh, T, hs)``; the attention itself is `torch.nn.functional.scaled_dot_product_attention`
    with ``is_causal=True``, which scales by ``hs ** -0.5`` like [`Head`][gptnotes.attention.Head].
    [`from_multi_head`][gptnotes.attention.CausalSelfAttention.from_multi_head] copies the weights of a [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention]; the two then
    give the same outputs and the same gradients (proved in the tests).

    With dropout the two paths draw different random masks (PyTorch's kernel applies its own),
    so they agree in distribution but not sample by sample while training.

    Args:
        n_embd: C.
        num_heads: nh.
        head_size: hs.
        block_size: The longest sequence accepted.
        dropout: Dropout probability on the attention weights and after the projection.

    Shape:
        - x: ``(B, T, C)``; output: ``(B, T, C)``; weights (``return_weights=True``):
          ``(B, nh, T, T)``.
        - Inside: ``c_attn(x)`` is ``(B, T, 3 * nh * hs)``, split into q, k, v and
          reshaped to ``(B, nh, T, hs)`` each.

    Attributes:
        c_attn: [`Linear`][gptnotes.linear.Linear] ``(C -> 3 * nh * hs)`` without bias.
        proj: [`Linear`][gptnotes.linear.Linear] ``(nh * hs -> C)`` with bias.
        checks_input (bool): ``True``: ``forward`` checks ``x`` and names what is wrong;
            ``False`` inside a model whose block checks ``x`` itself.

    Raises:
        TypeError: If a size is not an integer or ``dropout`` not a number; in ``forward``, if
            ``x`` is not a floating-point tensor of the weights' dtype or ``return_weights``
            not a bool.
        ValueError: If a size is not positive or ``dropout`` is not in ``[0, 1)``; in
            ``forward``, if ``x`` is not ``(B, T, n_embd)`` with ``1 <= T <= block_size``.

    Examples:
        >>> import torch
        >>> from gptnotes import CausalSelfAttention, MultiHeadAttention
        >>> _ = torch.manual_seed(0)
        >>> mha = MultiHeadAttention(n_embd=8, num_heads=2, head_size=4, block_size=6)
        >>> fused = CausalSelfAttention.from_multi_head(mha)
        >>> tuple(fused.c_attn.weight.shape)
        (24, 8)
        >>> x = torch.randn(3, 5, 8)
        >>> torch.allclose(fused(x), mha(x), atol=1e-6)
        True
    """

    checks_input = True

    def __init__(
        self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_embd = check_positive_int(n_embd, "n_embd")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.head_size = check_positive_int(head_size, "head_size")
        self.block_size = check_positive_int(block_size, "block_size")
        self.dropout_p = check_probability(dropout, "dropout")
        _check_attention_sizes("CausalSelfAttention", self.n_embd, self.num_heads, self.head_size, self.block_size, False)
        inner = self.num_heads * self.head_size
        self.c_attn = Linear(self.n_embd, 3 * inner, bias=False)
        self.proj = Linear(inner, self.n_embd)
        skip_input_checks(self.c_attn, self.proj)  # forward checks x once for both
        self.dropout = nn.Dropout(self.dropout_p)

    @classmethod
    def from_multi_head(cls, mha: MultiHeadAttention) -> CausalSelfAttention:
        """Build a fused layer holding (copies of) the weights of ``mha``.

        Args:
            mha: The per-head layer to copy.

        Returns:
            A new [`CausalSelfAttention`][gptnotes.attention.CausalSelfAttention] with the same sizes, dropout, device and dtype.

        Raises:
            TypeError: If ``mha`` is not a [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention].
        """
        if not isinstance(mha, MultiHeadAttention):
            raise TypeError(f"mha must be a MultiHeadAttention, got {type(mha).__name__}")
        fused = cls(mha.n_embd, mha.num_heads, mha.head_size, mha.block_size, mha.dropout_p)
        fused.to(device=mha.proj.weight.device, dtype=mha.proj.weight.dtype)
        fused.load_from_multi_head(mha)
        return fused

    @torch.no_grad()
    def load_from_multi_head(self, mha: MultiHeadAttention) -> None:
        """Copy the weights of ``mha`` into this layer (sizes must match).

        ``c_attn.weight`` becomes the queries of all heads stacked, then the keys, then the
        values; ``proj`` is copied as is.

        Raises:
            TypeError: If ``mha`` is not a [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention].
            ValueError: If the sizes differ.
        """
        if not isinstance(mha, MultiHeadAttention):
            raise TypeError(f"mha must be a MultiHeadAttention, got {type(mha).__name__}")
        mine = (self.n_embd, self.num_heads, self.head_size)
        theirs = (mha.n_embd, mha.num_heads, mha.head_size)
        if mine != theirs:
            raise ValueError(f"mha must have (n_embd, num_heads, head_size) = {mine}, got {theirs}")
        q = torch.cat([h.query.weight for h in mha.heads], dim=0)  # (nh * hs, C)
        k = torch.cat([h.key.weight for h in mha.heads], dim=0)  # (nh * hs, C)
        v = torch.cat([h.value.weight for h in mha.heads], dim=0)  # (nh * hs, C)
        self.c_attn.weight.copy_(torch.cat([q, k, v], dim=0))  # (3 * nh * hs, C)
        self.proj.weight.copy_(mha.proj.weight)
        self.proj.bias.copy_(mha.proj.bias)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend with all heads at once.

        Args:
            x: ``(B, T, C)`` with ``T <= block_size``.
            return_weights: Also return the ``(B, nh, T, T)`` weights; these are computed with
                [`causal_attention`][gptnotes.attention.causal_attention] (the fused kernel does not expose them), without dropout.

        Returns:
            ``out`` ``(B, T, C)``, or ``(out, weights)``.
        """
        if self.checks_input:
            _check_input(x, self.n_embd, self.block_size, _dtype_of(self.proj))
            check_bool(return_weights, "return_weights")
        B, T, C = x.shape
        nh, hs = self.num_heads, self.head_size
        qkv = self.c_attn(x)  # (B, T, 3 * nh * hs): queries, keys, values of all heads
        # one view + permute splits Q, K, V and the heads at once (fewer operations than a
        # split and a view and transpose for each of the three)
        q, k, v = qkv.view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs)
        if return_weights:
            y, wei = _causal_attention(q, k, v)  # (B, nh, T, hs), (B, nh, T, T)
        else:
            p = self.dropout_p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs), heads side by side
        out = self.proj(y)  # (B, T, C)
        if self.dropout_p > 0:
            out = self.dropout(out)
        return (out, wei) if return_weights else out
