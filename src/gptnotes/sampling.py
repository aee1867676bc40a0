r"""Softmax, temperature and sampling the next token.

A language model ends in *logits*: one real number per token of the vocabulary.
[`softmax`][gptnotes.sampling.softmax] turns them into probabilities, [`softmax_with_temperature`][gptnotes.sampling.softmax_with_temperature] makes
that distribution sharper (``T < 1``) or flatter (``T > 1``), and
[`sample_next_token`][gptnotes.sampling.sample_next_token] draws a token id from it.

$$
\operatorname{softmax}(z)_i = \frac{e^{z_i - m}}{\sum_j e^{z_j - m}}, \qquad m = \max_j z_j
$$
"""

from __future__ import annotations

import torch

from gptnotes._checks import check_float_tensor, check_positive_finite

__all__ = ["softmax", "softmax_with_temperature", "sample_next_token"]


def _check_logits(logits: object, dim: int) -> torch.Tensor:
    check_float_tensor(logits, "logits")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension, got a 0-D tensor (a single number)")
    if not -logits.dim() <= dim < logits.dim():
        raise ValueError(f"dim must be in [{-logits.dim()}, {logits.dim() - 1}] for logits of shape {tuple(logits.shape)}, got {dim}")
    if logits.shape[dim] == 0:
        raise ValueError(f"logits must not be empty along dim={dim}: there is nothing to normalise (shape {tuple(logits.shape)})")
    return logits


def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Turn logits into probabilities that are positive and sum to 1 along ``dim``.

    Written from scratch in the numerically stable form: the maximum is subtracted
    before ``exp``, which changes nothing mathematically (it cancels between numerator
    and denominator) but keeps ``exp`` from overflowing to ``inf`` for large logits.
    Equal to `torch.softmax` up to float rounding, including for ``-inf`` entries
    (masked positions get probability 0).

    Args:
        logits: Floating-point tensor of any shape, e.g. ``(B, T, C)``.
        dim: The dimension that is normalised; ``-1`` (the vocabulary C) by default.

    Shape:
        - logits: ``(*)``, e.g. ``(B, T, C)``.
        - Output: the same shape; sums to 1 along ``dim``.

    Returns:
        The probabilities.

    Raises:
        TypeError: If ``logits`` is not a floating-point tensor or ``dim`` is not an int.
        ValueError: If ``logits`` is 0-D or empty along ``dim``, or ``dim`` is out of range.

    Examples:
        >>> import torch
        >>> from gptnotes import softmax
        >>> p = softmax(torch.tensor([1.0, 2.0, 3.0]))
        >>> [round(v, 4) for v in p.tolist()]
        [0.09, 0.2447, 0.6652]
        >>> softmax(torch.tensor([1000.0, 1001.0])).tolist()   # no overflow
        [0.2689414322376251, 0.7310585975646973]
    """
    _check_logits(logits, dim)
    return softmax_unchecked(logits, dim)


def softmax_unchecked(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """[`softmax`][gptnotes.sampling.softmax] after its checks, for callers that made the logits."""
    m = logits.amax(dim=dim, keepdim=True)
    # A slice that is all -inf has max -inf; -inf - (-inf) is nan, as in torch.softmax.
    e = torch.exp(logits - m)
    return e / e.sum(dim=dim, keepdim=True)


def softmax_with_temperature(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    r"""Softmax of ``logits / temperature``.

    ``temperature < 1`` sharpens the distribution towards the largest logit (the limit
    ``T -> 0`` is the argmax, a one-hot vector); ``temperature > 1`` flattens it (the limit
    ``T -> infinity`` is uniform); ``temperature = 1`` is plain softmax. The order of the
    probabilities never changes, only how far apart they are. The largest logit is
    subtracted before the division (which changes nothing mathematically), so even a
    temperature of ``1e-40`` gives the one-hot limit instead of overflowing.

    Args:
        logits: Floating-point tensor, e.g. ``(B, C)``.
        temperature: A positive, finite number.
        dim: The dimension that is normalised.

    Shape:
        - logits: ``(*)``; output: the same shape.

    Returns:
        The probabilities.

    Raises:
        TypeError: If ``temperature`` is not a real number, or ``logits`` is not a
            floating-point tensor.
        ValueError: If ``temperature`` is zero, negative, NaN or infinite, or ``logits``
            is empty.

    Examples:
        >>> import torch
        >>> from gptnotes import softmax_with_temperature
        >>> z = torch.tensor([1.0, 2.0, 3.0])
        >>> [round(v, 3) for v in softmax_with_temperature(z, 0.5).tolist()]
        [0.016, 0.117, 0.867]
        >>> [round(v, 3) for v in softmax_with_temperature(z, 2.0).tolist()]
        [0.186, 0.307, 0.506]
    """
    temperature = check_positive_finite(temperature, "temperature")
    _check_logits(logits, dim)
    return _softmax_with_temperature(logits, temperature, dim)


def _softmax_with_temperature(logits: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """[`softmax_with_temperature`][gptnotes.sampling.softmax_with_temperature] after its checks."""
    # Subtract the largest logit before dividing (the same softmax, as in `softmax`): then no
    # temperature, however small, can overflow the division; the others go to -inf, exp to 0.
    shifted = logits - logits.amax(dim=dim, keepdim=True)
    if float(torch.tensor(temperature, dtype=logits.dtype)) == 0.0:
        # The temperature is below the smallest number of the logits' dtype (about 7e-46 in
        # float32) and would become 0, making 0 / 0 = NaN at the maximum: take the limit
        # directly, 0 at the maxima and -inf elsewhere (ties share the probability).
        scaled = torch.where(shifted == 0, torch.zeros_like(shifted), shifted * float("inf"))
    else:
        scaled = shifted / temperature
    return softmax_unchecked(scaled, dim)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row from ``softmax(logits / temperature)``.

    Uses `torch.multinomial`, so a token with probability ``p`` is drawn with
    probability ``p``: the most likely token is not always the one chosen. Pass a seeded
    `torch.Generator` to make the draw reproducible.

    Args:
        logits: ``(C,)`` for one distribution or ``(B, C)`` for a batch of them.
        temperature: A positive, finite number (see [`softmax_with_temperature`][gptnotes.sampling.softmax_with_temperature]).
        generator: Optional random number generator.

    Shape:
        - logits: ``(C,)`` or ``(B, C)``.
        - Output: ``(1,)`` or ``(B, 1)``, dtype ``torch.long``, ready to be appended to a
          ``(B, T)`` context with ``torch.cat(..., dim=1)``.

    Returns:
        The sampled token ids.

    Raises:
        TypeError: If ``logits`` is not a floating-point tensor, ``temperature`` not a
            number, or ``generator`` not a ``torch.Generator``.
        ValueError: If ``logits`` is not 1-D or 2-D, is empty, or holds NaN or ``+inf``,
            or if ``temperature`` is not positive and finite.

    Examples:
        >>> import torch
        >>> from gptnotes import sample_next_token
        >>> g = torch.Generator().manual_seed(0)
        >>> logits = torch.tensor([[0.0, 0.0, 10.0]])   # (B=1, C=3)
        >>> sample_next_token(logits, generator=g)
        tensor([[2]])
    """
    temperature = check_positive_finite(temperature, "temperature")
    check_float_tensor(logits, "logits", ndim=(1, 2))
    _check_logits(logits, -1)
    if logits.numel() == 0:
        raise ValueError(f"logits must hold at least one row to sample from, got shape {tuple(logits.shape)}")
    if bool(torch.isnan(logits).any()) or bool(torch.isposinf(logits).any()):
        raise ValueError("logits must not hold NaN or +inf (only -inf, for masked tokens, is allowed)")
    if bool(torch.isneginf(logits).all(dim=-1).any()):
        raise ValueError("logits has a row where every entry is -inf: no token can be sampled from it")
    check_generator(generator)
    return sample_next_token_unchecked(logits, temperature, generator)


def check_generator(generator: object) -> None:
    """Raise ``TypeError`` unless ``generator`` is a ``torch.Generator`` or ``None``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def sample_next_token_unchecked(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """[`sample_next_token`][gptnotes.sampling.sample_next_token] after its checks: what a
    model's ``generate`` calls on logits it made itself, once per new token."""
    probs = _softmax_with_temperature(logits, temperature, -1)  # (B, C)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
