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
    """Like :func:`check_tensor`, and the dtype must be an integer type (token ids)."""
    check_tensor(value, name, ndim)
    assert isinstance(value, torch.Tensor)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (e.g. torch.long), got dtype {value.dtype}")
    return value


def check_float_tensor(value: object, name: str, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Like :func:`check_tensor`, and the dtype must be a floating-point type."""
    check_tensor(value, name, ndim)
    assert isinstance(value, torch.Tensor)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_token_ids(idx: object, vocab_size: int, name: str = "idx", ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Check that ``idx`` is an integer tensor whose values lie in ``[0, vocab_size)``."""
    check_int_tensor(idx, name, ndim)
    assert isinstance(idx, torch.Tensor)
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
