"""Argument checks shared by every module.

Each helper raises a ``TypeError`` when a value has the wrong kind and a ``ValueError``
when it has the right kind but an impossible value. Every message starts with the name
of the argument, so that a reader who passes a bad value learns which one and what was
expected, instead of meeting a deep ``IndexError`` later.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path

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
    "check_bool",
    "check_eps",
    "check_allocation",
    "machine_memory_bytes",
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
        _check_has_data(value, name)
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive finite number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is a ``bool``; a truthy ``1`` or ``"no"`` is a bug, not a flag."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_type_name(value)} {value!r}")
    return value


# eps is added to float32 statistics: below float32's smallest normal number it rounds to 0
# (1e-320 + 0 = 0, then 0 / 0 = NaN), above 1e30 it swamps any variance (and 1e300 overflows).
_EPS_MIN = float(torch.finfo(torch.float32).tiny)  # 1.1754944e-38
_EPS_MAX = 1e30


def check_eps(value: object, name: str = "eps") -> float:
    """Return ``value`` as a ``float`` if it is a usable epsilon: positive, finite, and inside
    ``[1.2e-38, 1e30]`` (a smaller one is 0 in float32, a larger one overflows or drowns the data)."""
    value = check_positive_finite(value, name)
    if not _EPS_MIN <= value <= _EPS_MAX:
        raise ValueError(
            f"{name} must lie in [{_EPS_MIN:.4g}, {_EPS_MAX:g}] (float32 turns a smaller one into 0, "
            f"and a larger one overflows or swamps the values), got {value!r}"
        )
    return value


def machine_memory_bytes() -> int | None:
    """The physical memory of this machine in bytes, or ``None`` where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in words: ``'40 GB'``, ``'1.3 MB'``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_allocation(nbytes: int, what: str, sizes: str) -> None:
    """Refuse, before anything is allocated, what needs more memory than this machine has.

    Args:
        nbytes: The bytes the allocation needs (computed from the sizes, never by trying).
        what: What would be built, e.g. ``"Linear(in_features, out_features)"``.
        sizes: The arguments that decide it, as the caller gave them, e.g. ``"in_features=2**63"``.
    """
    total = machine_memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"{sizes}: {what} would need {format_bytes(nbytes)} of memory, more than this machine's "
            f"{format_bytes(total)}; choose smaller sizes"
        )


def _check_has_data(value: torch.Tensor, name: str) -> None:
    if value.is_meta:
        raise ValueError(f"{name} is a meta tensor (a shape without data): its values cannot be checked or used")


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
    _check_has_data(idx, name)
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
    _check_has_data(value, name)
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


def skip_input_checks(*layers: torch.nn.Module) -> None:
    """Mark layers inside a model whose caller has checked what they are given.

    A layer a reader calls on its own checks its input and names what is wrong; inside a model
    the caller has checked the same tensor already, so the inner layer's ``forward`` skips its
    checks (its ``checks_input`` becomes ``False``). Checks at the edges, once per call.
    """
    for layer in layers:
        layer.checks_input = False


def check_existing_file(path: object, kind: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing regular file, else an error naming
    ``path``; ``kind`` says what the file should be (``"checkpoint file"``, ``"text file"``).
    A folder, a pipe or a device is refused before anything opens it (a pipe would block,
    ``/dev/zero`` never ends)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such file: {str(p)!r}")
    if p.is_dir():
        raise ValueError(f"path: {str(p)!r} is a folder, not a {kind}")
    if not p.is_file():
        raise ValueError(f"path: {str(p)!r} is not a regular file (a pipe, socket or device), not a {kind}")
    return p
