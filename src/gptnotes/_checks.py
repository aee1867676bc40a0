"""Argument checks shared by every module.

Each helper raises a ``TypeError`` when a value has the wrong kind and a ``ValueError``
when it has the right kind but an impossible value. Every message starts with the name
of the argument, so that a reader who passes a bad value learns which one and what was
expected, instead of meeting a deep ``IndexError`` later.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = [
    "check_positive_int",
    "check_positive_finite",
    "check_tensor",
    "check_int_tensor",
    "check_float_tensor",
    "check_token_ids",
    "check_finite",
    "check_nonnegative_int",
    "check_probability",
    "check_targets",
]


def _type_name(value: object) -> str:
    return type(value).__name__


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer, else raise.

    ``bool`` is rejected even though it is an ``int`` subclass: ``Linear(True, 3)`` is a bug.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a positive integer, got {_type_name(value)} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_nonnegative_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= 0`` (e.g. a number of new tokens)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {_type_name(value)} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_probability(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` if it lies in ``[0, 1)`` (a dropout rate), else raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {_type_name(value)} {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return value


def check_positive_finite(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a positive, finite real number, else raise."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive finite number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def check_tensor(value: object, name: str, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor, ``ValueError`` if its rank is wrong."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(value)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {want} tensor, got shape {tuple(value.shape)}")
    return value


def check_int_tensor(value: object, name: str, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Like `check_tensor`, and the dtype must be an integer type (token ids)."""
    check_tensor(value, name, ndim)
    assert isinstance(value, torch.Tensor)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (e.g. torch.long), got dtype {value.dtype}")
    return value


def check_float_tensor(value: object, name: str, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Like `check_tensor`, and the dtype must be a floating-point type."""
    check_tensor(value, name, ndim)
    assert isinstance(value, torch.Tensor)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_token_ids(idx: object, vocab_size: int, name: str = "idx", ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Check that ``idx`` is an integer tensor whose values lie in ``[0, vocab_size)``.

    Returns it as ``torch.long`` (itself if it already is): embedding tables and
    ``F.cross_entropy`` take no narrower integer type, and a reader's ids may come as uint8.
    """
    check_int_tensor(idx, name, ndim)
    assert isinstance(idx, torch.Tensor)
    idx = idx.long()
    if idx.numel() > 0:
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size - 1}] "
                f"(vocab_size={vocab_size})"
            )
    return idx


def check_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if a floating-point tensor holds NaN or infinity."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite, but it holds NaN or infinity")
    return value


def check_targets(targets: object, idx: torch.Tensor, vocab_size: int, name: str = "targets") -> torch.Tensor:
    """Check next-token targets: integer ids in ``[0, vocab_size)`` with exactly the shape of ``idx``."""
    check_int_tensor(targets, name)
    assert isinstance(targets, torch.Tensor)
    if targets.shape != idx.shape:
        raise ValueError(
            f"{name} must have the shape of idx {tuple(idx.shape)} (one next token per input token), "
            f"got shape {tuple(targets.shape)}"
        )
    return check_token_ids(targets, vocab_size, name)
